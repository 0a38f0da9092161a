"""Fixtures for the emulation tests: a fresh in-memory radio per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from affectstream.device.emulation import VirtualRadio


@pytest.fixture
async def radio() -> AsyncIterator[VirtualRadio]:
    """A VirtualRadio with a short connect timeout, closed after the test."""
    async with VirtualRadio(connect_timeout=0.5) as open_radio:
        yield open_radio
