"""HRV: NeuroKit2 definitions on the same peaks, beats found once per stream."""

from __future__ import annotations

import warnings

import neurokit2 as nk
import numpy as np
import pytest

from affectstream.errors import SignalError
from affectstream.signal import WindowConfig, extract_features, hrv_frequency, hrv_time
from affectstream.signal.hrv import detect_beats
from affectstream.signal.synthetic import synthetic_ecg, synthetic_rr
from affectstream.types import SampleBlock

T0 = 1_700_000_000.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hrv_time_equals_neurokit_on_the_same_peaks(seed: int) -> None:
    rng = np.random.default_rng(seed)
    peaks = np.cumsum(rng.integers(150, 300, size=80))  # samples at 250 Hz
    theirs = nk.hrv_time(peaks, sampling_rate=250)
    ours = hrv_time(np.diff(peaks) / 250 * 1000.0)
    assert ours["hrv_mean_nn"] == pytest.approx(theirs["HRV_MeanNN"].iloc[0], rel=1e-12)
    assert ours["hrv_sdnn"] == pytest.approx(theirs["HRV_SDNN"].iloc[0], rel=1e-12)
    assert ours["hrv_rmssd"] == pytest.approx(theirs["HRV_RMSSD"].iloc[0], rel=1e-12)
    # NeuroKit2 divides the count by the number of differences plus one.
    assert ours["hrv_pnn50"] == pytest.approx(theirs["HRV_pNN50"].iloc[0], rel=1e-12)
    assert ours["hrv_mean_hr"] == pytest.approx(60000.0 / ours["hrv_mean_nn"])


def test_poincare_matches_neurokit() -> None:
    rng = np.random.default_rng(5)
    peaks = np.cumsum(rng.integers(180, 260, size=70))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = nk.hrv_nonlinear(peaks, sampling_rate=250)
    ours = hrv_time(np.diff(peaks) / 250 * 1000.0)
    assert ours["hrv_sd1"] == pytest.approx(theirs["HRV_SD1"].iloc[0], rel=1e-12)
    assert ours["hrv_sd2"] == pytest.approx(theirs["HRV_SD2"].iloc[0], rel=1e-12)


def test_invalid_intervals_are_left_out() -> None:
    rr = np.array([800.0, 810.0, 2500.0, 805.0, 790.0, 800.0])
    valid = np.array([True, True, False, True, True, True])
    ours = hrv_time(rr, valid)
    assert ours["hrv_mean_nn"] == pytest.approx(np.mean(rr[valid]))
    # successive differences only between adjacent valid intervals: 10, -15, 10
    assert ours["hrv_rmssd"] == pytest.approx(np.sqrt(np.mean(np.array([10, -15, 10.0]) ** 2)))


def test_too_few_intervals_give_nan() -> None:
    assert np.isnan(hrv_time(np.array([800.0, 810.0]))["hrv_sdnn"])


def test_frequency_finds_the_modulated_band() -> None:
    # RR modulated at 0.25 Hz (HF) only: HF power must dominate LF.
    times = np.cumsum(np.full(90, 0.8))
    rr = 800.0 + 40.0 * np.sin(2 * np.pi * 0.25 * times)
    out = hrv_frequency(times, rr)
    assert out["hrv_hf"] > 10 * out["hrv_lf"]
    assert out["hrv_lf_hf"] == pytest.approx(out["hrv_lf"] / out["hrv_hf"])
    assert np.isnan(hrv_frequency(times, rr, lf=False)["hrv_lf"])


def _ecg_block(duration: float, seed: int, sfreq: float = 250.0) -> tuple[SampleBlock, np.ndarray]:
    rng = np.random.default_rng(seed)
    beats = synthetic_rr(duration, rng)
    ecg = synthetic_ecg(beats, duration, sfreq, rng)
    return SampleBlock.regular("s/ecg", "ecg", ("ECG",), ecg, sfreq, T0), beats


def test_beats_are_found_once_per_stream_and_match_the_truth() -> None:
    block, truth = _ecg_block(180.0, seed=3)
    found = detect_beats(block) / 250.0
    # every true beat found once, within 2 samples (+ causal filter delay), nothing else
    nearest = np.abs(found[:, None] - truth[None, :]).min(axis=1)
    assert np.all(nearest < 0.02)
    assert abs(len(found) - len(truth)) <= 1  # the very first beat may lack context
    assert np.all(np.diff(found) > 0.3)


def test_features_from_ecg_equal_neurokit_on_detected_peaks() -> None:
    block, _ = _ecg_block(150.0, seed=4)
    frame = extract_features([block])
    beats = detect_beats(block)
    for _, row in frame.iterrows():
        stop = round((row["t_end"] - T0) * 250)
        peaks = beats[(beats >= stop - 60 * 250) & (beats < stop)]
        theirs = nk.hrv_time(peaks, sampling_rate=250)
        assert row["hrv_rmssd"] == pytest.approx(theirs["HRV_RMSSD"].iloc[0], rel=1e-12)
        assert row["hrv_sdnn"] == pytest.approx(theirs["HRV_SDNN"].iloc[0], rel=1e-12)
    assert frame["usable_hrv"].all()
    assert (frame["quality_hrv"] > 0.9).all()


def test_rr_stream_gives_the_mean_of_its_intervals() -> None:
    rng = np.random.default_rng(6)
    beats = synthetic_rr(200.0, rng)
    rr = np.diff(beats) * 1000.0
    block = SampleBlock(
        stream="s/rr",
        modality="rr",
        channels=("RR",),
        unit="ms",
        sfreq=None,
        t=T0 + beats[1:],
        values=rr[:, None],
        index=np.arange(rr.size, dtype=np.int64),
    )
    frame = extract_features([block], WindowConfig(origin=T0))
    for _, row in frame.iterrows():
        inside = (T0 + beats[1:] >= row["t_end"] - 60) & (T0 + beats[1:] < row["t_end"])
        assert row["hrv_mean_nn"] == pytest.approx(rr[inside].mean())
    assert frame["hrv_lf"].notna().all()


def test_short_windows_have_hf_but_no_lf() -> None:
    block, _ = _ecg_block(90.0, seed=7)
    frame = extract_features([block], WindowConfig(window=30.0, step=5.0))
    assert frame["hrv_lf"].isna().all()
    assert frame["hrv_hf"].notna().all()


def test_ppg_heart_rate_matches_the_simulated_rate() -> None:
    ppg = nk.ppg_simulate(duration=150, sampling_rate=64, heart_rate=72, random_state=1)
    block = SampleBlock.regular("s/ppg", "ppg", ("PPG",), ppg, 64.0, T0)
    frame = extract_features([block])
    assert frame["hrv_mean_hr"].to_numpy() == pytest.approx(72.0, abs=3.0)


def test_a_gap_invalidates_the_intervals_across_it() -> None:
    block, _ = _ecg_block(150.0, seed=8)
    values = block.values.copy()
    values[(70 * 250) : (75 * 250)] = np.nan  # a 5-s dropout
    gapped = SampleBlock.regular("s/ecg", "ecg", ("ECG",), values, 250.0, T0)
    clean = extract_features([block])
    broken = extract_features([gapped])
    affected = (broken["t_end"] - T0 > 70) & (broken["t_end"] - T0 - 60 < 75)
    assert (broken.loc[affected, "quality_hrv"] < clean.loc[affected, "quality_hrv"]).all()
    # no interval longer than the plausible maximum slipped in
    assert (broken["hrv_mean_nn"].dropna() < 1200).all()


def test_rr_in_seconds_is_rejected_with_advice() -> None:
    block = SampleBlock(
        stream="s/rr",
        modality="rr",
        channels=("RR",),
        unit="s",
        sfreq=None,
        t=T0 + np.arange(10.0),
        values=np.full((10, 1), 0.8),
        index=np.arange(10, dtype=np.int64),
    )
    with pytest.raises(SignalError, match="multiply by 1000"):
        extract_features([block])


def test_ecg_sampled_too_slowly_is_rejected() -> None:
    block = SampleBlock.regular("s/ecg", "ecg", ("ECG",), np.zeros(400), 4.0, T0)
    with pytest.raises(SignalError, match="50 Hz"):
        extract_features([block])
