"""The entry point for app developers: run a session and get every estimate as it comes.

:class:`Session` runs a live session on BLE devices or emulated ones (the same runtime as
``affectstream record``), calls ``on_estimate`` with **every** :class:`Estimate` in time
order (not a periodic snapshot), takes markers and self-reports from code while it runs,
and stores everything as a recorded session does. ``await session.run()`` in async code;
``session.run_sync()`` in scripts and notebooks. See docs/runtime.md.

Example::

    from affectstream.runtime import Session

    def show(estimate):
        print(f"{estimate.time:.1f}  arousal {estimate.arousal:.2f}")
        if estimate.arousal > 0.8:
            session.mark("high arousal")

    session = Session(emulate="all", duration=60, on_estimate=show)
    summary = session.run_sync()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from affectstream._validate import check_positive
from affectstream.device.supervisor import DeviceTarget
from affectstream.errors import ConfigError
from affectstream.runtime.calibration import SELF_REPORT_KIND, SELF_REPORT_LABEL, Ratings
from affectstream.runtime.protocol import StudyProtocol
from affectstream.runtime.session import LiveSession
from affectstream.signal import WindowConfig

logger = logging.getLogger(__name__)

__all__ = ["SELF_REPORT_KIND", "Estimate", "Session"]


@dataclass(frozen=True)
class Estimate:
    """One affect estimate, as stored in the ``affect`` measurement.

    Parameters
    ----------
    time : float
        End of the feature window it was computed on (s since the Unix epoch, host clock).
    arousal : float or None
        p(high arousal) from the arousal model (None without a model).
    valence : float or None
        p(positive valence).
    confidence : float or None
        ``arousal_confidence`` (coverage x agreement x reference, 0..1; docs/runtime.md).
    fields : mapping
        Every field of the record (``arousal_svm``, ``arousal_top1``, ``valence_basis``...).
    """

    time: float
    arousal: float | None
    valence: float | None
    confidence: float | None
    fields: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Estimate:
        """Build an estimate from a runtime affect record (``t_end`` plus fields).

        Parameters
        ----------
        record : mapping

        Returns
        -------
        Estimate
        """

        def number(name: str) -> float | None:
            value = record.get(name)
            return None if value is None else float(value)

        return cls(
            time=float(record["t_end"]),
            arousal=number("arousal"),
            valence=number("valence"),
            confidence=number("arousal_confidence"),
            fields={k: v for k, v in record.items() if k != "t_end"},
        )


class Session:
    """A live session on devices or emulated devices, driven from Python.

    Parameters
    ----------
    devices : sequence of str or DeviceTarget
        BLE addresses or advertised names (``ADDRESS@PROFILE`` as on the command line).
    emulate : str, optional
        Emulated devices instead (``"all"`` or e.g. ``"hr,eda"``): no hardware needed.
    participant : str
        Pseudonymous participant id.
    duration : float, optional
        Seconds; default the protocol's length, else until :meth:`stop`.
    protocol : path or StudyProtocol, optional
        Phases (JSON/TOML file or object); ``baseline`` is the reference period.
    store : str or Path, optional
        Store path or URL; the default embedded store when omitted.
    model : str or Path, optional
        Arousal bundle (folder or shipped name); the best fitting shipped one by default.
    window : WindowConfig, optional
        Feature windows, for every model (:func:`~affectstream.runtime.multiwindow.
        reads_own_windows`); by default each model's own, as it was trained.
    on_estimate : callable, optional
        Called with every :class:`Estimate`, in time order, on the session's event loop
        thread; keep it short (hand heavy work to a queue). It may call :meth:`mark`,
        :meth:`self_report` and :meth:`stop`.
    seed : int
        Seed of the emulated signals.
    self_reports : mapping, optional
        Calibration block name -> ``(valence, arousal)`` (SAM 1-9) for blocks rated ahead
        of time; other calibration blocks are rated with :meth:`self_report` while it runs.
    calibrate : bool
        After a protocol with calibration blocks, fit and store the participant's personal
        valence model (the summary's ``valence_calibration`` says how it went).
    """

    def __init__(
        self,
        devices: Sequence[str | DeviceTarget] = (),
        *,
        emulate: str | None = None,
        participant: str = "",
        duration: float | None = None,
        protocol: str | Path | StudyProtocol | None = None,
        store: str | Path | None = None,
        model: str | Path | None = None,
        window: WindowConfig | None = None,
        on_estimate: Callable[[Estimate], None] | None = None,
        seed: int = 0,
        self_reports: Mapping[str, Ratings] | None = None,
        calibrate: bool = True,
    ) -> None:
        if bool(emulate) == bool(devices):
            raise ConfigError(
                "Give either devices (addresses or names) or emulate= (e.g. emulate='all'), "
                f"not {'both' if devices else 'neither'}."
            )
        if duration is not None:
            check_positive("duration", duration)
        self.devices = list(devices)
        self.emulate = emulate
        self.participant = participant
        self.duration = duration
        self.protocol = protocol
        self.store = store
        self.model = model
        self.window = window
        self.on_estimate = on_estimate
        self.seed = seed
        self.self_reports = dict(self_reports or {})
        self.calibrate = calibrate
        self._live: LiveSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._stop_requested = False

    @property
    def session_id(self) -> str | None:
        """The stored session's id once :meth:`run` has started, else None."""
        return self._live.session_id if self._live is not None else None

    async def run(self) -> dict[str, Any]:
        """Run the session to its end (duration, protocol end or :meth:`stop`).

        Returns
        -------
        dict
            The session summary (as ``affectstream record --json``), with ``store``.
        """
        from affectstream.runtime.record import record_session

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        if self._stop_requested:
            self._stop.set()
        async with contextlib.AsyncExitStack() as stack:
            targets, options = await self._targets(stack)
            return await record_session(
                targets,
                store=self.store,
                participant=self.participant,
                protocol=self.protocol,
                duration=self.duration,
                bundle=self.model,
                window=self.window,
                stop=self._stop,
                supervisor_options=options,
                on_estimate=self._estimate,
                on_session=self._started,
                self_reports=self.self_reports,
                calibrate=self.calibrate,
            )

    def run_sync(self) -> dict[str, Any]:
        """Run the session and block until it ends; for scripts and notebooks.

        In a thread without an event loop this is ``asyncio.run(self.run())``; where a
        loop is already running (Jupyter), the session runs in a helper thread.

        Returns
        -------
        dict
            The session summary.
        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.run())
        result: dict[str, Any] = {}
        failure: list[BaseException] = []

        def target() -> None:
            try:
                result.update(asyncio.run(self.run()))
            except BaseException as exc:  # handed to the caller's thread
                failure.append(exc)

        thread = threading.Thread(target=target, name="affectstream-session")
        thread.start()
        thread.join()
        if failure:
            raise failure[0]
        return result

    def mark(self, label: str, *, detail: str = "") -> None:
        """Write a marker event now (from any thread, while the session runs).

        Parameters
        ----------
        label : str
            What happened (``"stimulus 3"``).
        detail : str
            Free text.
        """
        self._call(lambda live: live.mark(label, detail=detail))

    def self_report(
        self,
        *,
        arousal: float | None = None,
        valence: float | None = None,
        note: str = "",
        block: str = "",
    ) -> None:
        """Store the participant's own rating now, as an event of kind ``self_report``.

        Ratings of a calibration block (1-9 SAM) feed the personal valence model fitted
        at the session's end (see docs/runtime.md).

        Parameters
        ----------
        arousal, valence : float, optional
            Ratings on the app's scale (stored as given, e.g. 1..9 SAM or 0..1).
        note : str
            Free text (stored as ``detail``).
        block : str
            The calibration block rated (stored as ``detail``); default the latest
            calibration block not rated yet.
        """
        values = {
            k: float(v) for k, v in (("arousal", arousal), ("valence", valence)) if v is not None
        }
        if not values and not note:
            raise ConfigError("self_report needs arousal=, valence= or note=.")
        self._call(
            lambda live: live.mark(
                SELF_REPORT_LABEL, kind=SELF_REPORT_KIND, detail=block or note, values=values
            )
        )

    def stop(self) -> None:
        """End the session (from any thread); everything received is still stored."""
        self._stop_requested = True
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)

    # -- internals ------------------------------------------------------------------------

    def _call(self, action: Callable[[LiveSession], None]) -> None:
        live, loop = self._live, self._loop
        if live is None or loop is None:
            raise ConfigError("The session is not running yet: call mark/self_report during run.")
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            action(live)
        else:
            loop.call_soon_threadsafe(action, live)

    def _started(self, live: LiveSession) -> None:
        self._live = live

    def _estimate(self, record: dict[str, Any]) -> None:
        if self.on_estimate is not None:
            self.on_estimate(Estimate.from_record(record))

    async def _targets(
        self, stack: contextlib.AsyncExitStack
    ) -> tuple[list[DeviceTarget], dict[str, Any]]:
        if not self.emulate:
            from affectstream.runtime.record import parse_targets

            targets = [
                d if isinstance(d, DeviceTarget) else parse_targets([d])[0] for d in self.devices
            ]
            return targets, {}
        from affectstream.runtime.record import emulated_targets

        targets, options, _ = await emulated_targets(stack, self.emulate, seed=self.seed)
        return targets, options
