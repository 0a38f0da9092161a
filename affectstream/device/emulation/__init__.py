"""Emulated BLE peripherals and a bleak backend over bumble's userspace BLE stack.

Everything runs in one asyncio process: a :class:`VirtualRadio` owns an in-memory bumble
link; emulated peripherals are bumble GATT servers on it; bleak talks to them through the
:class:`BumbleClientBackend` / :class:`BumbleScannerBackend` (bleak's ``backend=`` seam), so
ingestion code runs unchanged against emulated and real devices.
"""

from affectstream.device.emulation.backend import BumbleClientBackend, BumbleScannerBackend
from affectstream.device.emulation.heart_rate import HeartRateStrap
from affectstream.device.emulation.peripheral import EmulatedPeripheral
from affectstream.device.emulation.radio import VirtualRadio
from affectstream.device.emulation.script import AffectScript, Phase

__all__ = [
    "AffectScript",
    "BumbleClientBackend",
    "BumbleScannerBackend",
    "EmulatedPeripheral",
    "HeartRateStrap",
    "Phase",
    "VirtualRadio",
]
