"""``affectstream record`` as a user runs it: a real process on emulated devices.

Markers piped or pasted on stdin are all stored, and without --duration or --protocol a
session runs until Ctrl-C.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from affectstream.store import open_store
from tests.watchdog import run_watched

#: Longer than any built-in default session length the CLI ever had (20 s).
PAST_ANY_DEFAULT_S = 24.0


def _record(store: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "affectstream", "record", "--emulate", "hr",
            "--store", str(store), "--json", *extra]  # fmt: skip


@pytest.mark.slow
def test_every_piped_line_becomes_a_marker(tmp_path: Path) -> None:
    store = tmp_path / "store"
    typed = ["first", "second", "", "fourth, with a comma"]
    result = run_watched(_record(store, "--duration", "4"), input="\n".join(typed) + "\n")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    with open_store(store) as opened:
        events = opened.read("events", tags={"session": summary["session"]})
    markers = events.loc[events["kind"] == "marker", "label"].tolist()
    expected = [line or f"marker {i}" for i, line in enumerate(typed, start=1)]
    assert markers == expected


@pytest.mark.slow
def test_markers_from_a_file_redirected_to_stdin(tmp_path: Path) -> None:
    lines = tmp_path / "markers.txt"
    lines.write_text("alpha\nbeta")  # the last line without a newline counts too
    store = tmp_path / "store"
    with lines.open() as stdin:
        result = run_watched(_record(store, "--duration", "3"), stdin=stdin)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    with open_store(store) as opened:
        events = opened.read("events", tags={"session": summary["session"]})
    assert events.loc[events["kind"] == "marker", "label"].tolist() == ["alpha", "beta"]


@pytest.mark.slow
def test_without_duration_or_protocol_it_records_until_ctrl_c(tmp_path: Path) -> None:
    store = tmp_path / "store"
    running_at_interrupt: list[bool] = []
    timers: list[threading.Timer] = []

    def interrupt(process: subprocess.Popen[str]) -> None:
        running_at_interrupt.append(process.poll() is None)
        process.send_signal(signal.SIGINT)

    def on_line(stream: str, line: str, process: subprocess.Popen[str]) -> None:
        # Count from the first rows of the live view (start-up time varies with load).
        if stream == "stderr" and "[" in line and not timers:
            timers.append(threading.Timer(PAST_ANY_DEFAULT_S, interrupt, (process,)))
            timers[0].start()

    try:
        result = run_watched(_record(store), stdin=subprocess.DEVNULL, on_line=on_line)
    finally:
        for timer in timers:
            timer.cancel()
    out, err = result.stdout, result.stderr
    assert running_at_interrupt == [True], f"record stopped by itself without --duration:\n{err}"
    assert result.returncode == 0, err
    assert "until Ctrl-C" in err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["duration_s"] >= PAST_ANY_DEFAULT_S
    assert summary["unflushed_samples"] == 0
