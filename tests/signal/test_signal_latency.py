"""Rows come within half a second of the data that completes them, and equal batch rows."""

from __future__ import annotations

import numpy as np
import pandas as pd

from affectstream.signal import StreamingExtractor, WindowConfig, extract_features
from affectstream.signal.synthetic import split_block, synthetic_recording
from affectstream.types import SampleBlock

T0 = 1_700_000_000.0
CONFIG = WindowConfig(window=20.0, step=2.0, origin=T0)


def _heart_rate(duration: float, offset: float = 0.3) -> SampleBlock:
    """Heart rate once a second, an event stream (as the BLE Heart Rate service gives)."""
    t = T0 + np.arange(offset, duration, 1.0)
    return SampleBlock(
        stream="s/hr",
        modality="hr",
        channels=("HR",),
        unit="bpm",
        sfreq=None,
        t=t,
        values=(70.0 + np.sin(t - T0))[:, None],
        index=np.arange(t.size, dtype=np.int64),
    )


def _live(blocks: list[SampleBlock], seconds: float) -> tuple[pd.DataFrame, np.ndarray]:
    """Push ``seconds``-long chunks in arrival order; rows and how long after t_end each came.

    A chunk arrives when its last sample is taken, so the newest sample time at the push is
    the arrival time.
    """
    extractor = StreamingExtractor(CONFIG)
    chunks = []
    for block in blocks:
        if block.sfreq is None:
            chunks += split_block(block, [1])
        else:
            chunks += split_block(block, [max(1, round(seconds * block.sfreq))])
    chunks.sort(key=lambda c: float(c.t[-1]))
    frames, waits = [], []
    for chunk in chunks:
        rows = extractor.push(chunk)
        if len(rows):
            frames.append(rows)
            waits += (float(chunk.t[-1]) - rows["t_end"]).tolist()
    frames.append(extractor.flush())
    return pd.concat([f for f in frames if len(f)], ignore_index=True), np.asarray(waits)


def test_ecg_eda_eeg_and_heart_rate_rows_come_within_half_a_second() -> None:
    duration = 120.0
    blocks = [*synthetic_recording(duration / 60, seed=3).blocks, _heart_rate(duration)]
    rows, waits = _live(blocks, 0.1)
    # ECG: about 0.15 s after an R peak (0.05-s look-ahead, the QRS's end, the 0.1-s
    # template); SCR peaks: one sample after (SCRs confirmed in 0.25-s segments);
    # EEG and heart rate: none beyond their data. The 0.1-s chunks add up to 0.1 s.
    assert np.percentile(waits, 99) <= 0.5 + 0.1
    assert np.median(waits) <= 0.3
    batch = extract_features(blocks, CONFIG)
    pd.testing.assert_frame_equal(rows, batch, check_exact=True)


def test_an_event_stream_does_not_hold_rows_until_its_next_event() -> None:
    duration = 60.0
    blocks = [synthetic_recording(duration / 60, seed=4).blocks[1], _heart_rate(duration)]
    assert blocks[0].modality == "eda"
    rows, waits = _live(blocks, 0.25)
    # Without the rule rows waited for the next heart-rate event (up to 1 s).
    assert waits.max() <= 0.25 + 0.5
    pd.testing.assert_frame_equal(rows, extract_features(blocks, CONFIG), check_exact=True)


def test_an_event_stream_row_goes_out_once_the_others_pass_it_without_a_new_feed() -> None:
    # EEG is ready as soon as its samples are fed; the rule lets heart rate through 0.25 s
    # later, while EEG chunks are only gathered (min_chunk = step): the row must go out
    # then, not at the next heart-rate event or the next EEG feed (up to a step later).
    duration = 60.0
    eeg = synthetic_recording(duration / 60, seed=5).blocks[2]
    assert eeg.modality == "eeg"
    # Events 0.8 s after each window end: waiting for the next one would show.
    blocks = [eeg, _heart_rate(duration, offset=0.8)]
    chunk = 0.05
    rows, waits = _live(blocks, chunk)
    assert waits.max() <= 0.25 + 2 * chunk
    pd.testing.assert_frame_equal(rows, extract_features(blocks, CONFIG), check_exact=True)
