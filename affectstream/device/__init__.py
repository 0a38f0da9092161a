"""BLE ingestion: device protocols, scanning, the connection supervisor and clock model.

One module per protocol, each with pure decoders from notification bytes, its
:class:`~affectstream.device.driver.ProfileDriver` (subscriptions, start/stop commands,
decoding into frames) and its ``PROFILE`` (what the device advertises and streams):
:mod:`~affectstream.device.heart_rate`, :mod:`~affectstream.device.polar`,
:mod:`~affectstream.device.muse`, :mod:`~affectstream.device.eda_band`,
:mod:`~affectstream.device.ganglion`. The driver base: :mod:`~affectstream.device.driver`;
the registry and matching: :mod:`~affectstream.device.profiles`. Live mapping of device
counters to host time: :class:`ClockModel`. Several devices at once with reconnects:
:class:`Supervisor`; per-stream gap accounting: :mod:`~affectstream.device.stream_state`;
per-device state (:class:`DeviceState`): :mod:`~affectstream.device.device_state`.
Emulated devices for demos and tests: :mod:`affectstream.device.emulation`.

The names below are imported lazily, so ``import affectstream.device`` stays cheap (bleak
and bumble load only when the supervisor is used).
"""

from __future__ import annotations

from affectstream._lazy import lazy_getattr

_EXPORTS = {
    "ClockModel": "affectstream.device.clock",
    "DeviceState": "affectstream.device.device_state",
    "DeviceTarget": "affectstream.device.device_state",
    "StreamStats": "affectstream.device.stream_state",
    "Supervisor": "affectstream.device.supervisor",
    "PROFILES": "affectstream.device.profiles",
    "Profile": "affectstream.device.driver",
    "ProfileDriver": "affectstream.device.driver",
    "get_profile": "affectstream.device.profiles",
    "match_profile": "affectstream.device.profiles",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS)
