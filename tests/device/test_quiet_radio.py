"""The emulated radio's bumble controller and host build no per-packet debug strings.

bumble formats every HCI packet into an f-string for ``logger.debug`` whether or not the
line is emitted (``affectstream.device.emulation.quiet``). The probe: the ``color`` helper
that each of those f-strings calls in ``bumble.host`` and ``bumble.controller``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from bleak import BleakClient

from affectstream.device import gatt
from affectstream.device.emulation import VirtualRadio
from affectstream.device.emulation.heart_rate import HeartRateStrap


async def _notifications(radio: VirtualRadio, seconds: float, calls: list[str]) -> int:
    """Stream a heart-rate strap for ``seconds``; notifications received (color calls kept)."""
    strap = HeartRateStrap(speed=4.0, seed=1)
    await radio.add(strap)
    got: list[bytes] = []
    async with BleakClient(strap.address, **radio.client_kwargs()) as client:
        await client.start_notify(gatt.HEART_RATE_MEASUREMENT, lambda _c, d: got.append(bytes(d)))
        await asyncio.sleep(0.5)  # set-up packets are done
        calls.clear()
        start = len(got)
        await asyncio.sleep(seconds)
        return len(got) - start


@pytest.mark.parametrize("level", [logging.INFO, logging.DEBUG], ids=["info", "debug"])
async def test_packets_are_formatted_only_when_bumble_logs_them(
    radio: VirtualRadio, monkeypatch: pytest.MonkeyPatch, level: int
) -> None:
    import bumble.controller
    import bumble.host

    calls: list[str] = []

    def counting(text: str, *args: Any, **kwargs: Any) -> str:
        calls.append(text)
        return text

    monkeypatch.setattr(bumble.host, "color", counting)
    monkeypatch.setattr(bumble.controller, "color", counting)
    loggers = [logging.getLogger(n) for n in ("bumble.host", "bumble.controller")]
    before = [log.level for log in loggers]
    for log in loggers:
        log.setLevel(level)  # setLevel, not .level: it clears the loggers' level caches
    try:
        received = await _notifications(radio, 1.5, calls)
    finally:
        for log, old in zip(loggers, before, strict=True):
            log.setLevel(old)
    assert received >= 3  # the strap streamed through the quiet classes
    if level == logging.DEBUG:
        assert any("CONTROLLER -> HOST" in c for c in calls)  # bumble's own lines, as before
    else:
        assert calls == []
