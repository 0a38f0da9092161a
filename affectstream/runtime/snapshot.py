"""What a live session reports: the live snapshot for a view and the summary at its end.

Both only read the session's state (ledgers, writer and worker counters); nothing here
changes what is stored.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from affectstream.runtime.accounting import StreamLedger
from affectstream.runtime.devices import DeviceView
from affectstream.runtime.protocol import ProtocolPhase
from affectstream.signal import WindowConfig

if TYPE_CHECKING:
    from affectstream.runtime.session import BlockSource, LiveSession

#: Seconds a rate estimate spans (long enough to cover several BLE deliveries).
RATE_SPAN = 2.0


@dataclass
class StreamView:
    """One stream in a :class:`LiveSnapshot`."""

    stream: str
    modality: str
    rate: float
    delivered: int
    gap_samples: int
    stored: int
    pending: int
    features: bool


@dataclass
class LiveSnapshot:
    """What a live view shows; cheap to take several times a second.

    Parameters
    ----------
    session : str
        Session id.
    elapsed : float
        Seconds since the session started.
    duration : float or None
        Planned length.
    streams : list of StreamView
        Per-stream counters and rates.
    quality : dict
        Latest ``quality_<family>`` values.
    estimate : dict or None
        Latest affect record.
    phase : ProtocolPhase or None
        Current protocol phase.
    n_feature_rows, n_estimates : int
        Windows processed and estimates made.
    store_ok : bool
        False while store writes fail.
    store_message : str
        Last store error.
    backlog_samples : int
        Raw samples waiting for the store.
    window : WindowConfig
        Feature window settings.
    model : str
        Model id.
    devices : list of DeviceView
        Per-device state (connected, reconnects, gaps, battery, contact); see
        :func:`affectstream.runtime.devices.device_states`.
    reference : str
        ``"reference period: first N s (why)"``; empty without models.
    reference_s : float or None
        Its length (s from the start); None without models.
    """

    session: str
    elapsed: float
    duration: float | None
    streams: list[StreamView]
    quality: dict[str, float]
    estimate: dict[str, Any] | None
    phase: ProtocolPhase | None
    n_feature_rows: int
    n_estimates: int
    store_ok: bool
    store_message: str
    backlog_samples: int
    window: WindowConfig
    model: str
    devices: list[DeviceView] = field(default_factory=list)
    reference: str = ""
    reference_s: float | None = None


class RateMeter:
    """Per-stream delivery rate over at least :data:`RATE_SPAN` seconds of monotonic time."""

    def __init__(self) -> None:
        self._marks: dict[str, tuple[float, int, float]] = {}

    def rate(self, stream: str, delivered: int, now: float) -> float:
        """Samples per second of ``stream`` given its ``delivered`` count at ``now``.

        Parameters
        ----------
        stream : str
            Stream id.
        delivered : int
            Its delivered data rows so far.
        now : float
            Monotonic time.

        Returns
        -------
        float
            0.0 until a first span has passed.
        """
        mark_t, mark_n, rate = self._marks.get(stream, (now, delivered, 0.0))
        if now - mark_t >= RATE_SPAN:
            rate = (delivered - mark_n) / (now - mark_t)
            self._marks[stream] = (now, delivered, rate)
        elif stream not in self._marks:
            self._marks[stream] = (now, delivered, 0.0)
        return rate


def percentiles(values: Sequence[float]) -> dict[str, float | int | None]:
    """``n``, ``p50``, ``p99`` and ``max`` of ``values`` (None when empty).

    Parameters
    ----------
    values : sequence of float

    Returns
    -------
    dict
    """
    if not values:
        return {"n": 0, "p50": None, "p99": None, "max": None}
    array = np.asarray(values, dtype=np.float64)
    return {
        "n": int(array.size),
        "p50": float(np.percentile(array, 50)),
        "p99": float(np.percentile(array, 99)),
        "max": float(array.max()),
    }


def reference_text(reference: tuple[float, str] | None) -> str:
    """``"reference period: first N s (why)"``, or empty without models.

    Parameters
    ----------
    reference : tuple of (float, str) or None
        From :meth:`LiveSession.reference_in_use`.

    Returns
    -------
    str
    """
    if reference is None:
        return ""
    seconds, why = reference
    return f"reference period: first {round(seconds, 1):g} s ({why})"


def reference_warning(reference: tuple[float, str] | None, seen: float | None) -> str | None:
    """A summary warning when every estimate of the session fell inside its reference period.

    Parameters
    ----------
    reference : tuple of (float, str) or None
        From :meth:`LiveSession.reference_in_use`.
    seen : float or None
        Data time (s) from the session start to the end of its last estimated window: what
        the estimator saw. Not the wall clock: an ingest client or a replay sending data
        faster than real time covers more of the reference than the seconds it took.
        None: no estimate.

    Returns
    -------
    str or None
    """
    # A window ending exactly at the reference's end is still inside it (estimator.py).
    if reference is None or seen is None or seen > reference[0] + 1e-9:
        return None
    return (
        f"the session's data ({seen:.0f} s to its last estimated window) ended inside its "
        f"{round(reference[0], 1):g}-s reference period ({reference[1]}): every estimate was "
        "provisional (confidence halved, centred on the baseline so far); record longer, or "
        "give a protocol whose 'baseline' phase fits the session"
    )


def take_snapshot(session: LiveSession, rates: RateMeter) -> LiveSnapshot:
    """The live state of ``session`` (see :meth:`LiveSession.snapshot`).

    Parameters
    ----------
    session : LiveSession
    rates : RateMeter
        The session's rate meter (keeps the marks between snapshots).

    Returns
    -------
    LiveSnapshot
    """
    from affectstream.runtime.devices import device_states

    now = time.monotonic()
    feature_streams = set(session.feature_streams.values())
    streams = [
        StreamView(
            stream,
            ledger.modality,
            rates.rate(stream, ledger.delivered, now),
            ledger.delivered,
            ledger.gap_samples,
            ledger.stored,
            ledger.pending,
            stream in feature_streams,
        )
        for stream, ledger in sorted(session.ledgers.items())
    ]
    elapsed = session.elapsed()
    phase = None
    if session.config.protocol is not None and session.started_at is not None:
        phase = session.config.protocol.phase_at(elapsed)
    writer = session.writer
    reference = session.reference_in_use()
    return LiveSnapshot(
        session=session.session_id,
        elapsed=elapsed,
        duration=session.duration,
        streams=streams,
        quality=dict(session.latest_quality),
        estimate=session.latest_estimate,
        phase=phase,
        n_feature_rows=session.n_feature_rows,
        n_estimates=session.n_estimates,
        store_ok=writer.store_ok,
        store_message=writer.store_message,
        backlog_samples=writer.raw_samples,
        window=session.config.window,
        model=session.estimator.model_id if session.estimator is not None else "none",
        devices=device_states(session),
        reference=reference_text(reference),
        reference_s=reference[0] if reference is not None else None,
    )


def build_summary(session: LiveSession, source: BlockSource | None) -> dict[str, Any]:
    """The end-of-session summary (see :meth:`LiveSession.summary`).

    Parameters
    ----------
    session : LiveSession
    source : BlockSource or None
        Adds its per-stream statistics under ``device``.

    Returns
    -------
    dict
    """
    estimator = session.estimator
    device_stats: Mapping[str, Any] = source.stats() if source is not None else {}
    feature_streams = session.feature_streams
    streams: dict[str, Any] = {}
    for stream in sorted(set(session.ledgers) | set(device_stats)):
        ledger = session.ledgers.get(stream, StreamLedger(stream))
        entry: dict[str, Any] = dict(ledger.as_dict())
        stats = device_stats.get(stream)
        if stats is not None:
            entry["device"] = stats.as_dict() if hasattr(stats, "as_dict") else dict(stats)
        entry["features"] = stream in feature_streams.values()
        streams[stream] = entry
    started = session.started_at or time.time()
    stopped = session.stopped_at or time.time()
    window = session.config.window
    writer = session.writer
    losses = writer.losses()
    reference = session.reference_in_use()
    last = session.latest_estimate
    seen = float(last["t_end"]) - started if last is not None else None
    late = reference_warning(reference, seen)
    return {
        "session": session.session_id,
        "participant": session.config.participant,
        "started": datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds"),
        "duration_s": round(stopped - started, 3),
        "window_s": window.window,
        "step_s": window.step,
        "line_freq": window.line_freq,
        # None without an arousal model, also when a personal valence model runs alone.
        "model": estimator.model_id if estimator is not None and estimator.bundles else None,
        "reference_s": round(reference[0], 3) if reference is not None else None,
        "reference": reference_text(reference),
        "streams": streams,
        "feature_streams": dict(feature_streams),
        "n_feature_rows": session.n_feature_rows,
        "n_estimates": session.n_estimates,
        "n_events": session.n_events,
        "latency_window_end_s": percentiles(list(writer.latency_window_end)),
        "latency_arrival_s": percentiles(list(writer.latency_arrival)),
        "delivery_lag_s": percentiles(list(session.delivery_lag)),
        **writer.counters(),
        "not_stored": losses,
        "stored": not losses,
        "late_blocks": session.late_blocks,
        "unordered_blocks": session.unordered_blocks,
        "compute_s": round(session.worker.compute_seconds, 3),
        "store_write_s": round(writer.store_seconds, 3),
        "feature_errors": dict(session.feature_errors),
        "warnings": [*session.warnings, *([late] if late else [])],
    }
