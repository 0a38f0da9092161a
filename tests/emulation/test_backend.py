"""The bleak backend over bumble, exercised through plain bleak against a HeartRateStrap."""

from __future__ import annotations

import asyncio
import struct

import numpy as np
import pytest
from bleak import BleakClient, BleakScanner
from bleak.exc import BleakDeviceNotFoundError, BleakError

from affectstream.device import gatt
from affectstream.device.emulation import HeartRateStrap, VirtualRadio
from affectstream.device.emulation.backend import BumbleClientBackend

SERVICE_CHANGED = gatt.sig_uuid(0x2A05)
CLIENT_SUPPORTED_FEATURES = gatt.sig_uuid(0x2B29)
CCCD = gatt.sig_uuid(0x2902)


def decode_hr(packet: bytes) -> tuple[int, list[int]]:
    """Minimal local Heart Rate Measurement decoder: (bpm, raw RR values in 1/1024 s)."""
    flags = packet[0]
    offset = 1
    if flags & 0x01:
        (bpm,) = struct.unpack_from("<H", packet, offset)
        offset += 2
    else:
        bpm = packet[offset]
        offset += 1
    if flags & 0x08:
        offset += 2
    rr = list(struct.unpack_from(f"<{(len(packet) - offset) // 2}H", packet, offset))
    return bpm, rr if flags & 0x10 else []


async def wait_until(predicate: object, timeout: float = 60.0) -> None:
    """Poll ``predicate()`` until true; fail the test after ``timeout`` s (a hang guard)."""
    async with asyncio.timeout(timeout):
        while not predicate():  # type: ignore[operator]
            await asyncio.sleep(0.01)


async def test_discover_by_name_service_and_address(radio: VirtualRadio) -> None:
    straps = [HeartRateStrap("Strap A"), HeartRateStrap("Strap B", seed=1)]
    for strap in straps:
        await radio.add(strap)

    found = await BleakScanner.discover(
        timeout=0.3,
        return_adv=True,
        service_uuids=[gatt.HEART_RATE_SERVICE],
        **radio.scanner_kwargs(),
    )
    assert set(found) == {s.address for s in straps}
    for strap in straps:
        device, adv = found[strap.address]
        assert device.name == strap.name == adv.local_name
        assert gatt.HEART_RATE_SERVICE in adv.service_uuids
        assert isinstance(adv.rssi, int) and adv.rssi < 0

    # A service filter that matches nothing returns nothing.
    none = await BleakScanner.discover(
        timeout=0.2, service_uuids=[gatt.PMD_SERVICE], **radio.scanner_kwargs()
    )
    assert none == []

    by_name = await BleakScanner.find_device_by_name("Strap B", 2.0, **radio.scanner_kwargs())
    assert by_name is not None and by_name.address == straps[1].address
    by_address = await BleakScanner.find_device_by_address(
        straps[0].address, 2.0, **radio.scanner_kwargs()
    )
    assert by_address is not None and by_address.name == "Strap A"


async def test_connect_read_write_and_notify(radio: VirtualRadio) -> None:
    strap = HeartRateStrap(speed=20.0)
    await radio.add(strap)
    packets: list[bytes] = []
    async with BleakClient(strap.address, **radio.client_kwargs()) as client:
        assert client.is_connected
        assert client.name == strap.name
        assert client.services.get_service(gatt.HEART_RATE_SERVICE) is not None
        char = client.services.get_characteristic(gatt.HEART_RATE_MEASUREMENT)
        assert char is not None and char.properties == ["notify"]
        assert char.get_descriptor(CCCD) is not None
        assert await client.read_gatt_char(gatt.BODY_SENSOR_LOCATION) == bytearray([1])
        level = await client.read_gatt_char(gatt.BATTERY_LEVEL)
        assert level[0] == strap.battery_level()
        # A plain read/write characteristic of the GATT service: write then read back.
        await client.write_gatt_char(CLIENT_SUPPORTED_FEATURES, b"\x01", response=True)
        assert await client.read_gatt_char(CLIENT_SUPPORTED_FEATURES) == bytearray(b"\x01")

        await client.start_notify(char, lambda _c, data: packets.append(bytes(data)))
        await wait_until(lambda: len(packets) >= 8)
        await client.stop_notify(char)
        n_at_stop = len(packets)
        await asyncio.sleep(0.3)  # 6 device seconds: a notification would have come
        assert len(packets) == n_at_stop

    decoded = [decode_hr(p) for p in packets]
    hr = np.array([bpm for bpm, _ in decoded], dtype=float)
    rr_ms = np.array([r for _, rr in decoded for r in rr], dtype=float) * 1000.0 / 1024.0
    # Received exactly what the strap says it sent, in order.
    np.testing.assert_array_equal(hr, strap.sent_samples("hr")[: len(hr), 0])
    np.testing.assert_array_equal(rr_ms, strap.sent_samples("rr")[: len(rr_ms), 0])
    assert strap.sent_samples("hr").shape[0] == len(packets)


async def test_indication_subscription(radio: VirtualRadio) -> None:
    """Service Changed is indicate-only: start_notify must enable indications (0x0002)."""
    strap = HeartRateStrap()
    await radio.add(strap)
    async with BleakClient(strap.address, **radio.client_kwargs()) as client:
        char = client.services.get_characteristic(SERVICE_CHANGED)
        assert char is not None and char.properties == ["indicate"]
        await client.start_notify(char, lambda _c, _d: None)
        cccd = char.get_descriptor(CCCD)
        assert cccd is not None
        assert await client.read_gatt_descriptor(cccd.handle) == bytearray(b"\x02\x00")
        await client.stop_notify(char)
        assert await client.read_gatt_descriptor(cccd.handle) == bytearray(b"\x00\x00")


@pytest.mark.parametrize(
    ("peripheral_max", "client_mtu", "expected"),
    [(23, 517, 23), (100, 517, 100), (247, 64, 64)],
)
async def test_mtu_is_the_smaller_of_both_sides(
    radio: VirtualRadio, peripheral_max: int, client_mtu: int, expected: int
) -> None:
    strap = HeartRateStrap(max_mtu=peripheral_max)
    await radio.add(strap)
    async with BleakClient(strap.address, **radio.client_kwargs(mtu=client_mtu)) as client:
        assert client.mtu_size == expected
        assert strap.mtu == expected
        char = client.services.get_characteristic(gatt.HEART_RATE_MEASUREMENT)
        assert char is not None and char.max_write_without_response_size == expected - 3


@pytest.mark.parametrize("how", ["peripheral", "link_loss"])
async def test_unsolicited_disconnect_fires_callback(radio: VirtualRadio, how: str) -> None:
    strap = HeartRateStrap()
    await radio.add(strap)
    fired = asyncio.Event()
    client = BleakClient(
        strap.address, disconnected_callback=lambda _c: fired.set(), **radio.client_kwargs()
    )
    await client.connect()
    await wait_until(lambda: strap.is_connected)
    if how == "peripheral":
        await strap.disconnect()
    else:
        await strap.link_loss()
    async with asyncio.timeout(5):
        await fired.wait()
    assert not client.is_connected
    with pytest.raises(BleakError):
        await client.read_gatt_char(gatt.BODY_SENSOR_LOCATION)
    # The strap advertises again: the same client object reconnects.
    await client.connect()
    assert client.is_connected
    await client.disconnect()


async def test_client_disconnect_does_not_fire_callback(radio: VirtualRadio) -> None:
    strap = HeartRateStrap()
    await radio.add(strap)
    calls: list[object] = []
    client = BleakClient(strap.address, disconnected_callback=calls.append, **radio.client_kwargs())
    await client.connect()
    await client.disconnect()
    await wait_until(lambda: not strap.is_connected)
    await asyncio.sleep(0.05)  # give a wrongly scheduled callback the chance to run
    assert not client.is_connected
    assert calls == []


async def test_absent_address_fails_with_clear_error(radio: VirtualRadio) -> None:
    # The hang guard is generous; the radio's connect_timeout (0.5 s) ends the attempt.
    async with asyncio.timeout(radio.connect_timeout + 10):
        with pytest.raises(BleakDeviceNotFoundError, match="C0:FF:FF:00:00:01"):
            async with BleakClient("C0:FF:FF:00:00:01", **radio.client_kwargs()):
                pass


async def test_malformed_address_is_a_clear_error(radio: VirtualRadio) -> None:
    with pytest.raises(BleakDeviceNotFoundError, match="not a BLE address"):
        await BleakClient("polar-h10", **radio.client_kwargs()).connect()


async def test_out_of_range_link_loss_then_reconnect_reports_the_gap(
    radio: VirtualRadio,
) -> None:
    strap = HeartRateStrap(speed=20.0)
    await radio.add(strap)
    packets: list[bytes] = []

    def on_packet(_c: object, data: bytearray) -> None:
        packets.append(bytes(data))

    client = BleakClient(strap.address, **radio.client_kwargs())
    await client.connect()
    await client.start_notify(gatt.HEART_RATE_MEASUREMENT, on_packet)
    await wait_until(lambda: len(strap.sent_indices("rr")) >= 5)
    # Out of range far longer than the radio's connect timeout (0.5 s), so the attempt
    # below fails even on a loaded machine.
    loss = asyncio.create_task(strap.link_loss(out_of_range=2.0))
    await wait_until(lambda: not client.is_connected)
    with pytest.raises(BleakDeviceNotFoundError):
        await client.connect()  # still out of range: no advertisement answers
    await loss
    await client.connect()
    await client.start_notify(gatt.HEART_RATE_MEASUREMENT, on_packet)
    n_before = len(packets)
    await wait_until(lambda: len(packets) >= n_before + 3)
    # Snapshot while streaming (no await in between, so both views agree).
    indices = strap.sent_indices("rr")
    lost = strap.lost_samples("rr")
    await client.disconnect()
    received_rr = np.array([r for p in packets for r in decode_hr(p)[1]]) * 1000.0 / 1024.0

    jumps = np.diff(indices)
    assert np.all(jumps >= 1)
    # The beats generated while away are exactly the counter gap, and are reported lost.
    gap = int(np.sum(jumps - 1))
    assert gap > 0
    assert gap == lost
    # What arrived is what was sent, in order, across the reconnection.
    assert 0 < len(received_rr) <= len(indices)
    np.testing.assert_array_equal(received_rr, strap.sent_samples("rr")[: len(received_rr), 0])


async def test_several_clients_and_peripherals_at_once(radio: VirtualRadio) -> None:
    straps = [HeartRateStrap(f"Strap {i}", seed=i, speed=20.0) for i in range(3)]
    for strap in straps:
        await radio.add(strap)
    received: dict[str, list[bytes]] = {s.address: [] for s in straps}
    clients = [BleakClient(s.address, **radio.client_kwargs()) for s in straps]
    await asyncio.gather(*(c.connect() for c in clients))
    for client, strap in zip(clients, straps, strict=True):
        sink = received[strap.address]
        await client.start_notify(
            gatt.HEART_RATE_MEASUREMENT, lambda _c, d, sink=sink: sink.append(bytes(d))
        )
    await wait_until(lambda: all(len(v) >= 4 for v in received.values()))
    await asyncio.gather(*(c.disconnect() for c in clients))
    for strap in straps:
        hr = [decode_hr(p)[0] for p in received[strap.address]]
        np.testing.assert_array_equal(hr, strap.sent_samples("hr")[: len(hr), 0])
    # Different seeds: different hearts.
    assert not np.array_equal(straps[0].sent_samples("rr")[:3], straps[1].sent_samples("rr")[:3])


async def test_pairing_is_refused_clearly(radio: VirtualRadio) -> None:
    strap = HeartRateStrap()
    await radio.add(strap)
    async with BleakClient(strap.address, **radio.client_kwargs()) as client:
        with pytest.raises(NotImplementedError, match="not emulated"):
            await client.pair()
        with pytest.raises(NotImplementedError, match="not emulated"):
            await client.unpair()


async def test_backend_without_radio_is_a_clear_error() -> None:
    with pytest.raises(BleakError, match="radio=<VirtualRadio>"):
        BleakClient("C0:00:00:00:00:01", backend=BumbleClientBackend)


async def test_uint16_heart_rate_and_energy_expended(radio: VirtualRadio) -> None:
    strap = HeartRateStrap(hr_uint16=True, energy_expended=True, speed=20.0)
    await radio.add(strap)
    packets: list[bytes] = []
    async with BleakClient(strap.address, **radio.client_kwargs()) as client:
        await client.start_notify(
            gatt.HEART_RATE_MEASUREMENT, lambda _c, d: packets.append(bytes(d))
        )
        await wait_until(lambda: len(packets) >= 6)
    assert all(p[0] & 0x01 and p[0] & 0x08 and p[0] & 0x06 == 0x06 for p in packets)
    hr = [struct.unpack_from("<H", p, 1)[0] for p in packets]
    energy = [struct.unpack_from("<H", p, 3)[0] for p in packets]
    np.testing.assert_array_equal(hr, strap.sent_samples("hr")[: len(hr), 0])
    np.testing.assert_array_equal(energy, strap.sent_samples("energy")[: len(energy), 0])
    assert np.all(np.diff(energy) >= 0)  # cumulative
    rr = [r for p in packets for r in decode_hr(p)[1]]
    np.testing.assert_array_equal(
        np.array(rr) * 1000.0 / 1024.0, strap.sent_samples("rr")[: len(rr), 0]
    )
