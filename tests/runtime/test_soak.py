"""Bounded memory: the emulator keeps counts only when asked, and the soak benchmark runs."""

from __future__ import annotations

import json
import sys

import numpy as np

from affectstream.device.emulation import make_emulated
from affectstream.device.emulation.peripheral import pack_records
from tests.watchdog import run_watched


def test_emulator_without_sample_log_keeps_counts_only() -> None:
    (peripheral,) = make_emulated("eda")
    kind = next(iter(peripheral.kinds))
    width = len(peripheral.kinds[kind])
    record = pack_records(kind, np.ones((10, width)), np.arange(10))
    peripheral._record([record], delivered=True)
    assert peripheral.sent_count(kind) == 10 and len(peripheral.sent_indices(kind)) == 10
    peripheral.keep_samples = False
    for _ in range(100):
        peripheral._record([record], delivered=True)
    assert peripheral.sent_count(kind) == 1010
    assert len(peripheral.sent_indices(kind)) == 10  # nothing more kept


def test_bench_soak_reports_an_rss_slope() -> None:
    result = run_watched(
        [sys.executable, "-m", "affectstream", "bench", "soak", "--minutes", "0.5",
         "--kinds", "hr", "--sample-seconds", "1", "--json"],
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["stored"] and report["n_samples"] >= 10
    assert isinstance(report["rss_slope_mb_per_h"], float)
    # The default: once a minute, so none in a 30-s session.
    assert report["memory_release"]["every_s"] == 60.0
    assert report["memory_release"]["releases"] == 0
    times = [t for t, _ in report["samples"]]
    assert times == sorted(times) and times[-1] >= 20
    assert "RSS" in result.stderr and "MB/h" in result.stderr


def test_bench_soak_provokes_bursts_and_traces_the_heap() -> None:
    minutes, every, stall = 0.5, 8.0, 2.0
    result = run_watched(
        [sys.executable, "-m", "affectstream", "bench", "soak", "--minutes", str(minutes),
         "--kinds", "hr", "--sample-seconds", "1", "--stall-every", str(every),
         "--stall-seconds", str(stall), "--tracemalloc", "4", "--release-every", "5",
         "--json"],
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    # A stall every `every` s of the session, each blocking the loop for `stall` s.
    assert report["stalls"] >= int(minutes * 60 // (every + stall)) - 1 >= 1
    assert report["stall"] == {"every_s": every, "seconds": stall, "mode": "loop"}
    assert report["stored"], report["not_stored"]  # a starved host stores everything
    # The traced Python heap is sampled beside RSS, and its growth listed by traceback.
    assert all(len(point) == 3 and 0 < point[2] < point[1] for point in report["samples"])
    growth = report["top_growth"]
    assert growth and all(entry["traceback"] for entry in growth)
    assert [e["size_diff_kb"] for e in growth] == sorted(
        (e["size_diff_kb"] for e in growth), reverse=True
    )
    assert len(report["native"]) == report["n_samples"]
    # Allocator retention is given back every 5 s of the 30-s session (from its compute
    # loop, so stalls can delay one), and the anonymous RSS is broken down by mapping.
    release = report["memory_release"]
    assert release["every_s"] == 5.0 and release["releases"] >= 3
    if sys.platform.startswith("linux"):
        assert all(sample["map_heap_mb"] > 0 for sample in report["native"])


def test_bench_soak_refuses_a_bad_stall_in_one_line() -> None:
    result = run_watched(
        [sys.executable, "-m", "affectstream", "bench", "soak", "--minutes", "1",
         "--stall-every", "0"],
    )  # fmt: skip
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and "--stall-every" in result.stderr


def test_the_soaks_own_record_does_not_grow_with_its_samples() -> None:
    """The slope must measure the session, not the benchmark's bookkeeping: a list of one
    dict per sample grows by about 1.7 KB a sample; the record's columns are made once."""
    import tracemalloc

    from affectstream.runtime.memory import native_memory
    from affectstream.runtime.soak import _Record

    n = 300
    record = _Record(n + 1)
    record.add({"t": 0.0, **native_memory()})  # every column made here, once
    as_list: list[dict[str, float]] = []
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        for i in range(n):
            as_list.append({"t": float(i), **native_memory()})
        list_growth = tracemalloc.get_traced_memory()[0] - start
        as_list.clear()
        start = tracemalloc.get_traced_memory()[0]
        for i in range(n):
            record.add({"t": float(i + 1), **native_memory()})
        record_growth = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    assert record.n == n + 1 and record.column("t")[-1] == n
    assert record_growth < 0.05 * list_growth, (record_growth, list_growth)
