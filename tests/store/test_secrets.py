"""A password or token given in a store URL never appears in output, logs or files.

Every run goes through the real CLI in a subprocess with its own AFFECTSTREAM_HOME, at
the most verbose log level, against the local influxd (through the v2-write proxy) and
against a port where nothing listens (so the write-failure paths print).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import InfluxTarget, free_port

from affectstream.redact import redact_url

PASSWORD = "pw-Zq81xKcv"
TOKEN = "tok-Lm30aPfe"
SECRETS = (PASSWORD, TOKEN)


def run_cli(home: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, AFFECTSTREAM_HOME=str(home))
    env.pop("AFFECTSTREAM_SPOOL_DIR", None)
    return subprocess.run(
        [sys.executable, "-m", "affectstream", "-vv", *argv],
        capture_output=True, text=True, timeout=180, env=env,
    )  # fmt: skip


def assert_no_secret(home: Path, results: list[subprocess.CompletedProcess[str]]) -> None:
    for result in results:
        for secret in SECRETS:
            assert secret not in result.stdout, result.stdout
            assert secret not in result.stderr, result.stderr
    for path in home.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for secret in SECRETS:
                assert secret.encode() not in data, path
        for secret in SECRETS:
            assert secret not in str(path)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://admin:hunter2@db:8086/?bucket=b&token=abc", "http://admin:***@db:8086/?bucket=b&token=***"),
        ("htp://u:hunter2@db?token=abc", "htp://u:***@db?token=***"),
        ("at influx://u:hunter2@db: token=abc bad", "at influx://u:***@db: token=*** bad"),
        ("/data/store", "/data/store"),
        ("http://db:8086?bucket=b", "http://db:8086?bucket=b"),
    ],
)  # fmt: skip
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@pytest.mark.servers
def test_credentials_in_store_urls_are_never_printed_or_saved(
    influx_target: InfluxTarget, tmp_path: Path
) -> None:
    if influx_target.name != "influxdb-1.6.7":
        pytest.skip("the local server has authentication off, so any credential is accepted")
    home = tmp_path / "home"
    csv = tmp_path / "eda.csv"
    pd.DataFrame({"eda": 2.0 + np.sin(np.arange(0, 120, 0.25))}).to_csv(csv, index=False)
    replay = ["replay", str(csv), "--sfreq", "4", "--t0", "1300000000", "--unit", "eda=uS",
              "--save", "--window", "30", "--no-progress", "--json"]  # fmt: skip
    host = influx_target.url.split("://", 1)[1]
    good = f"http://admin:{PASSWORD}@{host}/?bucket={influx_target.bucket}&token={TOKEN}"
    dead = f"http://admin:{PASSWORD}@127.0.0.1:{free_port()}/?bucket=x&token={TOKEN}"
    results = [
        run_cli(home, *replay, "--store", good),
        run_cli(home, *replay, "--store", dead),
        run_cli(home, "export", "nope", "--store", dead, "--out", str(tmp_path / "out")),
        run_cli(home, "store", "--store", f"htp://admin:{PASSWORD}@x/?token={TOKEN}", "ls"),
        run_cli(home, "store", "ls", "--store", f"htp://admin:{PASSWORD}@x/?token={TOKEN}"),
    ]
    assert results[0].returncode == 0, results[0].stderr
    assert results[1].returncode == 1, results[1].stderr  # only spooled: not saved
    assert all(r.returncode != 0 for r in results[2:])
    # The failure names the server (so the message is useful), without its credentials.
    assert f"InfluxDB at http://{dead.split('@')[1].split('/')[0]}" in results[1].stderr
    assert_no_secret(home, results)
