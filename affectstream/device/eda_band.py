"""affectstream's open EDA band GATT profile (``firmware_notes/eda-band.md``).

EDA Measurement notification (little-endian)::

    [flags u8][sequence u16][sample u24] × N        N = (len - 3) / 3 >= 1

flags bit0 contact detected, bit1 saturated (the ADC hit its rail in this packet), bit2
battery low; ``sequence`` is the device sample counter of the first sample (wraps at 65536);
samples are skin conductance in nanosiemens, 0xFFFFFF marks a saturated sample.
EDA Config is the sample rate as u16 LE in Hz (one of :data:`ALLOWED_RATES`); EDA Control
takes 0x01 (start streaming) or 0x02 (stop).

:class:`EdaDriver` sets or reads the rate, starts and stops the band and keeps its contact
and battery flags; :data:`PROFILE` registers it as ``"eda"``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from affectstream._validate import check_option
from affectstream.device import gatt
from affectstream.device.driver import Frame, GattClient, Profile, ProfileDriver, stream_spec
from affectstream.device.payload import int24
from affectstream.errors import DecodeError, ProtocolError
from affectstream.types import FloatArray

logger = logging.getLogger(__name__)

FLAG_CONTACT = 0x01
FLAG_SATURATED = 0x02
FLAG_BATTERY_LOW = 0x04
SATURATED_RAW = 0xFFFFFF
SEQUENCE_MODULUS = 65536
NANOSIEMENS_PER_MICROSIEMENS = 1000.0
ALLOWED_RATES = (4, 8, 16, 32, 64, 128, 256)
DEFAULT_RATE = 32
CONTROL_START = 0x01
CONTROL_STOP = 0x02
#: ATT error the band returns for an invalid config write (first application error code).
ATT_ERROR_INVALID_RATE = 0x80
NAME_PREFIX = "AS-EDA-"
_HEADER = 3


@dataclass(frozen=True, slots=True)
class EdaPacket:
    """One decoded EDA Measurement notification.

    Parameters
    ----------
    contact : bool
        Electrodes touch the skin.
    saturated : bool
        The ADC hit its rail in this packet.
    battery_low : bool
        The battery needs charging.
    sequence : int
        Device sample counter of the first sample (0..65535).
    values : ndarray, shape (n,)
        Skin conductance in µS; NaN for saturated samples (the true value is unknown).
    saturated_samples : ndarray of bool, shape (n,)
        Which samples were 0xFFFFFF.
    """

    contact: bool
    saturated: bool
    battery_low: bool
    sequence: int
    values: FloatArray
    saturated_samples: NDArray[np.bool_]


def decode_eda(data: bytes | bytearray) -> EdaPacket:
    """Decode an EDA Measurement notification.

    Parameters
    ----------
    data : bytes
        The notification payload.

    Returns
    -------
    EdaPacket

    Raises
    ------
    DecodeError
        If the packet has no sample or a partial sample.
    """
    payload = bytes(data)
    if len(payload) < _HEADER + 3 or (len(payload) - _HEADER) % 3:
        raise DecodeError(
            f"EDA Measurement must be 3 header bytes plus N >= 1 uint24 samples "
            f"(length 6, 9, 12, ...), got {len(payload)} bytes: {payload[:24].hex()!r}."
        )
    flags = payload[0]
    sequence = int.from_bytes(payload[1:3], "little")
    raw = int24(payload[_HEADER:], "little", signed=False)
    saturated = raw == SATURATED_RAW
    values = np.where(saturated, np.nan, raw / NANOSIEMENS_PER_MICROSIEMENS)
    return EdaPacket(
        contact=bool(flags & FLAG_CONTACT),
        saturated=bool(flags & FLAG_SATURATED),
        battery_low=bool(flags & FLAG_BATTERY_LOW),
        sequence=sequence,
        values=values.astype(np.float64),
        saturated_samples=saturated,
    )


def encode_rate(rate: int) -> bytes:
    """Encode an EDA Config value (sample rate, u16 LE).

    Parameters
    ----------
    rate : int
        Sample rate in Hz, one of :data:`ALLOWED_RATES`.

    Returns
    -------
    bytes

    Raises
    ------
    ConfigError
        If the rate is not allowed.
    """
    check_option("rate", rate, ALLOWED_RATES)
    return int(rate).to_bytes(2, "little")


def decode_rate(data: bytes | bytearray) -> int:
    """Decode an EDA Config value.

    Parameters
    ----------
    data : bytes
        Value read from EDA Config.

    Returns
    -------
    int
        Sample rate in Hz.

    Raises
    ------
    DecodeError
        If the value is not 2 bytes or not an allowed rate.
    """
    payload = bytes(data)
    if len(payload) != 2:
        raise DecodeError(f"EDA Config must be 2 bytes (u16 LE rate), got {payload.hex()!r}.")
    rate = int.from_bytes(payload, "little")
    if rate not in ALLOWED_RATES:
        raise DecodeError(f"EDA Config reports rate {rate} Hz, expected one of {ALLOWED_RATES}.")
    return rate


# -- driver -------------------------------------------------------------------------


class EdaDriver(ProfileDriver):
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
            encode_rate(rate)  # validates
        self.rate = rate

    async def prepare(self, client: GattClient) -> None:
        if self.rate is not None:
            from bleak.exc import BleakGATTProtocolError

            try:
                await client.write_gatt_char(gatt.EDA_CONFIG, encode_rate(self.rate), response=True)
            except BleakGATTProtocolError as exc:
                raise ProtocolError(
                    f"The EDA band refused sample rate {self.rate} Hz (ATT error "
                    f"0x{exc.code:02X}; 0x80 means invalid rate or a change while streaming). "
                    f"Use one of {ALLOWED_RATES} and stop streaming first."
                ) from exc
        rate = decode_rate(await client.read_gatt_char(gatt.EDA_CONFIG))
        self.streams = (replace(self.profile.stream("eda"), sfreq=float(rate)),)

    def notify_uuids(self, client: GattClient) -> list[str]:
        return [gatt.EDA_MEASUREMENT]

    def decode(self, uuid: str, data: bytes) -> list[Frame]:
        packet = decode_eda(data)
        # Logged when it changes, taking a fresh band as in contact with a charged battery.
        before = (self.contact is not False, self.battery_low is True)
        if (packet.contact, packet.battery_low) != before:
            logger.info("EDA band: contact %s, battery low %s", packet.contact, packet.battery_low)
        self.contact, self.battery_low = packet.contact, packet.battery_low
        saturated = packet.saturated_samples if packet.saturated_samples.any() else None
        return [Frame("eda", packet.values[:, None], packet.sequence, saturated=saturated)]

    async def start(self, client: GattClient) -> None:
        await client.write_gatt_char(gatt.EDA_CONTROL, bytes([CONTROL_START]), True)

    async def stop(self, client: GattClient) -> None:
        await client.write_gatt_char(gatt.EDA_CONTROL, bytes([CONTROL_STOP]), True)


#: The profile of this protocol (registered in :data:`affectstream.device.profiles.PROFILES`).
PROFILE = Profile(
    name="eda",
    description="affectstream open EDA band",
    service_uuids=(gatt.EDA_SERVICE,),
    name_patterns=(NAME_PREFIX + "*",),
    streams=(stream_spec("eda", "eda", ["EDA"], float(DEFAULT_RATE), SEQUENCE_MODULUS),),
    driver=EdaDriver,
)
