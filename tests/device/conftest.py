"""Fixtures of the device tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from affectstream.device.emulation import VirtualRadio


@pytest.fixture
async def radio() -> AsyncIterator[VirtualRadio]:
    """A VirtualRadio (the emulated BLE stack), closed after the test."""
    async with VirtualRadio(connect_timeout=2.0) as r:
        yield r
