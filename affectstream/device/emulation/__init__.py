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

Guarantees and limits:

- Each peripheral records what it delivered per stream kind (``sent_samples``,
  ``sent_indices``) in canonical units, quantised exactly as on the wire, and counts what
  it generated but did not deliver (``lost_samples``); device counters follow the device
  clock, so a counter gap equals the samples lost.
- Each emulator module is its protocol's encoder side (``encode_heart_rate``,
  ``encode_ecg_frame``, ``encode_eda``, ``pack_eeg``/``encode_reply``, ``pack_deltas``),
  written from the protocol documents with its own constants rather than from the
  decoders in :mod:`affectstream.device`, so a round trip checks one side against the
  other; the decoder tests also keep hand-written byte vectors, deliberately independent
  of both.
- Delivery is lossless unless a fault is injected (``disconnect``, ``link_loss``,
  ``stall``, ``skip_samples``, ``send_malformed``, a small ``max_mtu``).
- Throughput: the userspace stack carries roughly 500-1000 notifications per second per
  process. All four wearables at ``speed=1`` use under 10 % of one core (a Muse alone sends
  about 110 notifications/s); faster ``speed`` values are throttled by back-pressure
  (samples are delayed, never lost), so keep ``speed`` <= 4 when a Muse streams.
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
