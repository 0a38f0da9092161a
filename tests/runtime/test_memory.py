"""Allocator retention: bursts freed in a worker thread or in pyarrow's pool are given back.

Linux/glibc only (the mechanisms are glibc's ``malloc_trim`` and ``/proc/self/smaps``);
the pyarrow part needs its mimalloc pool (the locked pyarrow's default on Linux).
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from affectstream.runtime.memory import (
    MMAP_THRESHOLD,
    MemoryKeeper,
    mapping_breakdown,
    native_memory,
    release_retained,
)

linux_glibc = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not hasattr(ctypes.CDLL(None), "malloc_trim"),
    reason="glibc malloc_trim and /proc/self/smaps are Linux/glibc",
)
MB = 1e6

# Run in a fresh interpreter: in a long test process, a new thread may be given an arena
# (or the main heap) that earlier tests left with free room, and the burst shows nowhere.
_BURST_PROBE = """
import json, threading
import numpy as np
from affectstream.runtime.memory import mapping_breakdown, release_retained
pinned = []  # the arrays that keep each burst's arena top in use

def burst(total_bytes):
    # 48 KB arrays in a new thread (its own arena: under the mmap threshold, default or
    # pinned); all but the last freed: it keeps the arena's top in use, so glibc cannot
    # trim the freed space below it, as in a long session.
    def run():
        arrays = [np.ones(48 * 1024 // 8) for _ in range(total_bytes // (48 * 1024))]
        pinned.append(arrays[-1])
    thread = threading.Thread(target=run)
    thread.start()
    thread.join()

release_retained()
start = mapping_breakdown()["map_arenas_mb"]
held, after = [], []
for size in (8, 16, 24, 32):
    burst(size * 1_000_000)
    held.append(mapping_breakdown()["map_arenas_mb"])
    release_retained()
    after.append(mapping_breakdown()["map_arenas_mb"])
print(json.dumps({"start": start, "held": held, "after": after}))
"""


@linux_glibc
def test_mapping_breakdown_covers_the_anonymous_rss() -> None:
    parts = mapping_breakdown()
    anon = native_memory()["anon_mb"]
    covered = sum(v for k, v in parts.items() if k.startswith("map_"))
    # Both read the kernel's page counts; only allocations between the two reads differ.
    assert 0.9 * anon <= covered <= 1.1 * anon, (parts, anon)
    assert parts["map_heap_mb"] > 0 and parts["anon_huge_mb"] <= covered


@linux_glibc
def test_bursts_in_worker_threads_do_not_raise_rss_for_good() -> None:
    """Each burst is larger than the last; without a release, each one's freed space stays
    resident in a thread arena. With one, what stays does not grow with the bursts."""
    run = subprocess.run(
        [sys.executable, "-c", _BURST_PROBE], capture_output=True, text=True, check=True
    )
    result = json.loads(run.stdout)
    start = result["start"]
    for size, held in zip([8, 16, 24, 32], result["held"], strict=True):
        assert held - start >= 0.5 * size, "the burst's freed pages should stay resident"
    # What is left is the pinned 48 KB arrays (and their arenas' bookkeeping), not the bursts.
    assert max(result["after"]) - start < 2.0, result


# Run in a fresh interpreter: the thresholds are the process's, and pinned for good.
_THRESHOLD_PROBE = """
import sys
import numpy as np
from affectstream.runtime.memory import native_memory, pin_malloc_thresholds
pinned = pin_malloc_thresholds() if sys.argv[1] == "pin" else False
big = np.ones(8 << 20 >> 3)  # a mapping of its own; freeing it raises glibc's threshold
del big
before = native_memory()["mmap_mb"]
block = np.ones(int(sys.argv[2]) >> 3)
print(pinned, native_memory()["mmap_mb"] - before)
"""


def _probe(mode: str, size: int, **env: str) -> tuple[bool, float]:
    run = subprocess.run(
        [sys.executable, "-c", _THRESHOLD_PROBE, mode, str(size)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **env},
    )
    pinned, grown = run.stdout.split()
    return pinned == "True", float(grown)


@linux_glibc
def test_pinned_thresholds_keep_large_blocks_out_of_the_arenas() -> None:
    """After a freed 8 MiB array, glibc serves a 1 MiB block from an arena (where its pages
    stay after it is freed); with the thresholds pinned, it gets its own mapping."""
    size = 1 << 20
    assert size >= MMAP_THRESHOLD
    pinned, grown = _probe("pin", size)
    assert pinned and grown * MB >= size, grown
    pinned, grown = _probe("default", size)
    assert not pinned and grown * MB < size / 2, "glibc no longer raises its threshold?"


@linux_glibc
def test_a_user_tuned_allocator_is_left_alone() -> None:
    pinned, grown = _probe("pin", 1 << 20, MALLOC_MMAP_THRESHOLD_=str(16 << 20))
    assert not pinned and grown * MB < (1 << 20) / 2, grown
    pinned, _ = _probe("pin", 1 << 20, GLIBC_TUNABLES="glibc.malloc.arena_max=2")
    assert not pinned


def test_release_gives_back_what_pyarrows_pool_kept() -> None:
    pa = pytest.importorskip("pyarrow")
    pd = pytest.importorskip("pandas")
    if not sys.platform.startswith("linux") or pa.default_memory_pool().backend_name != (
        "mimalloc"
    ):
        pytest.skip("needs pyarrow's mimalloc pool and /proc/self/smaps")
    release_retained()
    base = mapping_breakdown()["map_reserved_mb"]
    pool = pa.default_memory_pool()

    def bursts() -> None:
        for rows in (10_000, 100_000, 300_000):  # a str column lives in Arrow buffers
            frame = pd.DataFrame({"stream": [f"dev-{i % 7}/eda" for i in range(rows)]})
            frame.groupby("stream").size()
            del frame

    # As in a session: the compute worker allocates, and releases in its own thread
    # (mimalloc frees a thread's pages only when that thread asks).
    with ThreadPoolExecutor(max_workers=1) as worker:
        worker.submit(bursts).result()
        # All freed but what pandas may keep cached (21 KB was seen in a full run) ...
        assert pool.bytes_allocated() < 0.01 * pool.max_memory()
        peak = pool.max_memory() / MB
        keeper = MemoryKeeper(1e-6)
        assert worker.submit(keeper.maybe_release).result() and keeper.released_bytes > 0
        # ... and no more than two 2 MiB pages (mimalloc's own bookkeeping) stay resident;
        # without the release the pool keeps its high-water mark (about 3x peak here).
        assert mapping_breakdown()["map_reserved_mb"] - base <= 4.5, peak


def test_memory_keeper_releases_once_per_interval() -> None:
    keeper = MemoryKeeper(0.2)
    assert not keeper.maybe_release()  # the interval counts from its start
    time.sleep(0.25)
    assert keeper.maybe_release() and not keeper.maybe_release()
    assert keeper.stats()["releases"] == 1.0 and keeper.stats()["release_ms"] >= 0
    off = MemoryKeeper(None)
    time.sleep(0.01)
    assert not off.maybe_release() and off.releases == 0


def test_a_failed_release_is_logged_and_the_keeper_goes_on(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A fake failure (nothing here makes malloc_trim fail for real): the session's compute
    # loop calls maybe_release, so it must not raise.
    import affectstream.runtime.memory as memory

    def fail() -> float:
        raise OSError("no trim today")

    monkeypatch.setattr(memory, "release_retained", fail)
    keeper = MemoryKeeper(1e-6)
    time.sleep(0.01)
    assert keeper.maybe_release()
    assert keeper.releases == 1 and keeper.released_bytes == 0.0
    assert "no trim today" in caplog.text
