"""Exact output of both beat detectors, as JSON fingerprints (to compare two versions).

Usage: ``python benchmarks/beats_fingerprint.py [--data ../shared/data]``; run it again with
``PYTHONPATH`` on another checkout (``git archive <commit> | tar -x -C /tmp/old``) and compare
the two outputs: a refactor that keeps the beats must print the same text.

Each case is one detector (:class:`~affectstream.signal.beats.EcgBeatDetector`,
:class:`~affectstream.signal.ppg_beats.PpgBeatDetector`, the extractor's template spans)
on one cleaned signal fed whole, in 64-sample blocks and in 1/7/33/130-sample blocks; its
fingerprint hashes every beat's position and quality bits, :attr:`final` after each feed
and the inserted beats. Signals: synthetic ECG at 130/250/1000 Hz and ``nk.ppg_simulate`` at
25/64/100 Hz (each with a gap of missing samples), NeuroKit2's example ECGs and finger PPG
(``<data>/neurokit``) and Stress-Predict E4 BVP (S02/S05/S09), those present.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from affectstream.signal.beats import EcgBeatDetector
from affectstream.signal.hrv import TEMPLATE_SPAN
from affectstream.signal.ppg_beats import PpgBeatDetector
from affectstream.signal.synthetic import synthetic_ecg, synthetic_rr

CUTS = {"whole": [], "64": [64], "mixed": [1, 7, 33, 130]}


def fingerprint(kind: str, x: np.ndarray, sfreq: float, sizes: list[int]) -> list[Any]:
    """Beat count and a hash of everything the detector reported, fed in ``sizes`` blocks."""
    before, after = TEMPLATE_SPAN[kind]
    template = (round(before * sfreq), round(after * sfreq))
    detector = (EcgBeatDetector if kind == "ecg" else PpgBeatDetector)(sfreq, template)
    sizes = sizes or [x.size]
    beats, finals, start, k = [], [], 0, 0
    while start < x.size:
        size = sizes[k % len(sizes)]
        beats += detector.feed(x[start : start + size])
        finals.append(detector.final)
        start, k = start + size, k + 1
    beats += detector.close()
    text = repr([(p, q.hex()) for p, q in beats]) + repr(finals)
    text += repr(sorted(detector.inserted.items()))
    return [len(beats), hashlib.sha256(text.encode()).hexdigest()[:16]]


def signals(data: Path) -> list[tuple[str, str, np.ndarray, float]]:
    """(kind, name, cleaned signal, sampling rate) of every case."""
    import neurokit2 as nk

    out = []
    for sfreq in (130.0, 250.0, 1000.0):
        rng = np.random.default_rng(7)
        ecg = np.asarray(nk.ecg_clean(synthetic_ecg(synthetic_rr(300.0, rng), 300.0, sfreq, rng),
                                      sampling_rate=sfreq), dtype=np.float64)  # fmt: skip
        ecg[int(100 * sfreq) : int(101 * sfreq)] = np.nan
        out.append(("ecg", f"synthetic {sfreq:g} Hz", ecg, sfreq))
    for sfreq in (25, 64, 100):
        ppg = nk.ppg_simulate(duration=300, sampling_rate=sfreq, heart_rate=80, random_state=7)
        cleaned = np.asarray(nk.ppg_clean(ppg, sampling_rate=sfreq), dtype=np.float64)
        cleaned[500:600] = np.nan
        out.append(("ppg", f"simulated {sfreq} Hz", cleaned, float(sfreq)))
    folder = data / "neurokit"
    for name, sfreq in (("ecg_1000hz.csv", 1000.0), ("bio_resting_5min_100hz.csv", 100.0),
                        ("bio_resting_8min_100hz.csv", 100.0),
                        ("bio_eventrelated_100hz.csv", 100.0)):  # fmt: skip
        if (folder / name).is_file():
            raw = pd.read_csv(folder / name)["ECG"].to_numpy(dtype=np.float64)
            out.append(("ecg", name, np.asarray(nk.ecg_clean(raw, sampling_rate=sfreq)), sfreq))
    if (folder / "bio_resting_5min_100hz.csv").is_file():
        raw = pd.read_csv(folder / "bio_resting_5min_100hz.csv")["PPG"].to_numpy(dtype=np.float64)
        out.append(
            ("ppg", "bio_resting_5min_100hz.csv", np.asarray(nk.ppg_clean(raw, 100.0)), 100.0)
        )
    for subject in ("S02", "S05", "S09"):
        path = data / "stress-predict" / "Raw_data" / subject / "BVP.csv"
        if path.is_file():
            raw = pd.read_csv(path, header=None, skiprows=2).to_numpy(dtype=np.float64)[:, 0]
            out.append(("ppg", f"{subject}/BVP", np.asarray(nk.ppg_clean(raw, 64.0)), 64.0))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data")
    args = parser.parse_args()
    result: dict[str, Any] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for kind, name, x, sfreq in signals(Path(args.data)):
            for cut, sizes in CUTS.items():
                result[f"{kind} {name} {cut}"] = fingerprint(kind, x, sfreq, sizes)
    print(json.dumps(result, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
