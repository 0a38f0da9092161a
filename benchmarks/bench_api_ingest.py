"""Service benchmark: HTTP ingest and live push against a real ``affectstream serve``.

Starts the service on a loopback port (own temporary home), starts ``--gateways`` ingest
sessions, and has each gateway POST ``--batches`` one-second batches (ECG at 130 Hz plus EDA
at 4 Hz, sequence-numbered) as fast as the server answers. It reports the request latency
(p50/p99), samples accepted per second in total, and the time from ``POST /markers`` to the
marker's arrival on a WebSocket subscribed to the same session (p50/p99). One JSON object is
printed last.

Usage: ``python benchmarks/bench_api_ingest.py [--gateways 4] [--batches 50] [--markers 50]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from websockets.asyncio.client import connect


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _batch(first: int, t0: float) -> dict[str, Any]:
    ecg = [
        {
            "stream": "h10/ecg",
            "modality": "ecg",
            "channels": ["ecg"],
            "sfreq": 130.0,
            "first_seq": first * 130,
            "t": [t0 + first + i / 130.0 for i in range(130)],
            "values": [[float(np.sin(i / 5.0) * 500.0)] for i in range(130)],
        },
        {
            "stream": "band/eda",
            "modality": "eda",
            "channels": ["eda"],
            "sfreq": 4.0,
            "first_seq": first * 4,
            "t": [t0 + first + i / 4.0 for i in range(4)],
            "values": [[2.0 + i / 10.0] for i in range(4)],
        },
    ]
    return {"blocks": ecg}


async def _gateway(client: httpx.AsyncClient, session: str, batches: int) -> list[float]:
    latencies = []
    t0 = time.time() - batches
    for k in range(batches):
        started = time.perf_counter()
        response = await client.post(f"/sessions/{session}/ingest", json=_batch(k, t0))
        response.raise_for_status()
        latencies.append(time.perf_counter() - started)
    return latencies


async def _markers(
    client: httpx.AsyncClient, url: str, key: str, session: str, n: int
) -> list[float]:
    ws_url = url.replace("http", "ws") + f"/sessions/{session}/live"
    delays = []
    async with connect(ws_url, additional_headers={"Authorization": f"Bearer {key}"}) as ws:
        await ws.recv()  # the status message
        for i in range(n):
            sent = time.perf_counter()
            await client.post(f"/sessions/{session}/markers", json={"label": f"m{i}"})
            while True:
                message = json.loads(await ws.recv())
                if message.get("label") == f"m{i}":
                    delays.append(time.perf_counter() - sent)
                    break
    return delays


def _pct(values: list[float]) -> dict[str, float]:
    array = np.asarray(values) * 1000.0
    return {
        "p50_ms": round(float(np.percentile(array, 50)), 2),
        "p99_ms": round(float(np.percentile(array, 99)), 2),
    }


async def _run(url: str, key: str, args: argparse.Namespace) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:
        study = (await client.post("/studies", json={"name": "bench"})).json()["id"]
        sessions = []
        for g in range(args.gateways):
            p = (
                await client.post(f"/studies/{study}/participants", json={"pseudonym": f"G{g}"})
            ).json()
            s = await client.post("/sessions", json={"participant_id": p["id"], "kind": "ingest"})
            sessions.append(s.json()["id"])
        started = time.perf_counter()
        results = await asyncio.gather(*(_gateway(client, s, args.batches) for s in sessions))
        wall = time.perf_counter() - started
        latencies = [x for r in results for x in r]
        marker_delays = await _markers(client, url, key, sessions[0], args.markers)
        for s in sessions:
            await client.post(f"/sessions/{s}/stop")
    samples = args.gateways * args.batches * (130 + 4)
    return {
        "gateways": args.gateways,
        "batches_per_gateway": args.batches,
        "samples_per_batch": 134,
        "ingest_request": _pct(latencies),
        "ingest_samples_per_s": round(samples / wall, 1),
        "ingest_batches_per_s": round(args.gateways * args.batches / wall, 1),
        "marker_to_websocket": _pct(marker_delays),
        "cpus": os.cpu_count(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gateways", type=int, default=4)
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--markers", type=int, default=50)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="affectstream-bench-api-"))
    key = f"ask_{secrets.token_hex(6)}_{secrets.token_urlsafe(24)}"
    port = _port()
    env = {
        **os.environ,
        "AFFECTSTREAM_HOME": str(home),
        "AFFECTSTREAM_API_BOOTSTRAP_ADMIN_KEY": key,
    }
    log = open(home / "serve.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "affectstream", "serve", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        result = asyncio.run(_run(url, key, args))
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
        log.close()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
