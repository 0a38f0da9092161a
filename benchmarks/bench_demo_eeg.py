"""The demo's emulated EEG through the signal layer and ``eeg-workload``, offline.

Usage: ``python benchmarks/bench_demo_eeg.py [--drop 0.75 0.35] [--seeds 3]``

For each alpha drop (``ALPHA_AROUSAL_DROP`` of the emulator) and seed, the 90-s demo script
(:func:`affectstream.runtime.demo.demo_script`) drives an emulated Muse's EEG (TP9, AF7, AF8,
TP10 at 256 Hz); its 10-s windows every 2 s are featurised, normalised against the baseline
windows as the live estimator does, and scored by the shipped bundle. Prints JSON per drop:
the lowest in-range share after the baseline (below 0.75 = out of distribution), and the
median probability in the stress and recovery phases.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

import affectstream.device.emulation.signals as signals
from affectstream.models.bundle import load_bundle
from affectstream.runtime.demo import demo_script
from affectstream.signal import WindowConfig, extract_features
from affectstream.types import SampleBlock

CHANNELS = ("TP9", "AF7", "AF8", "TP10")
RATE, DURATION = 256.0, 90.0


def main() -> None:
    """Run and print JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--drop", type=float, nargs="+", default=[signals.ALPHA_AROUSAL_DROP])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    bundle = load_bundle("eeg-workload")
    norm = bundle.normalizer
    script, protocol = demo_script(DURATION)
    lengths = [p.duration for p in protocol.phases]
    baseline_end, stress_end = lengths[0], lengths[0] + lengths[1]
    out = {}
    for drop in args.drop:
        signals.ALPHA_AROUSAL_DROP = drop
        runs = []
        for seed in range(args.seeds):
            eeg = signals.EegGenerator(script, CHANNELS, RATE, np.random.default_rng(seed))
            block = SampleBlock.regular(
                "muse/eeg", "eeg", CHANNELS, eeg.samples(0, int(RATE * DURATION)), RATE, 0.0
            )
            rows = extract_features([block], WindowConfig(window=10.0, step=2.0))
            t = rows["t_end"].to_numpy()
            ref = rows.loc[t <= baseline_end, bundle.features].assign(reference=True)
            z = norm.apply(
                rows[bundle.features].to_numpy(dtype=float),
                norm.reference_center(ref),
                norm.reference_scale(ref),
            )
            share = bundle.input_in_range(z)
            p = bundle.booster.predict(z)
            stress = (t > baseline_end + 10.0) & (t <= stress_end)
            runs.append(
                {
                    "lowest_in_range_share": round(float(share[t > baseline_end].min()), 2),
                    "median_p_stress": round(float(np.median(p[stress])), 2),
                    "median_p_recovery": round(float(np.median(p[t > stress_end + 10.0])), 2),
                }
            )
        out[str(drop)] = runs
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
