"""Data that did not reach the store is reported as lost, never as saved.

A full disk is simulated with RLIMIT_FSIZE on a real CLI subprocess (the kernel refuses
writes past the limit with EFBIG, which SQLite reports like a full disk); the InfluxDB
cases run against the real local influxd.
"""

from __future__ import annotations

import json
import resource
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import InfluxTarget

from affectstream.store import EmbeddedStore
from affectstream.store.base import SeriesBatch
from affectstream.store.influx import InfluxStore
from tests.watchdog import run_watched

T0 = 1_700_000_000_000_000_000
SFREQ = 32.0


def eda_csv(path: Path, seconds: float = 300.0) -> Path:
    t = np.arange(0, seconds, 1 / SFREQ)
    pd.DataFrame({"eda": 2.0 + 0.1 * np.sin(t)}).to_csv(path, index=False)
    return path


def file_size_limit(limit: int) -> None:
    """preexec_fn: files may not grow past ``limit`` bytes (EFBIG instead of SIGXFSZ)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def replay_cli(
    csv: Path, store: str, session: str, limit: int | None = None
) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "affectstream", "replay", str(csv), "--sfreq", str(SFREQ),
            "--t0", "1300000000", "--unit", "eda=uS", "--store", store, "--save",
            "--session-id", session, "--window", "30", "--no-progress", "--json"]  # fmt: skip
    return run_watched(argv, preexec_fn=None if limit is None else (lambda: file_size_limit(limit)))


def test_replay_onto_a_full_disk_fails_and_says_what_was_lost(tmp_path: Path) -> None:
    csv = eda_csv(tmp_path / "eda.csv")
    n_samples = len(pd.read_csv(csv))
    store = tmp_path / "store"
    EmbeddedStore(store).close()  # the schema fits; the session's data will not
    limit = (store / "store.sqlite").stat().st_size + 8192
    result = replay_cli(csv, str(store), "full", limit=limit)
    assert result.returncode == 1, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["saved"] is False
    assert f"{n_samples} samples not stored" in result.stderr
    assert any(f"{n_samples} samples not stored" in line for line in summary["not_stored"])
    assert "saved as session" not in result.stderr
    with EmbeddedStore(store) as check:
        assert "full" not in {s.session for s in check.sessions()}


def test_replay_with_room_saves_and_says_so(tmp_path: Path) -> None:
    """The same command without the limit: the control for the test above."""
    csv = eda_csv(tmp_path / "eda.csv")
    result = replay_cli(csv, str(tmp_path / "store"), "room")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["saved"] is True and summary["not_stored"] == []
    with EmbeddedStore(tmp_path / "store") as check:
        raw = check.read("raw_eda", tags={"session": "room"})
    assert len(raw) == len(pd.read_csv(csv))


def influx(target: InfluxTarget, spool: Path) -> InfluxStore:
    return InfluxStore(
        target.url,
        token=target.token,
        org=target.org,
        bucket=target.bucket,
        spool_dir=spool,
        retry_interval=0.05,
        max_retry_delay=0.5,
    )


@pytest.mark.servers
def test_one_malformed_line_is_refused_alone(
    influx_target: InfluxTarget, tmp_path: Path, unique_session: str
) -> None:
    good = [f"features,session={unique_session} x={i}.5 {T0 + i}\n" for i in range(1000)]
    bad = f"features,session={unique_session} x= {T0 + 5000}\n"  # no value: unparsable
    lines = [*good[:400], bad, *good[400:]]
    with influx(influx_target, tmp_path / "spool") as store:
        store.write_line_protocol("".join(lines))
        store.flush()
        report = store.delivery()
        stored = store.read("features", tags={"session": unique_session})
    assert report.rejected_points == 1 and not report.complete
    assert stored["x"].tolist() == [i + 0.5 for i in range(1000)]
    rejected = list((tmp_path / "spool" / "rejected").glob("*.lp"))
    assert [p.read_text() for p in rejected] == [bad]


@pytest.mark.servers
def test_infinite_values_are_refused_point_by_point(
    influx_target: InfluxTarget, tmp_path: Path, unique_session: str
) -> None:
    values = np.arange(100, dtype=np.float64)
    bad_rows = [3, 50, 99]
    values[bad_rows] = [np.inf, -np.inf, np.inf]
    batch = SeriesBatch(
        "raw_eda", {"session": unique_session}, T0 + np.arange(100, dtype=np.int64),
        {"eda": values},
    )  # fmt: skip
    other = SeriesBatch(
        "events", {"session": unique_session}, np.array([T0], dtype=np.int64),
        {"label": np.array(["kept"], dtype=object)},
    )  # fmt: skip
    with influx(influx_target, tmp_path / "spool") as store:
        store.write([batch, other])
        store.flush()
        report = store.delivery()
        raw = store.read("raw_eda", tags={"session": unique_session})
        events = store.read("events", tags={"session": unique_session})
    assert report.rejected_points == len(bad_rows)
    assert "finite" in report.last_rejection and "refused" in report.messages[0]
    keep = np.setdiff1d(np.arange(100), bad_rows)
    assert raw["time_ns"].tolist() == (T0 + keep).tolist()
    assert events["label"].tolist() == ["kept"]


def test_record_onto_a_full_disk_fails_and_says_what_was_lost(tmp_path: Path) -> None:
    store = tmp_path / "store"
    EmbeddedStore(store).close()
    limit = (store / "store.sqlite").stat().st_size + 8192
    argv = [sys.executable, "-m", "affectstream", "record", "--emulate", "eda,hr",
            "--duration", "6", "--store", str(store), "--no-markers", "--json"]  # fmt: skip
    result = run_watched(argv, preexec_fn=lambda: file_size_limit(limit))
    assert result.returncode == 1, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    delivered = sum(s["delivered"] for s in summary["streams"].values())
    assert delivered > 0 and summary["stored"] is False
    assert summary["unflushed_samples"] + sum(
        s["dropped"] for s in summary["streams"].values()
    ) == delivered - sum(s["stored"] for s in summary["streams"].values())
    assert "samples not stored" in result.stderr and "INCOMPLETE" in result.stderr
