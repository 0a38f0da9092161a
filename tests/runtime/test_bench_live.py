"""``bench live`` machinery: one step with one emulated participant, checked against the store."""

from __future__ import annotations

from pathlib import Path

import pytest

from affectstream.models.bundle import ModelBundle
from affectstream.runtime.bench import bench_step
from affectstream.signal import WindowConfig
from affectstream.store import EmbeddedStore


@pytest.mark.slow
async def test_one_participant_step_counts_what_the_store_holds(
    tmp_path: Path, arousal_bundle: ModelBundle
) -> None:
    window = WindowConfig(window=4.0, step=1.0, beat_segment=3.0)
    with EmbeddedStore(tmp_path / "store", synchronous="normal") as store:
        result = await bench_step(1, 12.0, store, arousal_bundle, window=window)
        stored = sum(
            len(store.read("affect", tags={"session": s.session})) for s in store.sessions()
        )
    assert result["participants"] == 1
    assert result["estimates"] == stored > 0
    assert result["estimates"] >= result["expected_estimates_min"]
    assert all(v == 0 for v in result["dropped"].values()), result["dropped"]
    latency = result["latency_window_end_s"]
    assert latency["p50"] is not None and 0 < latency["p50"] <= latency["p99"]
