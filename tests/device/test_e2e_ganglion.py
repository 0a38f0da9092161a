"""OpenBCI Ganglion end to end, once the emulation package provides a Ganglion peripheral."""

from __future__ import annotations

import asyncio

import pytest

from affectstream.device import emulation
from affectstream.device.emulation import VirtualRadio
from affectstream.device.supervisor import Supervisor

from ._e2e import assert_matches_sent, record

Ganglion = getattr(emulation, "Ganglion", None)

pytestmark = pytest.mark.skipif(
    Ganglion is None, reason="affectstream.device.emulation has no Ganglion peripheral yet"
)


async def test_ganglion_streams_and_resumes_after_a_disconnect() -> None:
    async with VirtualRadio(connect_timeout=2.0) as radio:
        board = Ganglion(speed=2.0)  # type: ignore[misc]
        await radio.add(board)
        lost = 0

        async def run(sup: Supervisor) -> None:
            nonlocal lost
            await asyncio.sleep(0.5)
            await board.disconnect()
            for _ in range(100):
                await asyncio.sleep(0.05)
                if sup.stats()[f"{board.name}/eeg"].reconnects and board.is_connected:
                    break
            await asyncio.sleep(0.5)
            lost = board.lost_samples("eeg")

        rec = await record(radio, [board], run)
        assert_matches_sent(rec, board, "eeg")
        stats = rec.stats[f"{board.name}/eeg"]
        assert stats.reconnects == 1
        assert stats.gap_samples == lost
