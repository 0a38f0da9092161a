"""The demo's emulated wrist signals through the signal layer and ``stress-wrist``, offline.

Usage: ``python benchmarks/bench_demo_wrist.py [--seeds 3] [--duration 150]``

The default demo script (:func:`affectstream.runtime.demo.demo_script` with the planned
baseline) drives the emulator's EDA
(:class:`~affectstream.device.emulation.signals.EdaGenerator`, 4 Hz) and heart rate (1-Hz mean
of the :class:`~affectstream.device.emulation.signals.BeatGenerator`'s beats); they are
featurised on the bundle's trained windows at its common EDA rate (``bundle.json``: 60 s every 5
s, 4 Hz), normalised against the windows that end inside the baseline, as the live estimator
does, and scored by the shipped LightGBM. Prints JSON per seed: the number of reference windows,
and per phase the median probability and the median z-score of each feature (the clip is 10), by
window end as the demo benchmark counts them, plus ``<phase> (whole windows)``: the windows
lying entirely inside the phase (none when it is shorter than a window).
"""

from __future__ import annotations

import argparse
import dataclasses
import json

import numpy as np

from affectstream.device.emulation.signals import BeatGenerator, EdaGenerator
from affectstream.models.bundle import load_bundle
from affectstream.runtime.demo import DEMO_DURATION, demo_baseline, demo_script, reference_needs
from affectstream.runtime.multiwindow import trained_window
from affectstream.runtime.reference import LEAD_IN
from affectstream.signal import extract_features
from affectstream.types import SampleBlock


def _heart_rate(script: object, seed: int, duration: float) -> SampleBlock:
    beats = BeatGenerator(script, np.random.default_rng(seed))  # type: ignore[arg-type]
    times, rr = beats.beats_between(0.0, duration + 1.0)
    grid = np.arange(1.0, duration + 1e-9, 1.0)
    # The strap's 1-Hz heart rate: the beats of the last second (the previous value when none).
    hr, last = [], float(60.0 / rr[1])
    for t in grid:
        inside = rr[(times > t - 1.0) & (times <= t)]
        last = float(np.mean(60.0 / inside)) if inside.size and np.isfinite(inside).all() else last
        hr.append(last)
    return SampleBlock.regular("band/hr", "hr", ("hr",), np.asarray(hr)[:, None], 1.0, 1.0)


def main() -> None:
    """Run and print JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=DEMO_DURATION)
    args = parser.parse_args()
    bundle = load_bundle("stress-wrist")
    # The windows and EDA rate it was trained on, as the live estimator reads them.
    window = dataclasses.replace(trained_window(bundle), common_rate=bundle.common_rate)
    norm = bundle.normalizer
    baseline, _ = demo_baseline(args.duration, reference_needs([bundle]))
    script, protocol = demo_script(args.duration, baseline)
    duration = float(args.duration)
    ends = np.cumsum([p.duration for p in protocol.phases])
    names = [p.name for p in protocol.phases]
    out = []
    for seed in range(args.seeds):
        t = np.arange(0.0, duration, 0.25)
        eda = EdaGenerator(script, np.random.default_rng(seed)).samples_at(t)
        blocks = [
            SampleBlock.regular("band/eda", "eda", ("eda",), eda[:, None], 4.0, 0.0),
            _heart_rate(script, seed, duration),
        ]
        # The devices start within the lead-in: the windows' grid starts at the first sample.
        rows = extract_features(blocks, window)
        rows["t_end"] = rows["t_end"] + LEAD_IN / 2
        rows["reference"] = rows["t_end"] <= baseline
        x = rows[bundle.features].to_numpy(dtype=float)
        z = norm.apply(x, norm.reference_center(rows), norm.reference_scale(rows))
        p = bundle.booster.predict(z)
        phase = np.searchsorted(ends, rows["t_end"].to_numpy(), side="left")
        entry: dict[str, object] = {
            "seed": seed,
            "reference_windows": int(rows["reference"].sum()),
        }
        t_end = rows["t_end"].to_numpy()
        starts = np.concatenate([[0.0], ends[:-1]])
        for k, name in enumerate(names):
            by_end = (phase == k) & ~rows["reference"].to_numpy()
            whole = by_end & (t_end - 60.0 >= starts[k] + LEAD_IN / 2)
            for label, sel in ((name, by_end), (f"{name} (whole windows)", whole)):
                if sel.any():
                    entry[label] = {
                        "windows": int(sel.sum()),
                        "p": round(float(np.median(p[sel])), 2),
                        "z": {
                            f: round(float(np.nanmedian(z[sel, i])), 1)
                            for i, f in enumerate(bundle.features)
                        },
                    }
        out.append(entry)
    print(json.dumps({"baseline_s": baseline, "runs": out}, indent=1))


if __name__ == "__main__":
    main()
