"""A device that goes silent mid-session does not hold back the estimates of the others.

Real parts: emulated peripherals on bumble's BLE stack driven through bleak, the connection
supervisor, the runtime and the embedded SQLite store. The EDA band stops sending for a
while (``stall``: its clock runs on, so its counter jumps when it is back).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from affectstream.device.emulation import VirtualRadio, make_emulated
from affectstream.device.supervisor import DeviceTarget, Supervisor
from affectstream.models.bundle import ModelBundle
from affectstream.runtime import LiveEstimator, LiveSession, SessionConfig
from affectstream.signal import WindowConfig
from affectstream.store import EmbeddedStore

WINDOW = WindowConfig(window=4.0, step=1.0, beat_segment=2.0, max_lag=1.5)
SILENCE = 10.0  # seconds the EDA band sends nothing: max_lag, two windows and a margin


@pytest.mark.slow
async def test_a_silent_eda_band_does_not_hold_back_estimates(
    tmp_path: Path, arousal_bundle: ModelBundle
) -> None:
    config = SessionConfig(
        participant="P09", window=WINDOW, baseline_seconds=3.0, flush_interval=0.2
    )
    seen: dict[str, Any] = {}
    with EmbeddedStore(tmp_path / "store", synchronous="normal") as store:
        session = LiveSession(store, config, LiveEstimator([arousal_bundle], baseline_end=None))
        stop = asyncio.Event()
        async with VirtualRadio() as radio:
            peripherals = make_emulated("hr,eda", seed=9)
            for p in peripherals:
                await radio.add(p)
            _hr, eda = peripherals
            supervisor = Supervisor(
                [DeviceTarget(p.address, profile=p.profile, name=p.name) for p in peripherals],
                on_block=session.submit,
                client_kwargs=radio.client_kwargs(),
                scanner_kwargs=radio.scanner_kwargs(),
                backoff_initial=0.1,
            )

            async def chaos() -> None:
                await asyncio.sleep(WINDOW.window + 2.0)  # a whole window before the stall
                eda.stall(SILENCE)
                await asyncio.sleep(SILENCE - 0.5)
                # Just before the band is back: what has been estimated by now.
                seen["estimate"] = session.latest_estimate
                await asyncio.sleep(WINDOW.window + 2.5)
                for p in peripherals:  # nothing in flight when the devices are stopped
                    p.stall(60.0)
                await asyncio.sleep(0.2)
                stop.set()

            task = asyncio.create_task(chaos())
            summary = await session.run(supervisor, stop=stop)
            await task
        tags = {"session": summary["session"]}
        eda_stream = f"{eda.name}/eda"
        raw = store.read("raw_eda", tags={**tags, "stream": eda_stream})
        quality = store.read("quality", tags=tags)
        affect = store.read("affect", tags=tags)

    # The hole the stall left in the stored EDA samples.
    t_eda = np.sort(raw["time_ns"].to_numpy(np.int64)) / 1e9
    step = np.diff(t_eda)
    widest = int(np.argmax(step))
    hole_start, hole_end = float(t_eda[widest]), float(t_eda[widest + 1])
    assert hole_end - hole_start > SILENCE / 2  # the band really went silent
    assert summary["streams"][eda_stream]["device_gap_samples"] > 0

    # Estimates went on during the silence: before the band was back, windows lying wholly
    # inside the hole had been estimated (without the bounded wait, rows wait for EDA).
    assert seen["estimate"] is not None
    margin = seen["estimate"]["t_end"] - WINDOW.window - hole_start
    assert margin > 0, margin

    t_end = quality["time_ns"].to_numpy(np.int64) / 1e9
    assert np.allclose(np.diff(t_end), WINDOW.step)  # no window skipped, none twice
    inside = (t_end - WINDOW.window > hole_start) & (t_end < hole_end)
    assert inside.any()
    assert (quality.loc[inside, "quality_eda"] == 0).all()
    assert not quality.loc[inside, "usable_eda"].astype(bool).any()
    assert quality.loc[inside, "usable_hrv"].astype(bool).all()
    affect_t = set(affect["time_ns"].to_numpy(np.int64).tolist())
    assert set(quality.loc[inside, "time_ns"].to_numpy(np.int64).tolist()) <= affect_t
    # EDA features come back once the band's data fill a window again.
    after = (t_end - WINDOW.window >= hole_end) & (t_end <= t_eda[-1])
    assert after.any() and quality.loc[after, "usable_eda"].astype(bool).all()
    before = (t_end <= hole_start) & (t_end - WINDOW.window >= t_eda[0])
    assert before.any() and quality.loc[before, "usable_eda"].astype(bool).all()
