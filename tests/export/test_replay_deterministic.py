"""Replay gives the same rows whatever the speed and the machine load (issue 12).

An E4 folder's IBI events start minutes into the recording and stop for a minute at a
time. Replayed through the live runtime, the silence rule (``max_lag``) once judged EDA and
heart rate by how far the IBI stream's first sample lay ahead of what a compute batch held,
and batches grow with the load: the same file gave different rows run to run. Here the
consumer is slowed on purpose (big batches) or the replay paced (small batches), and every
run must give the batch extractor's rows.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from affectstream.runtime.replay import replay_blocks, session_rows
from affectstream.runtime.session import LiveSession
from affectstream.signal import WindowConfig, extract_features
from affectstream.signal.synthetic import rr_events, synthetic_eda, synthetic_rr
from affectstream.store import EmbeddedStore
from affectstream.types import SampleBlock

from .test_replay import assert_same_rows

T0 = 1_700_000_000.0
DURATION = 360.0
RR_START = 180.0  # the IBI events begin this far in: far more than max_lag (30 s) ahead
RR_GAP = (260.0, 320.0)  # and stop for 60 s: silent, because the data say so
WINDOW = WindowConfig(window=30.0, step=5.0)


def e4_like() -> list[SampleBlock]:
    """EDA at 4 Hz and heart rate at 1 Hz from the start; RR events late and with a gap."""
    rng = np.random.default_rng(12)
    eda = SampleBlock.regular(
        "e4/eda", "eda", ("EDA",), synthetic_eda(DURATION, 4.0, rng)[0], 4.0, T0, device="e4"
    )
    n_hr = int(DURATION)
    bpm = 70.0 + 8.0 * np.sin(np.arange(n_hr) / 40.0) + rng.normal(0.0, 1.0, n_hr)
    hr = SampleBlock.regular("e4/hr", "hr", ("HR",), bpm, 1.0, T0, device="e4")
    beats = synthetic_rr(DURATION, rng)
    keep = (beats >= RR_START) & ~((beats > RR_GAP[0]) & (beats < RR_GAP[1]))
    return [eda, hr, rr_events(beats, T0, keep=keep, stream="e4/rr", device="e4")]


def slow_worker(session: LiveSession) -> None:
    """A loaded machine: every feature computation takes 0.2 s longer (big batches)."""
    compute = session.worker.compute

    def slowed(items: list[tuple[SampleBlock, float]], final: bool) -> object:
        time.sleep(0.2)
        return compute(items, final)

    session.worker.compute = slowed  # type: ignore[method-assign,assignment]


def replayed(tmp_path: Path, name: str, **options: object) -> pd.DataFrame:
    with EmbeddedStore(tmp_path / name, synchronous="normal") as store:
        summary = replay_blocks(
            e4_like(), store, session_id=name, window=WINDOW, own_windows=False, **options
        )
        assert summary["unflushed_samples"] == 0 and summary["feature_errors"] == {}
        return session_rows(store, name)


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("paced", {"speed": 120.0}),  # small batches: a few seconds of data each
        ("slowed", {"on_session": slow_worker}),  # as fast as possible, slow consumer
        ("fast", {}),
    ],
)
def test_replay_rows_do_not_depend_on_speed_or_load(
    tmp_path: Path, name: str, options: dict[str, object]
) -> None:
    blocks = e4_like()
    batch = extract_features(blocks, WINDOW)
    rows = replayed(tmp_path, name, **options)
    assert_same_rows(rows, batch)
    # EDA and heart rate have data in every window: never NaN for lack of a silent stream.
    assert rows["usable_eda"].all() and rows["usable_hr"].all()
    # The RR stream is silent where its data are: before it starts and in its gap.
    t_end = rows["t_end"].to_numpy(np.float64) - T0
    empty = (t_end <= RR_START) | ((t_end - WINDOW.window >= RR_GAP[0]) & (t_end <= RR_GAP[1]))
    assert empty.any() and not rows.loc[empty, "usable_hrv"].any()
    assert rows.loc[~empty & (t_end > RR_START + WINDOW.window), "usable_hrv"].any()


HR_END = 100.0  # the heart-rate stream ends here, 260 s before the others
EDA_GAP = (150.0, 200.0)  # the EDA device is off: its indices jump


def count_flushed(flushed: list[int]) -> Callable[[LiveSession], None]:
    """Probe (not a fake): count the rows the extractor's final flush gives."""

    def attach(session: LiveSession) -> None:
        extractor = session.worker.extractor
        flush = extractor.flush

        def counted() -> pd.DataFrame:
            rows = flush()
            flushed.append(len(rows))
            return rows

        extractor.flush = counted  # type: ignore[method-assign]

    return attach


def test_rows_go_on_after_a_stream_ends_early(tmp_path: Path) -> None:
    """Paced replay, heart rate ending 100 s in: rows keep coming in data time for the rest
    of the file (the replay tells the extractor each stream's end and where its gaps end),
    not all at the final flush; and they are still the batch rows."""
    eda, hr, rr = e4_like()
    hr = hr.rows(0, int(np.searchsorted(hr.t, T0 + HR_END)))
    off = (eda.t >= T0 + EDA_GAP[0]) & (eda.t < T0 + EDA_GAP[1])
    eda = dataclasses.replace(eda, t=eda.t[~off], values=eda.values[~off], index=eda.index[~off])
    blocks = [eda, hr, rr]
    batch = extract_features(blocks, WINDOW)
    # The grid: every window up to the end of the data (the EDA's last sample).
    grid = int((float(eda.t[-1]) + 1 / 4.0 - T0 - WINDOW.window) // WINDOW.step) + 1
    assert len(batch) == grid
    flushed: list[int] = []
    with EmbeddedStore(tmp_path / "ends", synchronous="normal") as store:
        summary = replay_blocks(
            blocks,
            store,
            session_id="ends",
            window=WINDOW,
            own_windows=False,
            speed=120.0,
            bundle="none",
            on_session=count_flushed(flushed),
        )
        assert summary["unflushed_samples"] == 0 and summary["feature_errors"] == {}
        rows = session_rows(store, "ends")
    assert_same_rows(rows, batch)
    # Every stream ended with its last block: nothing was left for the final flush (before,
    # rows stopped at the heart rate's end and the flush gave the last 260 s of windows).
    assert flushed == [0]
    late = rows["t_end"] - T0 - WINDOW.window >= HR_END
    assert late.any() and not rows.loc[late, "usable_hr"].any()
    t_end = rows["t_end"] - T0
    in_gap = (t_end - WINDOW.window >= EDA_GAP[0]) & (t_end <= EDA_GAP[1])
    assert in_gap.any() and not rows.loc[in_gap, "usable_eda"].any()
