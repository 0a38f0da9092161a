"""Stopping an LSL source takes in what was pushed just before the stop (real liblsl)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from affectstream.device.lsl import DRAIN_MAX_S, LslSource
from affectstream.runtime.accounting import data_rows
from affectstream.types import SampleBlock

pylsl = pytest.importorskip("pylsl", reason="pip install 'affectstream[lsl]'")

SFREQ = 100.0


@pytest.mark.parametrize("chunk", [50, 2_000])
async def test_stop_takes_in_samples_pushed_just_before_it(lsl_tag: str, chunk: int) -> None:
    name = f"StopEEG-{lsl_tag}"
    info = pylsl.StreamInfo(name, "EEG", 2, SFREQ, pylsl.cf_float32, f"stop-{lsl_tag}")
    outlet = pylsl.StreamOutlet(info)
    got: list[SampleBlock] = []
    source = LslSource([f"name='{name}'"], on_block=got.append, resolve_timeout=10.0)
    await source.start()
    deadline = asyncio.get_running_loop().time() + 20.0
    while not outlet.have_consumers():
        assert asyncio.get_running_loop().time() < deadline, "the inlet never connected"
        await asyncio.sleep(0.02)
    t0 = pylsl.local_clock()
    values = np.arange(2 * chunk, dtype=np.float32).reshape(chunk, 2)
    outlet.push_chunk(values.tolist(), t0)  # then stop at once: all of it is on its way
    await source.stop()
    assert sum(data_rows(block) for block in got) == chunk
    stored = np.concatenate([block.values for block in got])
    assert np.array_equal(stored, values)


async def test_stop_keeps_nothing_an_outlet_pushes_after_it(lsl_tag: str) -> None:
    # Outlets go on pushing after our stop: the drain must end at their first later sample,
    # not take them in until its time bound (DRAIN_MAX_S).
    name = f"StopRun-{lsl_tag}"
    info = pylsl.StreamInfo(name, "EEG", 1, SFREQ, pylsl.cf_float32, f"run-{lsl_tag}")
    outlet = pylsl.StreamOutlet(info)
    got: list[SampleBlock] = []
    source = LslSource([f"name='{name}'"], on_block=got.append, resolve_timeout=10.0)
    await source.start()
    pushing = True

    async def push() -> None:
        i = 0
        while pushing:
            outlet.push_sample([float(i)], pylsl.local_clock())
            i += 1
            await asyncio.sleep(1.0 / SFREQ)

    pusher = asyncio.create_task(push())
    deadline = asyncio.get_running_loop().time() + 20.0
    while not got:
        assert asyncio.get_running_loop().time() < deadline, "nothing arrived"
        await asyncio.sleep(0.05)
    offset = source.streams[0].epoch_offset
    t_stop = pylsl.local_clock()
    await source.stop()
    pushing = False
    await pusher
    last = max(float(block.t[-1]) for block in got) - offset
    assert last < t_stop + 0.5 * DRAIN_MAX_S  # the old drain kept pulling for DRAIN_MAX_S
