"""Injected faults: stalls, counter gaps, malformed packets, link loss, clock drift."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
from bleak import BleakClient

from affectstream.device import gatt
from affectstream.device.emulation import EdaBand, MuseHeadset, VirtualRadio
from affectstream.errors import ConfigError

from ._decode import MalformedError, decode_eda, decode_muse_eeg, muse_command, wait_until

RATE = 64


async def _stream_eda(
    radio: VirtualRadio, band: EdaBand
) -> tuple[BleakClient, list[bytes], list[float]]:
    await radio.add(band)
    packets: list[bytes] = []
    arrivals: list[float] = []
    loop = asyncio.get_running_loop()

    def on_packet(_c: object, data: bytearray) -> None:
        packets.append(bytes(data))
        arrivals.append(loop.time())

    client = BleakClient(band.address, **radio.client_kwargs())
    await client.connect()
    await client.start_notify(gatt.EDA_MEASUREMENT, on_packet)
    await client.write_gatt_char(gatt.EDA_CONTROL, b"\x01", response=True)
    await wait_until(lambda: len(packets) >= 4)
    return client, packets, arrivals


def _first_indices(packets: list[bytes]) -> np.ndarray:
    sequences = np.array([decode_eda(p)[1] for p in packets])
    return np.concatenate([[sequences[0]], sequences[0] + np.cumsum(np.diff(sequences) % 65536)])


async def test_stall_that_drops_makes_a_counter_gap_equal_to_the_loss(
    radio: VirtualRadio,
) -> None:
    band = EdaBand(rate=RATE, speed=4.0)
    client, packets, _ = await _stream_eda(radio, band)
    band.stall(0.3, drop=True)
    n = len(packets)
    await wait_until(lambda: len(packets) >= n + 12)
    lost = band.lost_samples("eda")
    indices = band.sent_indices("eda")
    await client.disconnect()
    jumps = np.diff(indices)
    assert lost > 0 and int(np.sum(jumps - 1)) == lost
    # The jump is visible on the wire: sequences step by more than one packet once.
    spp = len(decode_eda(packets[0])[2])
    steps = np.diff(_first_indices(packets))
    assert np.count_nonzero(steps != spp) == 1 and steps.max() == spp + lost


async def test_stall_that_buffers_delays_but_loses_nothing(radio: VirtualRadio) -> None:
    band = EdaBand(rate=RATE, speed=4.0)
    client, packets, arrivals = await _stream_eda(radio, band)
    band.stall(0.3, drop=False)
    n = len(packets)
    await wait_until(lambda: len(packets) >= n + 12)
    await client.disconnect()
    assert band.lost_samples("eda") == 0
    assert np.all(np.diff(band.sent_indices("eda")) == 1)
    # Delivery was held back: one silence at least as long as most of the stall.
    assert np.max(np.diff(arrivals)) > 0.2


async def test_skip_samples_drops_whole_packets(radio: VirtualRadio) -> None:
    band = EdaBand(rate=RATE, speed=4.0)
    client, packets, _ = await _stream_eda(radio, band)
    spp = len(decode_eda(packets[0])[2])
    band.skip_samples("eda", spp + 1)  # more than one packet: two are dropped
    n = len(packets)
    await wait_until(lambda: len(packets) >= n + 5)
    await client.disconnect()
    assert band.lost_samples("eda") == 2 * spp
    steps = np.diff(_first_indices(packets))
    assert sorted(set(steps.tolist())) == [spp, 3 * spp]
    with pytest.raises(ConfigError, match="kinds are"):
        band.skip_samples("ecg", 3)


async def test_malformed_packets_are_interleaved_without_losing_data(
    radio: VirtualRadio,
) -> None:
    band = EdaBand(rate=RATE, speed=4.0)
    client, packets, _ = await _stream_eda(radio, band)
    band.send_malformed(3)
    n = len(packets)
    await wait_until(lambda: len(packets) >= n + 8)
    await client.disconnect()
    good, bad = [], 0
    for packet in packets:
        try:
            good.append(decode_eda(packet)[2])
        except MalformedError:
            bad += 1
    assert bad == band.malformed_sent == 3
    values = np.concatenate(good)
    np.testing.assert_array_equal(values, band.sent_samples("eda")[: len(values), 0])
    assert band.lost_samples("eda") == 0


async def test_muse_link_loss_then_restart_reports_the_gap(radio: VirtualRadio) -> None:
    muse = MuseHeadset(speed=1.0)
    await radio.add(muse)
    tp9: list[bytes] = []
    client = BleakClient(muse.address, **radio.client_kwargs())

    async def start() -> None:
        await client.connect()
        await client.start_notify(gatt.MUSE_EEG["TP9"], lambda _c, d: tp9.append(bytes(d)))
        for uuid in list(gatt.MUSE_EEG.values())[1:4]:
            await client.start_notify(uuid, lambda _c, _d: None)
        await client.write_gatt_char(gatt.MUSE_CONTROL, muse_command("d"), response=False)
        n = len(tp9)
        await wait_until(lambda: len(tp9) >= n + 5)

    await start()
    await muse.link_loss()
    await wait_until(lambda: not client.is_connected)
    await asyncio.sleep(0.1)  # the headset's clock runs on while nobody listens
    await start()
    indices = muse.sent_indices("eeg")
    lost = muse.lost_samples("eeg")
    await client.disconnect()
    counters = np.array([decode_muse_eeg(p)[0] for p in tp9])
    steps = np.diff(counters)
    assert np.count_nonzero(steps != 1) == 1
    # The headset counts a packet counter as lost unless all four channels went out: when
    # the link fell between TP9's packet and the others' (a loaded machine), TP9's last
    # counter before the jump is one the headset reports lost too.
    last_before = int(counters[int(np.flatnonzero(steps != 1)[0])])
    cut = 0 if last_before * 12 in set(indices.tolist()) else 1
    assert (int(np.sum(steps - 1)) + cut) * 12 == lost == int(np.sum(np.diff(indices) - 1)) > 0


async def test_clock_drift_runs_the_sample_clock_fast(radio: VirtualRadio) -> None:
    drift_ppm = 100_000.0  # exaggerated (10 %) so a short run shows it
    band = EdaBand(rate=RATE, speed=4.0, drift_ppm=drift_ppm, max_mtu=23)
    await radio.add(band)
    packets: list[bytes] = []
    arrivals: list[float] = []

    def on_packet(_c: object, data: bytearray) -> None:
        packets.append(bytes(data))
        arrivals.append(time.time())

    async with BleakClient(band.address, **radio.client_kwargs()) as client:
        await client.start_notify(gatt.EDA_MEASUREMENT, on_packet)
        await client.write_gatt_char(gatt.EDA_CONTROL, b"\x01", response=True)
        await wait_until(lambda: len(arrivals) > 1 and arrivals[-1] - arrivals[0] > 3.0)
    spp = len(decode_eda(packets[0])[2])
    last_sample = _first_indices(packets) + spp - 1
    # When each packet's last sample was taken, on the host clock, per the drifted clock.
    taken = band.host_time_of(last_sample / RATE)
    delay = np.asarray(arrivals) - taken
    # Causality: nothing arrives before it was measured (small slack for clock reads).
    assert delay.min() > -0.005
    # And packets keep up with the fast clock: some recent ones arrive promptly. A device
    # ignoring its drift would lag by drift * elapsed device time at the end.
    elapsed = (last_sample[-1] - last_sample[0]) / RATE
    lag_without_drift = elapsed * drift_ppm * 1e-6 / band.clock_rate
    assert lag_without_drift > 0.25
    assert np.min(delay[-20:]) < lag_without_drift / 2
    # host_time_of inverts the device clock.
    t = band.host_time_of(np.array([band.uptime, band.uptime + 10.0]))
    assert np.isclose(t[1] - t[0], 10.0 / (band.speed * (1 + drift_ppm * 1e-6)))
