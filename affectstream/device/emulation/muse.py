"""Emulated Muse 2 / Muse S headset (classic protocol, service 0xFE8D)."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import numpy as np
from bumble.device import Connection
from bumble.gatt import Characteristic, CharacteristicValue, Service

from affectstream.device import gatt as uuids
from affectstream.device.emulation.peripheral import EmulatedPeripheral, pack_records
from affectstream.device.emulation.script import AffectScript
from affectstream.device.emulation.signals import EegGenerator
from affectstream.types import FloatArray

EEG_RATE = 256
SAMPLES_PER_PACKET = 12
SCALE_UV = 0.48828125
OFFSET = 2048
CHANNELS = ("TP9", "AF7", "AF8", "TP10", "AUX")
PACKET_SIZE = 20

_MALFORMED = (b"", b"\x00\x01\x02\x03\x04\x05\x06", bytes(19), bytes(21))


def pack_eeg(counter: int, raw: np.ndarray[Any, np.dtype[np.int64]]) -> bytes:
    """One 20-byte EEG packet: u16 BE counter, 12 samples of 12 bits packed big-endian."""
    pairs = raw.reshape(6, 2)
    first, second = pairs[:, 0], pairs[:, 1]
    body = np.stack([first >> 4, ((first & 0x0F) << 4) | (second >> 8), second & 0xFF], axis=1)
    return bytes([(counter >> 8) & 0xFF, counter & 0xFF]) + body.astype(np.uint8).tobytes()


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
    Streaming stops when the link drops; the client must send ``d`` again.

    Parameters
    ----------
    name : str
        Advertised name (``"Muse-XXXX"``).
    **kwargs
        See :class:`EmulatedPeripheral`.
    """

    profile = "muse"
    service_uuid = uuids.MUSE_SERVICE
    kinds: ClassVar[dict[str, tuple[str, ...]]] = {"eeg": CHANNELS}

    def __init__(
        self,
        name: str = "Muse-4F2A",
        *,
        script: AffectScript | None = None,
        max_mtu: int = 23,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, script=script, max_mtu=max_mtu, **kwargs)
        self.generator = EegGenerator(self.script, CHANNELS, EEG_RATE, self.rng)
        self.streaming = False
        self.aux = False  # preset p21 by default
        self.aux_ever_sent = False
        self.commands_received: list[str] = []
        self._next_packet = 0  # device packet number (unwrapped counter)
        self._malformed_cycle = 0
        self.control: Characteristic[bytes] = Characteristic(
            uuids.MUSE_CONTROL,
            Characteristic.Properties.WRITE_WITHOUT_RESPONSE
            | Characteristic.Properties.WRITE
            | Characteristic.Properties.NOTIFY,
            Characteristic.WRITEABLE,
            CharacteristicValue[bytes](write=self._write_control),
        )
        self.eeg_chars: list[Characteristic[bytes]] = [
            Characteristic(
                uuids.MUSE_EEG[ch], Characteristic.Properties.NOTIFY, Characteristic.Permissions(0)
            )
            for ch in CHANNELS
        ]
        self.data_characteristic = self.eeg_chars[0]

    def _build_services(self) -> list[Service]:
        return [Service(uuids.MUSE_SERVICE, [self.control, *self.eeg_chars])]

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
                now_packet = int(np.floor(self.device_time() * EEG_RATE)) // SAMPLES_PER_PACKET
                self._next_packet = (
                    self._skip_unsent(
                        "eeg",
                        self._next_packet * SAMPLES_PER_PACKET,
                        now_packet * SAMPLES_PER_PACKET,
                    )
                    // SAMPLES_PER_PACKET
                )
                self.streaming = True
        elif command == "h":
            self.streaming = False
        elif command == "p20":
            self.aux = True
        elif command == "p21":
            self.aux = False
        elif command == "s":
            reply = {
                "hn": self.name,
                "sn": "0000-0000-0000",
                "ma": self.address,
                "id": "emulated",
                "bp": 82,
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
        text = json.dumps(reply, separators=(",", ":"))
        for start in range(0, len(text), PACKET_SIZE - 1):
            chunk = text[start : start + PACKET_SIZE - 1].encode("ascii")
            payload = bytes([len(chunk)]) + chunk + bytes(PACKET_SIZE - 1 - len(chunk))
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

    def _malformed_payload(self) -> bytes:
        payload = _MALFORMED[self._malformed_cycle % len(_MALFORMED)]
        self._malformed_cycle += 1
        return payload

    async def _tick(self, device_time: float, *, deliver: bool) -> None:
        if not self.streaming:
            return
        due = int(np.floor(device_time * EEG_RATE)) // SAMPLES_PER_PACKET
        n_channels = 5 if self.aux else 4
        chars = self.eeg_chars[:n_channels]
        while self._next_packet < due:
            first = self._next_packet * SAMPLES_PER_PACKET
            eeg = self.generator.samples(first, SAMPLES_PER_PACKET)
            raw = np.clip(np.round(eeg / SCALE_UV + OFFSET), 0, 4095).astype(np.int64)
            values = SCALE_UV * (raw - OFFSET).astype(np.float64)
            if not self.aux:
                values[:, 4] = np.nan
            indices = np.arange(first, first + SAMPLES_PER_PACKET, dtype=np.int64)
            record = pack_records("eeg", values, indices)
            counter = self._next_packet % 65536
            ok = deliver and all(self.can_send(c) for c in chars)
            if ok and self._consume_skip([record]):
                ok = False
            if ok:
                for column, char in enumerate(chars):
                    ok = await self._send(char, pack_eeg(counter, raw[:, column])) and ok
                self.aux_ever_sent = self.aux_ever_sent or self.aux
            self._record([record], ok)
            self._next_packet += 1
