"""``affectstream bench api`` run tiny: a real service, ingest sessions with a model, live."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from tests.watchdog import run_watched


def test_bench_api_smoke(tmp_path: Path) -> None:
    env = {**os.environ, "AFFECTSTREAM_HOME": str(tmp_path)}
    argv = [sys.executable, "-m", "affectstream", "bench", "api", "--json"]
    argv += ["--participants", "2", "--seconds", "12", "--max-latency", "60"]
    done = run_watched(argv, env=env)
    assert done.stdout.strip(), done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    live = result["live"]
    assert live["participants"] == 2
    assert live["errors"] == []
    # Paced 12 s at a 5-s step: every participant's ingest session computes estimates (a model)
    # and they reach the WebSocket client.
    assert live["estimates_received"] >= 2
    latency = live["ingest_to_websocket"]
    assert 0 < latency["p50_ms"] <= latency["p99_ms"] < 60_000
    assert live["cpu_per_participant"] > 0
    assert all(a is not None and a["n"] > 0 for a in live["runtime_latency_arrival_s"])
    assert result["influx_skipped"]  # no InfluxDB given: said, not silently skipped
    assert done.returncode == (0 if live["participants_sustained"] == 2 else 1)
    assert result["participants_sustained_max"] in (0, 2)
    assert [r["participants"] for r in result["ramp"]] == [2]


def test_bench_api_refuses_a_bad_ramp() -> None:
    argv = [sys.executable, "-m", "affectstream", "bench", "api", "--participants", "8,4"]
    done = run_watched(argv)
    assert done.returncode != 0
    assert "increasing comma list" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.skipif(
    shutil.which("influxd") is None, reason="influxd not installed (scripts/test.sh)"
)
def test_bench_api_compares_influxdb_writes_with_the_servers_ceiling(tmp_path: Path) -> None:
    env = {**os.environ, "AFFECTSTREAM_HOME": str(tmp_path)}
    argv = [sys.executable, "-m", "affectstream", "bench", "api", "--json", "--start-server"]
    argv += ["--participants", "1", "--seconds", "6", "--max-latency", "60"]
    argv += ["--store-seconds", "30", "--store-batch-seconds", "5", "--store-transport", "ws"]
    argv += ["--store-rounds", "2"]
    done = run_watched(argv, env=env)
    assert done.stdout.strip(), done.stderr[-3000:]
    influx = json.loads(done.stdout.strip().splitlines()[-1])["influx"]
    assert influx["requests_per_round"] == 6  # 30 s in 5-s batches, one participant
    assert influx["rounds"] == len(influx["per_round"]) == 2
    assert [r["first"] for r in influx["per_round"]] == ["service", "direct"]  # alternating
    for r in influx["per_round"]:
        # Every raw point went through the service into the same influxd, and directly too.
        assert r["service_points_landed"] == influx["raw_points"] > 0
        assert r["direct_points_landed"] == influx["raw_points"]
        expected = r["service_points_per_s"] / r["direct_points_per_s"]
        assert r["fraction"] == pytest.approx(expected, abs=0.001)
    assert influx["all_landed"] is True
    fractions = [r["fraction"] for r in influx["per_round"]]
    assert influx["fractions"] == fractions
    assert influx["fraction_of_ceiling"] == pytest.approx(sum(fractions) / 2, abs=0.001)
    assert influx["fraction_spread"]["min"] == min(fractions)
    assert influx["fraction_spread"]["max"] == max(fractions)


@pytest.mark.parametrize(
    "flag",
    [
        "--seconds",
        "--prefill",
        "--max-latency",
        "--store-seconds",
        "--store-batch-seconds",
        "--store-rounds",
    ],
)
def test_bench_api_refuses_a_number_that_is_not_positive(
    flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from affectstream.cli import main

    assert main(["bench", "api", flag, "0"]) == 2  # before any service is started
    err = capsys.readouterr().err
    assert f"{flag} must be a finite number > 0" in err
    assert "Traceback" not in err
