"""An estimate goes to the store when it is ready, not at the next flush interval.

Real parts: the session's StoreWriter and the embedded SQLite store.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from affectstream.runtime import SessionConfig
from affectstream.runtime.session_writer import StoreWriter
from affectstream.store import EmbeddedStore, SeriesBatch, seconds_to_ns

#: Much longer than the test waits: a write at the tick would miss it.
FLUSH_INTERVAL = 60.0


def _affect(t: float) -> SeriesBatch:
    tags = {"participant": "P01", "session": "s1", "model": "m"}
    return SeriesBatch("affect", tags, seconds_to_ns(np.array([t])), {"arousal": np.array([0.5])})


async def _run(store: EmbeddedStore) -> float:
    config = SessionConfig(participant="P01", flush_interval=FLUSH_INTERVAL)
    with ThreadPoolExecutor(max_workers=1) as executor:
        writer = StoreWriter(store, config, {}, "s1", executor)
        stop = asyncio.Event()
        loop_task = asyncio.create_task(writer.write_loop(stop))
        await asyncio.sleep(0.2)  # the loop is asleep for its interval
        t_end = time.time()
        writer.add_derived(_affect(t_end), [(t_end, t_end)])
        deadline = time.monotonic() + 10.0
        while not writer.latency_window_end and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        waited = time.monotonic() - (deadline - 10.0)
        stop.set()
        await loop_task
        return waited


def test_an_estimate_is_written_without_waiting_for_the_flush_interval(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "s.db")
    try:
        waited = asyncio.run(_run(store))
        frame = store.read("affect", tags={"participant": "P01"})
    finally:
        store.close()
    assert waited < FLUSH_INTERVAL / 6  # written long before the tick
    assert len(frame) == 1
    assert frame["arousal"].tolist() == [0.5]
