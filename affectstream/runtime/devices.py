"""Per-device state of a live session, for live views and the service's live push.

:func:`device_states` is the one place that says what each device of a session is doing:
connected or reconnecting, reconnects, gaps, battery and skin contact. Its sources, best
first:

1. the block source's own ``device_states()`` when it has one (the connection supervisor's
   read-only snapshots, or a mapping name → fields); what it gives — ``link`` (or
   ``state``/``connected``), ``battery``, ``battery_low``, ``contact``, ``reconnects`` —
   wins over what is derived here;
2. the supervisor's public ``is_connected(name)`` and per-stream ``stats()`` (reconnects);
3. what the runtime itself saw (:class:`DeviceTracker` and the stream ledgers): link gaps
   (``"disconnect"``/``"restart"`` gaps the device layer marks after a reconnect), gap
   events and samples, the time since the last block, and the last ``battery`` sample.

Contact and battery are None ("not reported") unless a source reports them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from affectstream.types import SampleBlock

if TYPE_CHECKING:
    from affectstream.runtime.session import LiveSession

#: Gap reasons the device layer gives the first block after a lost link.
LINK_GAP_REASONS = frozenset({"disconnect", "restart"})
#: Seconds without a block after which a device that said nothing else counts as silent.
SILENT_AFTER_S = 3.0


def device_of(stream: str) -> str:
    """The device name of a stream id (``"<device>/<kind>"``).

    Parameters
    ----------
    stream : str

    Returns
    -------
    str
    """
    return stream.rsplit("/", 1)[0] if "/" in stream else stream


@dataclass
class DeviceView:
    """What one device is doing now.

    Parameters
    ----------
    device : str
        Device name (the stream ids' prefix).
    state : str
        ``"connecting"`` (nothing yet), ``"connected"``, ``"reconnecting"`` (link lost, the
        supervisor is retrying), ``"silent"`` (no block for :data:`SILENT_AFTER_S` s and no
        link state known) or ``"stopped"`` (the session has ended).
    streams : list of str
        Its stream ids.
    reconnects : int
        Reconnections after unrequested disconnects.
    link_gaps : int
        Lost links the runtime saw in the data (most per stream of the device): only those
        across which samples were lost or the device restarted its counter.
    gap_events : int
        Gap annotations of its streams.
    gap_samples : int
        Samples its streams marked missing.
    last_block_age_s : float or None
        Seconds since its last block arrived (None before the first).
    battery : float or None
        Battery level in %, if reported.
    battery_low : bool or None
        The device's battery-low flag, if reported.
    contact : bool or None
        Skin/electrode contact, if reported.
    source : str
        ``"device"`` when the block source reported the state, else ``"derived"``.
    """

    device: str
    state: str
    streams: list[str] = field(default_factory=list)
    reconnects: int = 0
    link_gaps: int = 0
    gap_events: int = 0
    gap_samples: int = 0
    last_block_age_s: float | None = None
    battery: float | None = None
    battery_low: bool | None = None
    contact: bool | None = None
    source: str = "derived"

    def as_dict(self) -> dict[str, Any]:
        """The state as a plain, JSON-ready dict.

        Returns
        -------
        dict
        """
        return asdict(self)


class DeviceTracker:
    """What the runtime sees of each device in the blocks: arrival times, link gaps, battery."""

    def __init__(self) -> None:
        self.last_arrival: dict[str, float] = {}  # device -> monotonic time of its last block
        self.link_gaps: dict[str, int] = {}  # stream -> link gaps
        self.battery: dict[str, float] = {}  # device -> last battery sample (%)
        self._devices: dict[str, str] = {}  # stream -> device

    def on_block(self, block: SampleBlock) -> None:
        """Note a delivered block (event loop; cheap).

        Parameters
        ----------
        block : SampleBlock
        """
        device = self._devices.get(block.stream)  # called per BLE block: keep it cheap
        if device is None:
            device = self._devices[block.stream] = device_of(block.stream)
        self.last_arrival[device] = time.monotonic()
        if block.gaps:
            links = sum(1 for gap in block.gaps if gap.reason in LINK_GAP_REASONS)
            if links:
                self.link_gaps[block.stream] = self.link_gaps.get(block.stream, 0) + links
        if block.modality == "battery" and len(block):
            values = block.values[:, 0]
            finite = values[np.isfinite(values)]
            if finite.size:
                self.battery[device] = float(finite[-1])


def declared_streams(source: object) -> dict[str, str]:
    """Stream id → modality of a supervisor's streams (known once it has started).

    Parameters
    ----------
    source : BlockSource
        A started source; its ``stats()`` keys are stream ids ``<device>/<kind>``.

    Returns
    -------
    dict of str to str
        Streams whose kind a device profile knows.
    """
    from affectstream.device.profiles import PROFILES

    kinds = {spec.kind: spec.modality for p in PROFILES.values() for spec in p.streams}
    stats = getattr(source, "stats", None)
    out = {}
    for stream in stats() if callable(stats) else {}:
        kind = str(stream).rsplit("/", 1)[-1]
        if kind in kinds:
            out[str(stream)] = kinds[kind]
    return out


def _source_reports(source: object) -> dict[str, Any]:
    """The source's own per-device state, if it has an accessor, by device name.

    Takes a mapping (name → fields) or a sequence of reports that carry their ``name``
    (the supervisor's :class:`~affectstream.device.device_state.DeviceState` snapshots).
    """
    accessor = getattr(source, "device_states", None)
    if not callable(accessor):
        return {}
    reports = accessor()
    if isinstance(reports, Mapping):
        return {str(name): report for name, report in reports.items()}
    out = {}
    for report in reports if isinstance(reports, Sequence) else ():
        name = _field(report, "name")
        if isinstance(name, str):
            out[name] = report
    return out


def _field(report: Any, name: str) -> Any:
    if isinstance(report, Mapping):
        return report.get(name)
    return getattr(report, name, None)


def device_states(session: LiveSession) -> list[DeviceView]:
    """Per-device state of ``session``, sorted by device name.

    Parameters
    ----------
    session : LiveSession
        A session (running, ended or not yet started).

    Returns
    -------
    list of DeviceView
    """
    source = session.source
    stats: Mapping[str, Any] = source.stats() if source is not None else {}
    names = set(session.devices.last_arrival)
    names.update(device_of(stream) for stream in session.ledgers)
    names.update(device_of(str(stream)) for stream in stats)
    supervised = names_of(source)
    names.update(supervised)
    reports = _source_reports(source)
    names.update(str(name) for name in reports)
    is_connected = getattr(source, "is_connected", None)
    now = time.monotonic()
    out = []
    for name in sorted(names):
        streams = sorted(
            {s for s in session.ledgers if device_of(s) == name}
            | {str(s) for s in stats if device_of(str(s)) == name}
        )
        ledgers = [session.ledgers[s] for s in streams if s in session.ledgers]
        link_gaps = max((session.devices.link_gaps.get(s, 0) for s in streams), default=0)
        reconnects = max(
            (int(getattr(stats[s], "reconnects", 0)) for s in streams if s in stats),
            default=link_gaps,
        )
        arrival = session.devices.last_arrival.get(name)
        age = None if arrival is None else now - arrival
        if session.stopped_at is not None:
            state = "stopped"
        elif arrival is None:
            state = "connecting"
        elif callable(is_connected) and name in supervised:
            state = "connected" if is_connected(name) else "reconnecting"
        else:
            state = "silent" if age is not None and age > SILENT_AFTER_S else "connected"
        entry = DeviceView(
            device=name,
            state=state,
            streams=streams,
            reconnects=reconnects,
            link_gaps=link_gaps,
            gap_events=sum(ledger.gap_events for ledger in ledgers),
            gap_samples=sum(ledger.gap_samples for ledger in ledgers),
            last_block_age_s=age,
            battery=session.devices.battery.get(name),
        )
        report = reports.get(name)
        if report is not None:
            _apply_report(entry, report)
        out.append(entry)
    return out


def names_of(source: object) -> set[str]:
    """Device names a source supervises (empty when it cannot say).

    Parameters
    ----------
    source : object
        A block source.

    Returns
    -------
    set of str
    """
    device_names = getattr(source, "device_names", None)
    return {str(n) for n in device_names()} if callable(device_names) else set()


def _apply_report(entry: DeviceView, report: Any) -> None:
    """Overlay what the source itself reported on the derived state."""
    entry.source = "device"
    state = _field(report, "state") or _field(report, "link")
    connected = _field(report, "connected")
    if isinstance(state, str) and entry.state != "stopped":
        entry.state = state
    elif isinstance(connected, bool) and entry.state != "stopped":
        entry.state = "connected" if connected else "reconnecting"
    for name in ("battery_low", "contact"):
        value = _field(report, name)
        if isinstance(value, bool):
            setattr(entry, name, value)
    battery = _field(report, "battery")
    if isinstance(battery, int | float) and math.isfinite(battery):
        entry.battery = float(battery)
    reconnects = _field(report, "reconnects")
    if isinstance(reconnects, int):
        entry.reconnects = reconnects
