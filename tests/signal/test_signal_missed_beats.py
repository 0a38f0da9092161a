"""A weak R peak the threshold misses is found late by the search-back, flagged, rows unchanged."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from affectstream.signal import WindowConfig, extract_features
from affectstream.signal.beats import (
    SEARCH_WEIGHT,
    STRENGTH_WEIGHT,
    EcgBeatDetector,
)
from affectstream.signal.hrv import TEMPLATE_SPAN, HrvProcessor
from affectstream.signal.synthetic import synthetic_ecg, synthetic_rr
from affectstream.types import SampleBlock
from tests.signal.helpers import streamed_rows

T0 = 1_700_000_000.0
DURATION = 120.0


def _ecg(sfreq: float, scale: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Synthetic ECG with every 12th beat at ``scale`` of its amplitude; truth, weak beats."""
    beats = synthetic_rr(DURATION, np.random.default_rng(1))
    full = synthetic_ecg(beats, DURATION, sfreq, np.random.default_rng(2))
    weak = np.arange(10, beats.size - 5, 12)
    kept = np.setdiff1d(np.arange(beats.size), weak)
    without = synthetic_ecg(beats[kept], DURATION, sfreq, np.random.default_rng(2))
    truth = np.rint(beats * sfreq).astype(np.int64)
    return without + scale * (full - without), truth, truth[weak]


def _detect(
    x: np.ndarray, sfreq: float, sizes: list[int], search_back: bool = True
) -> tuple[np.ndarray, dict[int, int]]:
    before, after = TEMPLATE_SPAN["ecg"]
    detector = EcgBeatDetector(
        sfreq, (round(before * sfreq), round(after * sfreq)), search_back=search_back
    )
    beats: list[int] = []
    start, k = 0, 0
    while start < x.size:
        stop = start + sizes[k % len(sizes)]
        beats += [b for b, _ in detector.feed(x[start:stop])]
        start, k = stop, k + 1
    beats += [b for b, _ in detector.close()]
    return np.asarray(beats), dict(detector.inserted)


def _found(beats: np.ndarray, wanted: np.ndarray, sfreq: float) -> np.ndarray:
    return np.abs(beats[:, None] - wanted[None, :]).min(axis=0) / sfreq < 0.05


@pytest.mark.parametrize("sfreq", [130.0, 250.0])
def test_weak_beats_missed_by_the_threshold_are_found_by_the_search_and_flagged(
    sfreq: float,
) -> None:
    # Between the search's floor and the weak-complex rule (SEARCH_WEIGHT < 0.2 < 0.3): a beat
    # the regular detector must drop (it looks like a P wave to the rule) ...
    assert SEARCH_WEIGHT < 0.2 < STRENGTH_WEIGHT
    x, truth, weak = _ecg(sfreq, 0.2)
    plain, _ = _detect(x, sfreq, [x.size], search_back=False)
    assert not _found(plain, weak, sfreq).any()
    # ... and the search finds every one, flags exactly those, and adds no other beat.
    beats, inserted = _detect(x, sfreq, [x.size])
    assert _found(beats, weak, sfreq).all()
    assert _found(np.asarray(sorted(inserted)), weak, sfreq).all()
    assert len(inserted) == weak.size
    assert np.setdiff1d(beats, list(inserted)).tolist() == plain.tolist()
    assert _found(beats, truth, sfreq).mean() >= 1.0 - 2.0 / truth.size  # edges aside
    # Each flag names the later beat whose long interval revealed it.
    assert all(later in beats.tolist() and later > beat for beat, later in inserted.items())
    for sizes in ([1], [5], [32]):
        cut, cut_inserted = _detect(x, sfreq, sizes)
        assert cut.tolist() == beats.tolist()
        assert cut_inserted == inserted


def test_a_beat_that_is_not_there_is_not_invented() -> None:
    sfreq = 250.0
    x, _, weak = _ecg(sfreq, 0.0)  # the beats removed: long intervals, nothing inside them
    beats, inserted = _detect(x, sfreq, [x.size])
    assert inserted == {}
    assert not _found(beats, weak, sfreq).any()


def test_rows_with_late_inserted_beats_are_the_same_batch_or_streamed() -> None:
    sfreq = 130.0
    x, _, weak = _ecg(sfreq, 0.2)
    block = SampleBlock.regular("s/ecg", "ecg", ("ECG",), x, sfreq, T0)
    config = WindowConfig(window=10.0, step=1.0)
    batch = extract_features([block], config)
    for size in (1, 5, 32):
        pd.testing.assert_frame_equal(streamed_rows(block, config, size), batch, check_exact=True)
    # The processor keeps the flag: each weak beat is there, flagged with the beat after it;
    # a window ending between the two leaves it out, one reaching the later beat counts it.
    processor = HrvProcessor(block, dataclasses.replace(config, origin=T0))
    processor.feed(block)
    processor.finish()
    flagged = processor.beat_found != processor.beat_pos
    assert _found(processor.beat_pos[flagged], weak, sfreq).all()
    assert flagged.sum() == weak.size
    for i in np.flatnonzero(flagged).tolist():
        beat, later = int(processor.beat_pos[i]), int(processor.beat_found[i])
        before = processor.window_beats(T0 + later / sfreq)  # stop = later: left out
        after = processor.window_beats(T0 + (later + 1) / sfreq)
        assert before.stop == i and after.stop == i + 2
        assert beat < later


@pytest.mark.parametrize("rr", [1.0, 1.5, 1.8])
def test_the_search_is_the_same_however_the_input_is_cut_at_slow_heart_rates(rr: float) -> None:
    """An interval of two slow beats (up to 2 x the longest plausible RR) is searched alike in
    one block and in 16-sample blocks: what the search needs is kept whatever the cuts."""
    sfreq, n_beats, weak = 250.0, 30, 15
    t = np.arange(int((n_beats + 2) * rr * sfreq)) / sfreq
    x = np.random.default_rng(0).normal(0.0, 0.005, t.size)
    centres = 1.0 + rr * np.arange(n_beats)
    for k, c in enumerate(centres):  # narrow R waves; one at 0.2 of the others' height
        x += (0.2 if k == weak else 1.0) * np.exp(-0.5 * ((t - c) / 0.012) ** 2)
    batch, batch_inserted = _detect(x, sfreq, [x.size])
    streamed, streamed_inserted = _detect(x, sfreq, [16])
    assert streamed.tolist() == batch.tolist()
    assert streamed_inserted == batch_inserted
    # The weak beat is the one inserted, and each beat comes out once.
    truth = np.rint(centres * sfreq).astype(np.int64)
    assert _found(np.asarray(sorted(batch_inserted)), truth[[weak]], sfreq).all()
    assert len(set(batch.tolist())) == batch.size
    assert _found(batch, truth, sfreq).all()
    if rr <= 1.5:
        # No other beat. At 1.8 s the 3.6-s silence around the weak beat outlasts MAX_SILENCE
        # long enough for a noise complex to get in by the silence rule (an amplitude drop).
        assert batch.size == n_beats
