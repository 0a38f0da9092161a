"""Live dashboard benchmark: chart updates per second with N participants x 4 devices.

Starts a real ``affectstream serve`` on loopback, starts N emulated sessions (the runtime's
BLE emulation, devices ``hr,polar,eda,muse``), opens one live page per participant (each in
its own browser context, as N study staff would) plus the study overview in Debian's
headless Chromium, and counts, per chart, data updates (new data drawn) and frames drawn
over a measuring window. Prints JSON (and writes it to ``--out``).

Usage (from the repository root; needs /usr/bin/chromium and the playwright package)::

    python benchmarks/bench_dashboard.py --participants 10 --seconds 20 \
        --out bench-results/dashboard.json

Not a test: nothing here asserts a rate; the numbers go into docs/dashboard.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from affectstream.api.serve_process import ServeProcess  # one server launcher

_RAF = """
() => { window.__frames = 0; const tick = () => { window.__frames++; requestAnimationFrame(tick); };
        requestAnimationFrame(tick); }
"""
_SNAP = """
() => ({ t: performance.now(), frames: window.__frames,
         charts: JSON.parse(JSON.stringify(window.__chartStats)) })
"""


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _sched_seconds(pid: int) -> tuple[float, float]:
    """Seconds the process's threads ran, and waited runnable for a core (/proc schedstat)."""
    ran = waited = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):  # a thread may end while we read
            fields = (task / "schedstat").read_text().split()
            ran, waited = ran + int(fields[0]), waited + int(fields[1])
    return ran / 1e9, waited / 1e9


def _rates(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    secs = (b["t"] - a["t"]) / 1000
    charts = {}
    for name, s in b["charts"].items():
        s0 = a["charts"].get(name, {"updates": 0, "draws": 0})
        charts[name] = {
            "updates_per_s": round((s["updates"] - s0["updates"]) / secs, 2),
            "draws_per_s": round((s["draws"] - s0["draws"]) / secs, 2),
        }
    return {
        "seconds": round(secs, 2),
        "frames_per_s": round((b["frames"] - a["frames"]) / secs, 1),
        "charts": charts,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=20.0, help="measuring window")
    parser.add_argument("--warmup", type=float, default=20.0, help="seconds before measuring")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    home = Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
    server = ServeProcess(home=home).start()
    contexts = []
    try:
        api = server.client(server.admin_key)
        study = api.post("/studies", json={"name": "bench"}).json()["id"]
        sessions = []
        duration = args.warmup + args.seconds + 60
        for i in range(args.participants):
            p = api.post(f"/studies/{study}/participants", json={"pseudonym": f"B{i:02d}"}).json()
            body = {"participant_id": p["id"], "duration": duration, "devices": "hr,polar,eda,muse"}
            response = api.post("/sessions", json=body)
            response.raise_for_status()
            sessions.append(response.json()["id"])
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            pages = {}
            targets = [("overview", "#/overview")] + [(s, f"#/live/{s}") for s in sessions]
            for name, fragment in targets:
                context = browser.new_context(viewport={"width": 1280, "height": 800})
                context.add_init_script(
                    f"sessionStorage.setItem('affectstream.key', {json.dumps(server.admin_key)})"
                )
                contexts.append(context)
                page = context.new_page()
                page.goto(server.url + "/ui" + fragment)
                pages[name] = page
            time.sleep(args.warmup)
            for page in pages.values():
                page.evaluate(_RAF)
            time.sleep(1.0)
            first = {n: p.evaluate(_SNAP) for n, p in pages.items()}
            cpu0, wall0 = _cpu_seconds(server.pid), time.monotonic()
            sched0 = _sched_seconds(server.pid)
            time.sleep(args.seconds)
            last = {n: p.evaluate(_SNAP) for n, p in pages.items()}
            cpu1, wall1 = _cpu_seconds(server.pid), time.monotonic()
            sched1 = _sched_seconds(server.pid)
            overview = api.get("/dashboard/overview").json()
            browser.close()
        per_page = {n: _rates(first[n], last[n]) for n in pages}

        def summary(key: str) -> dict[str, float]:
            rates = [
                c[key]
                for n, r in per_page.items()
                if n != "overview"
                for name, c in r["charts"].items()
                if name.startswith("trace:")
            ]
            return {
                "charts": len(rates),
                "min": min(rates, default=0.0),
                "median": statistics.median(rates) if rates else 0.0,
                "max": max(rates, default=0.0),
            }

        ecg_rates = [
            s["rate"]
            for o in overview
            for s in (o["live"] or {}).get("streams", [])
            if s["modality"] == "ecg"
        ]
        result = {
            "benchmark": "dashboard_live",
            "participants": args.participants,
            "devices_per_participant": 4,
            "measure_seconds": args.seconds,
            # Redraws of each live trace (scrolling with the clock, new data or not) and
            # data refreshes (new envelopes pushed by the server, asked for every 0.5 s)
            # per second.
            "trace_draws_per_s": summary("draws_per_s"),
            "trace_data_updates_per_s": summary("updates_per_s"),
            "page_frames_per_s_min": min(r["frames_per_s"] for r in per_page.values()),
            "server_cpu_percent": round(100 * (cpu1 - cpu0) / (wall1 - wall0), 1),
            # Seconds the service's threads waited, runnable, for a core per second of wall
            # time: above ~0 the machine, not the service, sets the pace.
            "server_runqueue_wait_s_per_s": round((sched1[1] - sched0[1]) / (wall1 - wall0), 2),
            "load_average_1min_at_end": os.getloadavg()[0],
            "sessions_running_at_end": len(overview),
            "ecg_samples_per_s_per_session": sorted(round(r) for r in ecg_rates),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "pages": per_page,
        }
        text = json.dumps(result, indent=1)
        print(text)
        if args.out is not None:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(text)
        return 0
    finally:
        for context in contexts:
            with contextlib.suppress(Exception):  # the browser may already be closed
                context.close()
        server.stop()


if __name__ == "__main__":
    raise SystemExit(main())
