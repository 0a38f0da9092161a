"""Streaming R-peak detection: agrees with NeuroKit2's, block-independent, short look-ahead."""

from __future__ import annotations

import warnings
from pathlib import Path

import neurokit2 as nk
import numpy as np
import pandas as pd
import pytest
import scipy.ndimage as ndi
import scipy.signal as sps

from affectstream.signal import WindowConfig
from affectstream.signal.beat_stream import TEMPLATE_BEATS, Boxcar, _templates, most_prominent
from affectstream.signal.beats import MAX_SILENCE, EcgBeatDetector
from affectstream.signal.hrv import TEMPLATE_SPAN, HrvProcessor, detect_beats
from affectstream.signal.synthetic import split_block, synthetic_ecg, synthetic_rr
from affectstream.types import SampleBlock
from affectstream.waveforms import ECG_BEAT_SPAN, ecg_beat
from tests.signal.helpers import agreement

T0 = 1_700_000_000.0


def _feed(detector: EcgBeatDetector, x: np.ndarray, sizes: list[int]) -> list[int]:
    beats: list[int] = []
    start = 0
    while start < x.size:
        stop = start + sizes[len(beats) % len(sizes)]
        beats += [b[0] for b in detector.feed(x[start:stop])]
        start = stop
    return beats + [b[0] for b in detector.close()]


@pytest.mark.parametrize("size", [1, 4, 13, 75, 98])
def test_boxcar_equals_uniform_filter_however_the_input_is_cut(size: int) -> None:
    values = np.random.default_rng(size).normal(size=700)
    box = Boxcar(size)
    parts = [box.push(values[:3]), box.push(values[3:350]), box.push(values[350:]), box.close()]
    expected = ndi.uniform_filter1d(values, size, mode="nearest")
    np.testing.assert_allclose(np.concatenate(parts), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("ahead", [0, 3, 7])
def test_an_off_centre_boxcar_averages_its_window_with_the_first_sample_repeated(
    ahead: int,
) -> None:
    size = 8
    values = np.random.default_rng(ahead).normal(size=300)
    box = Boxcar(size, ahead)
    parts = [box.push(values[:5]), box.push(values[5:120]), box.push(values[120:]), box.close()]
    behind = size - 1 - ahead
    padded = np.concatenate((np.full(behind, values[0]), values, np.full(ahead, values[-1])))
    expected = [padded[i : i + size].mean() for i in range(values.size)]
    np.testing.assert_allclose(np.concatenate(parts), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("sfreq", [130.0, 250.0, 1000.0])
def test_streaming_detector_agrees_with_neurokit_on_the_same_cleaned_signal(sfreq: float) -> None:
    # A documented departure: the threshold average trails instead of being centred, so the
    # beats agree with nk.ecg_findpeaks instead of being equal; they do not depend on how
    # the stream is cut.
    rng = np.random.default_rng(int(sfreq))
    beats = synthetic_rr(180.0, rng)
    x = nk.ecg_clean(synthetic_ecg(beats, 180.0, sfreq, rng), sampling_rate=sfreq)
    theirs = np.asarray(nk.ecg_findpeaks(x, sampling_rate=sfreq, method="neurokit")["ECG_R_Peaks"])
    template = (round(0.2 * sfreq), round(0.4 * sfreq))
    whole = _feed(EcgBeatDetector(sfreq, template), x, [x.size])
    cut = _feed(EcgBeatDetector(sfreq, template), x, [1, 7, 33, 130])
    assert whole == cut
    sensitivity, ppv, median_dt = agreement(np.asarray(whole), theirs, sfreq, 0.05)
    assert sensitivity >= 0.99
    assert ppv >= 0.99
    assert median_dt <= 1.0 / sfreq  # the same R peak, not a neighbouring sample


def test_a_beat_waits_for_its_template_so_its_quality_does_not_depend_on_the_cuts() -> None:
    sfreq = 130.0
    rng = np.random.default_rng(9)
    x = synthetic_ecg(synthetic_rr(60.0, rng), 60.0, sfreq, rng)
    before, after = TEMPLATE_SPAN["ecg"]  # the extractor's ECG template
    template = (round(before * sfreq), round(after * sfreq))

    def run(sizes: list[int]) -> list[tuple[int, float]]:
        detector = EcgBeatDetector(sfreq, template)
        beats, start, k = [], 0, 0
        while start < x.size:
            stop = start + sizes[k % len(sizes)]
            beats += detector.feed(x[start:stop])
            # Nothing is let out before its template's last sample has arrived.
            assert all(p + template[1] <= stop for p, _ in beats)
            start, k = stop, k + 1
        return beats + detector.close()

    whole = run([x.size])
    assert sum(q > 0.5 for _, q in whole) >= 0.9 * len(whole)  # the qualities are not all 0
    for sizes in ([1], [5, 9], [73]):
        assert run(sizes) == whole


def test_rows_wait_at_most_the_look_ahead_and_no_beat_comes_after_it_was_final() -> None:
    sfreq = 130.0
    rng = np.random.default_rng(5)
    truth = synthetic_rr(120.0, rng)
    block = SampleBlock.regular(
        "s/ecg", "ecg", ("ECG",), synthetic_ecg(truth, 120.0, sfreq, rng), sfreq, T0
    )
    processor = HrvProcessor(block, WindowConfig(origin=T0))
    detector = processor.detector
    assert detector is not None
    assert detector.lookahead / sfreq <= 0.1  # 1 sample + half the 0.1-s boxcar
    lags, late = [], 0
    for chunk in split_block(block, [9, 17]):
        final_before = processor.ready_until()
        known = processor.beat_pos.size
        processor.feed(chunk)
        new_times = T0 + processor.beat_pos[known:] / sfreq
        late += int(np.sum(new_times < final_before))
        lags.append(processor.data_end() - processor.ready_until())
    assert late == 0  # a beat is never found before a time already declared final
    lags_arr = np.asarray(lags[len(lags) // 10 :])
    # In a QRS rows wait at most the look-ahead plus the QRS and the beat's 0.1-s template
    # waveform after its peak (QRS regions here last under 0.05 s after the peak).
    assert np.median(lags_arr) < detector.lookahead / sfreq
    assert lags_arr.max() <= detector.lookahead / sfreq + 0.15


def test_a_gap_ends_a_run_as_the_end_of_the_data_does() -> None:
    sfreq = 250.0
    rng = np.random.default_rng(8)
    beats = synthetic_rr(60.0, rng)
    ecg = synthetic_ecg(beats, 60.0, sfreq, rng)
    gapped = ecg.copy()
    gapped[7000:7500] = np.nan
    template = (50, 100)
    with_gap = _feed(EcgBeatDetector(sfreq, template), gapped, [64])
    before = _feed(EcgBeatDetector(sfreq, template), ecg[:7000], [64])
    assert [b for b in with_gap if b < 7000] == before
    assert all(b >= 7500 for b in with_gap[len(before) :])


def _ecg(
    truth: np.ndarray, gains: np.ndarray, duration: float, sfreq: float, noise: float, seed: int
) -> np.ndarray:
    """ECG (µV) with the beat template at each ``truth`` time scaled by its gain, plus noise."""
    t = np.arange(round(duration * sfreq)) / sfreq
    x = np.random.default_rng(seed).normal(0.0, noise, t.size) if noise else np.zeros(t.size)
    rr = np.diff(truth, prepend=2 * truth[0] - truth[1])
    for beat, interval, gain in zip(truth, rr, gains, strict=True):
        near = (t >= beat + ECG_BEAT_SPAN[0]) & (t < beat + ECG_BEAT_SPAN[1])
        x[near] += gain * ecg_beat(t[near] - beat, interval)
    return x


def _missed_and_extra(
    found: np.ndarray, truth: np.ndarray, sfreq: float
) -> tuple[np.ndarray, np.ndarray]:
    """True beats (s) with no beat found within 50 ms, and found beats (s) with no true one."""
    distance = np.abs(found[:, None] / sfreq - truth[None, :])
    if not found.size:
        return truth, found / sfreq
    return truth[distance.min(axis=0) >= 0.05], found[distance.min(axis=1) >= 0.05] / sfreq


@pytest.mark.parametrize("seed", [0, 1])
def test_weak_beats_are_all_found_again_soon_after_the_amplitude_drops(seed: int) -> None:
    # A moved electrode: every complex from `drop` on is 0.2 times as large. The first weak
    # beat gets in through MAX_SILENCE; the ones after it must not be judged against the
    # strong beats before the drop.
    sfreq, duration, drop = 130.0, 60.0, 30.0
    rng = np.random.default_rng(seed)
    truth = synthetic_rr(duration, rng)
    truth = truth[truth < duration - 0.1]  # the last beat's QRS inside the data
    raw = _ecg(truth, np.where(truth >= drop, 0.2, 1.0), duration, sfreq, 15.0, seed)
    x = nk.ecg_clean(raw, sampling_rate=sfreq)
    template = (round(0.2 * sfreq), round(0.1 * sfreq))
    whole = _feed(EcgBeatDetector(sfreq, template), x, [x.size])
    assert _feed(EcgBeatDetector(sfreq, template), x, [1, 7, 33, 130]) == whole
    missed, extra = _missed_and_extra(np.asarray(whole), truth, sfreq)
    assert extra.size == 0
    # Only the beats in the silence that lets the weak ones in may be lost ...
    assert np.all((missed >= drop) & (missed <= drop + MAX_SILENCE))
    # ... so every 10-s bin after it finds the true count within 1.
    bins = np.arange(drop + 10.0, duration + 1.0, 10.0)
    found_counts = np.histogram(np.asarray(whole) / sfreq, bins)[0]
    true_counts = np.histogram(truth, bins)[0]
    assert np.all(np.abs(found_counts - true_counts) <= 1)


@pytest.mark.parametrize("sfreq", [130.0, 250.0, 1000.0])
@pytest.mark.parametrize("noise", [0.0, 0.1, 10.0])
@pytest.mark.parametrize("first", [0.1, 0.3, 0.5, 0.7, 0.9])
def test_a_runs_first_beats_are_found_at_the_start_and_after_a_gap(
    sfreq: float, noise: float, first: float
) -> None:
    # The threshold average has no history at a run's start: not the first sample's value
    # repeated (a P wave passing it makes the refractory rule drop its R peak; a long first
    # QRS makes later ones look too short), and a P wave taken for the first beat gives way
    # to the R peak after it.
    rr, gap, restart, duration = 0.8, (5.0, 7.3), 7.3 + first, 12.0
    truth = np.concatenate((np.arange(first, gap[0] - 0.1, rr), np.arange(restart, duration, rr)))
    x = _ecg(truth, np.ones(truth.size), duration, sfreq, noise, int(first * 10))
    x[round(gap[0] * sfreq) : round(gap[1] * sfreq)] = np.nan  # longer than MAX_SILENCE
    template = (round(0.2 * sfreq), round(0.1 * sfreq))
    whole = _feed(EcgBeatDetector(sfreq, template), x, [x.size])
    assert _feed(EcgBeatDetector(sfreq, template), x, [1, 7, 33, 130]) == whole
    missed, extra = _missed_and_extra(np.asarray(whole), truth, sfreq)
    assert missed.size == 0
    assert extra.size == 0


def test_detected_beats_match_the_synthetic_truth_at_polar_rate() -> None:
    sfreq = 130.0
    rng = np.random.default_rng(11)
    truth = synthetic_rr(180.0, rng)
    block = SampleBlock.regular(
        "s/ecg", "ecg", ("ECG",), synthetic_ecg(truth, 180.0, sfreq, rng), sfreq, T0
    )
    found = detect_beats(block) / sfreq
    truth = truth[truth < 180.0]
    nearest = np.abs(found[:, None] - truth[None, :]).min(axis=0)
    assert np.mean(nearest < 0.05) >= 0.99  # sensitivity
    assert np.abs(found[:, None] - truth[None, :]).min(axis=1).max() < 0.05  # PPV 1


@pytest.mark.usefixtures("shared_data")
@pytest.mark.parametrize(
    ("name", "sfreq"),
    [
        ("bio_resting_8min_100hz.csv", 100.0),
        ("bio_eventrelated_100hz.csv", 100.0),
        ("ecg_1000hz.csv", 1000.0),
    ],
)
def test_real_ecg_beats_agree_with_neurokit_offline(
    shared_data: Path, name: str, sfreq: float
) -> None:
    signal = pd.read_csv(shared_data / "neurokit" / name)["ECG"].to_numpy(dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, info = nk.ecg_peaks(nk.ecg_clean(signal, sampling_rate=sfreq), sfreq)
    reference = np.asarray(info["ECG_R_Peaks"]) / sfreq
    block = SampleBlock.regular("nk/ecg", "ecg", ("ECG",), signal, sfreq, T0)
    found = detect_beats(block) / sfreq
    sensitivity, ppv, median_dt = agreement(found * sfreq, reference * sfreq, sfreq, 0.05)
    assert sensitivity >= 0.99
    assert ppv >= 0.99
    assert median_dt <= 1.0 / sfreq


def test_most_prominent_is_find_peaks_choice_plateaus_and_ties_included() -> None:
    rng = np.random.default_rng(11)
    for n in range(3, 60):
        # Rounded values make plateaus and equal prominences common.
        data = np.round(rng.normal(size=n) * 3.0) / 3.0
        locmax, props = sps.find_peaks(data, prominence=(None, None))
        expected = int(locmax[np.argmax(props["prominences"])]) if locmax.size else None
        assert most_prominent(data) == expected


@pytest.mark.parametrize("first", [0, 3, TEMPLATE_BEATS + 2])
@pytest.mark.parametrize("new", [1, 2, 9])
def test_templates_equal_the_mean_of_each_beats_recent_waveforms_bit_for_bit(
    first: int, new: int
) -> None:
    history = np.random.default_rng(first + new).normal(size=(first + new, 23)) * 1e3
    expected = [
        history[max(0, j + 1 - TEMPLATE_BEATS) : j + 1].mean(axis=0)
        for j in range(first, first + new)
    ]
    np.testing.assert_array_equal(_templates(history, first), np.asarray(expected))
