"""Standard Bluetooth Heart Rate service (0x180D): measurement (0x2A37) decoder and driver.

Sources: Bluetooth SIG Heart Rate Service specification; bumble's
``profiles/heart_rate_service.py``; bleakheart's ``HeartRate._decode``.

Layout: ``[flags u8][HR u8 | u16 LE][energy expended u16 LE, kJ]?[RR u16 LE, 1/1024 s]*``;
flags bit0 HR is uint16, bit1 contact detected, bit2 contact supported, bit3 energy
expended present, bit4 RR intervals present.

:class:`HeartRateDriver` subscribes to the measurement (no commands, no counter) and
:data:`PROFILE` registers it as ``"hr"``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from affectstream.device import gatt
from affectstream.device.driver import Frame, GattClient, Profile, ProfileDriver, stream_spec
from affectstream.errors import DecodeError

logger = logging.getLogger(__name__)

_FLAG_HR_UINT16 = 0x01
_FLAG_CONTACT_DETECTED = 0x02
_FLAG_CONTACT_SUPPORTED = 0x04
_FLAG_ENERGY_EXPENDED = 0x08
_FLAG_RR = 0x10

#: RR intervals are sent in units of 1/1024 s.
RR_UNITS_PER_SECOND = 1024.0


@dataclass(frozen=True, slots=True)
class HeartRateMeasurement:
    """One decoded Heart Rate Measurement notification.

    Parameters
    ----------
    heart_rate : int
        Heart rate in bpm.
    contact_supported : bool
        Whether the sensor reports skin contact at all.
    contact_detected : bool
        Skin contact detected (meaningful only when ``contact_supported``).
    energy_expended : int or None
        Cumulative energy expended in kJ, when present.
    rr_intervals_ms : tuple of float
        RR intervals in ms, in the order sent (zero or more).
    """

    heart_rate: int
    contact_supported: bool
    contact_detected: bool
    energy_expended: int | None
    rr_intervals_ms: tuple[float, ...]


def decode_heart_rate(data: bytes | bytearray) -> HeartRateMeasurement:
    """Decode a Heart Rate Measurement (0x2A37) notification.

    Parameters
    ----------
    data : bytes
        The notification payload.

    Returns
    -------
    HeartRateMeasurement

    Raises
    ------
    DecodeError
        If the payload is shorter than its flags say or RR bytes are odd.
    """
    payload = bytes(data)
    if len(payload) < 2:
        raise DecodeError(
            f"Heart Rate Measurement needs at least 2 bytes (flags, HR), got {len(payload)}: "
            f"{payload.hex()!r}. Check that the characteristic is 0x2A37."
        )
    flags = payload[0]
    offset = 1
    if flags & _FLAG_HR_UINT16:
        if len(payload) < 3:
            raise DecodeError(
                f"Heart Rate Measurement flags 0x{flags:02x} announce a uint16 heart rate but "
                f"the packet has {len(payload)} bytes: {payload.hex()!r}."
            )
        heart_rate = int.from_bytes(payload[1:3], "little")
        offset = 3
    else:
        heart_rate = payload[1]
        offset = 2
    energy: int | None = None
    if flags & _FLAG_ENERGY_EXPENDED:
        if len(payload) < offset + 2:
            raise DecodeError(
                f"Heart Rate Measurement flags 0x{flags:02x} announce energy expended but the "
                f"packet ends at byte {len(payload)}: {payload.hex()!r}."
            )
        energy = int.from_bytes(payload[offset : offset + 2], "little")
        offset += 2
    rr: tuple[float, ...] = ()
    rest = payload[offset:]
    if flags & _FLAG_RR:
        if len(rest) % 2:
            raise DecodeError(
                f"Heart Rate Measurement RR field has an odd number of bytes ({len(rest)}); "
                f"each RR interval is a uint16: {payload.hex()!r}."
            )
        rr = tuple(
            int.from_bytes(rest[i : i + 2], "little") * 1000.0 / RR_UNITS_PER_SECOND
            for i in range(0, len(rest), 2)
        )
    elif rest:
        raise DecodeError(
            f"Heart Rate Measurement has {len(rest)} trailing bytes that its flags "
            f"0x{flags:02x} do not announce: {payload.hex()!r}."
        )
    return HeartRateMeasurement(
        heart_rate=heart_rate,
        contact_supported=bool(flags & _FLAG_CONTACT_SUPPORTED),
        contact_detected=bool(flags & _FLAG_CONTACT_DETECTED),
        energy_expended=energy,
        rr_intervals_ms=rr,
    )


# -- driver -------------------------------------------------------------------------


class HeartRateDriver(ProfileDriver):
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


#: The profile of this protocol (registered in :data:`affectstream.device.profiles.PROFILES`).
PROFILE = Profile(
    name="hr",
    description="any Bluetooth heart-rate sensor (standard Heart Rate service)",
    service_uuids=(gatt.HEART_RATE_SERVICE,),
    name_patterns=(),
    streams=(
        stream_spec("hr", "hr", ["hr"], None, None),
        stream_spec("rr", "rr", ["rr"], None, None),
    ),
    driver=HeartRateDriver,
)
