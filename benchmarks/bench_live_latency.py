"""Service latency with N emulated sessions, no browser: /health and the trace route.

Starts a real ``affectstream serve`` on loopback with N emulated sessions (devices
``hr,polar,eda,muse``), then for ``--seconds`` polls ``/health`` every 0.25 s and each
session's ``/dashboard/sessions/{id}/traces`` every 0.5 s (what the live page did before
traces were pushed), optionally with ``--sse`` live event streams open with pushed traces
(``push_late``: how much later than the push period each push arrives, a measure of the
service's event-loop lag). Reports per-route latency, requests per second, the service's
CPU and how long its threads waited, runnable, for a core. Separates "the route is slow"
from "the machine is busy" (``bench_dashboard.py`` adds the browser). Prints JSON (and
writes it to ``--out``).

Usage (from the repository root)::

    python benchmarks/bench_live_latency.py --participants 10 --seconds 15 \
        --out bench-results/latency.json

Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from affectstream.api.serve_process import ServeProcess  # one server launcher
from affectstream.api.trace_push import TRACE_PUSH
from benchmarks.bench_dashboard import _cpu_seconds, _sched_seconds  # one reading of /proc


def _stats(values: list[float], seconds: float) -> dict[str, float]:
    v = sorted(values)
    if not v:
        return {"n": 0}
    return {
        "n": len(v),
        "per_s": round(len(v) / seconds, 2),
        "p50_ms": round(1000 * v[len(v) // 2]),
        "p90_ms": round(1000 * v[int(len(v) * 0.9)]),
        "max_ms": round(1000 * v[-1]),
    }


async def _measure(url: str, key: str, sessions: list[str], sse: int, seconds: float) -> Any:
    latency: dict[str, list[float]] = {"health": [], "traces": [], "push_late": []}
    headers = {"Authorization": f"Bearer {key}"}
    stop = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:

        async def poll(kind: str, path: str, period: float) -> None:
            while time.monotonic() < stop:
                t0 = time.monotonic()
                (await client.get(path)).raise_for_status()
                latency[kind].append(time.monotonic() - t0)
                await asyncio.sleep(max(0.0, period - (time.monotonic() - t0)))

        async def follow(sid: str) -> None:
            # Pushed traces are due every TRACE_PUSH s: how late they arrive is how late the
            # service's event loop runs its timers (plus loopback delivery).
            last = None
            path = f"/sessions/{sid}/events?traces=ecg"
            async with client.stream("GET", path) as response:
                async for line in response.aiter_lines():
                    if time.monotonic() > stop:
                        return
                    if line.startswith("event: traces"):
                        now = time.monotonic()
                        if last is not None:
                            latency["push_late"].append(max(0.0, now - last - TRACE_PUSH))
                        last = now

        query = "modalities=ecg,eda,eeg,hr&seconds=10&points=300"
        tasks = [poll("health", "/health", 0.25)]
        tasks += [poll("traces", f"/dashboard/sessions/{s}/traces?{query}", 0.5) for s in sessions]
        tasks += [follow(s) for s in sessions[:sse]]
        await asyncio.gather(*tasks)
    return {k: _stats(v, seconds) for k, v in latency.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=15.0, help="measuring window")
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument(
        "--sse", type=int, default=0, help="live event streams (with pushed traces) held open"
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.participants < 1:
        parser.error("--participants must be at least 1 (the trace route needs a session)")
    server = ServeProcess(home=Path(tempfile.mkdtemp(prefix="bench-latency-"))).start()
    try:
        api = server.client(server.admin_key)
        study = api.post("/studies", json={"name": "bench"}).json()["id"]
        sessions = []
        for i in range(args.participants):
            p = api.post(f"/studies/{study}/participants", json={"pseudonym": f"L{i:02d}"}).json()
            body = {
                "participant_id": p["id"],
                "duration": args.warmup + args.seconds + 60,
                "devices": "hr,polar,eda,muse",
            }
            response = api.post("/sessions", json=body)
            response.raise_for_status()
            sessions.append(response.json()["id"])
        time.sleep(args.warmup)
        pid = server.pid
        cpu0, sched0, wall0 = _cpu_seconds(pid), _sched_seconds(pid), time.monotonic()
        routes = asyncio.run(
            _measure(server.url, server.admin_key, sessions, args.sse, args.seconds)
        )
        cpu1, sched1, wall1 = _cpu_seconds(pid), _sched_seconds(pid), time.monotonic()
        result = {
            "benchmark": "live_latency",
            "participants": args.participants,
            "sse_streams": args.sse,
            "measure_seconds": args.seconds,
            "routes": routes,
            "server_cpu_percent": round(100 * (cpu1 - cpu0) / (wall1 - wall0), 1),
            "server_runqueue_wait_s_per_s": round((sched1[1] - sched0[1]) / (wall1 - wall0), 2),
            "load_average_1min_at_end": os.getloadavg()[0],
            "machine": {"cpus": os.cpu_count()},
        }
        text = json.dumps(result, indent=1)
        print(text)
        if args.out is not None:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(text)
        return 0
    finally:
        server.stop()


if __name__ == "__main__":
    raise SystemExit(main())
