"""``affectstream bench soak``: does memory stay flat over a long live session?

One emulated participant (HR strap, Polar H10, EDA band, Muse by default) streams through
the live runtime into an embedded store for ``minutes`` of real time (the runtime stamps
samples with the host clock, so the emulated devices cannot run faster than real time).
The process's resident memory (RSS) is sampled every ``sample_seconds``; after a warm-up
(the first ``warmup_fraction`` of the run: caches, the extractor's windows and the SQLite
page cache fill), a least-squares line through the samples gives the growth per hour.
Bounded memory shows as a slope near zero.

Bursts can be provoked on purpose (``stall_every``): every so often either the event loop
is blocked (``"loop"``: the host is starved, every device falls behind and then delivers
its backlog at once, as under heavy machine load) or the devices hold their notifications
(``"device"``: a buffered stall, then a burst). With ``trace_frames`` the Python heap is
traced (:mod:`tracemalloc`): its size at every sample, and the allocations that grew most
between the end of warm-up and the end of the run, by traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import math
import time
import tracemalloc
from pathlib import Path
from typing import Any, Literal

import numpy as np

from affectstream._validate import check_positive
from affectstream.device.emulation import VirtualRadio, make_emulated
from affectstream.device.supervisor import DeviceTarget, Supervisor
from affectstream.errors import ConfigError
from affectstream.models.bundle import ModelBundle
from affectstream.runtime.estimator import LiveEstimator
from affectstream.runtime.memory import (
    RELEASE_INTERVAL_S,
    MemoryKeeper,
    native_memory,
    rss_bytes,
)
from affectstream.runtime.session import LiveSession, SessionConfig
from affectstream.signal import WindowConfig
from affectstream.store import EmbeddedStore
from affectstream.types import FloatArray

logger = logging.getLogger(__name__)

__all__ = ["STALL_MODES", "native_memory", "rss_bytes", "soak"]

#: How a burst is provoked (see the module docstring).
STALL_MODES = ("loop", "device")
TOP_GROWTH = 15  # allocation sites reported


def _growth(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot) -> list[dict[str, Any]]:
    """The allocation sites whose live size grew most from ``before`` to ``after``."""
    skip = [tracemalloc.Filter(False, tracemalloc.__file__)]
    stats = after.filter_traces(skip).compare_to(before.filter_traces(skip), "traceback")
    stats.sort(key=lambda stat: stat.size_diff, reverse=True)
    return [
        {
            "size_diff_kb": round(stat.size_diff / 1024, 1),
            "size_kb": round(stat.size / 1024, 1),
            "count_diff": stat.count_diff,
            "traceback": [f"{frame.filename}:{frame.lineno}" for frame in stat.traceback],
        }
        for stat in stats[:TOP_GROWTH]
    ]


class _Record:
    """The soak's own samples, in columns allocated once for the whole run.

    Appending a dict per sample to a list grew the Python heap by about 1.7 KB per sample
    (0.41 MB/h at 15-s samples: ``tracemalloc`` around 240 :func:`native_memory` records),
    which the RSS slope then counted as the session's growth.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.n = 0
        self._columns: dict[str, FloatArray] = {}

    def add(self, values: dict[str, float]) -> None:
        if self.n == self.capacity:  # the session ran long: later samples are not kept
            return
        for key, value in values.items():
            column = self._columns.get(key)
            if column is None:  # a key first seen now (pyarrow loaded later) gets its column
                column = self._columns[key] = np.full(self.capacity, np.nan)
            column[self.n] = value
        self.n += 1

    def column(self, key: str) -> FloatArray:
        column = self._columns.get(key)
        return np.full(self.n, np.nan) if column is None else column[: self.n]

    def rows(self, keys: tuple[str, ...]) -> list[list[float]]:
        columns = [self.column(key) for key in keys]
        return [[round(float(c[i]), 2) for c in columns] for i in range(self.n)]

    def dicts(self, exclude: tuple[str, ...]) -> list[dict[str, float]]:
        keys = [key for key in self._columns if key not in exclude]
        out = []
        for i in range(self.n):
            values = {key: float(self._columns[key][i]) for key in keys}
            values["t"] = round(values["t"], 1)
            out.append({k: v for k, v in values.items() if not math.isnan(v)})
        return out


async def soak(
    minutes: float,
    store_path: Path,
    bundle: ModelBundle | None,
    *,
    kinds: str = "hr,polar,eda,muse",
    sample_seconds: float = 5.0,
    warmup_fraction: float = 0.25,
    stall_every: float | None = None,
    stall_seconds: float = 20.0,
    stall_mode: Literal["loop", "device"] = "loop",
    trace_frames: int = 0,
    release_every: float | None = RELEASE_INTERVAL_S,
) -> dict[str, Any]:
    """Run one emulated participant for ``minutes`` and track RSS.

    Parameters
    ----------
    minutes : float
        Session length.
    store_path : Path
        Embedded store folder.
    bundle : ModelBundle or None
        Arousal model.
    kinds : str
        Emulated devices.
    sample_seconds : float
        Wall seconds between RSS samples.
    warmup_fraction : float
        Share of the run left out of the slope.
    stall_every : float, optional
        Provoke a burst every this many seconds (none by default).
    stall_seconds : float
        Length of each stall.
    stall_mode : {"loop", "device"}
        Block the event loop (the host is starved) or hold the devices' notifications.
    trace_frames : int
        Trace Python allocations with this many frames per traceback (0: off; slow).
    release_every : float or None
        Seconds between the session's releases of allocator retention
        (:class:`~affectstream.runtime.memory.MemoryKeeper`); None: off, to compare.

    Returns
    -------
    dict
        ``minutes``, ``wall_s``, ``rss_mb`` (start, end, max), ``rss_slope_mb_per_h``
        (after warm-up), ``samples`` (``[seconds, rss_mb]``, plus the traced Python heap in
        MB when tracing), ``native`` (:func:`native_memory` at each sample),
        ``anon_slope_mb_per_h`` (the slope of anonymous RSS alone), ``stalls`` (how many
        bursts were provoked), ``stall`` (the settings), the session's
        ``stored`` / ``not_stored`` and ``feature_skipped`` (samples that skipped the
        extractor), ``memory_release`` (the interval and
        :meth:`~affectstream.runtime.memory.MemoryKeeper.stats`), and with tracing
        ``top_growth`` (see :func:`_growth`).
    """
    if stall_mode not in STALL_MODES:
        raise ConfigError(
            f"stall mode must be one of {', '.join(STALL_MODES)}, got {stall_mode!r}."
        )
    if stall_every is not None:
        check_positive("stall_every", stall_every)
        check_positive("stall_seconds", stall_seconds)
    seconds = minutes * 60.0
    record = _Record(int(seconds / sample_seconds) + 64)  # + the session's start and end
    window = WindowConfig(window=30.0, step=5.0)
    config = SessionConfig(participant="soak", window=window, baseline_seconds=window.window)
    if trace_frames:
        tracemalloc.start(trace_frames)
    snapshots: dict[str, tracemalloc.Snapshot] = {}
    stalls = 0
    started = time.monotonic()
    with EmbeddedStore(store_path, synchronous="normal") as store:
        async with VirtualRadio() as radio:
            estimator = LiveEstimator([bundle] if bundle is not None else [], baseline_end=None)
            session = LiveSession(store, config, estimator)
            session.memory = MemoryKeeper(release_every)
            peripherals = make_emulated(kinds, seed=7)
            for peripheral in peripherals:
                peripheral.keep_samples = False
                await radio.add(peripheral)
            supervisor = Supervisor(
                [DeviceTarget(p.address, profile=p.profile, name=p.name) for p in peripherals],
                on_block=session.submit,
                client_kwargs=radio.client_kwargs(),
                scanner_kwargs=radio.scanner_kwargs(),
                connect_timeout=30.0,
            )

            async def sample() -> None:
                while True:
                    gc.collect()  # measure what is kept, not garbage not yet collected
                    elapsed = time.monotonic() - started
                    point = {"t": elapsed, "rss": rss_bytes() / 1e6}
                    if trace_frames:
                        point["traced"] = tracemalloc.get_traced_memory()[0] / 1e6
                        # The last snapshot before the end; the first one after warm-up.
                        key = "end" if "warm" in snapshots else "warm"
                        if key == "end" or elapsed >= warmup_fraction * seconds:
                            snapshots[key] = tracemalloc.take_snapshot()
                    record.add({**point, **native_memory()})
                    await asyncio.sleep(sample_seconds)

            async def provoke() -> None:
                nonlocal stalls
                await session.streaming.wait()
                assert stall_every is not None
                while True:
                    await asyncio.sleep(stall_every)
                    logger.info("soak: %s stall of %g s", stall_mode, stall_seconds)
                    if stall_mode == "loop":
                        time.sleep(stall_seconds)  # blocks the loop on purpose: a starved host
                    else:
                        for peripheral in peripherals:
                            peripheral.stall(stall_seconds, drop=False)
                    stalls += 1

            helpers = [asyncio.create_task(sample())]
            if stall_every is not None:
                helpers.append(asyncio.create_task(provoke()))
            try:
                summary = await session.run(supervisor, duration=seconds)
            finally:
                for task in helpers:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
    top_growth = _growth(snapshots["warm"], snapshots["end"]) if len(snapshots) == 2 else None
    if trace_frames:
        tracemalloc.stop()
    times, rss = record.column("t"), record.column("rss")
    kept = times >= warmup_fraction * times[-1] if len(times) else times.astype(bool)
    slope = None
    if kept.sum() >= 3:
        slope = float(np.polyfit(times[kept] / 3600.0, rss[kept], 1)[0])
    anon = record.column("anon_mb")
    anon_slope = None
    if kept.sum() >= 3 and len(anon) == len(times) and np.isfinite(anon[kept]).all():
        anon_slope = float(np.polyfit(times[kept] / 3600.0, anon[kept], 1)[0])
    result: dict[str, Any] = {
        "minutes": minutes,
        "kinds": kinds,
        "wall_s": round(time.monotonic() - started, 1),
        "warmup_fraction": warmup_fraction,
        "rss_mb": {
            "start": round(float(rss[0]), 1) if len(rss) else None,
            "end": round(float(rss[-1]), 1) if len(rss) else None,
            "max": round(float(rss.max()), 1) if len(rss) else None,
        },
        "rss_slope_mb_per_h": None if slope is None else round(slope, 3),
        "anon_slope_mb_per_h": None if anon_slope is None else round(anon_slope, 3),
        "n_samples": record.n,
        "samples": record.rows(("t", "rss", "traced") if trace_frames else ("t", "rss")),
        "native": record.dicts(exclude=("rss", "traced")),
        "stalls": stalls,
        "stall": None
        if stall_every is None
        else {"every_s": stall_every, "seconds": stall_seconds, "mode": stall_mode},
        "feature_skipped": sum(
            int(stream.get("feature_skipped", 0)) for stream in summary["streams"].values()
        ),
        "n_feature_rows": summary["n_feature_rows"],
        "n_estimates": summary["n_estimates"],
        "memory_release": {"every_s": release_every, **session.memory.stats()},
        "stored": summary["stored"],
        "not_stored": summary["not_stored"],
    }
    if trace_frames:
        result["top_growth"] = top_growth
    return result
