"""The record path: emulated devices (real bleak + bumble stack), a protocol file, a
participant id and markers typed on a stream, into a store given by URL."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from affectstream.device.emulation import VirtualRadio, make_emulated
from affectstream.device.supervisor import DeviceTarget
from affectstream.models.bundle import ModelBundle
from affectstream.runtime.record import record_session
from affectstream.signal import WindowConfig
from affectstream.store import open_store


@pytest.mark.slow
async def test_record_follows_the_protocol_and_stores_keyboard_markers(
    tmp_path: Path, arousal_bundle: ModelBundle
) -> None:
    phases = [
        {"name": "baseline", "duration": 3.0, "instruction": "Sit still."},
        {"name": "task", "duration": 3.0, "instruction": "Count backwards."},
    ]
    protocol = tmp_path / "protocol.json"
    protocol.write_text(json.dumps({"phases": phases}))
    store_url = f"file://{tmp_path / 'store'}"
    read_fd, write_fd = os.pipe()
    typed = ["start of task", "", "sneeze"]
    async with VirtualRadio() as radio:
        peripherals = make_emulated("eda,hr", seed=5)
        for p in peripherals:
            await radio.add(p)

        async def type_markers() -> None:
            for line in typed:
                await asyncio.sleep(1.0)
                os.write(write_fd, (line + "\n").encode())

        with os.fdopen(read_fd, "r") as keyboard:
            typing = asyncio.create_task(type_markers())
            summary = await record_session(
                [DeviceTarget(p.address, profile=p.profile, name=p.name) for p in peripherals],
                store=store_url,
                participant="P42",
                protocol=protocol,
                bundle=str(arousal_bundle.path),
                window=WindowConfig(window=4.0, step=1.0),
                line_freq=60.0,
                markers=keyboard,
                supervisor_options={
                    "client_kwargs": radio.client_kwargs(),
                    "scanner_kwargs": radio.scanner_kwargs(),
                },
            )
            await typing
        os.close(write_fd)
    # The protocol's length is the session's length.
    assert summary["duration_s"] >= sum(p["duration"] for p in phases)
    assert summary["participant"] == "P42"
    with open_store(tmp_path / "store") as store:
        events = store.read("events", tags={"session": summary["session"], "participant": "P42"})
        affect = store.read("affect", tags={"session": summary["session"]})
    phase_events = events[events["kind"] == "phase"]
    assert phase_events["label"].tolist() == [p["name"] for p in phases]
    assert phase_events["detail"].tolist() == [p["instruction"] for p in phases]
    markers = events.loc[events["kind"] == "marker", "label"].tolist()
    assert markers == ["start of task", "marker 2", "sneeze"]
    # The session stores what a replay needs to reproduce it: windows, mains, model, and
    # that the window asked for is every model's (reads_own_windows).
    start = events[(events["kind"] == "session") & (events["label"] == "start")]
    settings = json.loads(start["detail"].iloc[0])
    assert settings == {"participant": "P42", "window_s": 4.0, "step_s": 1.0,
                        "line_freq": 60.0, "model": str(arousal_bundle.path),
                        "models": [str(arousal_bundle.path)],
                        "own_windows": False}  # fmt: skip
    assert summary["line_freq"] == 60.0
    assert len(affect) == summary["n_estimates"] > 0
    for stream, entry in summary["streams"].items():
        assert entry["unflushed"] == 0, stream
