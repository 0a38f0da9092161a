"""Crash safety with a real kill -9: a writer process is killed in the middle of writes.

The writer reports ``begin k`` before and ``ack k`` after each ``write()`` over a pipe.
After SIGKILL the store must open, pass SQLite's integrity check, hold every acknowledged
batch exactly, and hold the interrupted batch either whole or not at all. Each batch
overlaps half of the previous one with new values, so a crash during the merge-rewrite of
stored chunks is covered too.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from affectstream.store import EmbeddedStore

# Shared by the writer process and the checks below: batch k covers sample indices
# [k*N - N/2, k*N + N) of four EEG channels, value k*1e7 + index + channel/4, plus an
# ``events`` point at index k recording that batch k was written (same transaction).
BATCHES_SOURCE = """
import numpy as np
from affectstream.store import SeriesBatch

N = 40_000
PERIOD_NS = 3_906_250
T0_NS = 1_700_000_000_000_000_000
CHANNELS = ("tp9", "af7", "af8", "tp10")
TAGS = {"participant": "p", "session": "crash", "stream": "muse/eeg"}


def batches(k):
    index = np.arange(k * N - N // 2, (k + 1) * N, dtype=np.int64)
    base = k * 1e7 + index
    return [
        SeriesBatch(
            "raw_eeg", TAGS, T0_NS + index * PERIOD_NS,
            {name: base + c / 4 for c, name in enumerate(CHANNELS)},
        ),
        SeriesBatch(
            "events", TAGS, np.array([T0_NS + k]),
            {"kind": np.array(["batch"], object), "n": np.array([k])},
        ),
    ]
"""

WRITER_SOURCE = (
    BATCHES_SOURCE
    + """
import sys
from affectstream.store import EmbeddedStore

store = EmbeddedStore(sys.argv[1])
k = int(sys.argv[2])
while True:
    print(f"begin {k}", flush=True)
    store.write(batches(k))
    print(f"ack {k}", flush=True)
    k += 1
"""
)

_shared: dict[str, object] = {}
exec(compile(BATCHES_SOURCE, "<batches>", "exec"), _shared)
N = int(_shared["N"])  # type: ignore[call-overload]
PERIOD_NS = int(_shared["PERIOD_NS"])  # type: ignore[call-overload]
T0_NS = int(_shared["T0_NS"])  # type: ignore[call-overload]
CHANNELS: tuple[str, ...] = _shared["CHANNELS"]  # type: ignore[assignment]


def _run_and_kill(
    path: Path, first_batch: int, kill_at: int, delay_fraction: float
) -> tuple[list[int], int | None]:
    """Start a writer, SIGKILL it during batch ``kill_at``; return (acknowledged, in flight)."""
    process = subprocess.Popen(
        [sys.executable, "-c", WRITER_SOURCE, str(path), str(first_batch)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    acknowledged: list[int] = []
    began: dict[int, float] = {}
    durations: list[float] = []
    try:
        for line in process.stdout:
            word, number = line.split()
            k = int(number)
            if word == "ack":
                acknowledged.append(k)
                durations.append(time.perf_counter() - began[k])
                continue
            began[k] = time.perf_counter()
            if k == kill_at:
                # Land at a chosen fraction of a typical write (merge, encode or commit).
                if durations and delay_fraction:
                    time.sleep(delay_fraction * float(np.median(durations)))
                process.send_signal(signal.SIGKILL)
                break
        else:
            raise AssertionError(
                f"writer ended early: {process.stderr.read() if process.stderr else ''}"
            )
        rest = process.stdout.read()  # lines written before the kill landed
    finally:
        process.kill()
        process.wait()
        if process.stderr is not None:
            process.stderr.close()
        process.stdout.close()
    assert process.returncode == -signal.SIGKILL
    for line in rest.splitlines():
        word, number = line.split()
        if word == "ack":
            acknowledged.append(int(number))
        else:
            began[int(number)] = time.perf_counter()
    last_begun = max(began)
    in_flight = None if last_begun in acknowledged else last_begun
    return acknowledged, in_flight


def _check_store(path: Path, acknowledged: list[int], in_flight: int | None) -> int:
    """Check the store after a kill; return the last batch it holds."""
    with EmbeddedStore(path) as store:
        store.check()
        written = sorted(store.read("events", tags={"session": "crash"})["n"].tolist())
        last = max(acknowledged)
        # Every acknowledged batch is there; the interrupted one whole or absent, nothing else.
        assert written in (list(range(last + 1)), list(range(last + 2)))
        if written[-1] == last + 1:
            assert in_flight == last + 1
        held = written[-1]
        frame = store.read("raw_eeg", tags={"session": "crash"})
        sessions = store.sessions()
    index = np.arange(-(N // 2), (held + 1) * N, dtype=np.int64)
    np.testing.assert_array_equal(frame["time_ns"].to_numpy(), T0_NS + index * PERIOD_NS)
    # Each sample holds the value of the latest batch that covers it.
    latest = np.minimum((index + N // 2) // N, held)
    for c, name in enumerate(CHANNELS):
        np.testing.assert_array_equal(frame[name].to_numpy(), latest * 1e7 + index + c / 4)
    assert sessions[0].n_points == index.size + held + 1
    return int(held)


def test_kill_9_during_writes_loses_no_acknowledged_batch(tmp_path: Path) -> None:
    path = tmp_path / "store"
    next_batch = 0
    interrupted = 0
    # Kill right after "begin", then half-way and late into a typical write; on a loaded
    # machine a write may finish before the signal lands, so retry until one was cut.
    delays = [0.0, 0.5, 0.9]
    round_number = 0
    while delays:
        delay_fraction = delays.pop(0)
        kill_at = next_batch + 3 + round_number
        acknowledged, in_flight = _run_and_kill(path, next_batch, kill_at, delay_fraction)
        assert acknowledged, "the writer acknowledged nothing before the kill"
        interrupted += in_flight is not None
        held = _check_store(path, acknowledged, in_flight)
        print(
            f"round {round_number}: acknowledged up to {max(acknowledged)}, "
            f"in flight {in_flight}, store holds up to {held}"
        )
        next_batch = held + 1
        round_number += 1
        if not delays and not interrupted and round_number < 8:
            delays.append(0.0)
    # At least one kill landed inside write().
    assert interrupted >= 1
    assert os.path.getsize(path / "store.sqlite") > 0
