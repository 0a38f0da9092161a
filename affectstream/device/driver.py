"""The device driver base: what a profile is, what a driver does, and what it decodes to.

A :class:`Profile` is static knowledge (advertised services, name patterns, streams, driver
class). A :class:`ProfileDriver` is the per-device driver the supervisor uses on every
connection: it lists the characteristics to subscribe to, sends the start and stop commands
(checking the device's answers), and turns notifications into :class:`Frame` objects that
keep the device's own sample counter. It talks to the device only through the few bleak
client methods in :class:`GattClient`, so the same code drives real hardware and the
emulator. Each protocol module (``heart_rate``, ``polar``, ``muse``, ``eda_band``,
``ganglion``) defines its driver and ``PROFILE``; :mod:`~affectstream.device.profiles`
holds the registry and matching.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from affectstream.errors import ConfigError
from affectstream.types import UNITS, FloatArray

#: Seconds to wait for a device to answer a command.
RESPONSE_TIMEOUT = 5.0


class GattClient(Protocol):
    """The subset of :class:`bleak.BleakClient` a profile driver uses."""

    async def read_gatt_char(self, char_specifier: Any, **kwargs: Any) -> bytearray: ...

    async def write_gatt_char(
        self, char_specifier: Any, data: Any, response: bool | None = None
    ) -> None: ...

    @property
    def services(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """One stream a profile produces.

    Parameters
    ----------
    kind : str
        Stream kind, the last part of the stream id (``"<device>/<kind>"``).
    modality : str
        One of :data:`affectstream.types.Modality`.
    channels : tuple of str
        Channel names.
    unit : str
        Unit of the values.
    sfreq : float or None
        Nominal sampling rate; None for event streams (HR, RR).
    counter_modulus : int or None
        Modulus of the device sample counter in :attr:`Frame.counter`; None when frames
        carry an already unwrapped counter or no counter at all.
    """

    kind: str
    modality: str
    channels: tuple[str, ...]
    unit: str
    sfreq: float | None
    counter_modulus: int | None


@dataclass(frozen=True, slots=True)
class Frame:
    """Samples decoded from one notification (or one assembled packet counter).

    Parameters
    ----------
    kind : str
        The :attr:`StreamSpec.kind` they belong to.
    values : ndarray, shape (n, n_channels)
        Samples in the stream's unit.
    counter : int or None
        Device counter of the first sample (wrapped modulo the stream's counter modulus,
        or unwrapped when the modulus is None); None for streams without a counter.
    restart : bool
        The device restarted its counter here, so no gap can be computed across it.
    saturated : ndarray of bool, shape (n,), optional
        Samples that arrived but whose value is unknown because the sensor hit its rail
        (NaN in ``values``); each run of them becomes a ``"saturated"`` gap.
    """

    kind: str
    values: FloatArray
    counter: int | None
    restart: bool = False
    saturated: NDArray[np.bool_] | None = None


@dataclass(frozen=True, slots=True)
class Profile:
    """Static description of a device profile.

    Parameters
    ----------
    name : str
        Short name used on the command line: ``"hr"``, ``"polar"``, ``"eda"``, ``"muse"``,
        ``"ganglion"``.
    description : str
        Human-readable device family.
    service_uuids : tuple of str
        Advertised service UUIDs that identify the profile.
    name_patterns : tuple of str
        ``fnmatch`` patterns of advertised names.
    streams : tuple of StreamSpec
        Streams the profile can produce (a driver may enable fewer).
    driver : type of ProfileDriver
        The driver class, created per device by :meth:`new_driver`.
    """

    name: str
    description: str
    service_uuids: tuple[str, ...]
    name_patterns: tuple[str, ...]
    streams: tuple[StreamSpec, ...]
    driver: type[ProfileDriver]

    def stream(self, kind: str) -> StreamSpec:
        """The stream spec of ``kind``.

        Parameters
        ----------
        kind : str
            Stream kind.

        Returns
        -------
        StreamSpec
        """
        for spec in self.streams:
            if spec.kind == kind:
                return spec
        raise ConfigError(
            f"Profile {self.name!r} has no stream {kind!r}; it has "
            f"{[s.kind for s in self.streams]}."
        )

    def new_driver(self, **options: Any) -> ProfileDriver:
        """Create the driver for one device of this profile.

        Parameters
        ----------
        **options
            Profile options (``rate`` for ``eda``, ``aux`` for ``muse``).

        Returns
        -------
        ProfileDriver
        """
        return self.driver(self, **options)


def has_char(client: GattClient, uuid: str) -> bool:
    """Whether the connected device offers the characteristic ``uuid``.

    Parameters
    ----------
    client : GattClient
        The connected client.
    uuid : str
        Characteristic UUID.

    Returns
    -------
    bool
    """
    services = client.services
    return services is not None and services.get_characteristic(uuid) is not None


class ProfileDriver:
    """Per-device driver: subscriptions, start/stop commands and notification decoding.

    Subclasses implement :meth:`notify_uuids`, :meth:`decode` and, when the device needs
    commands, :meth:`start` and :meth:`stop`.

    Parameters
    ----------
    profile : Profile
        The profile this driver drives.
    """

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.streams: tuple[StreamSpec, ...] = profile.streams
        #: Skin/electrode contact as the device last reported it; None when it does not.
        self.contact: bool | None = None
        #: Battery level in percent as the device last reported it; None when unknown.
        self.battery: float | None = None
        #: The device's own battery-low flag; None when it has none.
        self.battery_low: bool | None = None

    async def prepare(self, client: GattClient) -> None:
        """Read or write configuration before subscribing (default: nothing).

        Parameters
        ----------
        client : GattClient
            The connected client.
        """

    def notify_uuids(self, client: GattClient) -> list[str]:
        """Characteristics to subscribe to on this connection.

        Parameters
        ----------
        client : GattClient
            The connected client (to check which optional characteristics exist).

        Returns
        -------
        list of str
        """
        raise NotImplementedError

    def kind_of(self, uuid: str) -> str:
        """Stream kind a characteristic feeds (for counting malformed packets).

        Parameters
        ----------
        uuid : str
            Characteristic UUID.

        Returns
        -------
        str
        """
        return self.streams[0].kind

    def decode(self, uuid: str, data: bytes) -> list[Frame]:
        """Decode one notification.

        Parameters
        ----------
        uuid : str
            Characteristic UUID (lower case).
        data : bytes
            The payload.

        Returns
        -------
        list of Frame

        Raises
        ------
        DecodeError
            If the payload is malformed.
        """
        raise NotImplementedError

    async def start(self, client: GattClient) -> None:
        """Send the start commands after subscribing and check the answers.

        Parameters
        ----------
        client : GattClient
            The connected client.
        """

    async def stop(self, client: GattClient) -> None:
        """Send the stop commands before a requested disconnect.

        Parameters
        ----------
        client : GattClient
            The connected client.
        """

    async def keep_alive(self, client: GattClient) -> None:
        """Run while connected (e.g. periodic keep-alive commands); default returns at once.

        Parameters
        ----------
        client : GattClient
            The connected client.
        """

    def flush(self) -> list[Frame]:
        """Frames still held back (partly assembled packets) when the link goes down.

        Returns
        -------
        list of Frame
        """
        return []

    def on_reconnect(self) -> None:
        """Reset per-connection decoding state (partial packets, delta state)."""


def stream_spec(
    kind: str, modality: str, channels: Sequence[str], sfreq: float | None, modulus: int | None
) -> StreamSpec:
    """A :class:`StreamSpec` in the modality's canonical unit.

    Parameters
    ----------
    kind, modality : str
        Stream kind and modality.
    channels : sequence of str
        Channel names.
    sfreq : float or None
        Nominal rate; None for event streams.
    modulus : int or None
        Device counter modulus.

    Returns
    -------
    StreamSpec
    """
    return StreamSpec(kind, modality, tuple(channels), UNITS[modality], sfreq, modulus)
