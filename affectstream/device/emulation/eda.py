"""Emulated EDA band speaking affectstream's open EDA profile (``firmware_notes/eda-band.md``)."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from bumble import att
from bumble.device import Connection
from bumble.gatt import Characteristic, CharacteristicValue, Service

from affectstream.device import gatt as uuids
from affectstream.device.emulation.peripheral import (
    EmulatedPeripheral,
    Packet,
    battery_service,
    notify_characteristic,
    pack_records,
)
from affectstream.device.emulation.script import AffectScript
from affectstream.device.emulation.signals import EdaGenerator
from affectstream.errors import ConfigError
from affectstream.types import FloatArray

ALLOWED_RATES = (4, 8, 16, 32, 64, 128, 256)
DEFAULT_RATE = 32
ATT_ERROR_INVALID_RATE = 0x80
ATT_ERROR_INVALID_COMMAND = 0x81
HEADER = 3
SATURATED_RAW = 0xFFFFFF
FLAG_CONTACT, FLAG_SATURATED, FLAG_BATTERY_LOW = 0x01, 0x02, 0x04
#: Longest a packet waits for more samples, in device seconds (bounds latency at low rates).
MAX_PACKET_SPAN_S = 0.25


def encode_eda(
    sequence: int,
    values_us: Sequence[float] | FloatArray,
    *,
    contact: bool = True,
    battery_low: bool = False,
) -> bytes:
    """An EDA Measurement notification: flags, u16 LE sequence, uint24 LE nS per sample.

    Parameters
    ----------
    sequence : int
        Device counter of the first sample (taken modulo 65536).
    values_us : sequence of float
        Skin conductance in µS; NaN or values beyond the 24-bit range are sent saturated
        (0xFFFFFF, with the saturated flag).
    contact, battery_low : bool
        Flags.

    Returns
    -------
    bytes
    """
    raw = np.round(np.asarray(values_us, dtype=np.float64) * 1000.0)
    saturated = ~np.isfinite(raw) | (raw >= SATURATED_RAW) | (raw < 0)
    counts = np.where(saturated, SATURATED_RAW, raw).astype("<u4")
    flags = (
        (FLAG_CONTACT if contact else 0)
        | (FLAG_SATURATED if saturated.any() else 0)
        | (FLAG_BATTERY_LOW if battery_low else 0)
    )
    samples = counts.view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
    return struct.pack("<BH", flags, sequence % 65536) + samples


class EdaBand(EmulatedPeripheral):
    """A skin-conductance band: EDA Measurement notifications with a sequence counter.

    Stream kind ``"eda"``: µS quantised to 1 nS (NaN where the band saturated), index =
    device sample counter since power-on (unwrapped; the wire sequence is it mod 65536).

    Protocol: EDA Measurement notification ``[flags u8][sequence u16 LE][uint24 LE nS]*N``
    with flags bit0 contact, bit1 saturated (a sample in the packet is 0xFFFFFF), bit2
    battery low; ``sequence`` is the counter of the first sample; ``N <= (mtu - 6) // 3``
    and a packet holds at most ``MAX_PACKET_SPAN_S`` of samples. EDA Config reads/writes
    the rate as u16 LE Hz in {4, 8, 16, 32, 64, 128, 256}; any other value, or a change
    while streaming, is refused with ATT error 0x80. EDA Control: write 0x01 to start,
    0x02 to stop; anything else gets ATT error 0x81. Streaming stops when the link drops.

    Parameters
    ----------
    name : str
        Advertised name, ``"AS-EDA-xxxx"``.
    rate : int
        Initial sample rate in Hz.
    saturate_above_us : float
        Conductance (µS) above which the ADC saturates (sent as 0xFFFFFF).
    battery : int
        Initial battery level in %; below 15 the battery-low flag is set.
    **kwargs
        See :class:`EmulatedPeripheral`.
    """

    profile = "eda"
    service_uuid = uuids.EDA_SERVICE
    kinds: ClassVar[dict[str, tuple[str, ...]]] = {"eda": ("EDA",)}

    def __init__(
        self,
        name: str = "AS-EDA-0001",
        *,
        rate: int = DEFAULT_RATE,
        saturate_above_us: float = 40.0,
        battery: int = 76,
        script: AffectScript | None = None,
        max_mtu: int = 247,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, script=script, max_mtu=max_mtu, **kwargs)
        if rate not in ALLOWED_RATES:
            raise ConfigError(f"EdaBand rate must be one of {ALLOWED_RATES} Hz, got {rate!r}.")
        self.rate = int(rate)
        self.saturate_above_us = float(saturate_above_us)
        self.battery = int(battery)
        self.contact = True
        self.generator = EdaGenerator(self.script, self.rng)
        self.streaming = False
        self._next_index = 0
        self.measurement: Characteristic[bytes] = notify_characteristic(uuids.EDA_MEASUREMENT)
        self.config: Characteristic[bytes] = Characteristic(
            uuids.EDA_CONFIG,
            Characteristic.Properties.READ | Characteristic.Properties.WRITE,
            Characteristic.READABLE | Characteristic.WRITEABLE,
            CharacteristicValue[bytes](read=self._read_config, write=self._write_config),
        )
        self.control: Characteristic[bytes] = Characteristic(
            uuids.EDA_CONTROL,
            Characteristic.Properties.WRITE,
            Characteristic.WRITEABLE,
            CharacteristicValue[bytes](write=self._write_control),
        )
        self.data_characteristic = self.measurement

    def _build_services(self) -> list[Service]:
        return [
            Service(uuids.EDA_SERVICE, [self.measurement, self.config, self.control]),
            battery_service(lambda _c: self.battery),
        ]

    # -- GATT handlers --------------------------------------------------------------------

    def _read_config(self, _connection: Connection) -> bytes:
        return struct.pack("<H", self.rate)

    def _write_config(self, _connection: Connection, value: bytes) -> None:
        if len(value) != 2:
            raise att.ATT_Error(ATT_ERROR_INVALID_RATE)
        (rate,) = struct.unpack("<H", value)
        if rate not in ALLOWED_RATES or (self.streaming and rate != self.rate):
            raise att.ATT_Error(ATT_ERROR_INVALID_RATE)
        self.rate = rate

    def _write_control(self, _connection: Connection, value: bytes) -> None:
        if value == b"\x01":
            if not self.streaming:
                now_index = int(np.floor(self.device_time() * self.rate))
                self._next_index = self._skip_unsent("eda", self._next_index, now_index)
                self.streaming = True
        elif value == b"\x02":
            self.streaming = False
        else:
            raise att.ATT_Error(ATT_ERROR_INVALID_COMMAND)

    def _on_link_down(self) -> None:
        self.streaming = False

    # -- data -----------------------------------------------------------------------------

    def samples_per_packet(self) -> int:
        """Samples per notification at the current MTU and rate."""
        by_mtu = (self.mtu - 3 - HEADER) // 3
        by_latency = max(1, int(self.rate * MAX_PACKET_SPAN_S))
        return max(1, min(by_mtu, by_latency))

    def _malformed_payloads(self) -> tuple[bytes, ...]:
        options = (
            b"\x01\x00",  # header cut short
            b"\x01\x00\x00",  # header without samples
            b"\x01\x00\x00\x10\x27",  # a sample cut to two bytes
        )
        return options

    async def _tick(self, device_time: float, *, deliver: bool) -> None:
        if not self.streaming:
            return
        spp = self.samples_per_packet()
        due = int(np.floor(device_time * self.rate)) - self._next_index
        while due >= spp and self.streaming:  # a stop may arrive while we send
            first = self._next_index
            indices = np.arange(first, first + spp, dtype=np.int64)
            conductance = self.generator.samples_at(indices / self.rate)
            if not self.contact:
                conductance = np.full(spp, 0.05)  # open electrodes: next to nothing flows
            raw = np.clip(np.round(conductance * 1000.0), 0, SATURATED_RAW - 1)
            saturated = conductance > self.saturate_above_us
            values = np.where(saturated, np.nan, raw / 1000.0)
            payload = encode_eda(first, values, contact=self.contact, battery_low=self.battery < 15)
            record = pack_records("eda", values, indices)
            await self._emit(Packet(self.measurement, payload, [record]), deliver=deliver)
            self._next_index += spp
            due -= spp
