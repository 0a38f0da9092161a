"""Every sample is stored or marked as a gap, through a disconnect and a store outage.

Real parts: emulated peripherals on bumble's BLE stack driven through bleak, the connection
supervisor, the runtime and the embedded SQLite store. The only stand-in is
:class:`OutageStore` (a fake outage: it refuses writes for a while, then passes them to the
real store), because the embedded store cannot be made unreachable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from affectstream.device.emulation import VirtualRadio, make_emulated
from affectstream.device.emulation.peripheral import EmulatedPeripheral
from affectstream.device.supervisor import DeviceTarget, Supervisor
from affectstream.errors import StoreUnavailableError
from affectstream.models.bundle import ModelBundle
from affectstream.runtime import BACKLOG_REASON, LiveEstimator, LiveSession, SessionConfig
from affectstream.signal import WindowConfig
from affectstream.store import GAP_EVENT_KIND, EmbeddedStore, SeriesBatch


class OutageStore(EmbeddedStore):
    """FAKE OUTAGE: an embedded store whose writes fail while ``down`` is set."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, synchronous="normal")
        self.down = False
        self.refused = 0

    def write(self, batches: Iterable[SeriesBatch]) -> None:
        if self.down:
            self.refused += 1
            raise StoreUnavailableError("fake outage: the store is down for this test")
        super().write(batches)


async def _record(
    store: OutageStore,
    bundle: ModelBundle,
    *,
    max_pending_samples: int,
) -> tuple[dict[str, Any], list[EmulatedPeripheral]]:
    config = SessionConfig(
        participant="P07",
        window=WindowConfig(window=6.0, step=1.0, beat_segment=3.0),
        baseline_seconds=4.0,
        flush_interval=0.2,
        max_pending_samples=max_pending_samples,
    )
    session = LiveSession(store, config, LiveEstimator([bundle], baseline_end=None))
    stop = asyncio.Event()
    async with VirtualRadio() as radio:
        peripherals = make_emulated("hr,polar,eda,muse", seed=3)
        for p in peripherals:
            await radio.add(p)
        _hr, polar, eda, _muse = peripherals
        supervisor = Supervisor(
            [DeviceTarget(p.address, profile=p.profile, name=p.name) for p in peripherals],
            on_block=session.submit,
            client_kwargs=radio.client_kwargs(),
            scanner_kwargs=radio.scanner_kwargs(),
            backoff_initial=0.1,
        )

        async def chaos() -> None:
            await asyncio.sleep(2.0)
            await polar.disconnect()  # reconnects by itself; the loss is a counter gap
            await asyncio.sleep(1.0)
            store.down = True
            await eda.link_loss(out_of_range=0.5)
            await asyncio.sleep(2.5)
            store.down = False
            await asyncio.sleep(2.5)
            for p in peripherals:  # nothing in flight when the devices are stopped
                p.stall(60.0)
            await asyncio.sleep(0.2)
            stop.set()

        task = asyncio.create_task(chaos())
        summary = await session.run(supervisor, stop=stop)
        await task
    assert store.refused > 0  # the outage happened while data was flowing
    return summary, peripherals


def _gap_rows(events: pd.DataFrame, stream: str) -> pd.DataFrame:
    if events.empty:
        return events
    return events[(events["kind"] == GAP_EVENT_KIND) & (events["stream"] == stream)]


def _check_every_sample(
    store: OutageStore, summary: dict[str, Any], peripherals: list[EmulatedPeripheral]
) -> dict[str, int]:
    session = summary["session"]
    events = store.read("events", tags={"session": session})
    dropped: dict[str, int] = {}
    for p in peripherals:
        for kind in p.kinds:
            sent = p.sent_indices(kind)
            if sent.size == 0:
                continue
            stream = f"{p.name}/{kind}"
            entry = summary["streams"][stream]
            raw = store.read(
                f"raw_{entry['modality']}", tags={"session": session, "stream": stream}
            )
            gaps = _gap_rows(events, stream)
            backlog = int(gaps.loc[gaps["label"] == BACKLOG_REASON, "n_samples"].sum())
            # Stored plus dropped-under-back-pressure is exactly what the device sent ...
            assert len(raw) + backlog == sent.size, stream
            assert entry["stored"] == len(raw) and entry["dropped"] == backlog
            assert entry["unflushed"] == 0 and entry["pending"] == 0
            holes = int(sent[-1] - sent[0] + 1 - sent.size)
            if kind in ("ecg", "eda", "eeg"):  # streams with a device counter
                device_gaps = int(gaps.loc[gaps["label"] != BACKLOG_REASON, "n_samples"].sum())
                # ... and the gap events mark exactly the samples the emulator lost.
                assert device_gaps == holes, stream
                assert len(raw) + backlog + device_gaps == sent[-1] - sent[0] + 1
            dropped[stream] = backlog
    return dropped


@pytest.mark.slow
async def test_disconnect_and_store_outage_lose_nothing(
    tmp_path: Path, arousal_bundle: ModelBundle
) -> None:
    store = OutageStore(tmp_path / "store")
    with store:
        summary, peripherals = await _record(store, arousal_bundle, max_pending_samples=10**7)
        dropped = _check_every_sample(store, summary, peripherals)
        polar = peripherals[1]
        assert polar.lost_samples("ecg") > 0  # the disconnect did lose samples ...
        assert summary["streams"][f"{polar.name}/ecg"]["device_gap_samples"] > 0  # ... marked
        assert sum(dropped.values()) == 0  # the backlog held everything through the outage
        assert summary["store_failures"] > 0
        affect = store.read("affect", tags={"session": summary["session"]})
        assert len(affect) == summary["n_estimates"] > 0


@pytest.mark.slow
async def test_a_small_backlog_turns_the_oldest_samples_into_gaps(
    tmp_path: Path, arousal_bundle: ModelBundle
) -> None:
    store = OutageStore(tmp_path / "store")
    with store:
        summary, peripherals = await _record(store, arousal_bundle, max_pending_samples=1500)
        dropped = _check_every_sample(store, summary, peripherals)
    assert sum(dropped.values()) > 0  # the 2.5-s outage overflowed a 1500-sample backlog
    assert summary["backlog_drops"] > 0
