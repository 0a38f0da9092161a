"""Helpers of the end-to-end tests: record emulated peripherals through bleak + bumble."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from affectstream.device.emulation import VirtualRadio
from affectstream.device.emulation.peripheral import EmulatedPeripheral
from affectstream.device.supervisor import DeviceTarget, StreamStats, Supervisor
from affectstream.types import SampleBlock


@dataclass
class Recording:
    """What the supervisor delivered, per stream id."""

    blocks: dict[str, list[SampleBlock]] = field(default_factory=dict)
    stats: dict[str, StreamStats] = field(default_factory=dict)

    def stream(self, stream_id: str) -> SampleBlock:
        return SampleBlock.concat(self.blocks[stream_id])


def target(p: EmulatedPeripheral) -> DeviceTarget:
    return DeviceTarget(p.address, profile=p.profile, name=p.name)


async def record(
    radio: VirtualRadio,
    peripherals: Sequence[EmulatedPeripheral],
    script: Callable[[Supervisor], Awaitable[None]],
    **supervisor_kwargs: object,
) -> Recording:
    """Run ``script`` while the supervisor records; stall the peripherals before stopping.

    Stalling (dropping) first means nothing is in flight when the supervisor stops, so what
    the emulator says it sent is exactly what should have arrived.
    """
    rec = Recording()

    def on_block(block: SampleBlock) -> None:
        rec.blocks.setdefault(block.stream, []).append(block)

    sup = Supervisor(
        [target(p) for p in peripherals],
        on_block=on_block,
        client_kwargs=radio.client_kwargs(),
        scanner_kwargs=radio.scanner_kwargs(),
        backoff_initial=0.1,
        **supervisor_kwargs,  # type: ignore[arg-type]
    )
    await sup.start()
    try:
        await script(sup)
    finally:
        for p in peripherals:
            p.stall(60.0)
        await asyncio.sleep(0.1)
        await sup.stop()
    rec.stats = {k: StreamStats(**v.as_dict()) for k, v in sup.stats().items()}
    return rec


def assert_matches_sent(rec: Recording, p: EmulatedPeripheral, kind: str) -> SampleBlock:
    """Received non-gap rows equal the emulator's sent samples, in order, with the same
    index spacing; NaN rows equal the holes in the emulator's sent indices."""
    block = rec.stream(f"{p.name}/{kind}")
    sent = p.sent_samples(kind)
    sent_index = p.sent_indices(kind)
    gap_rows = np.zeros(len(block), dtype=bool)
    for gap in block.gaps:
        gap_rows |= (block.index >= gap.first_index) & (
            block.index < gap.first_index + gap.n_samples
        )
    got = block.values[~gap_rows]
    assert got.shape == sent.shape, (kind, got.shape, sent.shape)
    np.testing.assert_array_equal(got, sent)
    if block.sfreq is not None:
        # Device indices: same spacing as the emulator's, holes exactly where it lost data.
        np.testing.assert_array_equal(
            block.index[~gap_rows] - block.index[0], sent_index - sent_index[0]
        )
        holes = int(sent_index[-1] - sent_index[0] + 1 - sent_index.size)
        assert int(gap_rows.sum()) == holes
    assert np.all(np.diff(block.index) > 0)
    return block
