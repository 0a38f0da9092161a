"""Emulated OpenBCI Ganglion (service 0xFE84): raw and delta-compressed EEG packets."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from bumble.device import Connection
from bumble.gatt import Characteristic, CharacteristicValue, Service

from affectstream.device import gatt as uuids
from affectstream.device.emulation.peripheral import (
    EmulatedPeripheral,
    Packet,
    notify_characteristic,
    pack_records,
)
from affectstream.device.emulation.script import AffectScript
from affectstream.device.emulation.signals import EegGenerator
from affectstream.errors import ConfigError
from affectstream.types import IntArray

EEG_RATE = 200
CHANNELS = ("ch1", "ch2", "ch3", "ch4")
#: µV per count: 1.2 V reference, gain 1.5 × 51, 24-bit converter.
SCALE_UV = 1.2e6 / (8388607.0 * 1.5 * 51.0)
CYCLE = 200  # samples per cycle of packet ids (100 delta packets × 2 samples)

_MALFORMED = (b"", b"\x00\x01\x02\x03\x04", b"\x32" + bytes(9), b"\xe6\x00\x00")


def _legal_next(previous: IntArray, target: IntArray, bits: int) -> IntArray:
    """The sample nearest ``target`` whose delta (previous - sample) the wire can carry.

    OpenBCI marks a negative delta by a set least-significant bit, so positive deltas
    must be even and negative ones odd; deltas are also limited to ``bits`` bits.
    """
    limit = (1 << (bits - 1)) - 2
    delta = np.clip(previous - target, -limit, limit)
    wrong_parity = ((delta > 0) & (delta % 2 == 1)) | ((delta < 0) & (delta % 2 == 0))
    delta = np.where(wrong_parity, delta - np.sign(delta), delta)
    sample: IntArray = (previous - delta).astype(np.int64)
    return sample


def pack_deltas(deltas: IntArray, bits: int) -> bytes:
    """Pack 8 deltas (2 samples × 4 channels) into ``bits``-wide big-endian fields.

    A delta's LSB must match its sign (OpenBCI's convention), so odd negative and even
    positive values round-trip exactly.

    Parameters
    ----------
    deltas : ndarray of int, shape (2, 4)
        Deltas, ``previous - current``.
    bits : int
        18 or 19.

    Returns
    -------
    bytes
    """
    fields = np.asarray(deltas, dtype=np.int64).reshape(8) & ((1 << bits) - 1)
    bit_array = ((fields[:, None] >> np.arange(bits - 1, -1, -1)) & 1).astype(np.uint8)
    return np.packbits(bit_array.reshape(-1)).tobytes()


class Ganglion(EmulatedPeripheral):
    """An OpenBCI Ganglion streaming 4 EEG channels at 200 Hz.

    Stream kind ``"eeg"``: µV on the converter grid (``count * SCALE_UV``), index =
    device sample number since power-on. On ``b`` (start) the board sends one raw packet
    (id 0: 4 × int24 big-endian) at an index that is a multiple of 200, then delta packets
    ids 1-100 (18-bit) or 101-200 (19-bit) of 2 samples each, cycling; ``s`` stops. Deltas
    follow OpenBCI's convention (a set LSB means negative), so samples are quantised to the
    nearest value the delta encoding can carry. Streaming stops when the link drops.

    Parameters
    ----------
    name : str
        Advertised name (``"Ganglion-xxxx"``).
    delta_bits : {18, 19}
        Delta packet format.
    **kwargs
        See :class:`EmulatedPeripheral`.
    """

    profile = "ganglion"
    service_uuid = uuids.GANGLION_SERVICE
    kinds: ClassVar[dict[str, tuple[str, ...]]] = {"eeg": CHANNELS}

    def __init__(
        self,
        name: str = "Ganglion-1a2b",
        *,
        delta_bits: int = 18,
        script: AffectScript | None = None,
        max_mtu: int = 23,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, script=script, max_mtu=max_mtu, **kwargs)
        if delta_bits not in (18, 19):
            raise ConfigError(f"Ganglion delta_bits must be 18 or 19, got {delta_bits!r}.")
        self.delta_bits = delta_bits
        self.generator = EegGenerator(self.script, CHANNELS, EEG_RATE, self.rng)
        self.streaming = False
        self._next_index = 0
        self._raw_pending = False
        self._last = np.zeros(4, dtype=np.int64)
        self.receive: Characteristic[bytes] = notify_characteristic(uuids.GANGLION_RECEIVE)
        write_props = (
            Characteristic.Properties.WRITE_WITHOUT_RESPONSE | Characteristic.Properties.WRITE
        )
        self.send: Characteristic[bytes] = Characteristic(
            uuids.GANGLION_SEND,
            write_props,
            Characteristic.WRITEABLE,
            CharacteristicValue[bytes](write=self._write_send),
        )
        self.disconnect_char: Characteristic[bytes] = Characteristic(
            uuids.GANGLION_DISCONNECT,
            write_props,
            Characteristic.WRITEABLE,
            CharacteristicValue[bytes](write=lambda _c, _v: None),
        )
        self.data_characteristic = self.receive

    def _build_services(self) -> list[Service]:
        return [Service(uuids.GANGLION_SERVICE, [self.receive, self.send, self.disconnect_char])]

    def _write_send(self, _connection: Connection, value: bytes) -> None:
        if value == b"b" and not self.streaming:
            now = int(np.floor(self.device_time() * EEG_RATE))
            start = -(-now // CYCLE) * CYCLE  # the raw packet starts a cycle
            self._next_index = self._skip_unsent("eeg", self._next_index, start)
            self._raw_pending = True
            self.streaming = True
        elif value == b"s":
            self.streaming = False

    def _on_link_down(self) -> None:
        self.streaming = False

    def _malformed_payloads(self) -> tuple[bytes, ...]:
        return _MALFORMED

    async def _tick(self, device_time: float, *, deliver: bool) -> None:
        if not self.streaming:
            return
        now = int(np.floor(device_time * EEG_RATE))
        while self.streaming:  # an 's' may arrive while we send
            n = 1 if self._raw_pending else 2
            if self._next_index + n > now:
                return
            first = self._next_index
            target = np.round(self.generator.samples(first, n) / SCALE_UV).astype(np.int64)
            if self._raw_pending:
                counts = np.clip(target[0], -(2**23), 2**23 - 1)
                payload = b"\x00" + b"".join(int(c & 0xFFFFFF).to_bytes(3, "big") for c in counts)
                rows = counts[None, :]
                self._raw_pending = False
            else:
                one = _legal_next(self._last, target[0], self.delta_bits)
                two = _legal_next(one, target[1], self.delta_bits)
                rows = np.stack([one, two])
                deltas = np.stack([self._last - one, one - two])
                offset = 0 if self.delta_bits == 18 else 100
                packet_id = ((first - 1) % CYCLE) // 2 + 1 + offset
                payload = bytes([packet_id]) + pack_deltas(deltas, self.delta_bits)
            self._last = rows[-1].copy()
            indices = np.arange(first, first + n, dtype=np.int64)
            record = pack_records("eeg", rows.astype(np.float64) * SCALE_UV, indices)
            await self._emit(Packet(self.receive, payload, [record]), deliver=deliver)
            self._next_index += n
