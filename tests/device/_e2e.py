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
    #: Per stream, how many samples the emulator had sent when the script ended.
    cutoff: dict[str, int] = field(default_factory=dict)

    def stream(self, stream_id: str) -> SampleBlock:
        return SampleBlock.concat(self.blocks[stream_id])


def _caught_up(rec: Recording, p: EmulatedPeripheral) -> bool:
    """Whether every sample sent before the cutoff has arrived."""
    for kind in p.kinds:
        stream = f"{p.name}/{kind}"
        n = rec.cutoff.get(stream, 0)
        blocks = rec.blocks.get(stream)
        if n == 0:
            continue
        if not blocks:
            return False
        sent = p.sent_indices(kind)
        if blocks[-1].sfreq is None:
            if sum(len(b) for b in blocks) < n:
                return False
        elif blocks[-1].index[-1] - blocks[0].index[0] < sent[n - 1] - sent[0]:
            return False
    return True


#: Seconds a condition of an end-to-end test may take on a loaded machine before the test
#: fails: a hang guard, not a timing (nothing here is asserted to be fast).
HANG_GUARD_S = 60.0


async def wait_until(
    predicate: Callable[[], bool], what: str, timeout: float = HANG_GUARD_S
) -> None:
    """Poll ``predicate()`` until true; fail saying ``what`` did not happen after
    ``timeout`` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout:g} s")
        await asyncio.sleep(0.02)


def received(sup: Supervisor, stream: str) -> int:
    """Samples the supervisor has delivered on ``stream`` so far."""
    stats = sup.stats().get(stream)
    return 0 if stats is None else stats.samples_received


async def drop_and_resume(
    sup: Supervisor,
    p: EmulatedPeripheral,
    stream: str,
    drop: Callable[[], Awaitable[None]],
    *,
    before: float,
    after: float,
) -> None:
    """Let ``stream`` flow for ``before`` s, ``drop()`` the link, wait for the supervisor
    to reconnect by itself and for samples to flow again, then let them flow ``after`` s.

    Conditions are waited for, not timed, so a loaded machine makes the test slower, not
    different: samples arrive before the drop, and after the reconnect before the cutoff.
    """
    await wait_until(lambda: received(sup, stream) > 0, f"first samples of {stream}")
    await asyncio.sleep(before)
    await drop()
    await wait_until(
        lambda: sup.stats()[stream].reconnects >= 1 and p.is_connected,
        f"the supervisor reconnecting to {p.name}",
    )
    resumed_from = received(sup, stream)
    await wait_until(
        lambda: received(sup, stream) > resumed_from, f"samples of {stream} after the reconnect"
    )
    await asyncio.sleep(after)


def target(p: EmulatedPeripheral) -> DeviceTarget:
    return DeviceTarget(p.address, profile=p.profile, name=p.name)


async def record(
    radio: VirtualRadio,
    peripherals: Sequence[EmulatedPeripheral],
    script: Callable[[Supervisor], Awaitable[None]],
    **supervisor_kwargs: object,
) -> Recording:
    """Run ``script`` while the supervisor records, then wait until everything the emulator
    had sent by the end of the script has arrived, and stop.

    The peripherals keep streaming meanwhile: bumble's host holds the last few packets of
    a link until more traffic comes, so stalling them first would strand packets the
    emulator already counts as sent.
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
            for kind in p.kinds:
                rec.cutoff[f"{p.name}/{kind}"] = len(p.sent_indices(kind))
        # Bounded wait (a hang guard): if it runs out, the asserts say what never arrived.
        deadline = asyncio.get_running_loop().time() + HANG_GUARD_S
        while asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
            if all(_caught_up(rec, p) for p in peripherals):
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
    """Every sample the emulator sent (up to the cutoff) arrived, equal and in order at the
    same device index offsets; every received row is a sent sample, a NaN row inside a Gap
    annotation, or a partial row; gaps (but ``"saturated"`` ones, over samples that were
    sent) cover exactly the holes in the sent indices."""
    stream = f"{p.name}/{kind}"
    block = rec.stream(stream)
    n_cut = rec.cutoff[stream]
    sent = p.sent_samples(kind)
    sent_index = p.sent_indices(kind)
    assert np.all(np.diff(block.index) > 0)
    if block.sfreq is None:  # event stream: no device counter, compare in order
        assert not any(g.n_samples for g in block.gaps)
        assert n_cut <= len(block) <= len(sent)
        np.testing.assert_array_equal(block.values, sent[: len(block)])
        return block
    relative_block = block.index - block.index[0]
    relative_sent = sent_index - sent_index[0]
    # Only what the emulator had sent by the cutoff must have arrived; later samples may.
    received_span = int(relative_block[-1])
    must = relative_sent[:n_cut]
    considered = relative_sent[relative_sent <= max(received_span, int(must[-1]))]
    position = {int(i): k for k, i in enumerate(relative_block)}
    missing = [int(i) for i in considered if int(i) not in position]
    assert not missing, f"{kind}: {len(missing)} sent samples never arrived: {missing[:5]}"
    rows = np.array([position[int(i)] for i in considered], dtype=np.int64)
    np.testing.assert_array_equal(block.values[rows], sent[: len(considered)])
    others = np.ones(len(block), dtype=bool)
    others[rows] = False
    in_gap = np.zeros(len(block), dtype=bool)
    for gap in block.gaps:
        if gap.reason == "saturated":  # sent (as NaN) but unknown; see the saturation test
            continue
        in_gap |= (block.index >= gap.first_index) & (block.index < gap.first_index + gap.n_samples)
    assert not (in_gap & ~others).any(), "a sent sample is marked as a gap"
    assert np.isnan(block.values[in_gap]).all()
    assert (others == (in_gap | partial_rows(block))).all(), "rows neither sent nor gaps"
    holes = int(considered[-1] + 1 - considered.size)
    assert int(others.sum()) == holes
    return block
