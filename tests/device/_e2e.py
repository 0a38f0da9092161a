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


def _caught_up(sup: Supervisor, p: EmulatedPeripheral) -> bool:
    stats = sup.stats()
    for kind in p.kinds:
        stream = stats.get(f"{p.name}/{kind}")
        if stream is not None and stream.samples_received < len(p.sent_samples(kind)):
            return False
    return True


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
        # Let what the emulator already handed to the stack arrive (bounded wait).
        for _ in range(60):
            await asyncio.sleep(0.05)
            if all(_caught_up(sup, p) for p in peripherals):
                break
        await sup.stop()
    rec.stats = {k: StreamStats(**v.as_dict()) for k, v in sup.stats().items()}
    return rec


def partial_rows(block: SampleBlock) -> np.ndarray:
    """Rows where some channels are NaN and others are not (a multi-characteristic packet
    counter, e.g. Muse EEG, that was cut by a disconnect: the supervisor keeps the channels
    that arrived; the emulator counts the whole counter as lost)."""
    nan = np.isnan(block.values)
    return nan.any(axis=1) & ~nan.all(axis=1)


def assert_matches_sent(rec: Recording, p: EmulatedPeripheral, kind: str) -> SampleBlock:
    """Every sample the emulator sent arrived, equal and in order at the same device index
    offsets; every other row is either inside a Gap annotation (NaN) or a partial row."""
    block = rec.stream(f"{p.name}/{kind}")
    sent = p.sent_samples(kind)
    sent_index = p.sent_indices(kind)
    assert np.all(np.diff(block.index) > 0)
    if block.sfreq is None:  # event stream: no device counter, compare in order
        assert not any(g.n_samples for g in block.gaps)
        np.testing.assert_array_equal(block.values, sent)
        return block
    position = {int(i): k for k, i in enumerate(block.index - block.index[0])}
    relative = (sent_index - sent_index[0]).tolist()
    missing = [i for i in relative if i not in position]
    assert not missing, f"{kind}: {len(missing)} sent samples never arrived"
    rows = np.array([position[i] for i in relative], dtype=np.int64)
    np.testing.assert_array_equal(block.values[rows], sent)
    others = np.ones(len(block), dtype=bool)
    others[rows] = False
    in_gap = np.zeros(len(block), dtype=bool)
    for gap in block.gaps:
        in_gap |= (block.index >= gap.first_index) & (block.index < gap.first_index + gap.n_samples)
    assert not (in_gap & ~others).any(), "a sent sample is marked as a gap"
    assert np.isnan(block.values[in_gap]).all()
    assert (others == (in_gap | partial_rows(block))).all(), "rows neither sent nor gaps"
    holes = int(sent_index[-1] - sent_index[0] + 1 - sent_index.size)
    assert int(others.sum()) == holes
    return block
