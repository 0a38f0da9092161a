"""How many real EDA windows the flat-EDA rule rejects, as JSON.

Usage: ``python benchmarks/bench_eda_flat.py [--data ../shared/data]``

Stress-Predict's Empatica E4 EDA (4 Hz, µS), cut into 60-s windows (inside the plausible
range): the share of windows :func:`affectstream.signal.eda._frozen` calls a frozen value
plus noise (with the share of repeated raw values, as the processor has it), and the same
for each window with its values replaced by its mean plus 0.001 µS Gaussian noise (which it
should all reject).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from affectstream.signal.eda import EDA_RANGE, _frozen


def _repeated(x: np.ndarray) -> float:
    """Share of samples equal to the one before (as the EDA processor counts them)."""
    return float(np.mean(x[1:] == x[:-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data")
    args = parser.parse_args()
    files = sorted((Path(args.data) / "stress-predict" / "Raw_data").glob("S*/EDA.csv"))
    if not files:
        raise SystemExit(f"no Stress-Predict EDA under {args.data}; pass --data")
    rng = np.random.default_rng(0)
    real, frozen, windows = 0, 0, 0
    for path in files:
        x = np.loadtxt(path)[2:]
        n = 240  # 60 s at 4 Hz
        for w in x[: len(x) // n * n].reshape(-1, n):
            if w.min() < EDA_RANGE[0]:
                continue
            windows += 1
            real += _frozen(w, 1, _repeated(w))
            distorted = w.mean() + rng.normal(0.0, 0.001, n)
            frozen += _frozen(distorted, 1, _repeated(distorted))
    out = {
        "participants": len(files),
        "windows": windows,
        "real_rejected_fraction": real / windows,
        "frozen_plus_noise_rejected_fraction": frozen / windows,
    }
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
