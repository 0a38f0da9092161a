"""Strictly increasing timestamps from the device layer: RR values at their beat times.

A Heart Rate notification lists the RR intervals completed since the previous one; the
last ends at about the arrival. Each RR value is stamped with the beat that ends it.
"""

from __future__ import annotations

import asyncio

import numpy as np

from affectstream.device.driver import Frame
from affectstream.device.emulation import VirtualRadio
from affectstream.device.emulation.heart_rate import HeartRateStrap
from affectstream.device.emulation.script import AffectScript, Phase
from affectstream.device.profiles import get_profile
from affectstream.device.stream_state import StreamState, beat_times
from affectstream.device.supervisor import Supervisor

from ._e2e import assert_matches_sent, record

RR = get_profile("hr").stream("rr")
CLAMP_STEP = 1e-3  # the supervisor's smallest spacing of event times, seconds


def test_beat_times_space_back_from_the_arrival_by_the_later_intervals() -> None:
    rr_ms = np.array([800.0, 810.0, 790.0])
    t = beat_times(rr_ms, 100.0)
    np.testing.assert_allclose(t, [100.0 - (810 + 790) / 1000, 100.0 - 790 / 1000, 100.0])
    np.testing.assert_allclose(np.diff(t), rr_ms[1:] / 1000)


def test_two_rr_of_one_notification_get_two_times() -> None:
    state = StreamState(RR, "strap/rr", "strap")
    block = state.ingest(Frame("rr", np.array([[800.0], [810.0]]), None), 50.0)
    assert block is not None
    np.testing.assert_allclose(block.t, [50.0 - 0.810, 50.0])


def test_a_beat_before_the_previous_notification_is_clamped_just_after_it() -> None:
    state = StreamState(RR, "strap/rr", "strap")
    first = state.ingest(Frame("rr", np.array([[800.0], [810.0]]), None), 10.0)
    # Arrives 0.3 s later with 0.805 s after its first beat: that beat would be at 9.495.
    second = state.ingest(Frame("rr", np.array([[790.0], [805.0]]), None), 10.3)
    assert first is not None and second is not None
    assert first.t[-1] >= 10.3 - 0.805  # the clamp is needed
    np.testing.assert_allclose(second.t, [first.t[-1] + CLAMP_STEP, 10.3])
    # A notification arriving at the same instant as the previous one still moves on.
    third = state.ingest(Frame("rr", np.array([[700.0]]), None), 10.3)
    assert third is not None
    np.testing.assert_allclose(third.t, [10.3 + CLAMP_STEP])


async def test_strap_rr_beat_times_over_ble(radio: VirtualRadio) -> None:
    """Real time (one notification a second): RR of one notification differ by their own
    values; after a burst (a stall, delivered late) beats that would go back are clamped;
    the stream's times strictly increase throughout."""
    fast = AffectScript([Phase("stress", 600.0, arousal=1.0, valence=0.5)])  # ~100 bpm
    p = HeartRateStrap(speed=1.0, script=fast, seed=3)
    await radio.add(p)

    async def run(_sup: Supervisor) -> None:
        await asyncio.sleep(2.2)
        p.stall(2.1, drop=False)  # two notifications held, then sent together
        await asyncio.sleep(2.5)

    rec = await record(radio, [p], run)
    assert_matches_sent(rec, p, "rr")
    blocks = rec.blocks[f"{p.name}/rr"]
    assert any(len(b) >= 2 for b in blocks)  # several RR per notification happened
    t = np.concatenate([b.t for b in blocks])
    assert np.all(np.diff(t) >= CLAMP_STEP - 1e-6)
    previous_last = -np.inf
    for block in blocks:
        rr_s = block.values[1:, 0] / 1000.0
        steps = np.diff(block.t)
        clamped = np.isclose(
            block.t[:-1], previous_last + CLAMP_STEP * np.arange(1, len(block)), rtol=0, atol=1e-6
        )
        # Inside a notification a step is the RR value that ends the later beat, except
        # for a clamped prefix, spaced by the clamp step after the previous notification.
        unclamped = ~clamped
        np.testing.assert_allclose(steps[unclamped], rr_s[unclamped], atol=1e-6)
        if clamped.any():
            assert clamped[: int(clamped.sum())].all()
        previous_last = float(block.t[-1])
