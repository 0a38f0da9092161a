"""``affectstream bench live``: latency to the stored estimate, and participants per process.

Each step runs ``n`` emulated participants (HR strap, Polar H10, EDA band, Muse each) on
one :class:`~affectstream.device.emulation.VirtualRadio` in this process, every participant
through its own supervisor and :class:`~affectstream.runtime.session.LiveSession` into one
shared embedded store, for a fixed number of seconds. A step is *sustained* when nothing was
dropped anywhere (no emulator loss, no counter gap, no queue overflow, no back-pressure drop,
no sample skipping the extractor), every window got its estimate, estimates reached the
store within ``2 × step + flush interval`` of the data that completed them (p99), and the
p99 latency from a window's end to its stored estimate stayed within two steps of the
one-participant step's (otherwise data or estimates fall behind real time). The ramp
doubles ``n`` until a step is not sustained or the time budget is spent. Each step also
reports the runtime's own cost (worker seconds in features and models, store write
seconds, per participant per second), separate from the emulated BLE stack's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from affectstream.device.emulation import VirtualRadio, make_emulated
from affectstream.device.supervisor import Supervisor
from affectstream.models.bundle import ModelBundle
from affectstream.runtime.demo import LIVE_COMPUTE_INTERVAL, LIVE_FLUSH_INTERVAL
from affectstream.runtime.estimator import LiveEstimator
from affectstream.runtime.session import LiveSession, SessionConfig
from affectstream.signal import WindowConfig
from affectstream.store import EmbeddedStore

logger = logging.getLogger(__name__)

BENCH_WINDOW = WindowConfig(window=10.0, step=2.0, beat_segment=5.0)


async def bench_step(
    n_participants: int,
    seconds: float,
    store: EmbeddedStore,
    bundle: ModelBundle | None,
    *,
    kinds: str = "hr,polar,eda,muse",
    window: WindowConfig = BENCH_WINDOW,
    reference_p99: float | None = None,
) -> dict[str, Any]:
    """Run ``n_participants`` emulated participants for ``seconds`` and measure them.

    Parameters
    ----------
    n_participants : int
        Participants at once.
    seconds : float
        Length of the step.
    store : EmbeddedStore
        Shared store.
    bundle : ModelBundle or None
        Arousal model.
    kinds : str
        Emulated devices per participant.
    window : WindowConfig
        Feature windows.
    reference_p99 : float, optional
        p99 window-end latency of the one-participant step; a step whose p99 exceeds it
        by more than two steps is falling behind.

    Returns
    -------
    dict
        ``participants``, ``sustained``, ``why`` (reasons it was not), latencies (p50,
        p99 s), ``estimates``, ``expected_estimates``, ``dropped`` counts, ``cpu_s``.
    """
    # The demo's live-feedback hand-over intervals: the latency measured is the demo's.
    config = SessionConfig(
        window=window,
        baseline_seconds=window.window,
        compute_interval=LIVE_COMPUTE_INTERVAL,
        flush_interval=LIVE_FLUSH_INTERVAL,
    )
    started_cpu = time.process_time()
    started_wall = time.time()
    async with contextlib.AsyncExitStack() as stack:
        sessions: list[LiveSession] = []
        supervisors: list[Supervisor] = []
        devices = []
        for i in range(n_participants):
            # One radio per participant, as each wears their own devices near their own
            # receiver; a shared in-memory link would serialise everyone's packets.
            radio = await stack.enter_async_context(VirtualRadio())
            cfg = SessionConfig(**{**config.__dict__, "participant": f"B{i:03d}"})
            estimator = LiveEstimator([bundle] if bundle is not None else [], baseline_end=None)
            session = LiveSession(store, cfg, estimator)
            peripherals = make_emulated(kinds, seed=1000 + 8 * i)
            targets = await radio.add_all(peripherals)
            devices.append(peripherals)
            sessions.append(session)
            supervisors.append(
                Supervisor(
                    targets,
                    on_block=session.submit,
                    connect_timeout=30.0,
                    **radio.supervisor_options(),
                )
            )
        summaries = await asyncio.gather(
            *(s.run(sup, duration=seconds) for s, sup in zip(sessions, supervisors, strict=True))
        )
        # Samples lost between the first and the last delivery: what the emulator
        # generated after the session stopped streaming does not count.
        lost = 0
        for peripherals in devices:
            for p in peripherals:
                for kind in p.kinds:
                    sent = p.sent_indices(kind)
                    if sent.size:
                        lost += int(sent[-1] - sent[0] + 1 - sent.size)
    cpu = time.process_time() - started_cpu
    window_end = [x for s in sessions for x in s.latency_window_end]
    arrival = [x for s in sessions for x in s.latency_arrival]
    dropped = {
        "emulator_lost": int(lost),
        "device_gap_samples": 0,
        "backlog_drops": sum(s["backlog_drops"] for s in summaries),
        "feature_skipped": 0,
        "unflushed": sum(s["unflushed_samples"] for s in summaries),
    }
    expected = 0
    for summary in summaries:
        for entry in summary["streams"].values():
            dropped["device_gap_samples"] += int(entry["gap_samples"])
            dropped["feature_skipped"] += int(entry["feature_skipped"])
        # Windows every step from one window after the start up to the data end.
        span = float(summary["duration_s"])
        expected += max(0, math.floor((span - window.window) / window.step) - 1)
    estimates = sum(s["n_estimates"] for s in summaries)
    why = [f"{k}={v}" for k, v in dropped.items() if v]
    bound = 2 * window.step + config.flush_interval
    window_end_p99 = float(np.percentile(window_end, 99)) if window_end else math.inf
    if reference_p99 is not None and window_end_p99 > reference_p99 + 2 * window.step:
        why.append(
            f"p99 window-end-to-stored latency {window_end_p99:.1f} s grew past the "
            f"one-participant {reference_p99:.1f} s + 2 steps: data or estimates fall behind"
        )
    p99_arrival = float(np.percentile(arrival, 99)) if arrival else 0.0
    if not arrival:
        why.append("no estimate before the end of the step: make the step longer")
    if estimates < expected:
        why.append(f"estimates {estimates} < expected {expected}")
    if p99_arrival > bound:
        why.append(f"p99 arrival-to-stored latency {p99_arrival:.2f} s > {bound:g} s")
    return {
        "participants": n_participants,
        "seconds": seconds,
        "sustained": not why,
        "why": why,
        "estimates": estimates,
        "expected_estimates_min": expected,
        "latency_window_end_s": _stats(window_end),
        "latency_arrival_s": _stats(arrival),
        # Block arrival after its last sample's time: the BLE stack's (and the loop's) lag.
        "delivery_lag_s": _stats([x for s in sessions for x in s.delivery_lag]),
        "dropped": dropped,
        "connect_s": round(max((s.started_at or started_wall) for s in sessions) - started_wall, 2),
        "cpu_s": round(cpu, 2),
        "runtime_compute_s_per_participant_s": round(
            sum(s.compute_seconds for s in sessions) / seconds / n_participants, 4
        ),
        "store_write_s_per_participant_s": round(
            sum(s.store_seconds for s in sessions) / seconds / n_participants, 4
        ),
        "cpu_per_participant_s_per_s": round(cpu / seconds / n_participants, 4),
    }


def _stats(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p99": None}
    array = np.asarray(values)
    return {"p50": float(np.percentile(array, 50)), "p99": float(np.percentile(array, 99))}


async def bench_live(
    store_path: Path,
    bundle: ModelBundle | None,
    *,
    step_seconds: float = 30.0,
    max_participants: int = 64,
    max_seconds: float = 240.0,
    on_step: Any = None,
) -> dict[str, Any]:
    """Ramp participants up (1, 2, 4, ...) until a step is not sustained or time runs out.

    Parameters
    ----------
    store_path : Path
        Embedded store used by every step.
    bundle : ModelBundle or None
        Arousal model.
    step_seconds : float
        Length of each step.
    max_participants : int
        Largest step.
    max_seconds : float
        Time budget; no step starts that would end after it.
    on_step : callable, optional
        Called with each step's result.

    Returns
    -------
    dict
        ``latency_*`` of the one-participant step, ``max_sustained_participants``, ``steps``.
    """
    started = time.monotonic()
    steps: list[dict[str, Any]] = []
    n = 1
    with EmbeddedStore(store_path, synchronous="normal") as store:
        while n <= max_participants:
            if time.monotonic() - started + step_seconds * 1.3 > max_seconds and steps:
                break
            reference = steps[0]["latency_window_end_s"]["p99"] if steps else None
            result = await bench_step(n, step_seconds, store, bundle, reference_p99=reference)
            steps.append(result)
            if on_step is not None:
                on_step(result)
            if not result["sustained"]:
                break
            n *= 2
    sustained = [s["participants"] for s in steps if s["sustained"]]
    first = steps[0]
    return {
        "latency_window_end_s": first["latency_window_end_s"],
        "latency_arrival_s": first["latency_arrival_s"],
        "max_sustained_participants": max(sustained) if sustained else 0,
        "first_not_sustained": next((s["participants"] for s in steps if not s["sustained"]), None),
        "window_s": BENCH_WINDOW.window,
        "step_s": BENCH_WINDOW.step,
        "step_seconds": step_seconds,
        "elapsed_s": round(time.monotonic() - started, 1),
        "steps": steps,
    }
