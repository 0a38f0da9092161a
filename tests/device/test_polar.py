"""Polar PMD: control point requests/responses and ECG data frames, from the Polar SDK layout."""

from __future__ import annotations

import numpy as np
import pytest

from affectstream.device import polar
from affectstream.device.emulation.polar import encode_ecg_frame
from affectstream.errors import DecodeError, ProtocolError


def test_start_ecg_request_matches_the_h10_bytes() -> None:
    assert polar.start_request() == bytes.fromhex("02000001820001010e00")
    assert polar.stop_request() == bytes.fromhex("0300")
    assert polar.settings_request() == bytes.fromhex("0100")


def test_success_response() -> None:
    response = polar.check_response(bytes.fromhex("f00200000000"), polar.OP_START)
    assert response.status == 0 and response.status_name == "SUCCESS"


def test_error_response_names_the_status() -> None:
    with pytest.raises(ProtocolError, match="ERROR_INVALID_SAMPLE_RATE"):
        polar.check_response(bytes.fromhex("f002000800"), polar.OP_START)


def test_already_in_state_is_accepted_only_when_asked() -> None:
    answer = bytes.fromhex("f002000600")
    with pytest.raises(ProtocolError, match="ERROR_ALREADY_IN_STATE"):
        polar.check_response(answer, polar.OP_START)
    assert polar.check_response(answer, polar.OP_START, allow_already=True).status == 6


def test_response_to_another_request_is_rejected() -> None:
    with pytest.raises(ProtocolError, match="expected op 2"):
        polar.check_response(bytes.fromhex("f003000000"), polar.OP_START)


@pytest.mark.parametrize("payload", ["", "f002", "0f0200", "ab02000000"])
def test_malformed_response_is_a_decode_error(payload: str) -> None:
    with pytest.raises(DecodeError):
        polar.parse_response(bytes.fromhex(payload))


def test_unknown_status_code_gets_a_name() -> None:
    assert polar.status_name(99) == "UNKNOWN_99"


def test_features() -> None:
    assert polar.parse_features(bytes.fromhex("0f05")) == {"ECG", "ACC"}
    with pytest.raises(DecodeError):
        polar.parse_features(b"\x01")


def test_ecg_frame_decodes_int24_le_and_timestamp() -> None:
    timestamp = bytes.fromhex("0807060504030201")  # 0x0102030405060708 LE
    samples = bytes.fromhex("010000ffffff000080ffff7f9cffff")
    frame = polar.decode_frame(b"\x00" + timestamp + b"\x00" + samples)
    assert frame.timestamp_ns == 0x0102030405060708
    assert frame.samples.tolist() == [1.0, -1.0, -8388608.0, 8388607.0, -100.0]


def test_sample_times_end_at_the_frame_timestamp() -> None:
    frame = polar.decode_frame(encode_ecg_frame([0] * 73, 10**12))
    times = frame.sample_times_ns(130)
    assert times[-1] == 10**12
    np.testing.assert_allclose(np.diff(times), 1e9 / 130)
    # With the previous frame's timestamp, spacing comes from the device clock.
    measured = frame.sample_times_ns(130, previous_timestamp_ns=10**12 - 73 * 7_700_000)
    np.testing.assert_allclose(np.diff(measured), 7_700_000)


@pytest.mark.parametrize(
    "payload",
    [
        "00" * 12,  # header, then 2 bytes
        "00" + "00" * 8 + "00" + "0102",  # partial sample
        "02" + "00" * 8 + "00" + "010203",  # ACC, not ECG
        "00" + "00" * 8 + "80" + "010203",  # compressed
    ],
)
def test_bad_frames_raise_decode_error(payload: str) -> None:
    with pytest.raises(DecodeError):
        polar.decode_frame(bytes.fromhex(payload))


def test_ecg_counter_finds_lost_frames_from_timestamps() -> None:
    step = 1e9 / 130
    counter = polar.EcgCounter(130)
    t0 = 5 * 10**15
    firsts = []
    for k in (0, 1, 3):  # frame 2 lost
        ts = int(t0 + ((k + 1) * 73 - 1) * step)
        firsts.append(counter.first_index(polar.decode_frame(encode_ecg_frame([0] * 73, ts))))
    assert firsts == [0, 73, 3 * 73]


def test_pmd_epoch() -> None:
    assert polar.pmd_time_to_unix(0) == 946_684_800
