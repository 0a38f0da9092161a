"""Muse classic protocol: commands, control replies, vectorised 12-bit EEG, IMU, PPG, assembler.

Layout from muse-lsl: 20-byte packets, uint16 BE counter, 12 × 12-bit BE samples,
µV = 0.48828125 × (raw − 2048).
"""

from __future__ import annotations

import numpy as np
import pytest

from affectstream.device import muse
from affectstream.device.emulation.muse import eeg_counts, encode_reply, pack_eeg
from affectstream.errors import DecodeError


def test_commands() -> None:
    assert muse.encode_command("d") == b"\x02d\n"
    assert muse.encode_command("h") == b"\x02h\n"
    assert muse.encode_command("v1") == b"\x03v1\n"
    assert muse.encode_command("p21") == b"\x04p21\n"
    assert muse.decode_command(b"\x04p21\n") == "p21"
    with pytest.raises(DecodeError):
        muse.decode_command(b"\x05p21\n")


def test_control_reply_reassembled_across_pieces() -> None:
    text = b'{"hn":"Muse-1234","sn":"1","rc":0}'
    first, second = text[:19], text[19:]
    assembler = muse.ControlReplyAssembler()
    assert assembler.feed(bytes([19]) + first) is None
    reply = assembler.feed(bytes([len(second)]) + second + b"\x00" * (19 - len(second)))
    assert reply == {"hn": "Muse-1234", "sn": "1", "rc": 0}
    pieces = encode_reply({"rc": 0, "fw": "1.2.13"})
    assert all(len(p) == 20 for p in pieces)
    got = [assembler.feed(p) for p in pieces]
    assert got[-1] == {"rc": 0, "fw": "1.2.13"}


def test_control_reply_errors() -> None:
    assembler = muse.ControlReplyAssembler()
    with pytest.raises(DecodeError):
        assembler.feed(b"\x09abc")  # announces 9 characters, holds 3
    with pytest.raises(DecodeError, match="not JSON"):
        assembler.feed(b"\x03{x}")


def test_eeg_hand_vector() -> None:
    # Counter 0x1234; first group (0x000, 0xFFF), others mid-scale 0x800 (= 0 µV).
    packet = bytes([0x12, 0x34, 0x00, 0x0F, 0xFF]) + bytes([0x80, 0x08, 0x00]) * 5
    counters, values = muse.unpack_eeg(packet)
    assert counters.tolist() == [0x1234]
    expected = [-2048 * 0.48828125, 2047 * 0.48828125] + [0.0] * 10
    assert values[0].tolist() == expected


def _reference_unpack(packet: bytes) -> list[int]:
    """Bit-by-bit reference: the payload as one big-endian integer, 12 bits at a time."""
    big = int.from_bytes(packet[2:], "big")
    return [(big >> (144 - 12 * (i + 1))) & 0xFFF for i in range(12)]


def test_vectorised_unpack_equals_bitwise_reference() -> None:
    rng = np.random.default_rng(1)
    packets = rng.integers(0, 256, size=(200, 20), dtype=np.uint8)
    counters, values = muse.unpack_eeg(packets)
    for row, counter, got in zip(packets, counters, values, strict=True):
        raw = _reference_unpack(row.tobytes())
        assert counter == int.from_bytes(row[:2].tobytes(), "big")
        np.testing.assert_array_equal(got, 0.48828125 * (np.array(raw) - 2048))


def test_pack_round_trip() -> None:
    values = 0.48828125 * (np.arange(12) * 300 - 1800.0)
    _, got = muse.unpack_eeg(pack_eeg(70000, eeg_counts(values)))
    np.testing.assert_array_equal(got[0], values)


def test_wrong_size_packets() -> None:
    with pytest.raises(DecodeError, match="20 bytes"):
        muse.unpack_eeg(b"\x00" * 19)
    with pytest.raises(DecodeError):
        muse.unpack_eeg([b"\x00" * 20, b"\x00" * 18])


def test_imu_and_ppg() -> None:
    imu = bytes([0, 7]) + bytes.fromhex("0001ffff8000") * 3
    counters, values = muse.unpack_imu(imu, muse.ACC_SCALE_G)
    assert counters.tolist() == [7]
    np.testing.assert_allclose(values[0, 0], np.array([1, -1, -32768]) * muse.ACC_SCALE_G)
    ppg = bytes([1, 0]) + bytes.fromhex("000001ffffff010203") * 2
    counters, values = muse.unpack_ppg(ppg)
    assert counters.tolist() == [256]
    assert values[0].tolist() == [1, 0xFFFFFF, 0x010203] * 2


def test_assembler_merges_channels_by_counter() -> None:
    channels = ("TP9", "AF7")
    assembler = muse.CounterAssembler(channels, 2)
    assert assembler.feed(0, 10, np.array([1.0, 2.0])) == []
    out = assembler.feed(1, 10, np.array([3.0, 4.0]))
    assert [p.counter for p in out] == [10]
    np.testing.assert_array_equal(out[0].values, [[1, 3], [2, 4]])


def test_assembler_wraps_and_fills_a_lost_channel_packet_with_nan() -> None:
    assembler = muse.CounterAssembler(("a", "b"), 1, max_lag=2)
    emitted = []
    emitted += assembler.feed(0, 65535, np.array([1.0]))  # "b" of 65535 is lost
    emitted += assembler.feed(0, 0, np.array([2.0]))
    emitted += assembler.feed(1, 0, np.array([3.0]))
    emitted += assembler.feed(0, 1, np.array([4.0]))
    emitted += assembler.feed(1, 1, np.array([5.0]))
    assert [p.counter for p in emitted] == [65535, 0, 1]
    assert emitted[0].missing_channels == ("b",)
    assert np.isnan(emitted[0].values[0, 1])
    assert emitted[2].values.tolist() == [[4.0, 5.0]]


def test_assembler_never_emits_a_counter_no_channel_sent() -> None:
    assembler = muse.CounterAssembler(("a",), 1)
    got = [p.counter for c in (5, 6, 8) for p in assembler.feed(0, c, np.array([0.0]))]
    assert got == [5, 6, 8]


def test_single_packet_path_equals_the_vectorised_path() -> None:
    rng = np.random.default_rng(5)
    packets = rng.integers(0, 256, size=(50, 20), dtype=np.uint8)
    counters, values = muse.unpack_eeg(packets)
    for row, counter, expected in zip(packets, counters, values, strict=True):
        one_counter, one_values = muse.unpack_eeg(row.tobytes())
        assert one_counter.tolist() == [counter]
        np.testing.assert_array_equal(one_values[0], expected)
