"""Ctrl-C during ``affectstream demo`` stops cleanly: everything received is flushed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from affectstream.models.bundle import ModelBundle
from affectstream.store import open_store


@pytest.mark.slow
def test_ctrl_c_flushes_everything_and_prints_the_summary(
    tmp_path: Path, runtime_home: Path, arousal_bundle: ModelBundle
) -> None:
    store_path = tmp_path / "store"
    env = {**os.environ, "AFFECTSTREAM_HOME": str(runtime_home)}
    process = subprocess.Popen(
        [sys.executable, "-m", "affectstream", "demo", "--duration", "60",
         "--window", "4", "--step", "1", "--store", str(store_path), "--json",
         "--model", str(arousal_bundle.path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )  # fmt: skip
    assert process.stderr is not None
    # Interrupt once the session is streaming (the live view prints its first line).
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if line.startswith("[") or not line:
            break
    time.sleep(4.0)
    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert time.monotonic() - started < 30  # well before the planned 60 s
    assert process.returncode == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["duration_s"] < 30
    assert summary["unflushed_samples"] == 0
    with open_store(store_path) as store:
        events = store.read("events", tags={"session": summary["session"]})
        for stream, entry in summary["streams"].items():
            raw = store.read(f"raw_{entry['modality']}", tags={"stream": stream})
            assert len(raw) == entry["delivered"] == summary["emulated"][stream]["sent"]
    assert events.loc[events["kind"] == "session", "label"].tolist() == ["start", "stop"]
