"""Volume: a long session of 8-channel 256 Hz EEG plus ECG, EDA, RR, features, quality, affect.

Written the way the live runtime writes (one ``write()`` per interval holding every
stream, raw samples through :func:`blocks_to_batches`), then read back by time range.
Rates are reported (printed as one JSON line and kept as test properties), never asserted;
the assertions are that every point is there and exact.

Run the 3-hour version and see the numbers with::

    python -m pytest tests/store/test_embedded_volume.py -m slow -s
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from affectstream.store import EmbeddedStore, SeriesBatch, blocks_to_batches, seconds_to_ns
from affectstream.types import SampleBlock

T0 = 1_700_000_000.0
EEG_CHANNELS = ("TP9", "AF7", "AF8", "TP10", "F3", "F4", "C3", "C4")
FEATURES = tuple(f"feature_{i:02d}" for i in range(30))
TAGS = {"participant": "p01", "session": "long"}


def _eeg_values(first: int, n: int) -> np.ndarray:
    """EEG-like samples as a 24-bit ADC gives them, reproducible from the sample index."""
    rng = np.random.default_rng(first)
    return np.round(rng.normal(0, 900, (n, len(EEG_CHANNELS)))) * 0.02235


def _interval(k: int, interval_s: int) -> list[SeriesBatch]:
    """Every stream's data for seconds [k*interval_s, (k+1)*interval_s) of the session."""
    start = T0 + k * interval_s
    n_eeg, n_ecg, n_eda = 256 * interval_s, 130 * interval_s, 8 * interval_s
    blocks = [
        SampleBlock.regular(
            "muse/eeg",
            "eeg",
            EEG_CHANNELS,
            _eeg_values(k * n_eeg, n_eeg),
            256.0,
            start,
            first_index=k * n_eeg,
            device="muse",
        ),
        SampleBlock.regular(
            "h10/ecg",
            "ecg",
            ["ECG"],
            np.sin(np.arange(n_ecg) / 7.0) * 800,
            130.0,
            start,
            first_index=k * n_ecg,
            device="h10",
        ),
        SampleBlock.regular(
            "band/eda",
            "eda",
            ["EDA"],
            2.0 + np.arange(n_eda) * 1e-3,
            8.0,
            start,
            first_index=k * n_eda,
            device="band",
        ),
    ]
    batches = blocks_to_batches(blocks, **TAGS)
    # One beat every 0.8 s and one feature window every 5 s since the session start.
    beat_index = np.arange(np.ceil(k * interval_s / 0.8), np.ceil((k + 1) * interval_s / 0.8))
    beats = T0 + beat_index * 0.8
    batches.append(
        SeriesBatch(
            "raw_rr",
            {**TAGS, "stream": "h10/rr"},
            seconds_to_ns(beats),
            {"rr": np.full(beats.size, 800.0)},
        )
    )
    seconds = np.arange(k * interval_s, (k + 1) * interval_s)
    windows = seconds_to_ns(T0 + seconds[seconds % 5 == 0])
    n = windows.size
    batches += [
        SeriesBatch(
            "features",
            TAGS,
            windows,
            {name: np.full(n, float(i)) for i, name in enumerate(FEATURES)},
        ),
        SeriesBatch(
            "quality", TAGS, windows, {f"sqi_{m}": np.ones(n) for m in ("eeg", "ecg", "eda", "rr")}
        ),
        SeriesBatch(
            "affect",
            {**TAGS, "model": "lgbm-v1"},
            windows,
            {"arousal": np.full(n, 0.4), "valence": np.full(n, 0.6)},
        ),
    ]
    return batches


def _timed(action: Any, repeats: int = 5) -> tuple[float, float]:
    """Median wall-clock and CPU seconds of ``action`` (CPU time is steadier on a busy host)."""
    wall, cpu = [], []
    for _ in range(repeats):
        started, started_cpu = time.perf_counter(), time.process_time()
        action()
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    return float(np.median(wall)), float(np.median(cpu))


def run_volume(path: Path, hours: float, interval_s: int = 10) -> dict[str, Any]:
    """Write a session of ``hours`` hours, read ranges back, check, return the numbers."""
    n_intervals = int(hours * 3600 / interval_s)
    rows = values = 0
    write_s = write_cpu_s = 0.0
    latencies = []
    with EmbeddedStore(path) as store:
        for k in range(n_intervals):
            batches = _interval(k, interval_s)
            rows += sum(len(b) for b in batches)
            values += sum(len(b) * len(b.fields) for b in batches)
            started, started_cpu = time.perf_counter(), time.process_time()
            store.write(batches)
            latencies.append(time.perf_counter() - started)
            write_cpu_s += time.process_time() - started_cpu
        write_s = float(np.sum(latencies))
        # Everything is there.
        (info,) = store.sessions()
        assert info.n_points == rows
        eeg = {"session": "long", "stream": "muse/eeg"}

        # A 10-second window in the middle, exact against the generated samples.
        middle = n_intervals // 2
        start_ns = int(seconds_to_ns(T0 + middle * interval_s))
        stop_ns = int(seconds_to_ns(T0 + middle * interval_s + 10))
        window = store.read("raw_eeg", tags=eeg, start_ns=start_ns, stop_ns=stop_ns)
        n_eeg = 256 * interval_s
        covering = range(middle, middle + -(-10 // interval_s))
        expected = np.concatenate([_eeg_values(k * n_eeg, n_eeg) for k in covering])
        assert len(window) == 2560
        np.testing.assert_array_equal(window["af7"].to_numpy(), expected[:2560, 1])

        def read(seconds: float) -> int:
            stop = start_ns + int(seconds * 1e9)
            return len(store.read("raw_eeg", tags=eeg, start_ns=start_ns, stop_ns=stop))

        whole_eeg = store.read("raw_eeg", tags=eeg)
        assert len(whole_eeg) == 256 * interval_s * n_intervals
        features = store.read("features", tags=TAGS)
        assert len(features) == -(-n_intervals * interval_s // 5)
        results: dict[str, Any] = {
            "hours": hours,
            "interval_s": interval_s,
            "writes": n_intervals,
            "points": rows,
            "field_values": values,
            "write_s": round(write_s, 3),
            "write_points_per_s": round(rows / write_s),
            "write_values_per_s": round(values / write_s),
            "write_cpu_s": round(write_cpu_s, 3),
            "write_points_per_cpu_s": round(rows / write_cpu_s),
            "write_call_median_ms": round(float(np.median(latencies)) * 1e3, 2),
            "write_call_p99_ms": round(float(np.percentile(latencies, 99)) * 1e3, 2),
        }
        timings = {
            "read_eeg_10s": _timed(lambda: read(10)),
            "read_eeg_5min": _timed(lambda: read(300)),
            "read_eeg_whole": _timed(lambda: store.read("raw_eeg", tags=eeg), repeats=1),
            "read_features_whole": _timed(lambda: store.read("features", tags=TAGS)),
            "sessions": _timed(store.sessions),
        }
        for name, (wall, cpu) in timings.items():
            results[f"{name}_ms"] = round(wall * 1e3, 2)
            results[f"{name}_cpu_ms"] = round(cpu * 1e3, 2)
        results["read_eeg_whole_points"] = len(whole_eeg)
    database = path / "store.sqlite"
    results["file_mb"] = round(database.stat().st_size / 1e6, 1)
    results["bytes_per_value"] = round(database.stat().st_size / values, 2)
    return results


def _report(results: dict[str, Any], record_property: Any) -> None:
    for key, value in results.items():
        record_property(key, value)
    print(json.dumps({"embedded_store_volume": results}, sort_keys=True))


def test_volume_twenty_minutes(tmp_path: Path, record_property: Any) -> None:
    _report(run_volume(tmp_path / "store", hours=1 / 3), record_property)


def test_volume_live_one_second_writes(tmp_path: Path, record_property: Any) -> None:
    """Five minutes written as the live runtime might: one write() per second."""
    _report(run_volume(tmp_path / "store", hours=5 / 60, interval_s=1), record_property)


@pytest.mark.slow
def test_volume_three_hours(tmp_path: Path, record_property: Any) -> None:
    _report(run_volume(tmp_path / "store", hours=3.0), record_property)
