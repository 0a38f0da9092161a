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
import contextlib
import dataclasses
import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from affectstream.device.profiles import get_profile
from affectstream.device.supervisor import DeviceTarget, Supervisor
from affectstream.models.bundle import load_bundle
from affectstream.runtime.demo import store_location
from affectstream.runtime.estimator import LiveEstimator, resolve_arousal_bundle
from affectstream.runtime.protocol import Protocol, load_protocol
from affectstream.runtime.session import LiveSession, LiveSnapshot, SessionConfig
from affectstream.signal import WindowConfig
from affectstream.signal.extractor import FAMILY
from affectstream.store import open_store

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


@contextlib.contextmanager
def keyboard_markers(stream: IO[str] | None, session: LiveSession) -> Iterator[None]:
    """Turn each line read from ``stream`` into a marker event while the block runs.

    Empty lines give numbered markers (``"marker 3"``). Uses the event loop's reader, so
    it needs a stream with a file descriptor on a POSIX system; elsewhere it does nothing.

    Parameters
    ----------
    stream : text stream or None
        Usually ``sys.stdin``.
    session : LiveSession
        Receives the markers.
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
    count = 0

    def on_line() -> None:
        nonlocal count
        line = stream.readline()
        if not line:  # end of input: stop listening
            loop.remove_reader(fd)
            return
        count += 1
        label = line.strip() or f"marker {count}"
        session.mark(label)
        logger.info("marker: %s", label)

    try:
        loop.add_reader(fd, on_line)
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
    protocol: str | Path | Protocol | None = None,
    duration: float | None = None,
    bundle: str | Path | None = None,
    window: WindowConfig | None = None,
    line_freq: float | None = None,
    markers: IO[str] | None = None,
    stop: asyncio.Event | None = None,
    on_update: Callable[[LiveSnapshot], None] | None = None,
    supervisor_options: dict[str, Any] | None = None,
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
    protocol : path or Protocol, optional
        Protocol file (JSON/TOML) or object; phases become events and ``baseline`` is the
        reference period.
    duration : float, optional
        Seconds; defaults to the protocol's length, else runs until ``stop`` is set.
    bundle : str or Path, optional
        Arousal bundle; the best shipped one by default (features only when none fits).
    window : WindowConfig, optional
        Feature windows; by default the model's own (as it was trained), else 60 s every 5 s.
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

    Returns
    -------
    dict
        The session summary plus ``store`` (where the data is).
    """
    device_targets = [t if isinstance(t, DeviceTarget) else DeviceTarget(t) for t in targets]
    plan = load_protocol(protocol) if isinstance(protocol, str | Path) else protocol
    if duration is None and plan is not None:
        duration = plan.duration
    path = resolve_arousal_bundle(bundle, _families(device_targets), allow_demo=False)
    estimator = None
    if path is not None:
        bundle_loaded = load_bundle(path)
        estimator = LiveEstimator([bundle_loaded], baseline_end=None)
        trained = bundle_loaded.meta.get("window", {})
        if window is None and trained.get("window"):
            # Features as the model was trained on them.
            window = WindowConfig(
                window=float(trained["window"]), step=float(trained.get("step", 5.0))
            )
        if line_freq is None and trained.get("line_freq"):
            line_freq = float(trained["line_freq"])
    else:
        logger.warning("no arousal model bundle fits these devices: storing features only")
    window = window or WindowConfig()
    if line_freq is not None:
        window = dataclasses.replace(window, line_freq=float(line_freq))
    config = SessionConfig(participant=participant, window=window, protocol=plan)
    with open_store(store) as opened:
        session = LiveSession(opened, config, estimator)
        supervisor = Supervisor(
            device_targets, on_block=session.submit, **(supervisor_options or {})
        )
        with keyboard_markers(markers, session):
            summary = await session.run(
                supervisor, duration=duration, stop=stop, on_update=on_update
            )
        summary["store"] = store_location(opened)
    return summary
