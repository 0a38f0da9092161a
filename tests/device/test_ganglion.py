"""OpenBCI Ganglion raw and delta packets (OpenBCI_Python's layout and sign convention)."""

from __future__ import annotations

import numpy as np
import pytest

from affectstream.device import ganglion
from affectstream.device.emulation.ganglion import pack_deltas
from affectstream.errors import DecodeError

RAW = bytes([0]) + bytes.fromhex("000001ffffff8000007fffff") + bytes(7)


def test_raw_packet() -> None:
    packet = ganglion.GanglionDecoder().decode(RAW)
    assert packet is not None and packet.counter == 0 and packet.baseline_valid
    expected = np.array([1, -1, -8388608, 8388607]) * ganglion.SCALE_UV
    np.testing.assert_allclose(packet.values[0], expected)


def test_18_bit_delta_hand_vector() -> None:
    decoder = ganglion.GanglionDecoder()
    decoder.decode(RAW)
    # First 18-bit field = 2 (bits ...0000 10): positive, LSB clear. Others 0.
    packet = decoder.decode(bytes([1]) + bytes.fromhex("000080") + bytes(15) + bytes(1))
    assert packet is not None and packet.counter == 1
    counts = np.round(packet.values / ganglion.SCALE_UV).astype(int)
    assert counts.tolist() == [[1 - 2, -1, -8388608, 8388607]] * 2


def test_19_bit_negative_delta_hand_vector() -> None:
    decoder = ganglion.GanglionDecoder()
    decoder.decode(RAW)
    # First 19-bit field all ones: LSB set, so negative: −1; the sample rises by 1.
    payload = bytes([101]) + bytes.fromhex("ffffe0") + bytes(16)
    packet = decoder.decode(payload)
    assert packet is not None and packet.counter == 1
    counts = np.round(packet.values / ganglion.SCALE_UV).astype(int)
    assert counts[:, 0].tolist() == [2, 2]


def test_delta_round_trip_and_counter() -> None:
    rng = np.random.default_rng(3)
    decoder = ganglion.GanglionDecoder()
    decoder.decode(RAW)
    last = np.array([1, -1, -8388608, 8388607])
    for packet_id, bits in ((7, 18), (150, 19)):
        magnitude = rng.integers(0, 2 ** (bits - 3), size=(2, 4))
        negative = rng.random((2, 4)) < 0.5
        # OpenBCI's convention: odd deltas are negative, even ones positive.
        deltas = np.where(negative, -(2 * magnitude + 1), 2 * magnitude)
        packet = decoder.decode(bytes([packet_id]) + pack_deltas(deltas, bits))
        assert packet is not None
        expected = np.stack([last - deltas[0], last - deltas[0] - deltas[1]])
        np.testing.assert_array_equal(np.round(packet.values / ganglion.SCALE_UV), expected)
        last = expected[1]
        assert packet.counter == 2 * ((packet_id - 1) % 100) + 1


def test_other_packets() -> None:
    decoder = ganglion.GanglionDecoder()
    assert decoder.decode(bytes([206]) + b"hello") is None
    delta = decoder.decode(bytes([1]) + bytes(18))
    assert delta is not None and not delta.baseline_valid
    for payload in (b"", bytes([0, 1, 2]), bytes([1]) + bytes(10), bytes([150]) + bytes(18)):
        with pytest.raises(DecodeError, match="Ganglion"):
            decoder.decode(payload)
    with pytest.raises(DecodeError, match="unknown"):
        decoder.decode(bytes([230]) + bytes(19))
