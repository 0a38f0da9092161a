"""End to end over the emulated BLE stack: bleak -> bumble -> emulated GATT servers.

Nothing here is mocked: the supervisor uses ``bleak.BleakClient``/``BleakScanner`` with the
bumble backend, the peripherals are bumble GATT servers on an in-memory link.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from affectstream.device.emulation import VirtualRadio
from affectstream.device.emulation.eda import EdaBand
from affectstream.device.emulation.heart_rate import HeartRateStrap
from affectstream.device.emulation.muse import MuseHeadset
from affectstream.device.emulation.peripheral import TICK_S, EmulatedPeripheral
from affectstream.device.emulation.polar import PolarH10
from affectstream.device.supervisor import DeviceTarget, Supervisor
from affectstream.errors import DeviceNotFoundError

from ._e2e import (
    assert_matches_sent,
    drop_and_resume,
    partial_rows,
    received,
    record,
    wait_until,
)

SPEED = 4.0


def _make(profile: str, **kwargs: object) -> EmulatedPeripheral:
    classes: dict[str, type[EmulatedPeripheral]] = {
        "hr": HeartRateStrap,
        "polar": PolarH10,
        "eda": EdaBand,
        "muse": MuseHeadset,
    }
    return classes[profile](speed=SPEED, **kwargs)  # type: ignore[arg-type]


KINDS = {"hr": ["hr", "rr"], "polar": ["ecg"], "eda": ["eda"], "muse": ["eeg", "acc", "gyro"]}


async def _sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


async def _flowing(sup: Supervisor, devices: list[EmulatedPeripheral]) -> None:
    """Wait until every stream of ``devices`` has delivered samples (slow on a loaded
    machine), so that the time that follows is streaming time."""
    for p in devices:
        for kind in KINDS[p.profile]:
            stream = f"{p.name}/{kind}"

            def arrived(stream: str = stream) -> bool:
                return received(sup, stream) > 0

            await wait_until(arrived, f"first samples of {stream}")


@pytest.mark.parametrize("profile", sorted(KINDS))
async def test_profile_streams_what_the_emulator_sent(radio: VirtualRadio, profile: str) -> None:
    p = _make(profile)
    await radio.add(p)

    async def run(sup: Supervisor) -> None:
        await _flowing(sup, [p])
        await asyncio.sleep(1.2)

    rec = await record(radio, [p], run)
    for kind in KINDS[profile]:
        block = assert_matches_sent(rec, p, kind)
        assert len(block) > 0
        stats = rec.stats[f"{p.name}/{kind}"]
        assert stats.gap_samples == 0 and stats.malformed == 0 and stats.reconnects == 0
        # The emulator keeps sending until the supervisor stops, so samples sent after the
        # cutoff may or may not have arrived; all before it must have, and no more than sent.
        assert stats.samples_received == len(block)
        stream = f"{p.name}/{kind}"
        assert rec.cutoff[stream] <= stats.samples_received <= len(p.sent_samples(kind))


@pytest.mark.parametrize(
    ("profile", "kind"), [("eda", "eda"), ("polar", "ecg"), ("hr", "rr"), ("muse", "eeg")]
)
async def test_streaming_resumes_after_a_disconnect_and_the_gap_equals_the_loss(
    radio: VirtualRadio, profile: str, kind: str
) -> None:
    p = _make(profile)
    await radio.add(p)
    lost: dict[str, int] = {}

    async def run(sup: Supervisor) -> None:
        await drop_and_resume(sup, p, f"{p.name}/{kind}", p.disconnect, before=0.6, after=0.8)
        lost[kind] = p.lost_samples(kind)

    rec = await record(radio, [p], run)
    stats = rec.stats[f"{p.name}/{kind}"]
    assert stats.reconnects == 1
    block = assert_matches_sent(rec, p, kind)
    if block.sfreq is not None:
        partial = int(partial_rows(block).sum())
        assert stats.gap_samples + partial == lost[kind] > 0
        assert [g.reason for g in block.gaps] == ["disconnect"]
        assert sum(g.n_samples for g in block.gaps) == stats.gap_samples
    else:  # event stream without a counter: the gap is known in time only
        assert [g.reason for g in block.gaps] == ["disconnect"]
    assert stats.samples_received + stats.gap_samples == stats.samples_expected


async def test_link_loss_while_out_of_range(radio: VirtualRadio) -> None:
    p = _make("eda")
    await radio.add(p)
    lost = 0

    async def run(sup: Supervisor) -> None:
        nonlocal lost

        async def out_of_range() -> None:
            await p.link_loss(out_of_range=0.5)

        await drop_and_resume(sup, p, f"{p.name}/eda", out_of_range, before=0.5, after=0.5)
        lost = p.lost_samples("eda")

    rec = await record(radio, [p], run)
    assert_matches_sent(rec, p, "eda")
    stats = rec.stats[f"{p.name}/eda"]
    assert stats.reconnects >= 1
    assert stats.gap_samples == lost > 0


async def test_counter_gaps_and_malformed_packets_are_not_fatal(radio: VirtualRadio) -> None:
    p = _make("eda")
    await radio.add(p)
    lost = 0

    async def run(_sup: Supervisor) -> None:
        nonlocal lost
        await asyncio.sleep(0.4)
        p.skip_samples("eda", 12)
        p.send_malformed(3)
        await asyncio.sleep(0.6)
        lost = p.lost_samples("eda")

    rec = await record(radio, [p], run)
    block = assert_matches_sent(rec, p, "eda")
    stats = rec.stats[f"{p.name}/eda"]
    assert stats.malformed == p.malformed_sent == 3
    assert stats.gap_samples == lost >= 12
    assert [g.reason for g in block.gaps] == ["counter_jump"]
    assert stats.samples_received + stats.gap_samples == stats.samples_expected


async def test_several_devices_at_once(radio: VirtualRadio) -> None:
    devices = [
        _make("hr"),
        _make("polar"),
        _make("eda"),
        _make("eda", name="AS-EDA-0002"),
        _make("muse"),
    ]
    for p in devices:
        await radio.add(p)

    async def run(sup: Supervisor) -> None:
        await _flowing(sup, devices)
        await asyncio.sleep(1.0)

    rec = await record(radio, devices, run)
    for p in devices:
        for kind in KINDS[p.profile]:
            assert len(assert_matches_sent(rec, p, kind)) > 0


async def test_device_found_by_name_and_profile_by_advertisement(radio: VirtualRadio) -> None:
    p = _make("eda")
    await radio.add(p)
    blocks = []
    async with Supervisor(
        [p.name],
        on_block=blocks.append,
        client_kwargs=radio.client_kwargs(),
        scanner_kwargs=radio.scanner_kwargs(),
        scan_timeout=3.0,
    ) as sup:
        await wait_until(lambda: bool(blocks), f"a block from {p.name}")
        assert sup.device_names() == [p.name]
    assert blocks and blocks[0].stream == f"{p.name}/eda"


async def test_absent_device_is_a_typed_error_with_advice(radio: VirtualRadio) -> None:
    with pytest.raises(DeviceNotFoundError, match="in range"):
        await Supervisor(
            [DeviceTarget("C0:A5:EE:00:00:99", profile="hr")],
            client_kwargs=radio.client_kwargs(),
            connect_timeout=1.0,
        ).start()
    with pytest.raises(DeviceNotFoundError, match="affectstream scan"):
        await Supervisor(
            ["AS-EDA-NOPE"], scanner_kwargs=radio.scanner_kwargs(), scan_timeout=0.3
        ).start()


async def test_timestamps_follow_the_device_clock(radio: VirtualRadio) -> None:
    """At real speed the timestamps do not jitter with delivery.

    Arrivals only add delay, so the fitted line is never earlier than the true sample time
    by more than the drift accumulated over the run (the slope stays nominal until the
    clock model has a third of its window). Live, the line is the lowest envelope seen so
    far: each timestamp carries the smallest latency observed up to then, so the error never
    grows when a packet comes late (up to the drift), it only shrinks as earlier-arriving
    packets show up. The bound on the settled error is in tests/device/test_clock.py.
    """
    drift_ppm = 50.0
    p = EdaBand(speed=1.0, drift_ppm=drift_ppm, rate=64)
    await radio.add(p)
    duration = 1.5

    async def run(_sup: Supervisor) -> None:
        await asyncio.sleep(duration)

    rec = await record(radio, [p], run)
    block = assert_matches_sent(rec, p, "eda")
    device_index = p.sent_indices("eda")[0] + (block.index - block.index[0])
    true = np.asarray(p.host_time_of(device_index / 64.0))
    error = block.t - true
    drift_slack = drift_ppm * 1e-6 * (duration + 1.0)
    assert error.min() >= -drift_slack
    assert np.all(np.diff(error) <= drift_slack)
    # The emulator sends on 20 ms ticks: delivery jitters by about a tick, timestamps don't.
    assert error[-1] <= error[0] + drift_slack
    assert np.ptp(error[len(error) // 2 :]) < TICK_S


async def test_profile_options_reach_the_device(radio: VirtualRadio) -> None:
    """EDA rate written through EDA Config; Muse AUX through preset p20."""
    band = EdaBand(speed=SPEED)
    headset = MuseHeadset(speed=SPEED)
    for p in (band, headset):
        await radio.add(p)
    blocks: list = []
    targets = [
        DeviceTarget(band.address, profile="eda", name=band.name, options={"rate": 64}),
        DeviceTarget(headset.address, profile="muse", name=headset.name, options={"aux": True}),
    ]
    async with Supervisor(targets, on_block=blocks.append, client_kwargs=radio.client_kwargs()):
        await asyncio.sleep(0.6)
    assert band.rate == 64
    eda = [b for b in blocks if b.stream.endswith("/eda")]
    assert eda and eda[0].sfreq == 64
    eeg = [b for b in blocks if b.stream.endswith("/eeg")]
    assert eeg[0].channels == ("TP9", "AF7", "AF8", "TP10", "AUX")
    assert "p20" in headset.commands_received
    assert not np.isnan(np.concatenate([b.values for b in eeg])).any()


async def test_polar_error_status_is_reported_by_name(radio: VirtualRadio) -> None:
    """The emulated strap refuses 250 Hz; the response parser names the status."""
    from bleak import BleakClient

    from affectstream.device import gatt, polar
    from affectstream.errors import ProtocolError

    strap = PolarH10(speed=SPEED)
    await radio.add(strap)
    answers: asyncio.Queue[bytes] = asyncio.Queue()
    async with BleakClient(strap.address, **radio.client_kwargs()) as client:
        await client.start_notify(gatt.PMD_CONTROL, lambda _c, d: answers.put_nowait(bytes(d)))
        await client.write_gatt_char(gatt.PMD_CONTROL, polar.start_request(sample_rate=250), True)
        answer = await asyncio.wait_for(answers.get(), 2.0)
        with pytest.raises(ProtocolError, match="ERROR_INVALID_SAMPLE_RATE"):
            polar.check_response(answer, polar.OP_START)
        assert polar.parse_features(await client.read_gatt_char(gatt.PMD_CONTROL)) >= {"ECG"}


async def test_eda_band_rejects_an_invalid_rate_with_att_error_0x80(radio: VirtualRadio) -> None:
    from bleak import BleakClient
    from bleak.exc import BleakGATTProtocolError

    from affectstream.device import eda_band, gatt

    band = EdaBand(speed=SPEED)
    await radio.add(band)
    async with BleakClient(band.address, **radio.client_kwargs()) as client:
        with pytest.raises(BleakGATTProtocolError) as info:
            await client.write_gatt_char(gatt.EDA_CONFIG, (100).to_bytes(2, "little"), True)
        assert info.value.code == eda_band.ATT_ERROR_INVALID_RATE
        await client.write_gatt_char(gatt.EDA_CONFIG, eda_band.encode_rate(128), True)
        assert eda_band.decode_rate(await client.read_gatt_char(gatt.EDA_CONFIG)) == 128


# Samples per full turn of the 16-bit counter and the sample rate.
WRAPS = [("eda", "eda", 65536, 32.0), ("muse", "eeg", 65536 * 12, 256.0)]


@pytest.mark.parametrize(("profile", "kind", "turn", "rate"), WRAPS)
async def test_counter_wraps_during_streaming_and_across_a_disconnect(
    radio: VirtualRadio, profile: str, kind: str, turn: int, rate: float
) -> None:
    """A device on for almost a counter period wraps its 16-bit counter while we stream:
    the wrap adds no gap; the disconnect's real loss is still counted exactly."""
    p = _make(profile, uptime=turn / rate - 2.0)  # 2 device seconds (0.5 s here) to the wrap
    await radio.add(p)
    lost = 0

    async def run(sup: Supervisor) -> None:
        nonlocal lost
        await asyncio.sleep(0.8)
        await p.disconnect()
        for _ in range(100):
            await asyncio.sleep(0.05)
            if sup.stats()[f"{p.name}/{kind}"].reconnects and p.is_connected:
                break
        await asyncio.sleep(0.3)
        lost = p.lost_samples(kind)

    rec = await record(radio, [p], run)
    assert_matches_sent(rec, p, kind)
    sent = p.sent_indices(kind)
    assert sent[0] < turn <= sent[-1]  # the counter wrapped while we recorded
    block = rec.stream(f"{p.name}/{kind}")
    stats = rec.stats[f"{p.name}/{kind}"]
    assert stats.gap_samples + int(partial_rows(block).sum()) == lost > 0


async def test_saturated_eda_samples_become_saturated_gaps(radio: VirtualRadio) -> None:
    """Samples the band sends as 0xFFFFFF are NaN rows inside ``"saturated"`` gaps, counted
    as received (not lost)."""

    def threshold(start: float) -> float:
        """Midway in the band's signal over 5 device seconds from ``start``: some samples
        above, some below (the signal is deterministic, a fresh band previews it)."""
        preview = EdaBand().generator.samples_at(start + np.arange(0, 5 * 32) / 32)
        return float(preview.min() + preview.max()) / 2

    p = _make("eda", rate=32, saturate_above_us=threshold(0.0))
    await radio.add(p)

    async def run(sup: Supervisor) -> None:
        # Streaming starts later on a loaded machine, where the signal may lie all above
        # (or below) the first threshold: move it to the part that will be streamed.
        await _flowing(sup, [p])
        p.saturate_above_us = threshold(p.device_time())
        mark = len(p.sent_indices("eda"))

        def both_sent() -> bool:
            recent = np.isnan(p.sent_samples("eda")[mark:, 0])
            return bool(recent.any() and not recent.all())

        await wait_until(both_sent, "saturated and valid samples sent")
        await asyncio.sleep(0.3)

    rec = await record(radio, [p], run)
    block = assert_matches_sent(rec, p, "eda")
    stats = rec.stats[f"{p.name}/eda"]
    sent = p.sent_samples("eda")[:, 0]
    # Device index of each received row, aligned with the emulator's indices.
    device_index = p.sent_indices("eda")[0] + (block.index - block.index[0])
    sent_at = dict(zip(p.sent_indices("eda").tolist(), sent.tolist(), strict=True))
    expected = {
        int(i) for i, d in zip(block.index, device_index, strict=True) if np.isnan(sent_at[int(d)])
    }
    assert 0 < len(expected) < len(block), "the emulator must send saturated and valid samples"

    saturated = [g for g in block.gaps if g.reason == "saturated"]
    assert [g for g in block.gaps if g.reason != "saturated"] == []
    covered = [i for g in saturated for i in range(g.first_index, g.first_index + g.n_samples)]
    assert len(covered) == len(set(covered)) and set(covered) == expected
    row = {int(i): k for k, i in enumerate(block.index)}
    for gap in saturated:
        assert gap.t_start == block.t[row[gap.first_index]]
        assert gap.t_end == block.t[row[gap.first_index + gap.n_samples - 1]]
    assert np.isnan(block.values[[row[i] for i in expected]]).all()
    assert stats.saturated_samples == len(expected) and stats.gap_samples == 0
    assert stats.samples_received == len(block)
    assert stats.samples_received + stats.gap_samples == stats.samples_expected
