"""Server cost of one live ``traces`` frame of 4 traces: whole envelope vs the bins since the last.

Fills a session's in-memory recent samples (:class:`RecentTraces`) with 2 minutes of the
four traced streams of 4 devices (ECG 130 Hz, EDA 32 Hz, EEG 256 Hz x 4, heart rate 1 Hz,
in blocks of 0.1 s as a gateway sends them), then times building and encoding one frame:

- ``whole_envelope``: the last 10 s as one min/max envelope per trace (what every viewer got
  every 0.5 s before frames were incremental);
- ``delta_frame``: the bins since the previous frame (0.1 s ago) plus the 1-s overlap, on the
  fixed grid, encoded once per session for every viewer (what the event stream pushes now,
  10 times a second);
- ``full_frame``: the whole window on the grid (a viewer's first frame).

Prints JSON. Not a test: nothing here asserts a time.

Usage::

    python benchmarks/bench_trace_frames.py --repeat 300
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from affectstream.api.live import json_safe
from affectstream.api.trace_push import OVERLAP, TRACE_POINTS, TRACE_PUSH, TRACE_SECONDS, encode
from affectstream.runtime.recent import RecentTraces
from affectstream.types import SampleBlock

STREAMS = (("ecg", 130.0, 1), ("eda", 32.0, 1), ("eeg", 256.0, 4), ("hr", 1.0, 1))


def filled(now: float, seconds: float = 120.0) -> RecentTraces:
    """Recent samples of the four traced streams over ``seconds`` up to ``now``."""
    recent = RecentTraces()
    rng = np.random.default_rng(0)
    for modality, rate, n_channels in STREAMS:
        t = now - seconds + np.arange(int(seconds * rate)) / rate
        step = max(1, int(rate * 0.1))
        for i in range(0, len(t), step):
            tt = t[i : i + step]
            recent.on_block(
                SampleBlock(
                    stream=f"dev/{modality}",
                    modality=modality,
                    channels=tuple(f"c{k}" for k in range(n_channels)),
                    unit="x",
                    sfreq=rate,
                    t=tt,
                    values=rng.normal(0, 100, (len(tt), n_channels)),
                    index=np.arange(i, i + len(tt), dtype=np.int64),
                )
            )
    return recent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=300)
    args = parser.parse_args()
    now = time.time()
    recent = filled(now)
    mods = [m for m, *_ in STREAMS]

    def whole() -> str:
        out = {m: recent.envelope(m, TRACE_SECONDS, TRACE_POINTS, now=now) for m in mods}
        return encode({"type": "traces", **json_safe({"traces": out})})

    def delta() -> str:
        since = now - TRACE_PUSH - OVERLAP
        out = {m: recent.bins(m, TRACE_SECONDS, TRACE_POINTS, since=since, now=now) for m in mods}
        return encode({"type": "traces", "full": False, "traces": out})

    def full() -> str:
        out = {m: recent.bins(m, TRACE_SECONDS, TRACE_POINTS, now=now) for m in mods}
        return encode({"type": "traces", "full": True, "traces": out})

    result: dict[str, object] = {"benchmark": "trace_frames", "repeat": args.repeat}
    cases: dict[str, Callable[[], str]] = {
        "whole_envelope": whole,
        "delta_frame": delta,
        "full_frame": full,
    }
    for name, build in cases.items():
        text = build()
        start = time.perf_counter()
        for _ in range(args.repeat):
            build()
        ms = (time.perf_counter() - start) / args.repeat * 1e3
        result[name] = {"ms_per_frame": round(ms, 3), "bytes": len(text)}
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
