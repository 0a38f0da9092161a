"""Stopping an LSL source takes in what was pushed just before the stop (real liblsl)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from affectstream.device.lsl import LslSource
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
