"""``affectstream bench store`` runs end to end and accounts for every point."""

from __future__ import annotations

import json
import shutil

import pytest

from affectstream.cli import main

pytestmark = [pytest.mark.servers, pytest.mark.slow]


def test_bench_store_counts_every_point_back(capsys: pytest.CaptureFixture[str]) -> None:
    if shutil.which("influxd") is None:
        pytest.skip("influxd is not installed (scripts/test.sh installs it as root)")
    n_points = 3000  # more than one 2560-point batch, so batching is exercised
    code = main(["bench", "store", "--points", str(n_points), "--start-server", "--json"])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0
    methods = ["influx_points", "influx_fast_path"]
    if "embedded" in result:
        methods.append("embedded")
    for method in methods:
        assert result[method]["points"] == n_points
        assert result[method]["counted_back"] == n_points
        assert result[method]["points_per_s"] > 0
