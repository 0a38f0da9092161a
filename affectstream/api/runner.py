"""Sessions the service runs: emulated devices (the runtime's demo scenario) or remote ingest.

Both are :class:`~affectstream.runtime.LiveSession` runs; nothing here computes features or
writes samples itself. The runner attaches the live hub to each session's listeners, keeps
the running sessions of this process by id, and reports each session's end to a callback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from affectstream.api.live import LiveHub, json_safe
from affectstream.errors import ConfigError
from affectstream.models.bundle import load_bundle, shipped_bundles
from affectstream.runtime import LiveSession, LiveSnapshot, SessionConfig
from affectstream.runtime.demo import DemoOptions, demo_families, run_demo
from affectstream.runtime.estimator import (
    NO_MODEL,
    LiveEstimator,
    features_only_note,
    resolve_arousal_bundles,
)
from affectstream.runtime.multiwindow import reads_own_windows, session_window
from affectstream.signal import WindowConfig
from affectstream.store import TimeSeriesStore

logger = logging.getLogger(__name__)

#: Called when a session ends: (session id, summary or None, error message or "").
OnDone = Callable[[str, dict[str, Any] | None, str], None]
#: Seconds between the ``status`` messages (device and stream state) pushed live.
STATUS_INTERVAL = 2.0


def status_payload(snap: LiveSnapshot) -> dict[str, Any]:
    """A live ``status`` message body: phase, counts, per-stream delivery, gaps, quality and
    per-device state (:func:`affectstream.runtime.devices.device_states`).

    Parameters
    ----------
    snap : LiveSnapshot

    Returns
    -------
    dict
    """
    payload: dict[str, Any] = json_safe(
        {
            "running": True,
            "phase": snap.phase.name if snap.phase is not None else None,
            "reference": snap.reference,
            "reference_s": snap.reference_s,
            "elapsed_s": snap.elapsed,
            "n_estimates": snap.n_estimates,
            "store_ok": snap.store_ok,
            "quality": snap.quality,
            "streams": {
                s.stream: {
                    "delivered": s.delivered,
                    "gap_samples": s.gap_samples,
                    "rate_hz": s.rate,
                    "pending": s.pending,
                }
                for s in snap.streams
            },
            "devices": [d.as_dict() for d in snap.devices],
        }
    )
    return payload


class IngestSource:
    """The block source of an ingest session: blocks arrive through the API, not BLE."""

    async def start(self) -> None:
        """Nothing to connect."""

    async def stop(self) -> None:
        """Nothing to disconnect."""

    def stats(self) -> Mapping[str, Any]:
        """No device-side counters (the ingest cursors hold the accounting).

        Returns
        -------
        dict
        """
        return {}


def check_model(model: str | None) -> None:
    """Refuse a model an ingest session cannot use (before anything is created).

    Parameters
    ----------
    model : str or None
        A shipped bundle name, ``"none"`` or None (the default choice).
    """
    if model not in (None, "none") and model not in shipped_bundles():
        # Only shipped names: a request must not load a folder from the server's disk.
        raise ConfigError(
            f"model {model!r} is not a shipped bundle; use one of {', '.join(shipped_bundles())} "
            "(GET /models) or 'none'."
        )


def _ingest_model(
    devices: str, model: str | None, participant: str
) -> tuple[LiveEstimator | None, WindowConfig, list[str]]:
    """Worker thread: the estimator, feature windows and start-up warnings of an ingest session.

    The bundles are ``model`` alone, else every shipped arousal bundle the declared
    ``devices`` cover (:func:`resolve_arousal_bundles`, as ``record`` chooses them), each on
    the windows it was trained on (the shortest is the session's, :func:`session_window`),
    combined per window; the session's reference period is long enough for all of them
    (:func:`~affectstream.runtime.reference.default_reference`, via the session). The
    participant's stored personal valence model gives the valence, as in ``record``
    (:meth:`LiveEstimator.for_session`). Devices no shipped bundle reads: no arousal
    estimates (valence alone when the participant's model is calibrated, else features only),
    and the warning says why.
    """
    if model == NO_MODEL:
        return None, WindowConfig(), []
    check_model(model)
    families = demo_families([k.strip() for k in devices.split(",") if k.strip()])
    loaded = [load_bundle(p) for p in resolve_arousal_bundles(model, families, allow_demo=False)]
    window = session_window(loaded)
    # No window is asked for: each model on the windows it was trained on.
    estimator = LiveEstimator.for_session(
        loaded, participant, window.window, own_windows=reads_own_windows(None)
    )
    if not loaded:
        note = features_only_note(families, valence_calibrated=estimator is not None)
        logger.warning("ingest session for %s: %s", devices, note)
        return estimator, window, [note]
    return estimator, window, []


@dataclass
class Running:
    """A session running in this process."""

    kind: str
    stop: asyncio.Event
    task: asyncio.Task[dict[str, Any]] | None = None
    session: LiveSession | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    outlets: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)


class SessionRunner:
    """Start, stop and look at the sessions this process runs.

    Parameters
    ----------
    store : TimeSeriesStore
        The service's store (ingest sessions write here).
    store_url : str
        Where emulated sessions open their own handle on the same store.
    hub : LiveHub
        Live fan-out.
    on_done : callable
        Told when a session ends.
    lsl_out : bool
        Publish each session as LSL outlets while it runs
        (:mod:`affectstream.runtime.lsl_out`).
    """

    def __init__(
        self,
        store: TimeSeriesStore,
        store_url: str,
        hub: LiveHub,
        on_done: OnDone,
        *,
        lsl_out: bool = False,
    ) -> None:
        self.store = store
        self.store_url = store_url
        self.hub = hub
        self.on_done = on_done
        self.lsl_out = lsl_out
        self.running: dict[str, Running] = {}

    def _status_publisher(self, session_id: str) -> Callable[[LiveSnapshot], None]:
        """An ``on_update`` callback pushing a ``status`` every :data:`STATUS_INTERVAL` s."""
        last = [-math.inf]

        def publish(snap: LiveSnapshot) -> None:
            now = time.monotonic()
            if now - last[0] >= STATUS_INTERVAL:
                last[0] = now
                self.hub.publish(session_id, "status", status_payload(snap))

        return publish

    def _attach(self, running: Running, session: LiveSession) -> None:
        running.session = session
        sid = session.session_id
        session.listeners.append(lambda kind, payload: self.hub.publish(sid, kind, payload))
        if self.lsl_out:
            from affectstream.runtime.lsl_out import publishing

            running.outlets.enter_context(publishing(session))
        running.ready.set()

    async def start_emulated(
        self,
        session_id: str,
        participant: str,
        *,
        duration: float,
        kinds: str,
        seed: int,
        disconnects: Mapping[str, Sequence[float]] | None = None,
    ) -> None:
        """Run the runtime's emulated scenario as session ``session_id``.

        Parameters
        ----------
        session_id, participant : str
        duration : float
            Seconds.
        kinds : str
            Emulated devices, comma-separated (``hr,polar,eda,muse``).
        seed : int
        disconnects : mapping of str to sequence of float, optional
            Scripted link drops per emulated profile (see :class:`DemoOptions`).
        """
        if session_id in self.running:
            raise ConfigError(f"Session {session_id} is already running.")
        running = Running("emulated", asyncio.Event())
        self.running[session_id] = running
        options = DemoOptions(
            duration=duration,
            store=self.store_url,
            kinds=kinds,
            participant=participant,
            seed=seed,
            session_id=session_id,
            disconnects=dict(disconnects or {}),
        )
        running.task = asyncio.create_task(
            run_demo(
                options,
                stop=running.stop,
                on_update=self._status_publisher(session_id),
                on_session=lambda s: self._attach(running, s),
                on_status=lambda m: logger.info("%s: %s", session_id, m),
            ),
            name=f"session-{session_id}",
        )
        running.task.add_done_callback(lambda t: self._finished(session_id, t))
        ready = asyncio.create_task(running.ready.wait())
        await asyncio.wait({ready, running.task}, return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()

    async def start_ingest(
        self, session_id: str, participant: str, *, devices: str, model: str | None
    ) -> None:
        """Run a session fed by the ingest endpoints: features, quality and estimates.

        Parameters
        ----------
        session_id, participant : str
        devices : str
            Device kinds the gateway sends (``hr,polar,eda,muse``): they choose the default
            models (every shipped arousal bundle whose features they cover, combined per
            window, as ``record`` runs them).
        model : str, optional
            A shipped bundle name (that one only), or ``"none"`` for features and quality
            only.
        """
        if session_id in self.running:
            raise ConfigError(f"Session {session_id} is already running.")
        estimator, window, warnings = await asyncio.to_thread(
            _ingest_model, devices, model, participant
        )
        running = Running("ingest", asyncio.Event())
        self.running[session_id] = running
        session = LiveSession(
            self.store,
            SessionConfig(participant=participant, session_id=session_id, window=window),
            estimator,
        )
        session.warnings.extend(warnings)
        self._attach(running, session)
        running.task = asyncio.create_task(
            session.run(
                IngestSource(), stop=running.stop, on_update=self._status_publisher(session_id)
            ),
            name=f"session-{session_id}",
        )
        running.task.add_done_callback(lambda t: self._finished(session_id, t))

    def _finished(self, session_id: str, task: asyncio.Task[dict[str, Any]]) -> None:
        running = self.running.pop(session_id, None)
        if running is not None:
            running.outlets.close()
        summary: dict[str, Any] | None = None
        error = ""
        if task.cancelled():
            error = "cancelled"
        elif task.exception() is not None:
            exc = task.exception()
            error = f"{type(exc).__name__}: {exc}"
            logger.error("session %s failed: %s", session_id, error)
        else:
            summary = json_safe(task.result())
        self.hub.publish(session_id, "event", {"kind": "session", "label": "ended", "error": error})
        self.on_done(session_id, summary, error)

    async def stop(self, session_id: str, timeout: float = 60.0) -> bool:
        """Stop a running session and wait for its final flush.

        Parameters
        ----------
        session_id : str
        timeout : float
            Seconds to wait for the flush.

        Returns
        -------
        bool
            False if it was not running here.
        """
        running = self.running.get(session_id)
        if running is None or running.task is None:
            return False
        running.stop.set()
        with contextlib.suppress(TimeoutError, asyncio.CancelledError, Exception):
            await asyncio.wait_for(asyncio.shield(running.task), timeout)
        return True

    def live(self, session_id: str) -> LiveSession | None:
        """The running :class:`LiveSession` of ``session_id`` in this process, if any.

        Parameters
        ----------
        session_id : str

        Returns
        -------
        LiveSession or None
        """
        running = self.running.get(session_id)
        return running.session if running is not None else None

    async def stop_all(self) -> None:
        """Stop every session (service shutdown); each flushes what it has."""
        await asyncio.gather(*(self.stop(sid) for sid in list(self.running)))
