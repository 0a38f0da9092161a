"""OpenBCI Ganglion end to end over the emulated BLE stack (raw + delta packets, reconnect)."""

from __future__ import annotations

import asyncio

from affectstream.device.emulation import VirtualRadio
from affectstream.device.emulation.ganglion import Ganglion
from affectstream.device.supervisor import Supervisor

from ._e2e import assert_matches_sent, record


async def test_ganglion_streams_and_resumes_after_a_disconnect() -> None:
    async with VirtualRadio(connect_timeout=2.0) as radio:
        board = Ganglion(speed=2.0)
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
