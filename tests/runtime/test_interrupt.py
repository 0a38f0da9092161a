"""Ctrl-C during ``affectstream demo`` stops cleanly: everything received is flushed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from affectstream.models.bundle import ModelBundle
from affectstream.store import open_store
from tests.watchdog import run_watched


@pytest.mark.slow
def test_ctrl_c_flushes_everything_and_prints_the_summary(
    tmp_path: Path, runtime_home: Path, arousal_bundle: ModelBundle
) -> None:
    store_path = tmp_path / "store"
    env = {**os.environ, "AFFECTSTREAM_HOME": str(runtime_home)}
    command = [sys.executable, "-m", "affectstream", "demo", "--duration", "60",
               "--window", "4", "--step", "1", "--store", str(store_path), "--json",
               "--model", str(arousal_bundle.path)]  # fmt: skip
    interrupted: list[float] = []
    timers: list[threading.Timer] = []

    def interrupt(process: subprocess.Popen[str]) -> None:
        interrupted.append(time.monotonic())
        process.send_signal(signal.SIGINT)

    def on_line(stream: str, line: str, process: subprocess.Popen[str]) -> None:
        # Interrupt 4 s after the session streams (the live view prints its first line).
        if stream == "stderr" and line.startswith("[") and not timers:
            timers.append(threading.Timer(4.0, interrupt, (process,)))
            timers[0].start()

    try:
        done = run_watched(command, env=env, on_line=on_line)
    finally:
        for timer in timers:
            timer.cancel()
    exited = time.monotonic()
    out, err = done.stdout, done.stderr
    assert interrupted, f"the live view never started; stderr:\n{err[-2000:]}"
    # Not a speed goal: an interrupt that waits on a flush or close it should not shows up
    # as minutes here (the hang detector alone would allow 90 s of silence).
    assert exited - interrupted[0] < 60, f"exit {exited - interrupted[0]:.0f} s after Ctrl-C"
    assert done.returncode == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["duration_s"] < 30  # stopped by the interrupt, well before the planned 60 s
    assert summary["unflushed_samples"] == 0
    with open_store(store_path) as store:
        events = store.read("events", tags={"session": summary["session"]})
        for stream, entry in summary["streams"].items():
            raw = store.read(f"raw_{entry['modality']}", tags={"stream": stream})
            assert len(raw) == entry["delivered"] == summary["emulated"][stream]["sent"]
    assert events.loc[events["kind"] == "session", "label"].tolist() == ["start", "stop"]
