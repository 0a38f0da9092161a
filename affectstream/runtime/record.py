"""Record a live session from real (or emulated) devices: the runtime behind
``affectstream record``.

:func:`record_session` opens the store (embedded by default, InfluxDB when given its URL),
picks the arousal model, follows an optional protocol file (phases with durations and
instructions; the session ends after the last phase unless a duration is given), turns
every line typed on ``markers`` (the keyboard) into a marker event, and runs a
:class:`~affectstream.runtime.session.LiveSession` over a connection supervisor.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from affectstream.device.lsl import CombinedSource
from affectstream.device.profiles import get_profile
from affectstream.device.supervisor import DeviceTarget, Supervisor
from affectstream.errors import ConfigError, ModelError
from affectstream.ids import check_id
from affectstream.models.bundle import load_bundle
from affectstream.runtime.calibration import (
    CalibrationPrompter,
    Ratings,
    calibrate_participant,
)
from affectstream.runtime.demo import store_location
from affectstream.runtime.estimator import (
    LiveEstimator,
    features_only_note,
    resolve_arousal_bundles,
)
from affectstream.runtime.multiwindow import reads_own_windows, session_window
from affectstream.runtime.protocol import StudyProtocol, load_protocol
from affectstream.runtime.session import BlockSource, LiveSession, LiveSnapshot, SessionConfig
from affectstream.signal import WindowConfig
from affectstream.signal.extractor import FAMILY
from affectstream.store import TimeSeriesStore, open_store

if TYPE_CHECKING:
    from affectstream.device.emulation.peripheral import EmulatedPeripheral

logger = logging.getLogger(__name__)

#: Families assumed when a device's profile is only known after connecting.
_ALL_FAMILIES = frozenset({"hr", "hrv", "eda", "eeg", "acc"})


def _families(targets: Sequence[DeviceTarget]) -> set[str]:
    families: set[str] = set()
    for target in targets:
        if target.profile is None:
            return set(_ALL_FAMILIES)
        for spec in get_profile(target.profile).streams:
            if spec.modality in FAMILY:
                families.add(FAMILY[spec.modality])
    return families


def parse_targets(devices: list[str]) -> list[DeviceTarget]:
    """Turn ``ADDRESS_OR_NAME[@PROFILE]`` arguments into device targets.

    Parameters
    ----------
    devices : list of str
        Positional arguments.

    Returns
    -------
    list of DeviceTarget

    Raises
    ------
    ConfigError
        If a profile name is unknown or a device id is not valid.
    """
    targets = []
    for text in devices:
        address, _, profile = text.rpartition("@") if "@" in text else (text, "", "")
        if profile:
            get_profile(profile)
        device = check_id(address.strip(), "device")
        targets.append(DeviceTarget(device, profile=profile or None))
    return targets


async def emulated_targets(
    stack: contextlib.AsyncExitStack, kinds: str, *, speed: float = 1.0, seed: int = 0
) -> tuple[list[DeviceTarget], dict[str, Any], list[EmulatedPeripheral]]:
    """Start emulated devices on a virtual radio that lives as long as ``stack``.

    Parameters
    ----------
    stack : contextlib.AsyncExitStack
        Closes the radio.
    kinds : str
        ``make_emulated`` names (``"all"``, ``"hr,eda"``...).
    speed : float
        Device clocks run this many times real time.
    seed : int
        Signal seed.

    Returns
    -------
    targets : list of DeviceTarget
    supervisor_options : dict
        ``client_kwargs`` and ``scanner_kwargs`` that reach the radio.
    peripherals : list of EmulatedPeripheral
    """
    from affectstream.device.emulation import VirtualRadio
    from affectstream.device.emulation.factory import make_emulated

    radio = await stack.enter_async_context(VirtualRadio())
    peripherals = make_emulated(kinds, speed=speed, seed=seed)
    # Counts only (keep_samples=False): an unbounded session stays flat.
    targets = await radio.add_all(peripherals, keep_samples=False)
    return targets, radio.supervisor_options(), peripherals


class _MarkerLines:
    """Turns text arriving in pieces (keys typed, a pipe, a paste) into one marker per line."""

    def __init__(self, session: LiveSession, answer: Callable[[str], bool] | None = None) -> None:
        self.session = session
        self.answer = answer  # a pending self-report prompt takes the next line
        self.count = 0
        self.pending = ""
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, data: bytes, *, final: bool = False) -> None:
        """Mark every complete line in ``data`` (and the unfinished one when ``final``)."""
        self.pending += self.decoder.decode(data, final=final)
        *lines, self.pending = self.pending.split("\n")
        if final and self.pending:
            lines.append(self.pending)
            self.pending = ""
        for line in lines:
            if self.answer is not None and self.answer(line):
                continue
            self.count += 1
            label = line.strip() or f"marker {self.count}"
            # Lines pasted at once arrive in one read; mark() gives each its own instant.
            self.session.mark(label)
            logger.info("marker: %s", label)


@contextlib.contextmanager
def keyboard_markers(
    stream: IO[str] | None,
    session: LiveSession,
    answer: Callable[[str], bool] | None = None,
) -> Iterator[None]:
    """Turn each line read from ``stream`` into a marker event while the block runs.

    Every line counts, whether typed, pasted or piped (``printf 'a\\nb\\n' | affectstream
    record ...``); empty lines give numbered markers (``"marker 3"``). A pipe or terminal
    is read as data arrives through the event loop (POSIX); a regular file (``< file``) is
    read at once at the start. Elsewhere it does nothing.

    Parameters
    ----------
    stream : text stream or None
        Usually ``sys.stdin``.
    session : LiveSession
        Receives the markers.
    answer : callable, optional
        Offered each line first; a line it takes (a self-report answer) is no marker.
    """
    if stream is None:
        yield
        return
    loop = asyncio.get_running_loop()
    try:
        fd = stream.fileno()
    except (OSError, ValueError, AttributeError):
        yield
        return
    lines = _MarkerLines(session, answer)

    def on_readable() -> None:
        # os.read, not stream.readline: a buffered reader takes every line waiting in the
        # pipe into its buffer at once and the descriptor never becomes readable again.
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError as exc:
            logger.warning("markers: stopped reading stdin (%s)", exc)
            data = b""
        if not data:  # end of input: stop listening
            lines.feed(b"", final=True)
            loop.remove_reader(fd)
            return
        lines.feed(data)

    try:
        loop.add_reader(fd, on_readable)
    except PermissionError:  # a regular file cannot be watched: it is all there already
        with contextlib.suppress(OSError):
            lines.feed(os.read(fd, 1 << 20), final=True)
        yield
        return
    except (NotImplementedError, OSError, ValueError):
        logger.info("keyboard markers are not available on this platform")
        yield
        return
    try:
        yield
    finally:
        loop.remove_reader(fd)


async def record_session(
    targets: Sequence[DeviceTarget | str],
    *,
    store: str | Path | None = None,
    participant: str = "",
    protocol: str | Path | StudyProtocol | None = None,
    duration: float | None = None,
    bundle: str | Path | None = None,
    window: WindowConfig | None = None,
    line_freq: float | None = None,
    markers: IO[str] | None = None,
    stop: asyncio.Event | None = None,
    on_update: Callable[[LiveSnapshot], None] | None = None,
    supervisor_options: dict[str, Any] | None = None,
    on_estimate: Callable[[dict[str, Any]], None] | None = None,
    on_session: Callable[[LiveSession], None] | None = None,
    lsl: Sequence[str] = (),
    lsl_map: Mapping[str, str] | None = None,
    lsl_resolve_timeout: float = 5.0,
    lsl_out: bool = False,
    brainflow: Sequence[str] = (),
    self_reports: Mapping[str, Ratings] | None = None,
    ask: Callable[[str], None] | None = None,
    calibrate: bool = True,
) -> dict[str, Any]:
    """Record devices into the store with features, estimates and events.

    Parameters
    ----------
    targets : sequence of DeviceTarget or str
        Devices (address or advertised name, or targets with a profile).
    store : str or Path, optional
        Store path or URL (``influx://host:8086?bucket=...`` for InfluxDB); the default
        embedded store when omitted.
    participant : str
        Pseudonymous participant id.
    protocol : path or StudyProtocol, optional
        Protocol file (JSON/TOML) or object; phases become events and ``baseline`` is the
        reference period.
    duration : float, optional
        Seconds; defaults to the protocol's length, else runs until ``stop`` is set.
    bundle : str or Path, optional
        Arousal bundle; the best shipped one by default (features only when none fits).
    window : WindowConfig, optional
        Feature windows, for every model (:func:`~affectstream.runtime.multiwindow.
        reads_own_windows`); by default each model's own (as it was trained; the shortest is
        the session's), else 60 s every 5 s.
    line_freq : float, optional
        Mains frequency (50 or 60 Hz) of the ECG/EEG notch filters; by default the model's
        (as it was trained), else the window's (50 Hz).
    markers : text stream, optional
        Lines typed here become marker events (``sys.stdin`` for the keyboard).
    stop : asyncio.Event, optional
        Set to end the session (Ctrl-C handler).
    on_update : callable, optional
        Receives live snapshots.
    supervisor_options : dict, optional
        Passed to :class:`~affectstream.device.supervisor.Supervisor` (``client_kwargs``,
        ``scanner_kwargs``, ``connect_timeout``, ``scan_timeout``...).
    on_estimate : callable, optional
        Receives every affect record as it is computed (see :class:`LiveSession`).
    on_session : callable, optional
        Receives the :class:`LiveSession` before it starts (to mark events from code).
    lsl : sequence of str
        LSL predicates (``'type="EEG"'``) whose streams are recorded too (see
        :class:`~affectstream.device.lsl.LslSource`); marker streams become markers.
    lsl_map : mapping of str to str, optional
        LSL stream name -> modality when the stream's metadata does not say.
    lsl_resolve_timeout : float
        Seconds to wait for each LSL predicate's streams.
    lsl_out : bool
        Publish raw streams, estimates and events as LSL outlets while recording
        (see :mod:`affectstream.runtime.lsl_out`).
    brainflow : sequence of str
        BrainFlow boards recorded too, ``BOARD[:param=value,...]`` (see
        :class:`~affectstream.device.brainflow.BrainFlowSource`).
    self_reports : mapping, optional
        Calibration block name -> (valence, arousal) for scripted sessions
        (:func:`~affectstream.runtime.calibration.load_self_reports`).
    ask : callable, optional
        Shows the self-report question when a calibration block ends; the next line read
        from ``markers`` is the answer.
    calibrate : bool
        After a protocol with calibration blocks, fit and store the participant's personal
        valence model (:func:`~affectstream.runtime.calibration.calibrate_participant`).

    Returns
    -------
    dict
        The session summary plus ``store`` (where the data is) and, after calibration
        blocks, ``valence_calibration`` (the fit's result, or why there is none).
    """
    device_targets = [t if isinstance(t, DeviceTarget) else DeviceTarget(t) for t in targets]
    plan = load_protocol(protocol) if isinstance(protocol, str | Path) else protocol
    if duration is None and plan is not None:
        duration = plan.duration
    families = set(_ALL_FAMILIES) if lsl else _families(device_targets)
    boards = []
    if brainflow:
        from affectstream.device.brainflow import board_modalities, parse_board

        boards = [parse_board(spec) for spec in brainflow]
        families |= {FAMILY[m] for b in boards for m in board_modalities(b) if m in FAMILY}
    loaded = [load_bundle(p) for p in resolve_arousal_bundles(bundle, families, allow_demo=False)]
    # Features on the shortest model window; longer ones get their own (multiwindow.py).
    own_windows = reads_own_windows(window)  # a window asked for: every model on it
    window = session_window(loaded, window, line_freq)
    estimator = LiveEstimator.for_session(
        loaded, participant, window.window, own_windows=own_windows
    )
    unfit = None
    if not loaded:
        unfit = features_only_note(families, valence_calibrated=estimator is not None)
        logger.warning("%s", unfit)
    config = SessionConfig(participant=participant, window=window, protocol=plan)
    with open_store(store) as opened:
        session = LiveSession(opened, config, estimator, on_estimate=on_estimate)
        if unfit is not None:
            session.warnings.append(unfit)
        blocks = [p.name for p in plan.phases if p.calibration] if plan is not None else []
        prompter = None
        if blocks:
            prompter = CalibrationPrompter(session.mark, blocks, answers=self_reports, ask=ask)
            session.listeners.append(prompter.on_event)
        if on_session is not None:
            on_session(session)
        with contextlib.ExitStack() as outlets:
            if lsl_out:
                from affectstream.runtime.lsl_out import publishing

                outlets.enter_context(publishing(session))
            on_block = session.submit  # after publishing() wraps it

            def on_marker(label: str, t: float) -> None:
                session.mark(label, t=t)

            sources: list[BlockSource] = []
            if device_targets:
                sources.append(
                    Supervisor(device_targets, on_block=on_block, **(supervisor_options or {}))
                )
            if lsl:
                from affectstream.device.lsl import LslSource

                sources.append(
                    LslSource(
                        lsl,
                        on_block=on_block,
                        on_marker=on_marker,
                        mapping=lsl_map,
                        resolve_timeout=lsl_resolve_timeout,
                    )
                )
            if boards:
                from affectstream.device.brainflow import BrainFlowSource

                sources.extend(
                    BrainFlowSource(board, on_block=on_block, on_marker=on_marker)
                    for board in boards
                )
            source = sources[0] if len(sources) == 1 else CombinedSource(sources)
            answer = prompter.answer_line if prompter is not None and ask is not None else None
            with keyboard_markers(markers, session, answer):
                summary = await session.run(
                    source, duration=duration, stop=stop, on_update=on_update
                )
        summary["store"] = store_location(opened)
        if prompter is not None:
            summary["valence_calibration"] = _calibrate_after(
                opened, session, prompter, participant, calibrate
            )
    return summary


def _calibrate_after(
    store: TimeSeriesStore,
    session: LiveSession,
    prompter: CalibrationPrompter,
    participant: str,
    calibrate: bool,
) -> dict[str, Any]:
    """Fit the personal valence model on the session just recorded, or say why not."""
    result: dict[str, Any] = {"rated": prompter.reported, "unrated": prompter.missing}
    if not calibrate:
        return {**result, "status": "skipped"}
    if not participant:
        return {**result, "status": "not fitted", "reason": "no --participant given"}
    try:
        fitted = calibrate_participant(store, [session.session_id], participant)
    except (ConfigError, ModelError) as exc:
        logger.warning("no personal valence model: %s", exc)
        return {**result, "status": "not fitted", "reason": str(exc)}
    return {**result, **fitted}
