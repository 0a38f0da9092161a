"""Each emulated peripheral through plain bleak: commands, answers, data equal to what was sent."""

from __future__ import annotations

import asyncio
import fnmatch

import numpy as np
import pytest
from bleak import BleakClient, BleakScanner
from bleak.exc import BleakGATTProtocolError

from affectstream.device import gatt
from affectstream.device.emulation import (
    EdaBand,
    Ganglion,
    MuseHeadset,
    PolarH10,
    VirtualRadio,
    make_emulated,
)
from affectstream.errors import ConfigError

from ._decode import (
    GanglionDecoder,
    MalformedError,
    MuseReplies,
    decode_eda,
    decode_muse_eeg,
    decode_pmd_ecg,
    muse_command,
    wait_until,
)

ECG_START = bytes.fromhex("02000001820001010e00")


async def test_make_emulated_all_is_discoverable(radio: VirtualRadio) -> None:
    devices = make_emulated("all", speed=1.0, seed=5)
    assert [d.profile for d in devices] == ["hr", "polar", "eda", "muse"]
    for device in devices:
        await radio.add(device)
    found = await BleakScanner.discover(timeout=0.3, return_adv=True, **radio.scanner_kwargs())
    patterns = {"polar": "Polar H10 *", "eda": "AS-EDA-*", "muse": "Muse*", "hr": "*"}
    for device in devices:
        ble, adv = found[device.address]
        assert device.service_uuid in adv.service_uuids
        assert fnmatch.fnmatchcase(adv.local_name or "", patterns[device.profile])
        assert ble.name == device.name
    assert len({d.address for d in devices}) == len(devices)
    with pytest.raises(ConfigError, match="'ganglio'"):
        make_emulated(["ganglio"])


async def _pmd_request(client: BleakClient, answers: list[bytes], request: bytes) -> bytes:
    n = len(answers)
    await client.write_gatt_char(gatt.PMD_CONTROL, request, response=True)
    await wait_until(lambda: len(answers) > n)
    return answers[n]


@pytest.mark.parametrize("max_mtu", [232, 23])
async def test_polar_pmd_control_and_ecg_frames(radio: VirtualRadio, max_mtu: int) -> None:
    polar = PolarH10(speed=4.0, max_mtu=max_mtu)
    await radio.add(polar)
    answers: list[bytes] = []
    frames: list[bytes] = []
    async with BleakClient(polar.address, **radio.client_kwargs()) as client:
        assert await client.read_gatt_char(gatt.PMD_CONTROL) == bytearray([0x0F, 0x01])
        control = client.services.get_characteristic(gatt.PMD_CONTROL)
        assert control is not None and "indicate" in control.properties
        await client.start_notify(gatt.PMD_CONTROL, lambda _c, d: answers.append(bytes(d)))
        await client.start_notify(gatt.PMD_DATA, lambda _c, d: frames.append(bytes(d)))

        settings = await _pmd_request(client, answers, bytes([0x01, 0x00]))
        assert settings[:4] == bytes([0xF0, 0x01, 0x00, 0x00])
        assert bytes.fromhex("0001820001010e00") in settings[5:]
        # 200 Hz is not an H10 ECG rate: ERROR_INVALID_SAMPLE_RATE (8), nothing streams.
        bad = bytes.fromhex("02000001c80001010e00")
        assert (await _pmd_request(client, answers, bad))[:4] == bytes([0xF0, 0x02, 0x00, 8])
        assert (await _pmd_request(client, answers, b"\x02\x02"))[3] == 2  # ACC: not offered
        assert not polar.streaming and frames == []

        assert await _pmd_request(client, answers, ECG_START) == bytes([0xF0, 2, 0, 0, 0])
        await wait_until(lambda: len(polar.sent_indices("ecg")) >= 3 * 130)  # 3 s of ECG
        assert (await _pmd_request(client, answers, ECG_START))[3] == 6  # already in state
        assert (await _pmd_request(client, answers, b"\x03\x00"))[3] == 0
        n_stopped = len(frames)
        await asyncio.sleep(0.2)
        assert len(frames) == n_stopped

    mtu_payload = min(max_mtu, 517) - 3
    decoded = [decode_pmd_ecg(f) for f in frames]
    assert all(len(f) <= mtu_payload for f in frames)
    spf = min(73, (mtu_payload - 10) // 3)
    assert all(len(samples) == spf for _, samples in decoded)
    ecg = np.concatenate([samples for _, samples in decoded]).astype(float)
    np.testing.assert_array_equal(ecg, polar.sent_samples("ecg")[:, 0])
    indices = polar.sent_indices("ecg")
    assert np.all(np.diff(indices) == 1)
    # The frame timestamp is the device time of its last sample.
    timestamps = np.array([ts for ts, _ in decoded])
    last_indices = indices[spf - 1 :: spf]
    assert timestamps.tolist() == [polar.timestamp_ns(int(i)) for i in last_indices]
    np.testing.assert_allclose(np.diff(timestamps), spf * 1e9 / 130, atol=1.0)
    # Plausible ECG: R peaks of about a millivolt.
    assert 500 < ecg.max() < 2000


async def test_polar_needs_start_again_after_a_disconnect(radio: VirtualRadio) -> None:
    polar = PolarH10(speed=4.0)
    await radio.add(polar)
    answers: list[bytes] = []
    frames: list[bytes] = []
    client = BleakClient(polar.address, **radio.client_kwargs())

    async def subscribe() -> None:
        await client.connect()
        await client.start_notify(gatt.PMD_CONTROL, lambda _c, d: answers.append(bytes(d)))
        await client.start_notify(gatt.PMD_DATA, lambda _c, d: frames.append(bytes(d)))

    async def start_and_stream() -> None:
        assert (await _pmd_request(client, answers, ECG_START))[3] == 0
        n_started = len(frames)
        await wait_until(lambda: len(frames) >= n_started + 3)

    await subscribe()
    await start_and_stream()
    await polar.disconnect()
    await wait_until(lambda: not client.is_connected)
    n_before = len(frames)
    await subscribe()
    await asyncio.sleep(0.2)
    assert len(frames) == n_before  # reconnected but no START yet: silence
    await start_and_stream()
    indices = polar.sent_indices("ecg")
    lost = polar.lost_samples("ecg")
    await client.disconnect()
    gaps = np.diff(indices) - 1
    assert np.count_nonzero(gaps) == 1 and gaps.sum() == lost > 0
    received = np.concatenate([decode_pmd_ecg(f)[1] for f in frames])
    np.testing.assert_array_equal(received, polar.sent_samples("ecg")[: len(received), 0])


async def test_eda_band_config_control_and_data(radio: VirtualRadio) -> None:
    band = EdaBand(speed=4.0, max_mtu=23)
    await radio.add(band)
    packets: list[bytes] = []
    async with BleakClient(band.address, **radio.client_kwargs()) as client:
        assert await client.read_gatt_char(gatt.EDA_CONFIG) == bytearray(b"\x20\x00")  # 32 Hz
        await client.write_gatt_char(gatt.EDA_CONFIG, (64).to_bytes(2, "little"), response=True)
        assert await client.read_gatt_char(gatt.EDA_CONFIG) == bytearray(b"\x40\x00")
        for bad_rate in (100, 0, 512):
            with pytest.raises(BleakGATTProtocolError) as info:
                await client.write_gatt_char(
                    gatt.EDA_CONFIG, bad_rate.to_bytes(2, "little"), response=True
                )
            assert info.value.args[0] == 0x80
        with pytest.raises(BleakGATTProtocolError):
            await client.write_gatt_char(gatt.EDA_CONTROL, b"\x07", response=True)
        assert await client.read_gatt_char(gatt.BATTERY_LEVEL) == bytearray([band.battery])

        await client.start_notify(gatt.EDA_MEASUREMENT, lambda _c, d: packets.append(bytes(d)))
        await asyncio.sleep(0.1)
        assert packets == []  # subscribed but not started
        await client.write_gatt_char(gatt.EDA_CONTROL, b"\x01", response=True)
        await wait_until(lambda: len(packets) >= 10)
        await client.write_gatt_char(gatt.EDA_CONTROL, b"\x02", response=True)

    decoded = [decode_eda(p) for p in packets]
    assert all(len(p) <= 20 for p in packets)  # MTU 23
    assert all(len(v) == (23 - 6) // 3 for _, _, v in decoded)
    assert all(flags & 0x01 for flags, _, _ in decoded)  # contact
    values = np.concatenate([v for _, _, v in decoded])
    np.testing.assert_array_equal(values, band.sent_samples("eda")[: len(values), 0])
    indices = band.sent_indices("eda")
    assert [seq for _, seq, _ in decoded] == [int(i) % 65536 for i in indices[::5]]
    assert np.all((values > 0.5) & (values < 30))  # µS, plausible skin conductance


async def test_eda_sequence_wraps_and_saturation_is_flagged(radio: VirtualRadio) -> None:
    rate = 256
    # 1024 samples (2 s at this speed) before the wrap: time to connect and start.
    band = EdaBand(speed=2.0, rate=rate, uptime=(65536 - 1024) / rate, saturate_above_us=3.0)
    await radio.add(band)
    packets: list[bytes] = []
    async with BleakClient(band.address, **radio.client_kwargs()) as client:
        await client.start_notify(gatt.EDA_MEASUREMENT, lambda _c, d: packets.append(bytes(d)))
        await client.write_gatt_char(gatt.EDA_CONTROL, b"\x01", response=True)
        await wait_until(
            lambda: len(band.sent_indices("eda")) and band.sent_indices("eda")[-1] > 65536 + 256
        )
    decoded = [decode_eda(p) for p in packets]
    sequences = np.array([seq for _, seq, _ in decoded])
    assert np.any(np.diff(sequences) < 0)  # wrapped at 65536
    unwrapped = np.concatenate(
        [[sequences[0]], sequences[0] + np.cumsum(np.diff(sequences) % 65536)]
    )
    first_indices = band.sent_indices("eda")[:: len(decoded[0][2])][: len(decoded)]
    np.testing.assert_array_equal(unwrapped, first_indices)
    sent = band.sent_samples("eda")[:, 0]
    values = np.concatenate([v for _, _, v in decoded])
    np.testing.assert_array_equal(np.isnan(values), np.isnan(sent[: len(values)]))
    for flags, _, v in decoded:
        assert bool(flags & 0x02) == bool(np.isnan(v).any())


async def test_muse_commands_and_eeg(radio: VirtualRadio) -> None:
    muse = MuseHeadset(speed=1.0)
    await radio.add(muse)
    replies = MuseReplies()
    eeg: dict[str, list[bytes]] = {ch: [] for ch in gatt.MUSE_EEG}
    async with BleakClient(muse.address, **radio.client_kwargs()) as client:
        await client.start_notify(gatt.MUSE_CONTROL, replies.feed)
        for channel, uuid in gatt.MUSE_EEG.items():
            sink = eeg[channel]
            await client.start_notify(uuid, lambda _c, d, sink=sink: sink.append(bytes(d)))
        for command in ("h", "p20", "s", "v1", "zz"):
            await client.write_gatt_char(gatt.MUSE_CONTROL, muse_command(command), response=False)
        await wait_until(lambda: len(replies.replies) == 5)
        status = replies.replies[2]
        assert status["hn"] == muse.name and status["rc"] == 0 and status["ps"] == 20
        assert replies.replies[3]["fw"] and replies.replies[4]["rc"] != 0
        assert muse.commands_received == ["h", "p20", "s", "v1", "zz"]
        assert all(not v for v in eeg.values())  # halted: nothing yet

        await client.write_gatt_char(gatt.MUSE_CONTROL, muse_command("d"), response=False)
        await wait_until(lambda: len(eeg["AUX"]) >= 20)
        await client.write_gatt_char(gatt.MUSE_CONTROL, muse_command("h"), response=False)
        await asyncio.sleep(0.05)

    n = min(len(v) for v in eeg.values())
    per_channel = {ch: [decode_muse_eeg(p) for p in packets[:n]] for ch, packets in eeg.items()}
    counters = {ch: [c for c, _ in decoded] for ch, decoded in per_channel.items()}
    assert all(c == counters["TP9"] for c in counters.values())  # one counter across channels
    assert np.all(np.diff(counters["TP9"]) == 1)
    received = np.column_stack(
        [
            np.concatenate([v for _, v in per_channel[ch]])
            for ch in ("TP9", "AF7", "AF8", "TP10", "AUX")
        ]
    )
    assert muse.channels("eeg") == ("TP9", "AF7", "AF8", "TP10", "AUX")
    np.testing.assert_allclose(received, muse.sent_samples("eeg")[: len(received)], atol=1e-9)
    first = muse.sent_indices("eeg")[0]
    assert first == counters["TP9"][0] * 12
    assert np.all(np.abs(received) < 1000)  # within the 12-bit range, µV


async def test_muse_preset_21_streams_four_channels(radio: VirtualRadio) -> None:
    muse = MuseHeadset(speed=1.0)
    await radio.add(muse)
    eeg: dict[str, list[bytes]] = {ch: [] for ch in gatt.MUSE_EEG}
    async with BleakClient(muse.address, **radio.client_kwargs()) as client:
        for channel, uuid in gatt.MUSE_EEG.items():
            sink = eeg[channel]
            await client.start_notify(uuid, lambda _c, d, sink=sink: sink.append(bytes(d)))
        for command in ("p21", "d"):
            await client.write_gatt_char(gatt.MUSE_CONTROL, muse_command(command), response=True)
        await wait_until(lambda: len(eeg["TP10"]) >= 10)
    assert eeg["AUX"] == []
    assert muse.sent_samples("eeg").shape[1] == 4
    tp9 = np.concatenate([decode_muse_eeg(p)[1] for p in eeg["TP9"]])
    np.testing.assert_allclose(tp9, muse.sent_samples("eeg")[: len(tp9), 0], atol=1e-9)


def test_malformed_packets_are_really_malformed() -> None:
    """The chaos payloads must be rejected by a protocol-following decoder."""
    polar, band, muse = PolarH10(), EdaBand(), MuseHeadset()
    for _ in range(4):
        with pytest.raises(MalformedError):
            decode_pmd_ecg(polar._malformed_payload())
        with pytest.raises(MalformedError):
            decode_eda(band._malformed_payload())
        with pytest.raises(MalformedError):
            decode_muse_eeg(muse._malformed_payload())


@pytest.mark.parametrize("bits", [18, 19])
async def test_ganglion_raw_then_delta_packets(radio: VirtualRadio, bits: int) -> None:
    board = Ganglion(speed=4.0, delta_bits=bits)
    await radio.add(board)
    packets: list[bytes] = []
    async with BleakClient(board.address, **radio.client_kwargs()) as client:
        await client.start_notify(gatt.GANGLION_RECEIVE, lambda _c, d: packets.append(bytes(d)))
        await asyncio.sleep(0.1)
        assert packets == []
        await client.write_gatt_char(gatt.GANGLION_SEND, b"b", response=False)
        await wait_until(lambda: len(packets) >= 120)  # more than one id cycle
        await client.write_gatt_char(gatt.GANGLION_SEND, b"s", response=False)
    decoder = GanglionDecoder()
    decoded = [decoder.feed(p) for p in packets]
    assert packets[0][0] == 0 and all(p[0] != 0 for p in packets[1:])
    ids = [p[0] for p in packets[1:]]
    assert min(ids) == (1 if bits == 18 else 101) and max(ids) == ids[0] + 99
    counters = np.array([c for c, _ in decoded])
    indices = board.sent_indices("eeg")
    starts = np.concatenate([[0], np.cumsum([len(v) for _, v in decoded])[:-1]])
    assert np.array_equal(counters, indices[starts] % 200)
    values = np.concatenate([v for _, v in decoded])
    np.testing.assert_allclose(values, board.sent_samples("eeg")[: len(values)], atol=1e-9)
    assert np.all(np.diff(indices) == 1) and indices[0] % 200 == 0
    assert 1 < np.std(values) < 200  # µV, EEG-like


def test_ganglion_malformed_packets_are_rejected() -> None:
    board = Ganglion()
    for _ in range(4):
        with pytest.raises(MalformedError):
            GanglionDecoder().feed(board._malformed_payload())


async def test_muse_imu_and_ppg(radio: VirtualRadio) -> None:
    muse = MuseHeadset(speed=4.0, ppg=True)
    await radio.add(muse)
    acc: list[bytes] = []
    gyro: list[bytes] = []
    ppg: list[list[bytes]] = [[], [], []]
    async with BleakClient(muse.address, **radio.client_kwargs()) as client:
        await client.start_notify(gatt.MUSE_ACC, lambda _c, d: acc.append(bytes(d)))
        await client.start_notify(gatt.MUSE_GYRO, lambda _c, d: gyro.append(bytes(d)))
        for uuid, sink in zip(gatt.MUSE_PPG, ppg, strict=True):
            await client.start_notify(uuid, lambda _c, d, sink=sink: sink.append(bytes(d)))
        await client.write_gatt_char(gatt.MUSE_CONTROL, muse_command("d"), response=False)
        await wait_until(lambda: min(len(acc), len(ppg[2])) >= 30)

    def imu(packets: list[bytes], scale: float) -> np.ndarray:
        assert all(len(p) == 20 for p in packets)
        raw = np.frombuffer(b"".join(p[2:] for p in packets), dtype=">i2").astype(float)
        return raw.reshape(-1, 3) * scale

    acc_g = imu(acc, 0.0000610352)
    np.testing.assert_allclose(acc_g, muse.sent_samples("acc")[: len(acc_g)], rtol=1e-12)
    assert abs(np.median(np.linalg.norm(acc_g, axis=1)) - 1.0) < 0.3  # gravity
    gyro_dps = imu(gyro, 0.0074768)
    np.testing.assert_allclose(gyro_dps, muse.sent_samples("gyro")[: len(gyro_dps)], rtol=1e-12)
    n = min(len(p) for p in ppg)
    counters = [[(p[0] << 8) | p[1] for p in packets[:n]] for packets in ppg]
    assert counters[0] == counters[1] == counters[2]
    columns = []
    for packets in ppg:
        body = np.frombuffer(b"".join(p[2:] for p in packets[:n]), dtype=np.uint8)
        triples = body.reshape(-1, 3).astype(np.int64)
        columns.append((triples[:, 0] << 16) | (triples[:, 1] << 8) | triples[:, 2])
    received = np.column_stack(columns).astype(float)
    np.testing.assert_array_equal(received, muse.sent_samples("ppg")[: len(received)])
    assert muse.channels("ppg") == ("ambient", "infrared", "red")
    assert np.ptp(received[:, 1]) > 5 * np.std(received[:, 0])  # pulsatile infrared


async def test_eda_contact_and_battery_flags(radio: VirtualRadio) -> None:
    band = EdaBand(speed=4.0, battery=10)
    band.contact = False
    await radio.add(band)
    packets: list[bytes] = []
    async with BleakClient(band.address, **radio.client_kwargs()) as client:
        await client.start_notify(gatt.EDA_MEASUREMENT, lambda _c, d: packets.append(bytes(d)))
        await client.write_gatt_char(gatt.EDA_CONTROL, b"\x01", response=True)
        await wait_until(lambda: len(packets) >= 3)
        band.contact = True
        n = len(packets)
        await wait_until(lambda: len(packets) >= n + 3)
    flags = [decode_eda(p)[0] for p in packets]
    assert all(f & 0x04 for f in flags)  # battery below 15 %
    assert not flags[0] & 0x01 and flags[-1] & 0x01  # contact came back
    values = np.concatenate([decode_eda(p)[2] for p in packets])
    np.testing.assert_array_equal(values, band.sent_samples("eda")[: len(values), 0])


async def test_benchmark_streams_every_profile() -> None:
    from affectstream.device.emulation.bench import run_benchmark

    result = await run_benchmark(duration=1.0, speed=4.0)
    assert result["devices"] == ["hr", "polar", "eda", "muse", "ganglion"]
    assert all(rate > 0 for rate in result["notifications_per_s"].values())
    samples = result["samples"]
    assert len(samples) == 5 and all(kinds for kinds in samples.values())
    assert result["cpu_fraction_of_one_core"] > 0
