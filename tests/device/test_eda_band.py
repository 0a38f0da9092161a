"""The open EDA band profile: Measurement packets and Config values (firmware_notes/eda-band.md)."""

from __future__ import annotations

import numpy as np
import pytest

from affectstream.device import eda_band
from affectstream.device.emulation.eda import encode_eda
from affectstream.errors import ConfigError, DecodeError


def test_hand_vector() -> None:
    # flags: contact | battery low; sequence 0x1234; 1000 nS, 2.5 µS, saturated.
    payload = bytes.fromhex("053412e80300c40900ffffff")
    packet = eda_band.decode_eda(payload)
    assert packet.contact and packet.battery_low and not packet.saturated
    assert packet.sequence == 0x1234
    assert packet.values[:2].tolist() == [1.0, 2.5]
    assert np.isnan(packet.values[2])
    assert packet.saturated_samples.tolist() == [False, False, True]


def test_five_samples_fit_the_default_mtu() -> None:
    payload = encode_eda(65535, [0.5, 1.0, 1.5, 2.0, 2.5])
    # ATT MTU 23 leaves 20 bytes: 3 + 5 × 3 = 18 fit, a sixth sample (21) would not.
    assert len(payload) == 18
    assert len(encode_eda(0, [1.0] * 6)) > 20
    packet = eda_band.decode_eda(payload)
    assert packet.sequence == 65535
    assert packet.values.tolist() == [0.5, 1.0, 1.5, 2.0, 2.5]


def test_sequence_wraps() -> None:
    assert eda_band.decode_eda(encode_eda(65536 + 3, [1.0])).sequence == 3


def test_saturated_flag_set_by_encoder() -> None:
    packet = eda_band.decode_eda(encode_eda(0, [1.0, np.nan]))
    assert packet.saturated and packet.saturated_samples.tolist() == [False, True]


@pytest.mark.parametrize("length", [0, 1, 3, 4, 5, 7, 8])
def test_wrong_lengths(length: int) -> None:
    with pytest.raises(DecodeError, match="EDA Measurement"):
        eda_band.decode_eda(bytes(length))


def test_rates() -> None:
    assert eda_band.encode_rate(64) == b"\x40\x00"
    assert eda_band.decode_rate(b"\x00\x01") == 256
    with pytest.raises(ConfigError, match="rate"):
        eda_band.encode_rate(100)
    with pytest.raises(DecodeError):
        eda_band.decode_rate(b"\x05\x00")
    with pytest.raises(DecodeError):
        eda_band.decode_rate(b"\x40")
