"""``affectstream demo --serve``: the demo session runs in a real service on loopback; the
printed URL serves the dashboard and the printed key reads the session through the API."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

DURATION = 30.0


@pytest.mark.slow
def test_demo_serve_prints_a_working_url_and_key(tmp_path: Path) -> None:
    env = {**os.environ, "AFFECTSTREAM_HOME": str(tmp_path)}
    argv = [sys.executable, "-m", "affectstream", "demo", "--serve", "--duration", str(DURATION)]
    process = subprocess.Popen(
        argv, stderr=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stderr.readline, "")))  # type: ignore[union-attr]
    reader.start()
    try:
        deadline = time.monotonic() + 90
        while not any("admin key" in line for line in lines):
            assert process.poll() is None and time.monotonic() < deadline, "".join(lines)
            time.sleep(0.1)
        text = "".join(lines)
        url = re.search(r"dashboard: (http://127\.0\.0\.1:\d+)/ui", text).group(1)  # type: ignore[union-attr]
        key = re.search(r"admin key [^:]*: (ask_\S+)", text).group(1)  # type: ignore[union-attr]
        session = re.search(r"session (\S+) runs", text).group(1)  # type: ignore[union-attr]
        assert httpx.get(url + "/ui", timeout=30).status_code == 200
        assert httpx.get(url + "/studies", timeout=30).status_code == 401  # the key is needed
        with httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30
        ) as api:
            while (row := api.get(f"/sessions/{session}").json())["status"] == "running":
                assert time.monotonic() < deadline + DURATION + 90, row
                time.sleep(1.0)
            if "differ from the package manifest" in str(row["summary"].get("error")):
                process.send_signal(signal.SIGINT)
                assert process.wait(60) == 1  # no estimates: a failure, and said so
                pytest.skip(f"shipped model bundles do not match MANIFEST.json: {row['summary']}")
            assert row["status"] == "stopped", (row, "".join(lines))
            assert row["summary"]["n_estimates"] > 0
        process.send_signal(signal.SIGINT)
        assert process.wait(60) == 0, "".join(lines)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        reader.join(10)
    assert re.search(r"\d+ estimates", "".join(lines)) is not None
