"""Bounded memory: the emulator keeps counts only when asked, and the soak benchmark runs."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from affectstream.device.emulation import make_emulated
from affectstream.device.emulation.peripheral import pack_records


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
    result = subprocess.run(
        [sys.executable, "-m", "affectstream", "bench", "soak", "--minutes", "0.5",
         "--kinds", "hr", "--sample-seconds", "1", "--json"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["stored"] and report["n_samples"] >= 10
    assert isinstance(report["rss_slope_mb_per_h"], float)
    times = [t for t, _ in report["samples"]]
    assert times == sorted(times) and times[-1] >= 20
    assert "RSS" in result.stderr and "MB/h" in result.stderr
