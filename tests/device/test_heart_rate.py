"""Heart Rate Measurement (0x2A37) decoder against hand-written byte vectors.

Vectors follow the Bluetooth SIG layout: flags, HR (u8 or u16 LE), energy expended (u16 LE),
RR intervals (u16 LE, 1/1024 s).
"""

from __future__ import annotations

import pytest

from affectstream.device.emulation.heart_rate import encode_heart_rate
from affectstream.device.heart_rate import decode_heart_rate
from affectstream.errors import DecodeError


def test_uint8_heart_rate_without_extras() -> None:
    m = decode_heart_rate(bytes([0x00, 0x48]))
    assert m.heart_rate == 0x48
    assert m.energy_expended is None
    assert m.rr_intervals_ms == ()
    assert not m.contact_supported and not m.contact_detected


def test_uint16_heart_rate() -> None:
    # flags bit0: HR is uint16 LE; 0x012C = 300 bpm (above the uint8 range).
    m = decode_heart_rate(bytes([0x01, 0x2C, 0x01]))
    assert m.heart_rate == 300


def test_contact_flags() -> None:
    both = decode_heart_rate(bytes([0x06, 60]))
    assert both.contact_supported and both.contact_detected
    lost = decode_heart_rate(bytes([0x04, 60]))
    assert lost.contact_supported and not lost.contact_detected


def test_energy_expended_and_rr() -> None:
    # flags EE (0x08) + RR (0x10); HR 0x50; EE 0x1234 kJ; RR 0x0400 = 1024/1024 s.
    m = decode_heart_rate(bytes([0x18, 0x50, 0x34, 0x12, 0x00, 0x04]))
    assert m.heart_rate == 0x50
    assert m.energy_expended == 0x1234
    assert m.rr_intervals_ms == (1000.0,)


def test_uint16_with_energy_and_rr() -> None:
    m = decode_heart_rate(bytes([0x19, 0x2C, 0x01, 0x10, 0x00, 0x00, 0x02]))
    assert (m.heart_rate, m.energy_expended) == (300, 16)
    assert m.rr_intervals_ms == (500.0,)


def test_rr_flag_with_zero_values() -> None:
    assert decode_heart_rate(bytes([0x10, 70])).rr_intervals_ms == ()


def test_many_rr_values_fill_a_20_byte_packet() -> None:
    raw = [800 + 13 * i for i in range(9)]  # 2 header bytes + 9 × 2 = 20 bytes
    payload = bytes([0x10, 75]) + b"".join(v.to_bytes(2, "little") for v in raw)
    assert len(payload) == 20
    m = decode_heart_rate(payload)
    assert m.rr_intervals_ms == tuple(v * 1000 / 1024 for v in raw)


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        bytes([0x00]),
        bytes([0x01, 0x2C]),  # uint16 announced, one byte present
        bytes([0x08, 0x50, 0x34]),  # energy expended truncated
        bytes([0x10, 0x50, 0x00]),  # half an RR value
        bytes([0x00, 0x50, 0x00, 0x04]),  # trailing bytes without the RR flag
    ],
)
def test_truncated_or_inconsistent_packets_raise_decode_error(payload: bytes) -> None:
    with pytest.raises(DecodeError, match="Heart Rate Measurement"):
        decode_heart_rate(payload)


def test_encoder_round_trip() -> None:
    payload = encode_heart_rate(
        61, rr_1024=(1000, 1010), energy_expended=7, contact_supported=True, uint16=True
    )
    m = decode_heart_rate(payload)
    assert (m.heart_rate, m.energy_expended, m.contact_supported) == (61, 7, True)
    assert m.rr_intervals_ms == (1000 * 1000 / 1024, 1010 * 1000 / 1024)
