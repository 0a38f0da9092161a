"""Emulated Muse 2 / Muse S headset (classic protocol, service 0xFE8D)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from bumble.device import Connection
from bumble.gatt import Characteristic, CharacteristicValue, Service

from affectstream.device import gatt as uuids
from affectstream.device.emulation.peripheral import (
    EmulatedPeripheral,
    notify_characteristic,
    pack_records,
)
from affectstream.device.emulation.script import AffectScript
from affectstream.device.emulation.signals import BeatGenerator, EegGenerator
from affectstream.types import FloatArray, IntArray

EEG_RATE = 256
SAMPLES_PER_PACKET = 12
SCALE_UV = 0.48828125
OFFSET = 2048
CHANNELS = ("TP9", "AF7", "AF8", "TP10", "AUX")
PACKET_SIZE = 20
IMU_RATE = 52
IMU_SAMPLES_PER_PACKET = 3
ACC_SCALE_G = 0.0000610352
GYRO_SCALE_DPS = 0.0074768
PPG_RATE = 64
PPG_SAMPLES_PER_PACKET = 6
PPG_CHANNELS = ("ambient", "infrared", "red")

_MALFORMED = (b"", b"\x00\x01\x02\x03\x04\x05\x06", bytes(19), bytes(21))


def eeg_counts(values_uv: FloatArray) -> IntArray:
    """12-bit EEG counts of samples in µV (rounded, clipped to the wire's range).

    Parameters
    ----------
    values_uv : ndarray of float
        Samples in µV.

    Returns
    -------
    ndarray of int64
        Same shape.
    """
    counts: IntArray = np.clip(np.round(values_uv / SCALE_UV + OFFSET), 0, 4095).astype(np.int64)
    return counts


def pack_eeg(counter: int, raw: np.ndarray[Any, np.dtype[np.int64]]) -> bytes:
    """One 20-byte EEG packet: u16 BE counter, 12 samples of 12 bits packed big-endian.

    Parameters
    ----------
    counter : int
        Packet counter (taken modulo 65536).
    raw : ndarray of int64, shape (12,)
        Counts (see :func:`eeg_counts`).

    Returns
    -------
    bytes
    """
    pairs = raw.reshape(6, 2)
    first, second = pairs[:, 0], pairs[:, 1]
    body = np.stack([first >> 4, ((first & 0x0F) << 4) | (second >> 8), second & 0xFF], axis=1)
    return bytes([(counter >> 8) & 0xFF, counter & 0xFF]) + body.astype(np.uint8).tobytes()


def encode_reply(reply: dict[str, Any]) -> list[bytes]:
    """A JSON control reply as 20-byte notifications ``[n_chars, ascii..., zero padding]``.

    Parameters
    ----------
    reply : dict
        The reply object.

    Returns
    -------
    list of bytes
    """
    text = json.dumps(reply, separators=(",", ":")).encode("ascii")
    pieces = []
    for start in range(0, len(text), PACKET_SIZE - 1):
        chunk = text[start : start + PACKET_SIZE - 1]
        pieces.append(bytes([len(chunk)]) + chunk + bytes(PACKET_SIZE - 1 - len(chunk)))
    return pieces


@dataclass
class _PacketStream:
    """A packetised Muse stream: several characteristics sharing one packet counter."""

    kind: str
    rate: int
    samples_per_packet: int
    chars: list[Characteristic[bytes]]
    next_packet: int = 0


class MuseHeadset(EmulatedPeripheral):
    """A Muse headset streaming TP9, AF7, AF8, TP10 (and AUX with preset p20) at 256 Hz.

    Stream kind ``"eeg"``: µV on the 12-bit grid (``0.48828125 * (raw - 2048)``), index =
    device sample number since power-on (packet counter × 12, unwrapped). Columns are
    TP9, AF7, AF8, TP10, plus AUX once preset p20 streamed it.

    Protocol: commands ``[len + 1, ascii..., '\\n']`` on the control characteristic
    (write with or without response): ``h`` halt, ``d`` start, ``k`` keep-alive, ``s``
    status, ``v1`` version, ``p20`` (with AUX) / ``p21`` (without) presets. Every command is
    answered with JSON (``{"rc": 0}`` at least; ``rc`` 69 for an unknown command) sent as
    20-byte control notifications ``[n_chars, ascii..., zero padding]``. Each EEG
    characteristic notifies 20-byte packets; the five channels share the packet counter.
    With ``d`` the accelerometer (``"acc"``, g) and gyroscope (``"gyro"``, deg/s) stream
    too: 52 Hz, packets of u16 BE counter + 3 samples × xyz int16 BE; with ``ppg=True``
    three PPG characteristics (``"ppg"``: ambient, infrared, red, raw counts) stream at
    64 Hz, packets of u16 BE counter + 6 × uint24 BE, sharing a counter. Streaming stops
    when the link drops; the client must send ``d`` again.

    Parameters
    ----------
    name : str
        Advertised name (``"Muse-XXXX"``).
    ppg : bool
        Offer the PPG characteristics (a Muse 2 / Muse S has them).
    **kwargs
        See :class:`EmulatedPeripheral`.
    """

    profile = "muse"
    service_uuid = uuids.MUSE_SERVICE
    kinds: ClassVar[dict[str, tuple[str, ...]]] = {
        "eeg": CHANNELS,
        "acc": ("x", "y", "z"),
        "gyro": ("x", "y", "z"),
        "ppg": PPG_CHANNELS,
    }

    def __init__(
        self,
        name: str = "Muse-4F2A",
        *,
        ppg: bool = False,
        script: AffectScript | None = None,
        max_mtu: int = 23,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, script=script, max_mtu=max_mtu, **kwargs)
        self.generator = EegGenerator(self.script, CHANNELS, EEG_RATE, self.rng)
        self.beats = BeatGenerator(self.script, self.rng)
        self.ppg = bool(ppg)
        self.streaming = False
        self.aux = False  # preset p21 by default
        self.aux_ever_sent = False
        #: Battery percent the status reply ("bp") reports.
        self.battery = 82
        self.commands_received: list[str] = []
        self._tilt = self.rng.normal(0.0, 0.15, size=3)
        self.control: Characteristic[bytes] = Characteristic(
            uuids.MUSE_CONTROL,
            Characteristic.Properties.WRITE_WITHOUT_RESPONSE
            | Characteristic.Properties.WRITE
            | Characteristic.Properties.NOTIFY,
            Characteristic.WRITEABLE,
            CharacteristicValue[bytes](write=self._write_control),
        )

        self.eeg_chars = [notify_characteristic(uuids.MUSE_EEG[ch]) for ch in CHANNELS]
        self.acc_char = notify_characteristic(uuids.MUSE_ACC)
        self.gyro_char = notify_characteristic(uuids.MUSE_GYRO)
        self.ppg_chars = [notify_characteristic(u) for u in uuids.MUSE_PPG]
        self.data_characteristic = self.eeg_chars[0]
        self._streams = {
            "eeg": _PacketStream("eeg", EEG_RATE, SAMPLES_PER_PACKET, self.eeg_chars[:4]),
            "acc": _PacketStream("acc", IMU_RATE, IMU_SAMPLES_PER_PACKET, [self.acc_char]),
            "gyro": _PacketStream("gyro", IMU_RATE, IMU_SAMPLES_PER_PACKET, [self.gyro_char]),
        }
        if self.ppg:
            self._streams["ppg"] = _PacketStream(
                "ppg", PPG_RATE, PPG_SAMPLES_PER_PACKET, self.ppg_chars
            )

    def _build_services(self) -> list[Service]:
        chars = [self.control, *self.eeg_chars, self.gyro_char, self.acc_char]
        if self.ppg:
            chars += self.ppg_chars
        return [Service(uuids.MUSE_SERVICE, chars)]

    # -- control --------------------------------------------------------------------------

    def _write_control(self, _connection: Connection, value: bytes) -> None:
        data = bytes(value)
        if not data or data[0] != len(data) - 1 or not data.endswith(b"\n"):
            self._spawn(self._reply({"rc": 69}))
            return
        command = data[1:-1].decode("ascii", errors="replace")
        self.commands_received.append(command)
        reply: dict[str, Any] = {"rc": 0}
        if command == "d":
            if not self.streaming:
                now = self.device_time()
                for stream in self._streams.values():
                    spp = stream.samples_per_packet
                    now_index = int(np.floor(now * stream.rate)) // spp * spp
                    next_index = stream.next_packet * spp
                    stream.next_packet = (
                        self._skip_unsent(stream.kind, next_index, now_index) // spp
                    )
                self.streaming = True
        elif command == "h":
            self.streaming = False
        elif command in ("p20", "p21"):
            self.aux = command == "p20"
            self._streams["eeg"].chars = self.eeg_chars[: 5 if self.aux else 4]
        elif command == "s":
            reply = {
                "hn": self.name,
                "sn": "0000-0000-0000",
                "ma": self.address,
                "id": "emulated",
                "bp": self.battery,
                "ts": 0,
                "ps": 20 if self.aux else 21,
                "rc": 0,
            }
        elif command == "v1":
            reply = {"ap": "headset", "sp": "Blackcomb_revD", "tp": "consumer", "fw": "1.3.13"}
            reply["rc"] = 0
        elif command != "k":
            reply = {"rc": 69}
        self._spawn(self._reply(reply))

    async def _reply(self, reply: dict[str, Any]) -> None:
        for payload in encode_reply(reply):
            if not self.can_send(self.control):
                return
            await self._send(self.control, payload)

    def _on_link_down(self) -> None:
        self.streaming = False

    # -- records --------------------------------------------------------------------------

    def sent_samples(self, kind: str) -> FloatArray:
        """See :meth:`EmulatedPeripheral.sent_samples`; AUX is dropped if never streamed."""
        values = super().sent_samples(kind)
        return values if self.aux_ever_sent else values[:, :4]

    def channels(self, kind: str) -> tuple[str, ...]:
        """Channel names of :meth:`sent_samples`."""
        names = super().channels(kind)
        return names if self.aux_ever_sent else names[:4]

    # -- data -----------------------------------------------------------------------------

    def _malformed_payloads(self) -> tuple[bytes, ...]:
        return _MALFORMED

    async def _tick(self, device_time: float, *, deliver: bool) -> None:
        if not self.streaming:
            return
        for stream in self._streams.values():
            due = int(np.floor(device_time * stream.rate)) // stream.samples_per_packet
            while stream.next_packet < due and self.streaming:  # 'h' may arrive meanwhile
                await self._send_group(stream, deliver=deliver)
                stream.next_packet += 1

    async def _send_group(self, stream: _PacketStream, *, deliver: bool) -> None:
        """Send one packet counter's worth of a stream on all its characteristics."""
        spp = stream.samples_per_packet
        first = stream.next_packet * spp
        indices = np.arange(first, first + spp, dtype=np.int64)
        counter = bytes([(stream.next_packet >> 8) & 0xFF, stream.next_packet & 0xFF])
        values, payloads = self._make_packets(stream.kind, indices, counter)
        record = pack_records(stream.kind, values, indices)
        chars = stream.chars
        ok = deliver and all(self.can_send(c) for c in chars)
        if ok and self._consume_skip([record]):
            ok = False
        if ok:
            for char, payload in zip(chars, payloads, strict=False):
                ok = await self._send(char, payload) and ok
            if stream.kind == "eeg" and self.aux:
                self.aux_ever_sent = True
        self._record([record], ok)

    def _make_packets(
        self, kind: str, indices: IntArray, counter: bytes
    ) -> tuple[FloatArray, list[bytes]]:
        """Canonical values and per-characteristic payloads of one packet counter."""
        if kind == "eeg":
            eeg = self.generator.samples(int(indices[0]), indices.size)
            raw = eeg_counts(eeg)
            values = SCALE_UV * (raw - OFFSET).astype(np.float64)
            if not self.aux:
                values[:, 4] = np.nan
            return values, [pack_eeg(int.from_bytes(counter, "big"), raw[:, c]) for c in range(5)]
        if kind in ("acc", "gyro"):
            t = indices / IMU_RATE
            if kind == "acc":  # gravity on a slightly tilted head, plus small movements
                physical = (
                    np.array([0.0, 0.0, 1.0])
                    + self._tilt
                    + 0.01 * np.sin(2 * np.pi * 0.3 * t[:, None] + np.arange(3))
                )
                scale = ACC_SCALE_G
            else:
                physical = 2.0 * np.sin(2 * np.pi * 0.2 * t[:, None] + np.arange(3))
                scale = GYRO_SCALE_DPS
            physical = physical + 0.002 * self.rng.standard_normal((indices.size, 3))
            counts = np.clip(np.round(physical / scale), -32768, 32767).astype(">i2")
            return counts.astype(np.float64) * scale, [counter + counts.tobytes()]
        # PPG: pulsatile light absorption following the heartbeat.
        t = indices / PPG_RATE
        self.beats.extend_to(float(t[-1]) + 2.0)
        times = np.asarray(self.beats.times)
        k = np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(times) - 1)
        phase = np.clip(t - times[k], 0.0, None)
        pulse = np.exp(-phase / 0.35) * (1 - np.exp(-phase / 0.05))
        self.beats.forget_before(float(t[0]) - 5.0)
        base = np.array([30_000.0, 400_000.0, 250_000.0])
        depth = np.array([0.0, 20_000.0, 12_000.0])
        noise = self.rng.normal(0.0, 150.0, size=(indices.size, 3))
        counts_ppg = np.clip(np.round(base - depth * pulse[:, None] + noise), 0, 0xFFFFFF).astype(
            np.int64
        )
        payloads = []
        for column in range(3):
            triples = counts_ppg[:, column].astype(">u4").view(np.uint8).reshape(-1, 4)[:, 1:]
            payloads.append(counter + triples.tobytes())
        return counts_ppg.astype(np.float64), payloads
