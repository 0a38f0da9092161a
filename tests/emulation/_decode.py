"""Minimal local decoders for the emulation tests, written from the protocol notes.

They are independent of ``affectstream.device``'s decoders on purpose: the emulators are
checked against the protocol, not against the code they will be used to test.
"""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import Callable
from typing import Any

import numpy as np


class MalformedError(ValueError):
    """A payload that does not follow the protocol."""


def decode_pmd_ecg(frame: bytes) -> tuple[int, np.ndarray]:
    """PMD ECG frame -> (timestamp ns of the last sample, int µV samples)."""
    if len(frame) < 13 or (len(frame) - 10) % 3 or frame[0] != 0 or frame[9] != 0:
        raise MalformedError(frame.hex())
    timestamp = int.from_bytes(frame[1:9], "little")
    raw = np.frombuffer(frame[10:], dtype=np.uint8).reshape(-1, 3).astype(np.int64)
    values = raw[:, 0] | (raw[:, 1] << 8) | (raw[:, 2] << 16)
    return timestamp, np.where(values >= 1 << 23, values - (1 << 24), values)


def decode_eda(packet: bytes) -> tuple[int, int, np.ndarray]:
    """EDA Measurement -> (flags, sequence, µS samples with NaN where saturated)."""
    if len(packet) < 6 or (len(packet) - 3) % 3:
        raise MalformedError(packet.hex())
    flags, sequence = struct.unpack_from("<BH", packet)
    raw = np.frombuffer(packet[3:], dtype=np.uint8).reshape(-1, 3).astype(np.int64)
    values = raw[:, 0] | (raw[:, 1] << 8) | (raw[:, 2] << 16)
    return flags, sequence, np.where(values == 0xFFFFFF, np.nan, values / 1000.0)


def decode_muse_eeg(packet: bytes) -> tuple[int, np.ndarray]:
    """Muse EEG packet -> (counter, 12 samples in µV)."""
    if len(packet) != 20:
        raise MalformedError(packet.hex())
    counter = (packet[0] << 8) | packet[1]
    bits = "".join(f"{b:08b}" for b in packet[2:])
    raw = np.array([int(bits[i : i + 12], 2) for i in range(0, 144, 12)])
    return counter, 0.48828125 * (raw - 2048)


def muse_command(text: str) -> bytes:
    """Encode a Muse control command: [len + 1, ascii..., '\\n']."""
    body = text.encode("ascii") + b"\n"
    return bytes([len(body)]) + body


class MuseReplies:
    """Collect JSON replies from 20-byte Muse control notifications."""

    def __init__(self) -> None:
        self.buffer = ""
        self.replies: list[dict[str, Any]] = []

    def feed(self, _sender: object, data: bytearray) -> None:
        self.buffer += bytes(data[1 : 1 + data[0]]).decode("ascii")
        if self.buffer.endswith("}"):
            self.replies.append(json.loads(self.buffer))
            self.buffer = ""


async def wait_until(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    """Poll ``predicate()`` until true; fail after ``timeout`` s (a hang guard, not a timing)."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


GANGLION_SCALE_UV = 1.2e6 / (8388607.0 * 1.5 * 51.0)


class GanglionDecoder:
    """Stateful Ganglion decoder (OpenBCI_Python's rules): -> (first sample number, µV rows)."""

    def __init__(self) -> None:
        self.last = np.zeros(4, dtype=np.int64)

    def feed(self, packet: bytes) -> tuple[int, np.ndarray]:
        if not packet:
            raise MalformedError("empty")
        packet_id = packet[0]
        if packet_id == 0:
            if len(packet) < 13:
                raise MalformedError(packet.hex())
            raw = [int.from_bytes(packet[1 + 3 * i : 4 + 3 * i], "big") for i in range(4)]
            self.last = np.array([r - (1 << 24) if r & 0x800000 else r for r in raw])
            return 0, self.last[None, :] * GANGLION_SCALE_UV
        if not 1 <= packet_id <= 200:
            raise MalformedError(packet.hex())
        bits = 18 if packet_id <= 100 else 19
        if len(packet) < 1 + bits:
            raise MalformedError(packet.hex())
        stream = "".join(f"{b:08b}" for b in packet[1 : 1 + bits])
        fields = [int(stream[i * bits : (i + 1) * bits], 2) for i in range(8)]
        deltas = np.array([f - (1 << bits) if f & 1 else f for f in fields]).reshape(2, 4)
        first = self.last - deltas[0]
        second = first - deltas[1]
        self.last = second
        return 2 * ((packet_id - 1) % 100) + 1, np.stack([first, second]) * GANGLION_SCALE_UV
