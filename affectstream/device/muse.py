"""Muse 2 / Muse S (classic protocol): commands, control replies, EEG, IMU, PPG, driver.

Sources: alexandrebarachant/muse-lsl (``muselsl/muse.py``, ``muselsl/constants.py``).
The Muse S "Athena" firmware uses a different protocol and is not covered.

Every data characteristic notifies 20-byte packets starting with a uint16 big-endian packet
counter. EEG packets carry 12 samples of 12 bits packed big-endian
(µV = 0.48828125 × (raw − 2048)); the five EEG electrodes arrive on five characteristics
sharing one counter, so :class:`CounterAssembler` merges them into multi-channel rows.

:class:`MuseDriver` sends the preset, status, start and keep-alive commands and merges the
streams; :data:`PROFILE` registers it as ``"muse"``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeAlias

import numpy as np
from numpy.typing import NDArray

from affectstream.device import gatt
from affectstream.device.driver import (
    RESPONSE_TIMEOUT,
    Frame,
    GattClient,
    Profile,
    ProfileDriver,
    has_char,
    stream_spec,
)
from affectstream.device.payload import int24
from affectstream.errors import DecodeError, ProtocolError
from affectstream.types import FloatArray

logger = logging.getLogger(__name__)

PACKET_SIZE = 20
COUNTER_MODULUS = 65536
EEG_SAMPLES_PER_PACKET = 12
EEG_SAMPLE_RATE = 256.0
EEG_SCALE_UV = 0.48828125  # 1000 / 2048 µV per count
EEG_OFFSET = 2048
IMU_SAMPLES_PER_PACKET = 3
IMU_SAMPLE_RATE = 52.0
ACC_SCALE_G = 0.0000610352
GYRO_SCALE_DPS = 0.0074768
PPG_SAMPLES_PER_PACKET = 6
PPG_SAMPLE_RATE = 64.0

#: EEG channel names in characteristic order 0x0003..0x0007.
EEG_CHANNELS = ("TP9", "AF7", "AF8", "TP10", "AUX")
PPG_CHANNELS = ("ambient", "infrared", "red")


def encode_command(command: str) -> bytes:
    """Encode a control command as ``[len + 1, ascii..., '\\n']``.

    Parameters
    ----------
    command : str
        E.g. ``"d"`` (start), ``"h"`` (halt), ``"k"`` (keep alive), ``"s"`` (status),
        ``"v1"`` (version), ``"p21"`` (preset 21).

    Returns
    -------
    bytes
    """
    body = command.encode("ascii") + b"\n"
    return bytes([len(body)]) + body


def decode_command(data: bytes | bytearray) -> str:
    """Decode a control command written by a client (the inverse of :func:`encode_command`).

    Parameters
    ----------
    data : bytes
        Bytes written to the control characteristic.

    Returns
    -------
    str

    Raises
    ------
    DecodeError
        If the length byte disagrees with the payload or the command does not end in '\\n'.
    """
    payload = bytes(data)
    if len(payload) < 2 or payload[0] != len(payload) - 1 or payload[-1:] != b"\n":
        raise DecodeError(
            f"Muse command must be [len + 1, ascii..., '\\n'], got {payload.hex()!r}."
        )
    try:
        return payload[1:-1].decode("ascii")
    except UnicodeDecodeError:
        raise DecodeError(f"Muse command is not ASCII: {payload.hex()!r}.") from None


class ControlReplyAssembler:
    """Reassemble the JSON replies the control characteristic sends in 20-byte pieces.

    Byte 0 of each piece is the number of characters that follow; a reply ends at ``}``.
    """

    def __init__(self) -> None:
        self._buffer = ""

    def feed(self, data: bytes | bytearray) -> dict[str, Any] | None:
        """Add one notification; return the reply once it is complete.

        Parameters
        ----------
        data : bytes
            A control notification.

        Returns
        -------
        dict or None
            The decoded JSON object, or None while the reply is incomplete.

        Raises
        ------
        DecodeError
            If the piece is malformed or the reply is not valid JSON (the buffer is cleared).
        """
        payload = bytes(data)
        if not payload or payload[0] > len(payload) - 1:
            raise DecodeError(
                f"Muse control piece announces more characters than it holds: {payload.hex()!r}."
            )
        try:
            self._buffer += payload[1 : 1 + payload[0]].decode("ascii")
        except UnicodeDecodeError:
            self._buffer = ""
            raise DecodeError(f"Muse control piece is not ASCII: {payload.hex()!r}.") from None
        end = self._buffer.find("}")
        if end < 0:
            if len(self._buffer) > 4096:
                self._buffer = ""
                raise DecodeError("Muse control reply exceeded 4096 characters without '}'.")
            return None
        text, self._buffer = self._buffer[: end + 1], self._buffer[end + 1 :]
        try:
            reply = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DecodeError(f"Muse control reply is not JSON ({exc}): {text!r}.") from None
        if not isinstance(reply, dict):
            raise DecodeError(f"Muse control reply is not a JSON object: {text!r}.")
        return reply


#: One 20-byte notification, several, or an (n, 20) uint8 array of them.
Packets: TypeAlias = bytes | bytearray | Sequence[bytes] | NDArray[np.uint8]


def _as_packets(
    packets: Packets,
) -> NDArray[np.uint8]:
    if isinstance(packets, bytes | bytearray):
        if len(packets) != PACKET_SIZE:
            raise DecodeError(
                f"Muse data packet must be {PACKET_SIZE} bytes, got {len(packets)}: "
                f"{bytes(packets[:24]).hex()!r}."
            )
        return np.frombuffer(bytes(packets), dtype=np.uint8).reshape(1, PACKET_SIZE)
    if isinstance(packets, np.ndarray):
        array = packets
    else:
        sizes = {len(p) for p in packets}
        if sizes - {PACKET_SIZE}:
            raise DecodeError(
                f"Muse data packets must all be {PACKET_SIZE} bytes, got sizes {sorted(sizes)}."
            )
        array = np.frombuffer(b"".join(packets), dtype=np.uint8)
    array = np.asarray(array, dtype=np.uint8)
    if array.ndim == 1:
        array = array.reshape(-1, PACKET_SIZE) if array.size % PACKET_SIZE == 0 else array[None]
    if array.ndim != 2 or array.shape[1] != PACKET_SIZE:
        raise DecodeError(
            f"Muse data packets must have shape (n, {PACKET_SIZE}), got {array.shape}."
        )
    return array


def _counters(array: NDArray[np.uint8]) -> NDArray[np.int64]:
    """The u16 big-endian packet counters that start each row of ``array``."""
    counters: NDArray[np.int64] = (array[:, 0].astype(np.int64) << 8) | array[:, 1]
    return counters


def unpack_eeg(
    packets: Packets,
) -> tuple[NDArray[np.int64], FloatArray]:
    """Unpack EEG packets, many at once, without a per-sample Python loop.

    Parameters
    ----------
    packets : bytes, sequence of bytes, or ndarray of uint8, shape (n, 20)
        One packet or many.

    Returns
    -------
    counters : ndarray of int64, shape (n,)
        Packet counters (uint16).
    values : ndarray of float64, shape (n, 12)
        Samples in µV.

    Raises
    ------
    DecodeError
        If a packet is not 20 bytes.
    """
    if isinstance(packets, bytes | bytearray) and len(packets) == PACKET_SIZE:
        # One notification (the live path): Python integers beat numpy's per-call overhead.
        payload = int.from_bytes(packets[2:], "big")
        raw_one = [(payload >> shift) & 0xFFF for shift in range(132, -1, -12)]
        counter = np.array([packets[0] << 8 | packets[1]], dtype=np.int64)
        return counter, EEG_SCALE_UV * (np.array([raw_one], dtype=np.float64) - EEG_OFFSET)
    array = _as_packets(packets)
    counters = _counters(array)
    # 18 payload bytes = 6 groups of 3 bytes, each holding two 12-bit samples.
    groups = array[:, 2:].reshape(-1, 6, 3).astype(np.int64)
    first = (groups[:, :, 0] << 4) | (groups[:, :, 1] >> 4)
    second = ((groups[:, :, 1] & 0x0F) << 8) | groups[:, :, 2]
    raw = np.stack([first, second], axis=2).reshape(-1, EEG_SAMPLES_PER_PACKET)
    return counters, EEG_SCALE_UV * (raw - EEG_OFFSET).astype(np.float64)


def unpack_imu(packets: Packets, scale: float) -> tuple[NDArray[np.int64], FloatArray]:
    """Unpack accelerometer or gyroscope packets: counter + 3 samples × (x, y, z) int16 BE.

    ``packets`` and ``counters`` as in :func:`unpack_eeg`; ``values`` has shape (n, 3, 3):
    samples × axes, in g or deg/s after multiplying by ``scale`` (:data:`ACC_SCALE_G` or
    :data:`GYRO_SCALE_DPS`).
    """
    array = _as_packets(packets)
    counters = _counters(array)
    raw = array[:, 2:].copy().view(">i2").reshape(-1, IMU_SAMPLES_PER_PACKET, 3)
    return counters, raw.astype(np.float64) * scale


def unpack_ppg(
    packets: Packets,
) -> tuple[NDArray[np.int64], FloatArray]:
    """Unpack PPG packets: counter + 6 × uint24 BE (arbitrary units).

    ``packets`` and ``counters`` as in :func:`unpack_eeg`; ``values`` has shape (n, 6).
    """
    array = _as_packets(packets)
    counters = _counters(array)
    raw = int24(array[:, 2:], "big", signed=False)
    return counters, raw.astype(np.float64)


@dataclass(frozen=True, slots=True)
class AssembledPacket:
    """Rows of one packet counter merged across the channels that share it.

    Parameters
    ----------
    counter : int
        Packet counter (wrapped, 0..modulus-1).
    values : ndarray, shape (samples_per_packet, n_channels)
        Samples; NaN in a column whose packet never arrived.
    missing_channels : tuple of str
        Channels whose packet for this counter was lost.
    """

    counter: int
    values: FloatArray
    missing_channels: tuple[str, ...]


class CounterAssembler:
    """Merge per-channel packets that share a packet counter into multi-channel rows.

    A counter is emitted once every channel has delivered it, or once a newer counter is
    ``max_lag`` packets ahead (then the channels that never delivered it are NaN). Counters
    no channel delivered are never emitted: the caller sees the counter jump and records a
    gap.

    Parameters
    ----------
    channels : sequence of str
        Channel names, in column order.
    samples_per_packet : int
        Samples each packet holds per channel.
    modulus : int
        Packet counter modulus.
    max_lag : int
        Packets to wait for a late channel before emitting without it.
    """

    def __init__(
        self,
        channels: Sequence[str],
        samples_per_packet: int,
        modulus: int = COUNTER_MODULUS,
        max_lag: int = 2,
    ) -> None:
        self.channels = tuple(channels)
        self.samples_per_packet = samples_per_packet
        self.modulus = modulus
        self.max_lag = max_lag
        self._pending: dict[int, tuple[FloatArray, NDArray[np.bool_]]] = {}
        self._newest: int | None = None
        self._last_emitted: int | None = None

    def reset(self) -> None:
        """Drop pending packets (after a reconnect the device may restart its counter)."""
        self._pending.clear()
        self._newest = None
        self._last_emitted = None

    def _ahead(self, a: int, b: int) -> int:
        """Signed packets from ``b`` to ``a`` in modular arithmetic."""
        half = self.modulus // 2
        return (a - b + half) % self.modulus - half

    def feed(self, channel: int, counter: int, values: FloatArray) -> list[AssembledPacket]:
        """Add one channel's packet; return the counters that became complete, in order.

        Parameters
        ----------
        channel : int
            Column index of the channel.
        counter : int
            Packet counter.
        values : ndarray, shape (samples_per_packet,)
            The channel's samples.

        Returns
        -------
        list of AssembledPacket
        """
        if self._last_emitted is not None and self._ahead(counter, self._last_emitted) <= 0:
            logger.debug("late packet %d on %s dropped", counter, self.channels[channel])
            return []
        if counter not in self._pending:
            rows = np.full((self.samples_per_packet, len(self.channels)), np.nan)
            self._pending[counter] = (rows, np.zeros(len(self.channels), dtype=bool))
        rows, got = self._pending[counter]
        rows[:, channel] = values
        got[channel] = True
        if self._newest is None or self._ahead(counter, self._newest) > 0:
            self._newest = counter
        return self._emit(flush=False)

    def flush(self) -> list[AssembledPacket]:
        """Emit everything pending (at the end of a stream or before a reset).

        Returns
        -------
        list of AssembledPacket
        """
        return self._emit(flush=True)

    def _emit(self, flush: bool) -> list[AssembledPacket]:
        out: list[AssembledPacket] = []
        newest = self._newest
        while self._pending and newest is not None:
            oldest = min(self._pending, key=lambda c: self._ahead(c, newest))
            rows, got = self._pending[oldest]
            if not (flush or got.all() or self._ahead(newest, oldest) >= self.max_lag):
                break
            del self._pending[oldest]
            missing = tuple(name for name, ok in zip(self.channels, got, strict=True) if not ok)
            out.append(AssembledPacket(counter=oldest, values=rows, missing_channels=missing))
            self._last_emitted = oldest
        return out


# -- driver -------------------------------------------------------------------------


class MuseDriver(ProfileDriver):
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
        self._eeg_channels = EEG_CHANNELS if aux else EEG_CHANNELS[:4]
        self._eeg_uuid = {gatt.MUSE_EEG[name]: i for i, name in enumerate(self._eeg_channels)}
        self._eeg = CounterAssembler(self._eeg_channels, EEG_SAMPLES_PER_PACKET)
        self._ppg = CounterAssembler(PPG_CHANNELS, PPG_SAMPLES_PER_PACKET)
        self._ppg_uuid = {uuid: i for i, uuid in enumerate(gatt.MUSE_PPG)}
        self._replies = ControlReplyAssembler()
        self._reply_queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=4)
        self._optional: list[str] = []
        eeg = profile.stream("eeg")
        self.streams = (replace(eeg, channels=self._eeg_channels),)

    def notify_uuids(self, client: GattClient) -> list[str]:
        uuids = [gatt.MUSE_CONTROL, *self._eeg_uuid]
        optional = [gatt.MUSE_ACC, gatt.MUSE_GYRO, *gatt.MUSE_PPG]
        self._optional = [u for u in optional if has_char(client, u)]
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
            counters, values = unpack_eeg(data)
            packets = self._eeg.feed(self._eeg_uuid[uuid], int(counters[0]), values[0])
            return [Frame("eeg", p.values, p.counter * EEG_SAMPLES_PER_PACKET) for p in packets]
        if uuid in (gatt.MUSE_ACC, gatt.MUSE_GYRO):
            acc = uuid == gatt.MUSE_ACC
            scale = ACC_SCALE_G if acc else GYRO_SCALE_DPS
            counters, imu = unpack_imu(data, scale)
            counter = int(counters[0]) * IMU_SAMPLES_PER_PACKET
            return [Frame("acc" if acc else "gyro", imu[0], counter)]
        if uuid in self._ppg_uuid:
            counters, ppg = unpack_ppg(data)
            packets = self._ppg.feed(self._ppg_uuid[uuid], int(counters[0]), ppg[0])
            return [Frame("ppg", p.values, p.counter * PPG_SAMPLES_PER_PACKET) for p in packets]
        if uuid == gatt.MUSE_CONTROL:
            reply = self._replies.feed(data)
            if reply is not None:
                if self._reply_queue.full():  # keep-alive answers nobody waits for
                    self._reply_queue.get_nowait()
                self._reply_queue.put_nowait(reply)
            return []
        raise DecodeError(f"Muse notification from unexpected characteristic {uuid}.")

    async def _command(self, client: GattClient, command: str) -> None:
        await client.write_gatt_char(gatt.MUSE_CONTROL, encode_command(command), False)

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
            Frame("eeg", p.values, p.counter * EEG_SAMPLES_PER_PACKET) for p in self._eeg.flush()
        ]
        ppg = [
            Frame("ppg", p.values, p.counter * PPG_SAMPLES_PER_PACKET) for p in self._ppg.flush()
        ]
        return eeg + ppg

    def on_reconnect(self) -> None:
        self._eeg.reset()
        self._ppg.reset()
        self._replies = ControlReplyAssembler()


#: The profile of this protocol (registered in :data:`affectstream.device.profiles.PROFILES`).
PROFILE = Profile(
    name="muse",
    description="Muse 2 / Muse S EEG headband (classic protocol)",
    service_uuids=(gatt.MUSE_SERVICE,),
    name_patterns=("Muse*",),
    streams=(
        stream_spec(
            "eeg",
            "eeg",
            EEG_CHANNELS,
            EEG_SAMPLE_RATE,
            COUNTER_MODULUS * EEG_SAMPLES_PER_PACKET,
        ),
        stream_spec(
            "acc",
            "acc",
            ["x", "y", "z"],
            IMU_SAMPLE_RATE,
            COUNTER_MODULUS * IMU_SAMPLES_PER_PACKET,
        ),
        stream_spec(
            "gyro",
            "gyro",
            ["x", "y", "z"],
            IMU_SAMPLE_RATE,
            COUNTER_MODULUS * IMU_SAMPLES_PER_PACKET,
        ),
        stream_spec(
            "ppg",
            "ppg",
            PPG_CHANNELS,
            PPG_SAMPLE_RATE,
            COUNTER_MODULUS * PPG_SAMPLES_PER_PACKET,
        ),
    ),
    driver=MuseDriver,
)
