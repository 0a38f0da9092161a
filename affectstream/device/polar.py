"""Polar Measurement Data (PMD): Polar H10 ECG over the PMD service.

Sources: polarofficial/polar-ble-sdk (``PmdControlPointCommand``, ``PmdControlPointResponse``,
``PmdDataFrame``, ``EcgData``); bleakheart's ``PolarMeasurementData``.

Control point requests are ``[op, measurement, (setting id, count, u16 LE value)...]``;
responses arrive as indications ``[0xF0, op, measurement, status, more, params...]``.
Data frames are ``[measurement u8][timestamp u64 LE][frame type u8][payload]``: the timestamp
is in ns since 2000-01-01T00:00:00 UTC and belongs to the *last* sample of the frame; ECG
frame type 0 carries int24 LE samples in µV.

:class:`PolarDriver` sends START/STOP and checks the answers; :data:`PROFILE` registers it
as ``"polar"``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import numpy as np

from affectstream.device import gatt
from affectstream.device.driver import (
    RESPONSE_TIMEOUT,
    Frame,
    GattClient,
    Profile,
    ProfileDriver,
    stream_spec,
)
from affectstream.device.payload import int24
from affectstream.errors import DecodeError, ProtocolError
from affectstream.types import FloatArray

logger = logging.getLogger(__name__)

OP_GET_SETTINGS = 0x01
OP_START = 0x02
OP_STOP = 0x03
RESPONSE_CODE = 0xF0
FEATURES_CODE = 0x0F

MEASUREMENT_ECG = 0x00
MEASUREMENT_PPG = 0x01
MEASUREMENT_ACC = 0x02
MEASUREMENT_PPI = 0x03

MEASUREMENT_NAMES = {0: "ECG", 1: "PPG", 2: "ACC", 3: "PPI", 5: "GYRO", 6: "MAG"}

SETTING_SAMPLE_RATE = 0x00
SETTING_RESOLUTION = 0x01
SETTING_RANGE = 0x02

#: PmdControlPointResponseCode in the Polar BLE SDK, by value.
STATUS_NAMES = (
    "SUCCESS",
    "ERROR_INVALID_OP_CODE",
    "ERROR_INVALID_MEASUREMENT_TYPE",
    "ERROR_NOT_SUPPORTED",
    "ERROR_INVALID_LENGTH",
    "ERROR_INVALID_PARAMETER",
    "ERROR_ALREADY_IN_STATE",
    "ERROR_INVALID_RESOLUTION",
    "ERROR_INVALID_SAMPLE_RATE",
    "ERROR_INVALID_RANGE",
    "ERROR_INVALID_MTU",
    "ERROR_INVALID_NUMBER_OF_CHANNELS",
    "ERROR_INVALID_STATE",
    "ERROR_DEVICE_IN_CHARGER",
)
STATUS_ALREADY_IN_STATE = 6

#: Seconds from the Unix epoch to the PMD epoch 2000-01-01T00:00:00 UTC.
PMD_EPOCH_UNIX_S = 946_684_800

ECG_SAMPLE_RATE = 130
ECG_RESOLUTION = 14
_FRAME_HEADER = 10  # measurement (1) + timestamp (8) + frame type (1)
_COMPRESSED = 0x80


def status_name(status: int) -> str:
    """Name of a PMD response status code (``"UNKNOWN_<n>"`` when not in the SDK list).

    Parameters
    ----------
    status : int
        The status byte.

    Returns
    -------
    str
    """
    return STATUS_NAMES[status] if 0 <= status < len(STATUS_NAMES) else f"UNKNOWN_{status}"


def start_request(
    measurement: int = MEASUREMENT_ECG,
    sample_rate: int = ECG_SAMPLE_RATE,
    resolution: int = ECG_RESOLUTION,
) -> bytes:
    """Build a START request for the PMD control point.

    Parameters
    ----------
    measurement : int
        Measurement type (0 ECG).
    sample_rate : int
        Sample rate in Hz (the H10 ECG supports 130).
    resolution : int
        Resolution in bits (the H10 ECG uses 14).

    Returns
    -------
    bytes
        For the H10 ECG defaults: ``02 00 00 01 82 00 01 01 0E 00``.
    """
    rate = sample_rate.to_bytes(2, "little")
    bits = resolution.to_bytes(2, "little")
    return bytes(
        [OP_START, measurement, SETTING_SAMPLE_RATE, 1, *rate, SETTING_RESOLUTION, 1, *bits]
    )


def stop_request(measurement: int = MEASUREMENT_ECG) -> bytes:
    """Build a STOP request: ``[0x03, measurement]`` (type 0 is ECG)."""
    return bytes([OP_STOP, measurement])


def settings_request(measurement: int = MEASUREMENT_ECG) -> bytes:
    """Build a GET_MEASUREMENT_SETTINGS request: ``[0x01, measurement]`` (type 0 is ECG)."""
    return bytes([OP_GET_SETTINGS, measurement])


@dataclass(frozen=True, slots=True)
class PmdResponse:
    """A PMD control point response.

    Parameters
    ----------
    op : int
        The request op code answered.
    measurement : int
        The measurement type answered.
    status : int
        Status code, 0 on success.
    more : bool
        More response packets follow.
    params : bytes
        Response parameters (settings for GET).
    """

    op: int
    measurement: int
    status: int
    more: bool
    params: bytes

    @property
    def status_name(self) -> str:
        """Name of the status code (see :data:`STATUS_NAMES`)."""
        return status_name(self.status)


def parse_response(data: bytes | bytearray) -> PmdResponse:
    """Decode a PMD control point response without judging its status.

    Parameters
    ----------
    data : bytes
        The indication payload.

    Returns
    -------
    PmdResponse

    Raises
    ------
    DecodeError
        If the payload is shorter than 4 bytes or does not start with 0xF0.
    """
    payload = bytes(data)
    if len(payload) < 4 or payload[0] != RESPONSE_CODE:
        raise DecodeError(
            f"PMD control point response must start with 0xF0 and have at least 4 bytes "
            f"(F0, op, measurement, status), got {payload.hex()!r}."
        )
    more = bool(payload[4]) if len(payload) > 4 else False
    return PmdResponse(
        op=payload[1],
        measurement=payload[2],
        status=payload[3],
        more=more,
        params=payload[5:],
    )


def check_response(
    data: bytes | bytearray,
    op: int,
    measurement: int = MEASUREMENT_ECG,
    *,
    allow_already: bool = False,
) -> PmdResponse:
    """Decode a response and check that it answers ``op``/``measurement`` with success.

    Parameters
    ----------
    data : bytes
        The indication payload.
    op : int
        Op code of the request that was sent.
    measurement : int
        Measurement type of the request.
    allow_already : bool
        Accept ``ERROR_ALREADY_IN_STATE`` (e.g. START while a measurement still runs).

    Returns
    -------
    PmdResponse

    Raises
    ------
    DecodeError
        If the payload is not a control point response.
    ProtocolError
        If the response answers another request or reports an error status.
    """
    response = parse_response(data)
    if response.op != op or response.measurement != measurement:
        raise ProtocolError(
            f"PMD response answers op {response.op} / measurement {response.measurement}, "
            f"expected op {op} / measurement {measurement}: {bytes(data).hex()!r}."
        )
    ok = response.status == 0 or (allow_already and response.status == STATUS_ALREADY_IN_STATE)
    if not ok:
        what = MEASUREMENT_NAMES.get(measurement, str(measurement))
        raise ProtocolError(
            f"Polar PMD refused op {op} for {what}: status {response.status} "
            f"({response.status_name}). Check the requested settings (the H10 ECG needs "
            f"130 Hz, 14 bit), that no other app is streaming, and that the strap is worn."
        )
    return response


def parse_features(data: bytes | bytearray) -> set[str]:
    """Decode the control point read value ``[0x0F, bitmask...]`` into measurement names.

    Parameters
    ----------
    data : bytes
        The value read from the PMD control point.

    Returns
    -------
    set of str
        E.g. ``{"ECG", "ACC"}`` for an H10.

    Raises
    ------
    DecodeError
        If the value does not start with 0x0F.
    """
    payload = bytes(data)
    if len(payload) < 2 or payload[0] != FEATURES_CODE:
        raise DecodeError(f"PMD feature read must be [0x0F, bitmask...], got {payload.hex()!r}.")
    mask = int.from_bytes(payload[1:], "little")
    return {name for bit, name in MEASUREMENT_NAMES.items() if mask >> bit & 1}


@dataclass(frozen=True, slots=True)
class PmdFrame:
    """A decoded PMD data frame.

    Parameters
    ----------
    measurement : int
        Measurement type (0 ECG).
    timestamp_ns : int
        Device time of the last sample, ns since 2000-01-01 UTC.
    frame_type : int
        Frame type without the compression bit.
    samples : ndarray, shape (n,)
        ECG samples in µV.
    """

    measurement: int
    timestamp_ns: int
    frame_type: int
    samples: FloatArray

    def sample_times_ns(
        self, sample_rate: float, previous_timestamp_ns: int | None = None
    ) -> FloatArray:
        """Device time of every sample, ns since 2000-01-01.

        The last sample carries the frame timestamp. Earlier samples are spaced by the time
        since the previous frame divided by the number of samples when that is given and
        plausible (within 10% of nominal, as the Polar SDK does), else by ``1 / sample_rate``.

        Parameters
        ----------
        sample_rate : float
            Nominal sample rate in Hz.
        previous_timestamp_ns : int, optional
            Timestamp of the previous frame of the same stream.

        Returns
        -------
        ndarray of float64, shape (n,)
        """
        n = self.samples.shape[0]
        step = 1e9 / sample_rate
        if previous_timestamp_ns is not None:
            measured = (self.timestamp_ns - previous_timestamp_ns) / n
            if abs(measured - step) < 0.1 * step:
                step = measured
        return self.timestamp_ns - step * np.arange(n - 1, -1, -1, dtype=np.float64)


def decode_frame(data: bytes | bytearray) -> PmdFrame:
    """Decode a PMD data notification carrying uncompressed ECG (frame type 0).

    Parameters
    ----------
    data : bytes
        The notification payload.

    Returns
    -------
    PmdFrame

    Raises
    ------
    DecodeError
        If the frame is truncated, compressed, not ECG, or its payload is not whole int24s.
    """
    payload = bytes(data)
    if len(payload) < _FRAME_HEADER + 3:
        raise DecodeError(
            f"PMD data frame needs a 10-byte header and at least one 3-byte sample, got "
            f"{len(payload)} bytes: {payload[:16].hex()!r}."
        )
    measurement = payload[0]
    timestamp = int.from_bytes(payload[1:9], "little")
    frame_type = payload[9]
    if measurement != MEASUREMENT_ECG:
        raise DecodeError(
            f"PMD data frame for measurement {measurement} "
            f"({MEASUREMENT_NAMES.get(measurement, 'unknown')}); only ECG (0) is decoded."
        )
    if frame_type & _COMPRESSED or frame_type != 0:
        raise DecodeError(
            f"PMD ECG frame type 0x{frame_type:02x} is not supported; the H10 sends type 0 "
            f"(uncompressed int24)."
        )
    body = payload[_FRAME_HEADER:]
    if len(body) % 3:
        raise DecodeError(
            f"PMD ECG payload of {len(body)} bytes is not a whole number of int24 samples."
        )
    values = int24(body, "little", signed=True)
    return PmdFrame(
        measurement=measurement,
        timestamp_ns=timestamp,
        frame_type=frame_type,
        samples=values.astype(np.float64),
    )


class EcgCounter:
    """Turn PMD frame timestamps into a device sample counter.

    PMD frames carry no counter, only the device time of their last sample. The number of
    samples between two frames is ``round((ts - previous_ts) * rate / 1e9)``; comparing it with
    the samples the new frame holds tells how many were lost. Using local differences
    rather than absolute times keeps the counter free of the device clock's rate error.

    Parameters
    ----------
    sample_rate : float
        Nominal sample rate in Hz.
    """

    def __init__(self, sample_rate: float = ECG_SAMPLE_RATE) -> None:
        self.sample_rate = sample_rate
        self._last_index: int | None = None
        self._last_timestamp: int | None = None

    def reset(self) -> None:
        """Forget the previous frame (after a device restart)."""
        self._last_index = None
        self._last_timestamp = None

    def first_index(self, frame: PmdFrame) -> int:
        """Unwrapped device index of the frame's first sample.

        Parameters
        ----------
        frame : PmdFrame
            The next frame of the stream.

        Returns
        -------
        int
        """
        n = int(frame.samples.shape[0])
        if self._last_index is None or self._last_timestamp is None:
            last = n - 1
        elif frame.timestamp_ns == self._last_timestamp:
            # The same frame again (a repeated notification): the same indices, so that the
            # supervisor drops its samples as duplicates instead of appending them.
            return self._last_index - n + 1
        else:
            elapsed = (frame.timestamp_ns - self._last_timestamp) * self.sample_rate / 1e9
            advance = round(elapsed)
            if advance < 1:
                # Time went backwards (device restart): start a new segment
                # right after the previous one; the supervisor sees no gap it cannot prove.
                advance = n
            last = self._last_index + advance
        self._last_index = last
        self._last_timestamp = frame.timestamp_ns
        return last - n + 1


def pmd_time_to_unix(timestamp_ns: int | float) -> float:
    """Convert a PMD timestamp (ns since 2000-01-01 UTC) to Unix seconds.

    Parameters
    ----------
    timestamp_ns : int or float
        PMD timestamp.

    Returns
    -------
    float
    """
    return PMD_EPOCH_UNIX_S + float(timestamp_ns) / 1e9


# -- driver -------------------------------------------------------------------------


class PolarDriver(ProfileDriver):
    """Polar H10 ECG over PMD: START with the response checked, frames with timestamps."""

    def __init__(self, profile: Profile) -> None:
        super().__init__(profile)
        self._counter = EcgCounter(ECG_SAMPLE_RATE)
        self._responses: asyncio.Queue[bytes] = asyncio.Queue()

    def notify_uuids(self, client: GattClient) -> list[str]:
        return [gatt.PMD_CONTROL, gatt.PMD_DATA]

    def decode(self, uuid: str, data: bytes) -> list[Frame]:
        if uuid == gatt.PMD_CONTROL:
            self._responses.put_nowait(bytes(data))
            return []
        frame = decode_frame(data)
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
        check_response(answer, request[0], request[1], allow_already=allow_already)

    async def start(self, client: GattClient) -> None:
        await self._request(client, start_request(), allow_already=True)

    async def stop(self, client: GattClient) -> None:
        await self._request(client, stop_request(), allow_already=True)


#: The profile of this protocol (registered in :data:`affectstream.device.profiles.PROFILES`).
PROFILE = Profile(
    name="polar",
    description="Polar H10 chest strap, ECG over PMD",
    service_uuids=(gatt.PMD_SERVICE,),
    name_patterns=("Polar H10 *",),
    streams=(stream_spec("ecg", "ecg", ["ECG"], float(ECG_SAMPLE_RATE), None),),
    driver=PolarDriver,
)
