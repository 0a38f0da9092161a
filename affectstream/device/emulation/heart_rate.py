"""Emulated chest strap with the standard Heart Rate service (0x180D / 0x2A37)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from bumble.gatt import Characteristic, Service

from affectstream.device import gatt as uuids
from affectstream.device.emulation.peripheral import (
    EmulatedPeripheral,
    Packet,
    battery_service,
    notify_characteristic,
    pack_records,
)
from affectstream.device.emulation.script import AffectScript
from affectstream.device.emulation.signals import BeatGenerator

_FLAG_UINT16 = 0x01
_FLAG_CONTACT_DETECTED = 0x02
_FLAG_CONTACT_SUPPORTED = 0x04
_FLAG_ENERGY = 0x08
_FLAG_RR = 0x10

# Payloads every Heart Rate decoder must reject: empty; uint16 flag with one HR byte;
# an RR field cut to one byte; the energy field cut to one byte.
_MALFORMED = (b"", b"\x01\x48", b"\x10\x46\x00", b"\x08\x46\x01")


def encode_heart_rate(
    heart_rate: int,
    *,
    rr_1024: tuple[int, ...] = (),
    energy_expended: int | None = None,
    contact_supported: bool = False,
    contact_detected: bool = False,
    uint16: bool | None = None,
) -> bytes:
    """A Heart Rate Measurement notification (decoded by
    :func:`affectstream.device.heart_rate.decode_heart_rate`).

    Parameters
    ----------
    heart_rate : int
        Heart rate in bpm.
    rr_1024 : tuple of int
        RR intervals in raw units of 1/1024 s.
    energy_expended : int, optional
        Energy expended in kJ.
    contact_supported, contact_detected : bool
        Sensor contact flags.
    uint16 : bool, optional
        Force the uint16 HR format; by default it is used only when ``heart_rate > 255``.

    Returns
    -------
    bytes
    """
    wide = heart_rate > 255 if uint16 is None else uint16
    flags = (
        (_FLAG_UINT16 if wide else 0)
        | (_FLAG_CONTACT_DETECTED if contact_detected else 0)
        | (_FLAG_CONTACT_SUPPORTED if contact_supported else 0)
        | (_FLAG_ENERGY if energy_expended is not None else 0)
        | (_FLAG_RR if rr_1024 else 0)
    )
    out = bytearray([flags])
    out += heart_rate.to_bytes(2 if wide else 1, "little")
    if energy_expended is not None:
        out += energy_expended.to_bytes(2, "little")
    for rr in rr_1024:
        out += rr.to_bytes(2, "little")
    return bytes(out)


class HeartRateStrap(EmulatedPeripheral):
    """A chest strap: one Heart Rate Measurement notification per device second with RR.

    Stream kinds: ``"hr"`` (bpm, one value per notification, index = notification
    number), ``"rr"`` (ms, one per beat, index = beat number, quantised to 1/1024 s) and,
    with ``energy_expended=True``, ``"energy"`` (kJ, cumulative).

    Parameters
    ----------
    name : str
        Advertised name.
    hr_uint16 : bool
        Send the heart rate as uint16 (flag bit 0) instead of uint8.
    energy_expended : bool
        Include the Energy Expended field (flag bit 3).
    **kwargs
        See :class:`EmulatedPeripheral` (``script``, ``speed``, ``seed``, ``drift_ppm``,
        ``max_mtu``, ``address``).

    Notes
    -----
    The strap streams as soon as a client subscribes; it needs no start command. Bytes
    are encoded here (not with bumble's encoder, which rounds RR values).
    """

    profile = "hr"
    service_uuid = uuids.HEART_RATE_SERVICE
    kinds: ClassVar[dict[str, tuple[str, ...]]] = {
        "hr": ("hr",),
        "rr": ("rr",),
        "energy": ("energy",),
    }

    def __init__(
        self,
        name: str = "HRM-Pro 0001",
        *,
        hr_uint16: bool = False,
        energy_expended: bool = False,
        script: AffectScript | None = None,
        max_mtu: int = 23,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, script=script, max_mtu=max_mtu, **kwargs)
        self.hr_uint16 = bool(hr_uint16)
        self.energy_expended = bool(energy_expended)
        self.beats = BeatGenerator(self.script, self.rng)
        self._next_notification = max(1, int(np.ceil(self.uptime)))  # device second
        self._next_beat = 1  # beat number (the first beat has no RR)
        if self.uptime > 0:
            self.beats.extend_to(self.uptime)
            self.beats.forget_before(self.uptime)
            times = np.asarray(self.beats.times)
            self._next_beat = self.beats.dropped + int(np.searchsorted(times, self.uptime))
        self._energy_kj = 0.0
        self._last_hr = 60
        self.measurement = notify_characteristic(uuids.HEART_RATE_MEASUREMENT)
        self.data_characteristic = self.measurement

    def _build_services(self) -> list[Service]:
        location = Characteristic(
            uuids.BODY_SENSOR_LOCATION,
            Characteristic.Properties.READ,
            Characteristic.READABLE,
            bytes([1]),  # chest
        )
        return [
            Service(uuids.HEART_RATE_SERVICE, [self.measurement, location]),
            battery_service(lambda _c: self.battery_level()),
        ]

    def battery_level(self) -> int:
        """Battery level in %: 90 at power-on, 1 % less per 10 minutes of device time."""
        return max(5, 90 - int(self.device_time() // 600))

    def _malformed_payloads(self) -> tuple[bytes, ...]:
        return _MALFORMED

    async def _tick(self, device_time: float, *, deliver: bool) -> None:
        while self._next_notification <= device_time:
            await self._emit(self._notification(float(self._next_notification)), deliver=deliver)
            self._next_notification += 1

    def _notification(self, t: float) -> Packet:
        self.beats.extend_to(t)
        times = np.asarray(self.beats.times)
        rr_s = np.asarray(self.beats.rr)
        # Beats since the last notification (beat numbers are global).
        offset = self.beats.dropped
        last = offset + int(np.searchsorted(times, t, side="left"))  # first beat not yet due
        first = self._next_beat
        beat_numbers = np.arange(first, last, dtype=np.int64)
        rr_new = rr_s[beat_numbers - offset]
        self._next_beat = last
        if rr_new.size:
            self._last_hr = int(np.clip(np.round(60.0 / float(np.mean(rr_new))), 25, 250))
        hr = self._last_hr
        records = [pack_records("hr", np.array([hr], dtype=np.float64), [int(t)])]
        energy: int | None = None
        if self.energy_expended:
            self._energy_kj += 0.0015 * hr  # about 5-6 kJ/min at rest
            energy = min(int(self._energy_kj), 0xFFFF)
            records.append(pack_records("energy", np.array([energy], dtype=np.float64), [int(t)]))
        raw = np.clip(np.round(rr_new * 1024.0), 1, 0xFFFF).astype(np.int64)
        # RR values that do not fit the MTU are dropped, as a real strap does: room after
        # the ATT header (3), flags (1), HR (1 or 2) and energy (0 or 2).
        fixed = 1 + (2 if self.hr_uint16 else 1) + (0 if energy is None else 2)
        room = (self.mtu - 3 - fixed) // 2
        raw = raw[: max(room, 0)]
        beat_numbers = beat_numbers[: raw.size]
        rr_ms = raw.astype(np.float64) * (1000.0 / 1024.0)
        records.append(pack_records("rr", rr_ms, beat_numbers))
        self.beats.forget_before(t - 10.0)
        payload = encode_heart_rate(
            hr,
            rr_1024=tuple(raw.tolist()),
            energy_expended=energy,
            contact_supported=True,
            contact_detected=True,
            uint16=self.hr_uint16,
        )
        return Packet(self.measurement, payload, records)
