"""Scripted faults on emulated devices, timed from when the session's devices stream.

Both schedules wait for :attr:`LiveSession.streaming <affectstream.runtime.session.
LiveSession.streaming>` (set once every device is connected and streaming) and count from
then, so a fault is never spent on a device that is still connecting (connecting several
devices takes seconds, more on a loaded machine).

- :func:`chaos` (``record --chaos``): malformed packets, one disconnect per device and one
  link loss, spread over the session.
- :func:`scripted_disconnects`: disconnects at given seconds per emulated profile (the demo
  and the service's emulated sessions), so a view's reconnect count is known in advance.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from affectstream.errors import ConfigError

if TYPE_CHECKING:
    from affectstream.device.emulation.peripheral import EmulatedPeripheral

logger = logging.getLogger(__name__)

#: Most disconnects one device may be scripted to make.
MAX_SCRIPTED_DISCONNECTS = 20


async def chaos(
    peripherals: Sequence[EmulatedPeripheral], duration: float, streaming: asyncio.Event
) -> dict[str, int]:
    """Inject malformed packets, one disconnect per device and one link loss.

    Parameters
    ----------
    peripherals : sequence of EmulatedPeripheral
        The emulated devices of the session.
    duration : float
        Seconds the faults are spread over, from when the devices stream.
    streaming : asyncio.Event
        Set when the devices stream (the schedule starts then).

    Returns
    -------
    dict of str to int
        ``disconnects``, ``link_losses`` and ``malformed_requested`` injected.
    """
    counts = {"disconnects": 0, "link_losses": 0, "malformed_requested": 0}
    await streaming.wait()
    start = time.monotonic()

    async def at(fraction: float) -> None:
        await asyncio.sleep(max(0.0, start + fraction * duration - time.monotonic()))

    await at(0.15)
    for p in peripherals:
        p.send_malformed(3)
        counts["malformed_requested"] += 3
    for i, p in enumerate(peripherals):
        await at(0.25 + 0.3 * i / max(1, len(peripherals)))
        if p.is_connected:
            await p.disconnect()
            counts["disconnects"] += 1
    await at(0.65)
    if peripherals and peripherals[0].is_connected:
        await peripherals[0].link_loss(out_of_range=min(1.0, 0.05 * duration))
        counts["link_losses"] += 1
    return counts


def check_disconnects(
    disconnects: Mapping[str, Sequence[float]], profiles: Sequence[str]
) -> dict[str, tuple[float, ...]]:
    """Validate a disconnect script: profile → seconds after streaming starts.

    Parameters
    ----------
    disconnects : mapping of str to sequence of float
        E.g. ``{"eda": [5, 12]}``: the EDA band drops its link 5 s and 12 s in.
    profiles : sequence of str
        Profiles of the session's emulated devices.

    Returns
    -------
    dict of str to tuple of float
        The script with sorted times.

    Raises
    ------
    ConfigError
        For an unknown profile, a time that is not a positive number, times closer than
        2 s (a reconnect takes about a second) or more than
        :data:`MAX_SCRIPTED_DISCONNECTS` per device.
    """
    out: dict[str, tuple[float, ...]] = {}
    for profile, times in disconnects.items():
        if profile not in profiles:
            raise ConfigError(
                f"Disconnects scripted for {profile!r}, which is not among the emulated "
                f"devices ({', '.join(profiles)})."
            )
        ordered = tuple(sorted(float(t) for t in times))
        if len(ordered) > MAX_SCRIPTED_DISCONNECTS:
            raise ConfigError(
                f"{len(ordered)} disconnects scripted for {profile!r}; at most "
                f"{MAX_SCRIPTED_DISCONNECTS}."
            )
        if any(not t > 0 for t in ordered):
            raise ConfigError(f"Disconnect times for {profile!r} must be seconds > 0.")
        if any(b - a < 2.0 for a, b in itertools.pairwise(ordered)):
            raise ConfigError(
                f"Disconnects of {profile!r} must be at least 2 s apart (a reconnect takes "
                "about a second)."
            )
        out[profile] = ordered
    return out


async def scripted_disconnects(
    peripherals: Sequence[EmulatedPeripheral],
    disconnects: Mapping[str, Sequence[float]],
    streaming: asyncio.Event,
) -> dict[str, int]:
    """Drop each scripted device's link at its times (seconds after streaming starts).

    A device not connected at its time (still reconnecting) skips that disconnect; the
    result says how many each device made, which is what a view should show as reconnects.

    Parameters
    ----------
    peripherals : sequence of EmulatedPeripheral
    disconnects : mapping of str to sequence of float
        Profile → times (see :func:`check_disconnects`).
    streaming : asyncio.Event
        Set when the devices stream.

    Returns
    -------
    dict of str to int
        Device name → disconnects made.
    """
    made = {p.name: 0 for p in peripherals if p.profile in disconnects}
    if not made:
        return made
    await streaming.wait()
    start = time.monotonic()
    schedule = sorted(
        (t, i) for i, p in enumerate(peripherals) for t in disconnects.get(p.profile, ())
    )
    for at, i in schedule:
        await asyncio.sleep(max(0.0, start + at - time.monotonic()))
        peripheral = peripherals[i]
        if peripheral.is_connected:
            await peripheral.disconnect()
            made[peripheral.name] += 1
            logger.info("%s: scripted disconnect at %.1f s", peripheral.name, at)
        else:
            logger.warning("%s: not connected at %.1f s; disconnect skipped", peripheral.name, at)
    return made
