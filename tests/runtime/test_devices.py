"""Per-device state: derived from the blocks, overlaid by the source, and end to end."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from affectstream.runtime.demo import DemoOptions, run_demo
from affectstream.runtime.devices import device_states
from affectstream.runtime.session import LiveSession, LiveSnapshot, SessionConfig
from affectstream.store import EmbeddedStore
from affectstream.types import Gap, SampleBlock

T0 = 1.7e9


def _block(
    stream: str, modality: str, unit: str, values: list[float], first: int, **kw: Any
) -> SampleBlock:
    n = len(values)
    return SampleBlock(
        stream=stream,
        modality=modality,
        channels=(modality,),
        unit=unit,
        sfreq=4.0,
        t=T0 + (first + np.arange(n)) / 4.0,
        values=np.asarray(values, dtype=np.float64)[:, None],
        index=np.arange(first, first + n, dtype=np.int64),
        **kw,
    )


def _session(tmp_path: Path) -> tuple[LiveSession, EmbeddedStore]:
    store = EmbeddedStore(tmp_path / "store")
    return LiveSession(store, SessionConfig(participant="P1", session_id="S1")), store


def test_state_derived_from_blocks(tmp_path: Path) -> None:
    session, store = _session(tmp_path)
    try:
        session.submit(_block("band/eda", "eda", "µS", [2.0] * 8, 0))
        lost = Gap("band/eda", 8, 4, T0 + 2.0, T0 + 2.75, "disconnect")
        values = [np.nan] * 4 + [2.1] * 8
        session.submit(_block("band/eda", "eda", "µS", values, 8, gaps=(lost,)))
        session.submit(_block("band/battery", "battery", "%", [81.0, 80.0], 0))
        session.submit(_block("strap/hr", "hr", "bpm", [60.0] * 4, 0))
        states = {d.device: d for d in device_states(session)}
    finally:
        store.close()
    band, strap = states["band"], states["strap"]
    assert band.streams == ["band/battery", "band/eda"]
    # No supervisor to ask: one lost link in the data is one reconnect.
    assert (band.link_gaps, band.reconnects, band.gap_events, band.gap_samples) == (1, 1, 1, 4)
    assert band.battery == 80.0  # the last battery sample
    assert band.contact is None and band.battery_low is None  # nobody reported them
    assert band.state == "connected" and band.source == "derived"
    assert (strap.reconnects, strap.gap_events, strap.battery) == (0, 0, None)


class _ReportingSource:
    """A stand-in for the supervisor's coming read-only accessor (named as such)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def stats(self) -> Mapping[str, Any]:
        return {}

    def device_names(self) -> list[str]:
        return ["band", "idle"]

    def is_connected(self, name: str) -> bool:
        return name != "band"

    def device_states(self) -> Mapping[str, Mapping[str, Any]]:
        return {"band": {"contact": False, "battery_low": True, "reconnects": 3}}


def test_source_report_overrides_derived_state(tmp_path: Path) -> None:
    session, store = _session(tmp_path)
    try:
        session.source = _ReportingSource()
        session.submit(_block("band/eda", "eda", "µS", [2.0] * 8, 0))
        states = {d.device: d for d in device_states(session)}
    finally:
        store.close()
    band = states["band"]
    assert band.state == "reconnecting"  # the supervisor says the link is down
    assert (band.contact, band.battery_low, band.reconnects) == (False, True, 3)
    assert band.source == "device"
    assert states["idle"].state == "connecting"  # supervised, nothing delivered yet


@dataclass(frozen=True)
class _Snapshot:
    """Shaped like the supervisor's DeviceState snapshot (a list of them, by ``name``)."""

    name: str
    link: str
    reconnects: int
    battery: float | None
    battery_low: bool | None
    contact: bool | None


class _ListingSource(_ReportingSource):
    def device_states(self) -> list[_Snapshot]:  # type: ignore[override]
        return [_Snapshot("band", "reconnecting", 2, 55.0, None, True)]


def test_supervisor_snapshots_are_taken_by_name(tmp_path: Path) -> None:
    session, store = _session(tmp_path)
    try:
        session.source = _ListingSource()
        session.submit(_block("band/eda", "eda", "µS", [2.0] * 8, 0))
        band = {d.device: d for d in device_states(session)}["band"]
    finally:
        store.close()
    assert (band.state, band.reconnects, band.battery, band.contact) == (
        "reconnecting",
        2,
        55.0,
        True,
    )
    assert band.battery_low is None and band.source == "device"


@pytest.mark.slow
def test_scripted_disconnects_show_as_reconnects(tmp_path: Path) -> None:
    drops = [2.0, 5.0]
    snapshots: list[LiveSnapshot] = []
    options = DemoOptions(
        duration=10.0,
        store=tmp_path / "store",
        kinds="hr,eda",
        disconnects={"eda": drops},
    )
    summary = asyncio.run(run_demo(options, on_update=snapshots.append))
    (band,) = [d for d in summary["devices"] if d.startswith("AS-EDA")]
    assert summary["scripted_disconnects"] == {band: len(drops)}
    assert summary["streams"][f"{band}/eda"]["device"]["reconnects"] == len(drops)
    last = {d.device: d for d in snapshots[-1].devices}
    assert last[band].reconnects == len(drops)
    # A drop shows in the data only when samples were lost across it (or the device
    # restarted its counter): never more link gaps than drops.
    assert last[band].link_gaps <= len(drops)
    assert all(d.reconnects == 0 for name, d in last.items() if name != band)
