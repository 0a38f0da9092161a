"""Emulated BLE peripherals and a bleak backend over bumble's userspace BLE stack.

Everything runs in one asyncio process: a :class:`VirtualRadio` owns an in-memory bumble
link; emulated peripherals are bumble GATT servers on it; bleak talks to them through the
:class:`BumbleClientBackend` / :class:`BumbleScannerBackend` (bleak's ``backend=`` seam), so
ingestion code runs unchanged against emulated and real devices::

    async with VirtualRadio() as radio:
        for device in make_emulated("hr,polar,eda,muse", speed=1.0):
            await radio.add(device)
        async with BleakClient(device.address, **radio.client_kwargs()) as client:
            ...
"""

from affectstream.device.emulation.backend import BumbleClientBackend, BumbleScannerBackend
from affectstream.device.emulation.eda import EdaBand
from affectstream.device.emulation.factory import ALL_PROFILES, EMULATED_PROFILES, make_emulated
from affectstream.device.emulation.ganglion import Ganglion
from affectstream.device.emulation.heart_rate import HeartRateStrap
from affectstream.device.emulation.muse import MuseHeadset
from affectstream.device.emulation.peripheral import EmulatedPeripheral
from affectstream.device.emulation.polar import PolarH10
from affectstream.device.emulation.radio import VirtualRadio
from affectstream.device.emulation.script import AffectScript, Phase

__all__ = [
    "ALL_PROFILES",
    "EMULATED_PROFILES",
    "AffectScript",
    "BumbleClientBackend",
    "BumbleScannerBackend",
    "EdaBand",
    "EmulatedPeripheral",
    "Ganglion",
    "HeartRateStrap",
    "MuseHeadset",
    "Phase",
    "PolarH10",
    "VirtualRadio",
    "make_emulated",
]
