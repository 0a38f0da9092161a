"""Property tests: random bytes make every decoder raise only DecodeError (or succeed)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from affectstream.device import eda_band, ganglion, gatt, muse, polar
from affectstream.device.heart_rate import decode_heart_rate
from affectstream.device.profiles import PROFILES
from affectstream.errors import DecodeError

_assembler = muse.ControlReplyAssembler()
_ganglion = ganglion.GanglionDecoder()

DECODERS: dict[str, Callable[[bytes], object]] = {
    "heart_rate": decode_heart_rate,
    "pmd_frame": polar.decode_frame,
    "pmd_response": polar.parse_response,
    "pmd_features": polar.parse_features,
    "muse_eeg": muse.unpack_eeg,
    "muse_imu": lambda b: muse.unpack_imu(b, muse.ACC_SCALE_G),
    "muse_ppg": muse.unpack_ppg,
    "muse_command": muse.decode_command,
    "muse_control": _assembler.feed,
    "eda": eda_band.decode_eda,
    "eda_rate": eda_band.decode_rate,
    "ganglion": _ganglion.decode,
}


@pytest.mark.parametrize("name", sorted(DECODERS))
@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=40))
def test_random_bytes_raise_only_decode_error(name: str, data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        DECODERS[name](data)


SESSION_INPUTS = [
    ("hr", gatt.HEART_RATE_MEASUREMENT),
    ("polar", gatt.PMD_DATA),
    ("eda", gatt.EDA_MEASUREMENT),
    ("muse", gatt.MUSE_EEG["TP9"]),
    ("muse", gatt.MUSE_CONTROL),
    ("ganglion", gatt.GANGLION_RECEIVE),
]


@pytest.mark.parametrize(("profile", "uuid"), SESSION_INPUTS)
@settings(max_examples=200, deadline=None)
@given(stream=st.lists(st.binary(max_size=30), max_size=8))
def test_sessions_survive_random_notifications(
    profile: str, uuid: str, stream: list[bytes]
) -> None:
    """A driver fed garbage raises DecodeError per bad packet and keeps decoding after."""
    driver = PROFILES[profile].new_driver()
    for data in stream:
        try:
            frames = driver.decode(uuid, data)
        except DecodeError:
            continue
        for frame in frames:
            assert frame.values.ndim == 2
