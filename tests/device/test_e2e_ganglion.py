"""OpenBCI Ganglion end to end over the emulated BLE stack (raw + delta packets, reconnect)."""

from __future__ import annotations

from affectstream.device.emulation import VirtualRadio
from affectstream.device.emulation.ganglion import Ganglion
from affectstream.device.supervisor import Supervisor

from ._e2e import assert_matches_sent, drop_and_resume, record


async def test_ganglion_streams_and_resumes_after_a_disconnect() -> None:
    async with VirtualRadio(connect_timeout=2.0) as radio:
        board = Ganglion(speed=2.0)
        await radio.add(board)
        lost = 0
        stream = f"{board.name}/eeg"

        async def run(sup: Supervisor) -> None:
            nonlocal lost
            await drop_and_resume(sup, board, stream, board.disconnect, before=0.5, after=0.5)
            lost = board.lost_samples("eeg")

        rec = await record(radio, [board], run)
        assert_matches_sent(rec, board, "eeg")
        stats = rec.stats[stream]
        assert stats.reconnects == 1
        assert stats.gap_samples == lost
