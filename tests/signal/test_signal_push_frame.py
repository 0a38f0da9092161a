"""push() packages exactly what push_rows() gives, and its frames are the caller's own."""

from __future__ import annotations

import numpy as np
import pandas as pd

from affectstream.signal import StreamingExtractor, WindowConfig
from affectstream.signal.synthetic import split_block, synthetic_recording
from affectstream.types import SampleBlock


def _steps(minutes: float, seed: int) -> tuple[float, list[tuple[SampleBlock, ...]]]:
    recording = synthetic_recording(minutes, seed=seed)
    step = WindowConfig().step
    chunks = [split_block(b, [round(step * float(b.sfreq or 1))]) for b in recording.blocks]
    t0 = min(float(b.t[0]) for b in recording.blocks)
    return t0, list(zip(*chunks, strict=False))


def test_push_frames_equal_push_rows_with_bool_flags() -> None:
    t0, steps = _steps(2, seed=31)
    framed = StreamingExtractor(origin=t0)
    bare = StreamingExtractor(origin=t0)
    n_rows = 0
    for chunks in steps:
        for chunk in chunks:
            frame = framed.push(chunk)
            rows = bare.push_rows(chunk)
            assert list(frame.columns) == framed.columns
            assert len(frame) == len(rows)
            if rows:
                expected = pd.DataFrame(rows, columns=bare.columns)
                pd.testing.assert_frame_equal(frame, expected, check_exact=True)
            n_rows += len(rows)
    assert n_rows > 0
    usable = [c for c in framed.columns if c.startswith("usable_")]
    assert usable
    assert all(framed.flush()[c].dtype == np.bool_ for c in usable)


def test_empty_frames_are_independent_of_each_other() -> None:
    t0, steps = _steps(1.5, seed=32)
    extractor = StreamingExtractor(origin=t0)
    first_chunks = steps[0]
    empties = [extractor.push(chunk) for chunk in first_chunks]
    assert all(len(e) == 0 for e in empties)
    empties[-1]["added_by_caller"] = []
    # Relabel the caller's frame in place (not ``rename(inplace=True)``, deprecated in pandas 3.1).
    empties[-1].columns = ["renamed" if c == "t_end" else c for c in empties[-1].columns]
    later = extractor.push(steps[1][0])
    assert len(later) == 0
    assert list(later.columns) == extractor.columns
