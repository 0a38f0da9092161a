"""Per-device state of the supervisor: what to record, and how each device is doing now.

:class:`DeviceTarget` says what to record; :class:`DeviceState` is the read-only snapshot
:meth:`~affectstream.device.supervisor.Supervisor.device_states` hands to status displays
(link, reconnects, gaps, battery, contact). ``SupervisedDevice`` is the supervisor's mutable record
of one device (its driver, client, stream states and link).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from affectstream.device.driver import Profile, ProfileDriver
from affectstream.device.profiles import get_profile
from affectstream.device.stream_state import StreamState

if TYPE_CHECKING:
    from bleak import BleakClient


@dataclass
class DeviceTarget:
    """A device to record.

    Parameters
    ----------
    address : str
        BLE address (or platform UUID on macOS), or the advertised name.
    profile : str, optional
        Profile name; found from the advertisement when omitted.
    name : str, optional
        Name used in stream ids; defaults to the advertised name or the address.
    options : dict
        Profile driver options (e.g. ``{"rate": 64}`` for the EDA band).
    """

    address: str
    profile: str | None = None
    name: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


#: Link states a supervised device can be in (:attr:`DeviceState.link`).
LinkState = Literal["connecting", "connected", "reconnecting", "stopped"]


@dataclass(frozen=True, slots=True)
class DeviceState:
    """What a supervised device looks like now: a read-only snapshot for status displays.

    Parameters
    ----------
    name : str
        Device name (the stream id prefix).
    address : str
        BLE address (or platform UUID) it was found at.
    profile : str or None
        Profile name; None until it is resolved.
    link : {"connecting", "connected", "reconnecting", "stopped"}
        Link state: before the first connection, streaming, after an unrequested drop
        until the link is back, and after :meth:`Supervisor.stop`.
    reconnects : int
        Reconnections after unrequested disconnects.
    gaps : int
        Gaps recorded on its streams (:attr:`StreamStats.gaps`, summed).
    gap_samples : int
        Samples lost on its streams (:attr:`StreamStats.gap_samples`, summed).
    battery : float or None
        Battery level in percent, from a ``battery`` stream or the device's status reply
        (Muse); None when the device does not report it.
    battery_low : bool or None
        The device's battery-low flag (EDA band); None when it has none.
    contact : bool or None
        Skin/electrode contact as last reported (Heart Rate contact bit, EDA band contact
        flag); None when the device does not report it.
    """

    name: str
    address: str
    profile: str | None
    link: LinkState
    reconnects: int
    gaps: int
    gap_samples: int
    battery: float | None
    battery_low: bool | None
    contact: bool | None

    @property
    def connected(self) -> bool:
        """Whether the device is streaming now.

        Returns
        -------
        bool
        """
        return self.link == "connected"


class SupervisedDevice:
    """The supervisor's mutable record of one device (read it through :class:`DeviceState`).

    Parameters
    ----------
    target : DeviceTarget
        What to record; address, name and profile start from it and may be filled in
        once the device is found.
    """

    def __init__(self, target: DeviceTarget) -> None:
        self.target = target
        self.address = target.address
        self.name = target.name or target.address
        self.profile: Profile | None = get_profile(target.profile) if target.profile else None
        self.driver: ProfileDriver | None = None
        self.streams: dict[str, StreamState] = {}
        self.client: BleakClient | None = None
        self.link_down = asyncio.Event()
        self.reconnects = 0
        self.connected_once = False
        self.link: LinkState = "connecting"
        self.task: asyncio.Task[None] | None = None
        self.keep_alive: asyncio.Task[None] | None = None
        #: Characteristics notifying on the current link (one is read at stop as a barrier).
        self.notify_uuids: list[str] = []


def snapshot(device: SupervisedDevice) -> DeviceState:
    """A snapshot of ``device`` now.

    Parameters
    ----------
    device : SupervisedDevice
        The supervisor's record of the device.

    Returns
    -------
    DeviceState
    """
    driver = device.driver
    streams = list(device.streams.values())
    battery = next((s.last_value for s in streams if s.last_value is not None), None)
    if battery is None and driver is not None:
        battery = driver.battery
    return DeviceState(
        name=device.name,
        address=device.address,
        profile=device.profile.name if device.profile is not None else None,
        link=device.link,
        reconnects=device.reconnects,
        gaps=sum(s.stats.gaps for s in streams),
        gap_samples=sum(s.stats.gap_samples for s in streams),
        battery=battery,
        battery_low=driver.battery_low if driver is not None else None,
        contact=driver.contact if driver is not None else None,
    )
