"""Which model estimates in ``affectstream demo``: per-bundle counts from the stored estimates.

Usage: ``python benchmarks/bench_demo_models.py [--duration 150] [--seed 0]``

Runs the demo (emulated devices over the emulated BLE stack, the real runtime) into a
temporary embedded store, reads its ``affect`` points and phase events back and prints JSON:
the protocol, the number of windows, per bundle the windows where it estimated (weight > 0 in
the combination, ``arousal_by_<bundle>_confidence``) and where it said its reference was
filling or too short, and per phase (by window end) the medians of the combined arousal, each
bundle's and the combined confidence. Real time: it takes ``--duration`` seconds plus start-up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from affectstream.runtime.demo import DemoOptions, run_demo
from affectstream.store import open_store


def _median(values: Any) -> float | None:
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    return round(float(np.median(finite)), 3) if finite.size else None


def main() -> None:
    """Run the demo and print JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=None, help="default: the demo's")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        options = DemoOptions(store=Path(tmp) / "store", seed=args.seed)
        if args.duration is not None:
            options.duration = args.duration
        summary = asyncio.run(run_demo(options))
        with open_store(Path(tmp) / "store") as store:
            tags = {"session": summary["session"]}
            affect = store.read("affect", tags=tags)
            events = store.read("events", tags=tags)
    phases = events[events["kind"] == "phase"].sort_values("time_ns")
    starts = phases["time_ns"].to_numpy(np.int64)
    labels = phases["label"].to_numpy()
    at = np.searchsorted(starts, affect["time_ns"].to_numpy(np.int64), side="right") - 1
    affect["phase"] = labels[np.clip(at, 0, len(labels) - 1)]
    keys = sorted(
        c[len("arousal_by_") : -len("_confidence")]
        for c in affect.columns
        if c.startswith("arousal_by_") and c.endswith("_confidence")
    )
    basis = affect.get("arousal_basis")
    bundles = {}
    for key in keys:
        name = key.replace("_", "-")
        said = basis.fillna("") if basis is not None else None
        bundles[name] = {
            "estimated": int((affect[f"arousal_by_{key}_confidence"] > 0).sum()),
            "reference_filling": int(said.str.contains(f"{name}: reference filling").sum())
            if said is not None
            else 0,
            "reference_too_short": int(said.str.contains(f"{name}: reference too short").sum())
            if said is not None
            else 0,
        }
    per_phase = {}
    for phase, rows in affect.groupby("phase", sort=False):
        entry = {"windows": len(rows), "arousal": _median(rows["arousal"])}
        entry["confidence"] = _median(rows["arousal_confidence"])
        for key in keys:
            entry[key.replace("_", "-")] = _median(rows[f"arousal_by_{key}"])
        per_phase[str(phase)] = entry
    out = {
        "duration_s": options.duration,
        "protocol": summary["protocol"],
        "warnings": summary["warnings"],
        "windows": len(affect),
        "arousal_estimated": int(affect["arousal"].notna().sum()),
        "bundles": bundles,
        "both": int(np.all([affect[f"arousal_by_{k}_confidence"] > 0 for k in keys], axis=0).sum())
        if keys
        else 0,
        "median_by_phase": per_phase,
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
