"""Device profiles: what each supported wearable advertises, streams and needs to start.

A :class:`Profile` is static knowledge (advertised services, name patterns, streams). A
:class:`ProfileSession` is the per-device driver the supervisor uses on every connection:
it lists the characteristics to subscribe to, sends the start and stop commands (checking
the device's answers), and turns notifications into :class:`Frame` objects that keep the
device's own sample counter. It talks to the device only through the few bleak client
methods in :class:`GattClient`, so the same code drives real hardware and the emulator.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from affectstream.device import eda_band, ganglion, gatt, muse, polar
from affectstream.device.heart_rate import decode_heart_rate
from affectstream.errors import ConfigError, DecodeError, ProtocolError
from affectstream.types import UNITS, FloatArray

logger = logging.getLogger(__name__)

#: Seconds to wait for a device to answer a command.
RESPONSE_TIMEOUT = 5.0


class GattClient(Protocol):
    """The subset of :class:`bleak.BleakClient` a profile session uses."""

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
        Streams the profile can produce (a session may enable fewer).
    """

    name: str
    description: str
    service_uuids: tuple[str, ...]
    name_patterns: tuple[str, ...]
    streams: tuple[StreamSpec, ...]

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

    def new_session(self, **options: Any) -> ProfileSession:
        """Create the driver for one device of this profile.

        Parameters
        ----------
        **options
            Profile options (``rate`` for ``eda``, ``aux`` for ``muse``).

        Returns
        -------
        ProfileSession
        """
        session: ProfileSession = _SESSIONS[self.name](self, **options)
        return session


def _has_char(client: GattClient, uuid: str) -> bool:
    services = client.services
    return services is not None and services.get_characteristic(uuid) is not None


class ProfileSession:
    """Per-device driver: subscriptions, start/stop commands and notification decoding.

    Subclasses implement :meth:`notify_uuids`, :meth:`decode` and, when the device needs
    commands, :meth:`start` and :meth:`stop`.

    Parameters
    ----------
    profile : Profile
        The profile this session drives.
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


class HeartRateSession(ProfileSession):
    """Standard Heart Rate service: HR and RR event streams, no commands, no counter."""

    def notify_uuids(self, client: GattClient) -> list[str]:
        return [gatt.HEART_RATE_MEASUREMENT]

    def decode(self, uuid: str, data: bytes) -> list[Frame]:
        measurement = decode_heart_rate(data)
        if measurement.contact_supported:
            self.contact = measurement.contact_detected
        frames = [Frame("hr", np.array([[float(measurement.heart_rate)]]), None)]
        if measurement.rr_intervals_ms:
            rr = np.asarray(measurement.rr_intervals_ms, dtype=np.float64)[:, None]
            frames.append(Frame("rr", rr, None))
        return frames


class PolarSession(ProfileSession):
    """Polar H10 ECG over PMD: START with the response checked, frames with timestamps."""

    def __init__(self, profile: Profile) -> None:
        super().__init__(profile)
        self._counter = polar.EcgCounter(polar.ECG_SAMPLE_RATE)
        self._responses: asyncio.Queue[bytes] = asyncio.Queue()

    def notify_uuids(self, client: GattClient) -> list[str]:
        return [gatt.PMD_CONTROL, gatt.PMD_DATA]

    def decode(self, uuid: str, data: bytes) -> list[Frame]:
        if uuid == gatt.PMD_CONTROL:
            self._responses.put_nowait(bytes(data))
            return []
        frame = polar.decode_frame(data)
        first = self._counter.first_index(frame)
        return [Frame("ecg", frame.samples[:, None], first)]

    async def _request(self, client: GattClient, request: bytes, *, allow_already: bool) -> None:
        while not self._responses.empty():
            self._responses.get_nowait()
        await client.write_gatt_char(gatt.PMD_CONTROL, request, response=True)
        try:
            answer = await asyncio.wait_for(self._responses.get(), RESPONSE_TIMEOUT)
        except TimeoutError:
            raise ProtocolError(
                f"Polar PMD did not answer request {request.hex()} within {RESPONSE_TIMEOUT} s; "
                "check that the strap is worn (the H10 only streams with skin contact)."
            ) from None
        polar.check_response(answer, request[0], request[1], allow_already=allow_already)

    async def start(self, client: GattClient) -> None:
        await self._request(client, polar.start_request(), allow_already=True)

    async def stop(self, client: GattClient) -> None:
        await self._request(client, polar.stop_request(), allow_already=True)


class EdaSession(ProfileSession):
    """The open EDA band profile: optional rate write, then Control 0x01.

    Parameters
    ----------
    profile : Profile
        The ``eda`` profile.
    rate : int, optional
        Sample rate to set; by default the band's current rate is read and used.
    """

    def __init__(self, profile: Profile, rate: int | None = None) -> None:
        super().__init__(profile)
        if rate is not None:
            eda_band.encode_rate(rate)  # validates
        self.rate = rate

    async def prepare(self, client: GattClient) -> None:
        if self.rate is not None:
            from bleak.exc import BleakGATTProtocolError

            try:
                await client.write_gatt_char(
                    gatt.EDA_CONFIG, eda_band.encode_rate(self.rate), response=True
                )
            except BleakGATTProtocolError as exc:
                raise ProtocolError(
                    f"The EDA band refused sample rate {self.rate} Hz (ATT error "
                    f"0x{exc.code:02X}; 0x80 means invalid rate or a change while streaming). "
                    f"Use one of {eda_band.ALLOWED_RATES} and stop streaming first."
                ) from exc
        rate = eda_band.decode_rate(await client.read_gatt_char(gatt.EDA_CONFIG))
        spec = self.profile.stream("eda")
        self.streams = (
            StreamSpec(
                spec.kind,
                spec.modality,
                spec.channels,
                spec.unit,
                float(rate),
                spec.counter_modulus,
            ),
        )

    def notify_uuids(self, client: GattClient) -> list[str]:
        return [gatt.EDA_MEASUREMENT]

    def decode(self, uuid: str, data: bytes) -> list[Frame]:
        packet = eda_band.decode_eda(data)
        # Logged when it changes, taking a fresh band as in contact with a charged battery.
        before = (self.contact is not False, self.battery_low is True)
        if (packet.contact, packet.battery_low) != before:
            logger.info("EDA band: contact %s, battery low %s", packet.contact, packet.battery_low)
        self.contact, self.battery_low = packet.contact, packet.battery_low
        saturated = packet.saturated_samples if packet.saturated_samples.any() else None
        return [Frame("eda", packet.values[:, None], packet.sequence, saturated=saturated)]

    async def start(self, client: GattClient) -> None:
        await client.write_gatt_char(gatt.EDA_CONTROL, bytes([eda_band.CONTROL_START]), True)

    async def stop(self, client: GattClient) -> None:
        await client.write_gatt_char(gatt.EDA_CONTROL, bytes([eda_band.CONTROL_STOP]), True)


class MuseSession(ProfileSession):
    """Muse 2 / S classic protocol: preset, status check, start, keep-alive, merged EEG.

    Parameters
    ----------
    profile : Profile
        The ``muse`` profile.
    aux : bool
        Stream the right AUX electrode too (preset p20 instead of p21).
    keep_alive_interval : float
        Seconds between 'k' commands.
    """

    def __init__(
        self, profile: Profile, aux: bool = False, keep_alive_interval: float = 5.0
    ) -> None:
        super().__init__(profile)
        self.aux = aux
        self.keep_alive_interval = keep_alive_interval
        self._eeg_channels = muse.EEG_CHANNELS if aux else muse.EEG_CHANNELS[:4]
        self._eeg_uuid = {gatt.MUSE_EEG[name]: i for i, name in enumerate(self._eeg_channels)}
        self._eeg = muse.CounterAssembler(self._eeg_channels, muse.EEG_SAMPLES_PER_PACKET)
        self._ppg = muse.CounterAssembler(muse.PPG_CHANNELS, muse.PPG_SAMPLES_PER_PACKET)
        self._ppg_uuid = {uuid: i for i, uuid in enumerate(gatt.MUSE_PPG)}
        self._replies = muse.ControlReplyAssembler()
        self._reply_queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=4)
        self._optional: list[str] = []
        eeg = profile.stream("eeg")
        self.streams = (
            StreamSpec("eeg", "eeg", self._eeg_channels, eeg.unit, eeg.sfreq, eeg.counter_modulus),
        )

    def notify_uuids(self, client: GattClient) -> list[str]:
        uuids = [gatt.MUSE_CONTROL, *self._eeg_uuid]
        optional = [gatt.MUSE_ACC, gatt.MUSE_GYRO, *gatt.MUSE_PPG]
        self._optional = [u for u in optional if _has_char(client, u)]
        kinds = ["eeg"]
        if gatt.MUSE_ACC in self._optional:
            kinds.append("acc")
        if gatt.MUSE_GYRO in self._optional:
            kinds.append("gyro")
        if all(u in self._optional for u in gatt.MUSE_PPG):
            kinds.append("ppg")
        else:
            self._optional = [u for u in self._optional if u not in gatt.MUSE_PPG]
        self.streams = (self.streams[0], *(self.profile.stream(k) for k in kinds[1:]))
        return uuids + self._optional

    def kind_of(self, uuid: str) -> str:
        if uuid == gatt.MUSE_ACC:
            return "acc"
        if uuid == gatt.MUSE_GYRO:
            return "gyro"
        if uuid in self._ppg_uuid:
            return "ppg"
        return "eeg"

    def decode(self, uuid: str, data: bytes) -> list[Frame]:
        if uuid in self._eeg_uuid:
            counters, values = muse.unpack_eeg(data)
            packets = self._eeg.feed(self._eeg_uuid[uuid], int(counters[0]), values[0])
            return [
                Frame("eeg", p.values, p.counter * muse.EEG_SAMPLES_PER_PACKET) for p in packets
            ]
        if uuid in (gatt.MUSE_ACC, gatt.MUSE_GYRO):
            acc = uuid == gatt.MUSE_ACC
            scale = muse.ACC_SCALE_G if acc else muse.GYRO_SCALE_DPS
            counters, imu = muse.unpack_imu(data, scale)
            counter = int(counters[0]) * muse.IMU_SAMPLES_PER_PACKET
            return [Frame("acc" if acc else "gyro", imu[0], counter)]
        if uuid in self._ppg_uuid:
            counters, ppg = muse.unpack_ppg(data)
            packets = self._ppg.feed(self._ppg_uuid[uuid], int(counters[0]), ppg[0])
            return [
                Frame("ppg", p.values, p.counter * muse.PPG_SAMPLES_PER_PACKET) for p in packets
            ]
        if uuid == gatt.MUSE_CONTROL:
            reply = self._replies.feed(data)
            if reply is not None:
                if self._reply_queue.full():  # keep-alive answers nobody waits for
                    self._reply_queue.get_nowait()
                self._reply_queue.put_nowait(reply)
            return []
        raise DecodeError(f"Muse notification from unexpected characteristic {uuid}.")

    async def _command(self, client: GattClient, command: str) -> None:
        await client.write_gatt_char(gatt.MUSE_CONTROL, muse.encode_command(command), False)

    async def start(self, client: GattClient) -> None:
        while not self._reply_queue.empty():
            self._reply_queue.get_nowait()
        await self._command(client, "h")
        await self._command(client, "p20" if self.aux else "p21")
        await self._command(client, "s")
        # Replies to h/p2x ({"rc": 0}) may come first; the status reply has more keys.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + RESPONSE_TIMEOUT
        while True:
            try:
                status = await asyncio.wait_for(
                    self._reply_queue.get(), max(0.0, deadline - loop.time())
                )
            except TimeoutError:
                raise ProtocolError(
                    f"Muse did not answer the status command within {RESPONSE_TIMEOUT} s; "
                    "check that it is a Muse 2 / Muse S with the classic firmware."
                ) from None
            if status.get("rc", 0) != 0:
                raise ProtocolError(
                    f"Muse refused a start-up command (h, p2x or s): {status!r}. "
                    "Restart the headset and try again."
                )
            if len(status) > 1:
                break
        logger.info("Muse status: %s", status)
        if isinstance(status.get("bp"), int | float):  # battery percent, when reported
            self.battery = float(status["bp"])
        await self._command(client, "d")

    async def stop(self, client: GattClient) -> None:
        await self._command(client, "h")

    async def keep_alive(self, client: GattClient) -> None:
        while True:
            await asyncio.sleep(self.keep_alive_interval)
            await self._command(client, "k")

    def flush(self) -> list[Frame]:
        eeg = [
            Frame("eeg", p.values, p.counter * muse.EEG_SAMPLES_PER_PACKET)
            for p in self._eeg.flush()
        ]
        ppg = [
            Frame("ppg", p.values, p.counter * muse.PPG_SAMPLES_PER_PACKET)
            for p in self._ppg.flush()
        ]
        return eeg + ppg

    def on_reconnect(self) -> None:
        self._eeg.reset()
        self._ppg.reset()
        self._replies = muse.ControlReplyAssembler()


class GanglionSession(ProfileSession):
    """OpenBCI Ganglion: 'b' to start, 's' to stop, stateful delta decoding."""

    def __init__(self, profile: Profile) -> None:
        super().__init__(profile)
        self._decoder = ganglion.GanglionDecoder()

    def notify_uuids(self, client: GattClient) -> list[str]:
        return [gatt.GANGLION_RECEIVE]

    def decode(self, uuid: str, data: bytes) -> list[Frame]:
        packet = self._decoder.decode(data)
        if packet is None:
            return []
        return [Frame("eeg", packet.values, packet.counter)]

    async def start(self, client: GattClient) -> None:
        await client.write_gatt_char(gatt.GANGLION_SEND, ganglion.CMD_START, False)

    async def stop(self, client: GattClient) -> None:
        await client.write_gatt_char(gatt.GANGLION_SEND, ganglion.CMD_STOP, False)

    def on_reconnect(self) -> None:
        self._decoder.reset()


def _spec(
    kind: str, modality: str, channels: Sequence[str], sfreq: float | None, modulus: int | None
) -> StreamSpec:
    return StreamSpec(kind, modality, tuple(channels), UNITS[modality], sfreq, modulus)


PROFILES: dict[str, Profile] = {
    "polar": Profile(
        name="polar",
        description="Polar H10 chest strap, ECG over PMD",
        service_uuids=(gatt.PMD_SERVICE,),
        name_patterns=("Polar H10 *",),
        streams=(_spec("ecg", "ecg", ["ECG"], float(polar.ECG_SAMPLE_RATE), None),),
    ),
    "muse": Profile(
        name="muse",
        description="Muse 2 / Muse S EEG headband (classic protocol)",
        service_uuids=(gatt.MUSE_SERVICE,),
        name_patterns=("Muse*",),
        streams=(
            _spec(
                "eeg",
                "eeg",
                muse.EEG_CHANNELS,
                muse.EEG_SAMPLE_RATE,
                muse.COUNTER_MODULUS * muse.EEG_SAMPLES_PER_PACKET,
            ),
            _spec(
                "acc",
                "acc",
                ["x", "y", "z"],
                muse.IMU_SAMPLE_RATE,
                muse.COUNTER_MODULUS * muse.IMU_SAMPLES_PER_PACKET,
            ),
            _spec(
                "gyro",
                "gyro",
                ["x", "y", "z"],
                muse.IMU_SAMPLE_RATE,
                muse.COUNTER_MODULUS * muse.IMU_SAMPLES_PER_PACKET,
            ),
            _spec(
                "ppg",
                "ppg",
                muse.PPG_CHANNELS,
                muse.PPG_SAMPLE_RATE,
                muse.COUNTER_MODULUS * muse.PPG_SAMPLES_PER_PACKET,
            ),
        ),
    ),
    "eda": Profile(
        name="eda",
        description="affectstream open EDA band",
        service_uuids=(gatt.EDA_SERVICE,),
        name_patterns=(eda_band.NAME_PREFIX + "*",),
        streams=(
            _spec("eda", "eda", ["EDA"], float(eda_band.DEFAULT_RATE), eda_band.SEQUENCE_MODULUS),
        ),
    ),
    "ganglion": Profile(
        name="ganglion",
        description="OpenBCI Ganglion EEG board",
        service_uuids=(gatt.GANGLION_SERVICE,),
        name_patterns=("Ganglion*",),
        streams=(
            _spec("eeg", "eeg", ganglion.CHANNELS, ganglion.SAMPLE_RATE, ganglion.COUNTER_MODULUS),
        ),
    ),
    "hr": Profile(
        name="hr",
        description="any Bluetooth heart-rate sensor (standard Heart Rate service)",
        service_uuids=(gatt.HEART_RATE_SERVICE,),
        name_patterns=(),
        streams=(_spec("hr", "hr", ["hr"], None, None), _spec("rr", "rr", ["rr"], None, None)),
    ),
}

_SESSIONS: dict[str, Any] = {
    "hr": HeartRateSession,
    "polar": PolarSession,
    "eda": EdaSession,
    "muse": MuseSession,
    "ganglion": GanglionSession,
}


def normalize_uuid(uuid: str) -> str:
    """Lower-case 128-bit form of a UUID given as 16-bit (``"180d"``) or 128-bit string.

    Parameters
    ----------
    uuid : str
        UUID string.

    Returns
    -------
    str
    """
    text = uuid.strip().lower()
    if text.startswith("0x"):
        text = text[2:]
    if len(text) == 4:
        return gatt.sig_uuid(int(text, 16))
    return text


def get_profile(name: str) -> Profile:
    """Return the profile called ``name``.

    Parameters
    ----------
    name : str
        One of ``"hr"``, ``"polar"``, ``"eda"``, ``"muse"``, ``"ganglion"``.

    Returns
    -------
    Profile

    Raises
    ------
    ConfigError
        If the name is unknown.
    """
    try:
        return PROFILES[name]
    except KeyError:
        raise ConfigError(
            f"Unknown device profile {name!r}; known profiles are {sorted(PROFILES)}."
        ) from None


def match_profile(name: str | None, service_uuids: Iterable[str] = ()) -> Profile | None:
    """Find the profile a device matches by advertised name or services.

    Specific profiles are tried before the generic heart-rate profile, so a Polar H10 that
    also advertises the Heart Rate service is recognised as ``polar``.

    Parameters
    ----------
    name : str or None
        Advertised (local) name.
    service_uuids : iterable of str
        Advertised service UUIDs.

    Returns
    -------
    Profile or None
    """
    advertised = {normalize_uuid(u) for u in service_uuids}
    for profile in PROFILES.values():  # insertion order: specific first, "hr" last
        if name and any(fnmatch.fnmatchcase(name, p) for p in profile.name_patterns):
            return profile
        if advertised & set(profile.service_uuids):
            return profile
    return None
