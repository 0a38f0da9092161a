"""Benchmark of the emulated BLE stack: start-up cost and CPU use while streaming.

``run_benchmark`` returns a JSON-able dict (for an ``affectstream bench`` sub-command);
it measures, never asserts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from bleak import BleakClient

from affectstream.device import eda_band, ganglion, gatt, muse, polar
from affectstream.device.emulation.factory import make_emulated
from affectstream.device.emulation.peripheral import EmulatedPeripheral
from affectstream.device.emulation.radio import VirtualRadio


async def _start(client: BleakClient, peripheral: EmulatedPeripheral) -> None:
    """Send the profile's start command (the device layer's job; minimal here)."""
    if peripheral.profile == "polar":
        await client.write_gatt_char(gatt.PMD_CONTROL, polar.start_request(), response=True)
    elif peripheral.profile == "eda":
        start = bytes([eda_band.CONTROL_START])
        await client.write_gatt_char(gatt.EDA_CONTROL, start, response=True)
    elif peripheral.profile == "muse":
        for command in ("p20", "d"):
            await client.write_gatt_char(gatt.MUSE_CONTROL, muse.encode_command(command), False)
    elif peripheral.profile == "ganglion":
        await client.write_gatt_char(gatt.GANGLION_SEND, ganglion.CMD_START, response=False)


async def run_benchmark(
    kinds: Sequence[str] | str = "hr,polar,eda,muse,ganglion",
    *,
    duration: float = 5.0,
    speed: float = 1.0,
) -> dict[str, Any]:
    """Stream emulated devices through bleak and measure the cost.

    Parameters
    ----------
    kinds : sequence of str or str
        Profiles to emulate (see :func:`make_emulated`).
    duration : float
        Host seconds to stream.
    speed : float
        Device clock speed factor.

    Returns
    -------
    dict
        ``startup_s`` (construct and power on each device), ``connect_s``, CPU fraction of
        one core while streaming, notifications per second and samples per stream kind.
    """
    async with VirtualRadio() as radio:
        t0 = time.perf_counter()
        devices = make_emulated(kinds, speed=speed)
        for device in devices:
            await radio.add(device)
        startup = time.perf_counter() - t0
        notifications = {d.name: 0 for d in devices}
        clients: list[BleakClient] = []
        t0 = time.perf_counter()
        for device in devices:
            client = BleakClient(device.address, **radio.client_kwargs())
            await client.connect()
            clients.append(client)

            def count(_c: object, _d: bytearray, name: str = device.name) -> None:
                notifications[name] += 1

            for char in client.services.characteristics.values():
                if char.service_uuid == device.service_uuid and {"notify", "indicate"} & set(
                    char.properties
                ):
                    await client.start_notify(char, count)
            await _start(client, device)
        connect = time.perf_counter() - t0
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(duration)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        for client in clients:
            await client.disconnect()
        return {
            "devices": [d.profile for d in devices],
            "speed": speed,
            "duration_s": round(wall, 3),
            "startup_s": round(startup, 4),
            "connect_s": round(connect, 4),
            "cpu_fraction_of_one_core": round(cpu / wall, 4),
            "notifications_per_s": {k: round(v / wall, 1) for k, v in notifications.items()},
            "samples": {
                d.name: {k: len(d.sent_indices(k)) for k in d.kinds if len(d.sent_indices(k))}
                for d in devices
            },
        }
