"""``affectstream bench soak``: does memory stay flat over a long live session?

One emulated participant (HR strap, Polar H10, EDA band, Muse by default) streams through
the live runtime into an embedded store for ``minutes`` of real time (the runtime stamps
samples with the host clock, so the emulated devices cannot run faster than real time).
The process's resident memory (RSS) is sampled every ``sample_seconds``; after a warm-up
(the first ``warmup_fraction`` of the run: caches, the extractor's windows and the SQLite
page cache fill), a least-squares line through the samples gives the growth per hour.
Bounded memory shows as a slope near zero.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from affectstream.device.emulation import VirtualRadio, make_emulated
from affectstream.device.supervisor import DeviceTarget, Supervisor
from affectstream.models.bundle import ModelBundle
from affectstream.runtime.estimator import LiveEstimator
from affectstream.runtime.session import LiveSession, SessionConfig
from affectstream.signal import WindowConfig
from affectstream.store import EmbeddedStore

logger = logging.getLogger(__name__)

__all__ = ["rss_bytes", "soak"]


def rss_bytes() -> int:
    """Resident memory of this process in bytes (Linux ``/proc``; else the peak).

    Returns
    -------
    int
    """
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


async def soak(
    minutes: float,
    store_path: Path,
    bundle: ModelBundle | None,
    *,
    kinds: str = "hr,polar,eda,muse",
    sample_seconds: float = 5.0,
    warmup_fraction: float = 0.25,
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

    Returns
    -------
    dict
        ``minutes``, ``wall_s``, ``rss_mb`` (start, end, max), ``rss_slope_mb_per_h``
        (after warm-up), ``samples`` (``[seconds, rss_mb]``), and the session's
        ``stored`` / ``not_stored``.
    """
    seconds = minutes * 60.0
    samples: list[tuple[float, float]] = []
    window = WindowConfig(window=30.0, step=5.0)
    config = SessionConfig(participant="soak", window=window, baseline_seconds=window.window)
    started = time.monotonic()
    with EmbeddedStore(store_path, synchronous="normal") as store:
        async with VirtualRadio() as radio:
            estimator = LiveEstimator([bundle] if bundle is not None else [], baseline_end=None)
            session = LiveSession(store, config, estimator)
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
                    samples.append((elapsed, rss_bytes() / 1e6))
                    await asyncio.sleep(sample_seconds)

            sampler = asyncio.create_task(sample())
            try:
                summary = await session.run(supervisor, duration=seconds)
            finally:
                sampler.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sampler
    times = np.array([t for t, _ in samples])
    rss = np.array([m for _, m in samples])
    kept = times >= warmup_fraction * times[-1] if len(times) else times.astype(bool)
    slope = None
    if kept.sum() >= 3:
        slope = float(np.polyfit(times[kept] / 3600.0, rss[kept], 1)[0])
    return {
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
        "n_samples": len(samples),
        "samples": [[round(t, 1), round(m, 2)] for t, m in samples],
        "n_feature_rows": summary["n_feature_rows"],
        "n_estimates": summary["n_estimates"],
        "stored": summary["stored"],
        "not_stored": summary["not_stored"],
    }
