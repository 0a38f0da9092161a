"""Live dashboard benchmark: chart updates per second with N participants x 4 devices.

Starts a real ``affectstream serve`` on loopback and N sessions of 4 devices each, opens one
live page per participant (each in its own browser context, as N study staff would) plus
the study overview in Debian's headless Chromium, and counts per chart over a measuring
window: trace frames received, those that brought new samples ("fresh"), and redraws.
Prints JSON (and writes it to ``--out``).

``--feed emulated`` (default): sessions run the runtime's in-process BLE emulation (bumble
+ bleak, devices ``hr,polar,eda,muse``); the devices' own packet rates bound how often new
data can arrive (a Polar H10 sends ECG ~1.8 times a second, heart rate comes at 1 Hz).
``--feed ingest``: ingest sessions fed by ``trace_feeder.py`` in a separate process (the
same four devices' streams, 10 batches a second), so the number measures the dashboard's
data path, not the emulation.

Usage (from the repository root; needs /usr/bin/chromium and the playwright package)::

    python benchmarks/bench_dashboard.py --participants 10 --seconds 20 --feed ingest \
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
import subprocess
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
        s0 = a["charts"].get(name, {"updates": 0, "fresh": 0, "draws": 0})
        charts[name] = {
            key + "_per_s": round((s.get(key, 0) - s0.get(key, 0)) / secs, 2)
            for key in ("updates", "fresh", "draws")
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
    parser.add_argument("--feed", choices=("emulated", "ingest"), default="emulated")
    parser.add_argument(
        "--pages",
        type=int,
        default=None,
        help="live pages to open (default one per participant; fewer leaves the browser's "
        "share of the CPU out of the server's measurement)",
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    home = Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
    server = ServeProcess(home=home).start()
    contexts = []
    feeder: subprocess.Popen[bytes] | None = None
    try:
        api = server.client(server.admin_key)
        study = api.post("/studies", json={"name": "bench"}).json()["id"]
        sessions = []
        duration = args.warmup + args.seconds + 600  # set-up under load can take minutes
        for i in range(args.participants):
            p = api.post(f"/studies/{study}/participants", json={"pseudonym": f"B{i:02d}"}).json()
            body: dict[str, Any] = {"participant_id": p["id"]}
            if args.feed == "ingest":
                body["kind"] = "ingest"
            else:
                body.update(duration=duration, devices="hr,polar,eda,muse")
            response = api.post("/sessions", json=body)
            response.raise_for_status()
            sessions.append(response.json()["id"])
        if args.feed == "ingest":
            feeder = subprocess.Popen(
                [sys.executable, str(Path(__file__).with_name("trace_feeder.py")), server.url,
                 *sessions, "--seconds", "3600"],
                env={**os.environ, "AFFECTSTREAM_BENCH_KEY": server.admin_key},
                stdout=subprocess.DEVNULL,
            )  # fmt: skip
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            pages = {}
            watched = sessions[: args.pages] if args.pages is not None else sessions
            targets = [("overview", "#/overview")] + [(s, f"#/live/{s}") for s in watched]
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

        def summary(key: str, prefix: str = "trace:") -> dict[str, float]:
            rates = [
                c[key]
                for n, r in per_page.items()
                if n != "overview"
                for name, c in r["charts"].items()
                if name.startswith(prefix)
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
            "feed": args.feed,
            "live_pages": len(targets) - 1,
            # Per live trace and second: redraws (scrolling with the clock, new data or
            # not), frames received (the server pushes one every 0.1 s), and frames that
            # brought samples the chart did not have ("fresh": new data drawn).
            "trace_draws_per_s": summary("draws_per_s"),
            "trace_frames_per_s": summary("updates_per_s"),
            "trace_fresh_per_s": summary("fresh_per_s"),
            "trace_fresh_per_s_by_modality": {
                m: summary("fresh_per_s", f"trace:{m}") for m in ("ecg", "eda", "eeg", "hr")
            },
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
        if feeder is not None:
            feeder.kill()  # the one process this benchmark started for feeding
            feeder.wait()
        for context in contexts:
            with contextlib.suppress(Exception):  # the browser may already be closed
                context.close()
        server.stop()


if __name__ == "__main__":
    raise SystemExit(main())
