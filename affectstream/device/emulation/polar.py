"""Emulated Polar H10: ECG over Polar Measurement Data (PMD)."""

from __future__ import annotations

import logging
import struct
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from bumble.core import BaseBumbleError
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
from affectstream.device.emulation.signals import BeatGenerator, EcgGenerator
from affectstream.types import IntArray

logger = logging.getLogger(__name__)

ECG_RATE = 130
ECG_RESOLUTION = 14
#: Samples per frame of a real H10 at its usual MTU (232); fewer when the MTU is smaller.
MAX_SAMPLES_PER_FRAME = 73
FRAME_HEADER = 10  # measurement, u64 timestamp, frame type
#: Seconds from 1970-01-01 to 2000-01-01, the PMD timestamp epoch.
EPOCH_2000 = 946_684_800

OP_GET_SETTINGS, OP_START, OP_STOP = 0x01, 0x02, 0x03
MEASUREMENT_ECG = 0x00
# Status codes, in the order of the Polar SDK's PmdControlPointResponse.
SUCCESS = 0
ERROR_INVALID_OP_CODE = 1
ERROR_INVALID_MEASUREMENT_TYPE = 2
ERROR_NOT_SUPPORTED = 3
ERROR_INVALID_LENGTH = 4
ERROR_INVALID_PARAMETER = 5
ERROR_ALREADY_IN_STATE = 6
ERROR_INVALID_RESOLUTION = 7
ERROR_INVALID_SAMPLE_RATE = 8

_ECG_SETTINGS = bytes([0x00, 0x01, *ECG_RATE.to_bytes(2, "little")]) + bytes(
    [0x01, 0x01, *ECG_RESOLUTION.to_bytes(2, "little")]
)


def encode_ecg_frame(samples_uv: Sequence[int] | IntArray, timestamp_ns: int) -> bytes:
    """An ECG data frame: measurement type, u64 LE timestamp, frame type 0, int24 LE samples.

    Parameters
    ----------
    samples_uv : sequence of int
        Samples in µV (taken modulo 2**24, i.e. two's complement int24).
    timestamp_ns : int
        Device time of the last sample, ns since 2000-01-01.

    Returns
    -------
    bytes
    """
    ecg = np.asarray(samples_uv, dtype=np.int64)
    body = bytearray(FRAME_HEADER + 3 * ecg.size)
    body[0] = MEASUREMENT_ECG
    struct.pack_into("<Q", body, 1, timestamp_ns)
    body[9] = 0
    raw = (ecg & 0xFFFFFF).astype("<u4").view(np.uint8).reshape(-1, 4)[:, :3]
    body[FRAME_HEADER:] = raw.tobytes()
    return bytes(body)


class PolarH10(EmulatedPeripheral):
    """A Polar H10 chest strap streaming ECG at 130 Hz through the PMD service.

    Stream kind ``"ecg"``: µV (integers, the int24 wire values), index = device sample
    number since power-on (the clock advances while nothing streams).

    Protocol: reading the control point gives ``[0x0F, 0x01]`` (ECG supported). Requests
    ``[op, measurement, (setting, count, u16 value)...]`` written to the control point are
    answered by an indication ``[0xF0, op, measurement, status, 0, params...]``: START of
    ECG at 130 Hz / 14 bit gives status 0; another rate gives 8
    (``ERROR_INVALID_SAMPLE_RATE``), another resolution 7, a non-ECG measurement 2, an
    unknown op 1, a truncated request 4, START while streaming or STOP while idle 6. Data
    frames are ``[0x00][u64 LE timestamp ns since 2000-01-01 of the last sample][0x00]
    [int24 LE µV]*n`` with ``n = min(73, (mtu - 3 - 10) // 3)``. Streaming stops when the
    link drops; the client must START again.

    Parameters
    ----------
    name : str
        Advertised name (``"Polar H10 XXXXXXXX"``).
    ecg_start_delay : float
        Device seconds between a successful START and the first frame (real straps take
        tens of seconds).
    **kwargs
        See :class:`EmulatedPeripheral`.
    """

    profile = "polar"
    service_uuid = uuids.PMD_SERVICE
    kinds: ClassVar[dict[str, tuple[str, ...]]] = {"ecg": ("ECG",)}

    def __init__(
        self,
        name: str = "Polar H10 5A3B9C01",
        *,
        ecg_start_delay: float = 0.0,
        script: AffectScript | None = None,
        max_mtu: int = 232,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, script=script, max_mtu=max_mtu, **kwargs)
        self.ecg_start_delay = float(ecg_start_delay)
        self.beats = BeatGenerator(self.script, self.rng)
        self.ecg = EcgGenerator(self.beats, ECG_RATE, self.rng)
        self.streaming = False
        self._next_index = 0
        self._first_frame_time = 0.0
        self.responses_sent: list[bytes] = []
        self.control: Characteristic[bytes] = Characteristic(
            uuids.PMD_CONTROL,
            Characteristic.Properties.READ
            | Characteristic.Properties.WRITE
            | Characteristic.Properties.INDICATE,
            Characteristic.READABLE | Characteristic.WRITEABLE,
            CharacteristicValue[bytes](read=self._read_control, write=self._write_control),
        )
        self.data: Characteristic[bytes] = notify_characteristic(uuids.PMD_DATA)
        self.data_characteristic = self.data

    def _build_services(self) -> list[Service]:
        return [
            Service(uuids.PMD_SERVICE, [self.control, self.data]),
            battery_service(lambda _c: 80),
        ]

    # -- control point --------------------------------------------------------------------

    def _read_control(self, _connection: Connection) -> bytes:
        return bytes([0x0F, 0x01])

    def _write_control(self, _connection: Connection, value: bytes) -> None:
        response = self._handle_request(bytes(value))
        # Answer after the write response, as the strap does.
        self._spawn(self._indicate(response))

    async def _indicate(self, response: bytes) -> None:
        if self._device is None or self._connection is None:
            return
        try:
            await self._device.indicate_subscriber(self._connection, self.control, response)
            self.responses_sent.append(response)
        except (TimeoutError, BaseBumbleError):
            logger.debug("PMD indication failed (link gone?)", exc_info=True)

    def _handle_request(self, request: bytes) -> bytes:
        if len(request) < 2:
            op = request[0] if request else 0
            return bytes([0xF0, op, 0, ERROR_INVALID_LENGTH, 0])
        op, measurement = request[0], request[1]

        def answer(status: int, params: bytes = b"") -> bytes:
            return bytes([0xF0, op, measurement, status, 0]) + params

        if op not in (OP_GET_SETTINGS, OP_START, OP_STOP):
            return answer(ERROR_INVALID_OP_CODE)
        if measurement != MEASUREMENT_ECG:
            return answer(ERROR_INVALID_MEASUREMENT_TYPE)
        if op == OP_GET_SETTINGS:
            return answer(SUCCESS, _ECG_SETTINGS)
        if op == OP_STOP:
            if not self.streaming:
                return answer(ERROR_ALREADY_IN_STATE)
            self.streaming = False
            return answer(SUCCESS)
        status = self._check_settings(request[2:])
        if status != SUCCESS:
            return answer(status)
        if self.streaming:
            return answer(ERROR_ALREADY_IN_STATE)
        self._start_streaming()
        return answer(SUCCESS)

    @staticmethod
    def _check_settings(params: bytes) -> int:
        pos = 0
        while pos < len(params):
            if pos + 2 > len(params):
                return ERROR_INVALID_LENGTH
            setting, count = params[pos], params[pos + 1]
            end = pos + 2 + 2 * count
            if count < 1 or end > len(params):
                return ERROR_INVALID_LENGTH
            values = struct.unpack_from(f"<{count}H", params, pos + 2)
            if setting == 0x00 and values != (ECG_RATE,):
                return ERROR_INVALID_SAMPLE_RATE
            if setting == 0x01 and values != (ECG_RESOLUTION,):
                return ERROR_INVALID_RESOLUTION
            if setting not in (0x00, 0x01):
                return ERROR_INVALID_PARAMETER
            pos = end
        return SUCCESS

    def _start_streaming(self) -> None:
        now = self.device_time()
        self._next_index = self._skip_unsent("ecg", self._next_index, int(np.floor(now * ECG_RATE)))
        self._first_frame_time = now + self.ecg_start_delay
        self.streaming = True

    def _on_link_down(self) -> None:
        self.streaming = False

    # -- data -----------------------------------------------------------------------------

    def samples_per_frame(self) -> int:
        """ECG samples per data frame at the current MTU."""
        return max(1, min(MAX_SAMPLES_PER_FRAME, (self.mtu - 3 - FRAME_HEADER) // 3))

    def timestamp_ns(self, index: int) -> int:
        """PMD timestamp of ECG sample ``index``: device clock, ns since 2000-01-01."""
        # The device clock read the host's wall clock at power-on (as if synced then).
        start_ns = round((self.t0_wall - self.uptime - EPOCH_2000) * 1e9)
        return start_ns + round(index * 1e9 / ECG_RATE)

    def _malformed_payloads(self) -> tuple[bytes, ...]:
        ts = self.timestamp_ns(self._next_index).to_bytes(8, "little")
        options = (
            b"\x00\x01\x02",  # header cut short
            b"\x00" + ts + b"\x00" + b"\x01\x02\x03\x04",  # not whole int24 samples
            b"\x02" + ts + b"\x00" + b"\x00" * 6,  # an ACC frame, not ECG
            b"\x00" + ts + b"\x80" + b"\x00" * 6,  # compressed frame type
        )
        return options

    async def _tick(self, device_time: float, *, deliver: bool) -> None:
        if not self.streaming or device_time < self._first_frame_time:
            if self.streaming:  # waiting for the start delay: the clock runs on
                now_index = int(np.floor(device_time * ECG_RATE))
                self._next_index = self._skip_unsent("ecg", self._next_index, now_index)
            return
        spf = self.samples_per_frame()
        due = int(np.floor(device_time * ECG_RATE)) - self._next_index
        while due >= spf and self.streaming:  # a STOP may arrive while we send
            first = self._next_index
            ecg_uv = np.round(self.ecg.samples(first, spf))
            ecg = np.clip(ecg_uv, -(2**23), 2**23 - 1).astype(np.int64)
            body = encode_ecg_frame(ecg, self.timestamp_ns(first + spf - 1))
            indices = np.arange(first, first + spf, dtype=np.int64)
            record = pack_records("ecg", ecg.astype(np.float64), indices)
            await self._emit(Packet(self.data, body, [record]), deliver=deliver)
            self._next_index += spf
            due -= spf
