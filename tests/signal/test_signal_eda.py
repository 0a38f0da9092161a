"""EDA: decompose once, SCRs with NeuroKit2's definitions, quality and unit checks."""

from __future__ import annotations

import warnings

import neurokit2 as nk
import numpy as np
import pytest

from affectstream.errors import SignalError
from affectstream.signal import WindowConfig, extract_features, find_scrs
from affectstream.signal.eda import _nanmean, _nanstd, decompose_eda
from affectstream.signal.synthetic import synthetic_eda
from affectstream.types import SampleBlock

T0 = 1_700_000_000.0


def _eda_block(
    duration: float, sfreq: float, seed: int
) -> tuple[SampleBlock, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    eda, onsets, amplitudes = synthetic_eda(duration, sfreq, rng)
    block = SampleBlock.regular("s/eda", "eda", ("EDA",), eda, sfreq, T0)
    return block, onsets, amplitudes


def test_find_scrs_uses_nearest_preceding_trough() -> None:
    t = np.arange(0, 20, 0.25)
    phasic = np.where(t < 5, 0.0, 0.3 * np.exp(-((t - 7) ** 2)))
    phasic[2] = -0.01  # an earlier trough
    phasic[12] = -0.02  # the nearest trough before the response
    peaks, onsets = find_scrs(phasic, 0.05)
    assert peaks.tolist() == [int(np.argmax(phasic))]
    assert onsets.tolist() == [12]


@pytest.mark.parametrize("sfreq", [4.0, 64.0, 256.0])
def test_scr_counts_follow_the_synthetic_responses(sfreq: float) -> None:
    block, onsets, _ = _eda_block(240.0, sfreq, seed=1)
    frame = extract_features([block])
    for _, row in frame.iterrows():
        # a response is counted in the window holding its peak, ~1.5 s after its onset
        start, end = row["t_end"] - 60 - T0, row["t_end"] - T0
        expected = np.sum((onsets + 1.5 >= start) & (onsets + 1.5 < end))
        assert abs(row["eda_scr_count"] - expected) <= 1
    assert frame["usable_eda"].all()
    assert frame["eda_scr_rate"].equals(frame["eda_scr_count"])  # 60-s windows: per minute


def test_scr_counts_equal_neurokit_on_the_same_phasic_signal() -> None:
    block, _, _ = _eda_block(300.0, 64.0, seed=2)
    config = WindowConfig()
    frame = extract_features([block], config)
    _, phasic = decompose_eda(block, config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, info = nk.eda_peaks(phasic, sampling_rate=64, amplitude_min=0.0)
    amplitude = np.nan_to_num(np.asarray(info["SCR_Amplitude"]), nan=-1.0)
    rise = np.nan_to_num(np.asarray(info["SCR_RiseTime"]), nan=np.inf)
    counted = (amplitude >= config.scr_min_amplitude) & (rise <= config.scr_max_risetime)
    peaks, rise = np.asarray(info["SCR_Peaks"])[counted], rise[counted]
    for _, row in frame.iterrows():
        stop = round((row["t_end"] - T0) * 64)
        inside = (peaks >= stop - 60 * 64) & (peaks < stop)
        assert row["eda_scr_count"] == inside.sum()
        assert row["eda_scr_risetime_mean"] == pytest.approx(rise[inside].mean())


def test_tonic_tracks_the_level_and_slope_has_its_sign() -> None:
    t = np.arange(0, 180, 1 / 16)
    eda = 2.0 + 0.01 * t  # rising 0.01 µS/s
    block = SampleBlock.regular("s/eda", "eda", ("EDA",), eda, 16.0, T0)
    frame = extract_features([block])
    late = frame[frame["t_end"] - T0 >= 120]
    assert late["eda_tonic_slope"].to_numpy() == pytest.approx(0.01, rel=0.05)
    centre = late["t_end"] - T0 - 30
    assert late["eda_tonic_mean"].to_numpy() == pytest.approx(2.0 + 0.01 * centre, abs=0.1)


def test_flat_line_and_out_of_range_make_the_window_unusable() -> None:
    block, _, _ = _eda_block(200.0, 4.0, seed=3)
    values = block.values.copy()
    values[4 * 100 :] = 0.01  # electrode off: flat and below the plausible range
    broken = SampleBlock.regular("s/eda", "eda", ("EDA",), values, 4.0, T0)
    frame = extract_features([broken])
    # windows ending after 100 s hold broken samples in proportion to their overlap
    broken_share = ((frame["t_end"] - T0 - 100) / 60).clip(0, 1)
    np.testing.assert_allclose(frame["quality_eda"], 1 - broken_share, atol=0.02)
    partly = frame.index[(broken_share > 0.6) & (broken_share < 1)][0]
    assert not frame.loc[partly, "usable_eda"]
    assert np.isnan(frame.loc[partly, "eda_tonic_mean"])  # masked by default
    kept = extract_features([broken], WindowConfig(mask_unusable=False)).loc[partly]
    assert not kept["usable_eda"] and np.isfinite(kept["eda_tonic_mean"])


@pytest.mark.parametrize(
    ("scale", "unit", "advice"),
    [(1000.0, "µS", "nS"), (1.0, "kΩ", "1000 / kΩ"), (1.0, "nS", "dividing by 1000")],
)
def test_wrong_units_are_rejected_with_advice(scale: float, unit: str, advice: str) -> None:
    block, _, _ = _eda_block(90.0, 4.0, seed=4)
    wrong = SampleBlock.regular("s/eda", "eda", ("EDA",), block.values * scale, 4.0, T0, unit=unit)
    with pytest.raises(SignalError, match=advice):
        extract_features([wrong])


def test_window_mean_and_std_equal_numpy_nan_functions_bit_for_bit() -> None:
    rng = np.random.default_rng(11)
    for trial in range(300):
        n = int(rng.integers(2, 5000))
        rows = rng.normal(rng.uniform(-5.0, 20.0), rng.uniform(0.001, 100.0), (n, 4))
        column = rows[:, 1]  # a strided column, as the window reads its buffer
        if trial % 3 == 0:
            column[rng.integers(0, n)] = np.nan  # the masked path
        for ours, theirs in (
            (_nanmean(column), np.nanmean(column)),
            (_nanstd(column), np.nanstd(column, ddof=1)),
        ):
            assert np.float64(ours).view(np.int64) == np.float64(theirs).view(np.int64)
