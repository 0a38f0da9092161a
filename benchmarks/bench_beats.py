"""R-peak and PPG pulse-peak detection quality and latency of the extractor, as JSON.

Usage: ``python benchmarks/bench_beats.py [--data ../shared/data] [--module PATH]``

Sensitivity, positive predictive value and timing error of the matched beats of
``detect_beats`` (the extractor's detector) against

- synthetic ECG with known beats (:func:`affectstream.signal.synthetic.synthetic_ecg`,
  130/250/1000 Hz, noise and baseline wander), a detection counting within 50 ms; and
- NeuroKit2's example ECGs (``<data>/neurokit``, 100 and 1000 Hz) against ``nk.ecg_peaks`` on
  the whole recording (the offline reference), within 50 ms.

``--module`` loads ``detect_beats`` from another copy of ``hrv.py`` (for example the previous
segment-based detector: ``git show 979837b:affectstream/signal/hrv.py > /tmp/old_hrv.py``), so
the same command measures before and after (or run it with ``PYTHONPATH`` pointing at another
checkout of the package). Also reported: how far behind the newest sample
the beats of a stream fed in 0.25-s blocks are final (``ready_until``), p50/p99 in seconds.

PPG (``"ppg"``), within 100 ms, against ``nk.ppg_findpeaks(nk.ppg_clean(x), method="elgendi")``
on the whole recording: ``same_signal`` is :class:`~affectstream.signal.ppg_beats.PpgBeatDetector`
on that cleaned signal (the detector alone, also at 25 Hz, below the extractor's 50-Hz
floor); ``pipeline`` is ``detect_beats`` (the extractor's causal band-pass, then the
detector). Signals: ``nk.ppg_simulate`` at 25/64/100 Hz, NeuroKit2's example finger PPG
(``<data>/neurokit``) and Empatica E4 wrist BVP (``<data>/stress-predict``, S02/S05/S09:
whole sessions, and ``regular``: only the 10-s stretches where NeuroKit2's intervals are
plausible and steady, since motion artefact leaves no reference there).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from affectstream.signal import WindowConfig
from affectstream.signal.hrv import TEMPLATE_SPAN, HrvProcessor
from affectstream.signal.ppg_beats import PpgBeatDetector, regular_stretches
from affectstream.signal.synthetic import split_block, synthetic_ecg, synthetic_rr
from affectstream.types import IntArray, SampleBlock

TOLERANCE = 0.05  # s
PPG_TOLERANCE = 0.1  # s: a systolic peak is broader than an R peak
T0 = 1_700_000_000.0


def match(
    found: np.ndarray, truth: np.ndarray, sfreq: float, tolerance: float = TOLERANCE
) -> dict[str, Any]:
    """Sensitivity and PPV of ``found`` against ``truth`` (sample positions), one-to-one."""
    tol = tolerance * sfreq
    used = np.zeros(truth.size, dtype=bool)
    hits = 0
    errors = []
    for pos in np.sort(found):
        if truth.size == 0:
            break
        i = int(np.argmin(np.abs(truth - pos) + used * 1e12))
        if not used[i] and abs(truth[i] - pos) <= tol:
            used[i] = True
            hits += 1
            errors.append(abs(float(truth[i] - pos)) / sfreq * 1000.0)
    return {
        "truth": int(truth.size),
        "found": int(found.size),
        "sensitivity": hits / truth.size if truth.size else float("nan"),
        "ppv": hits / found.size if found.size else float("nan"),
        # Timing error of the matched beats (ms): the same R peak or a neighbouring sample.
        "matched_abs_dt_ms": {
            "median": float(np.median(errors)) if errors else float("nan"),
            "max": float(np.max(errors)) if errors else float("nan"),
        },
    }


def _load(module: str | None) -> Callable[..., IntArray]:
    if module is None:
        from affectstream.signal.hrv import detect_beats

        return detect_beats
    spec = importlib.util.spec_from_file_location("other_hrv", module)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {module}")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    detect: Callable[..., IntArray] = mod.detect_beats
    return detect


def _lag(block: SampleBlock) -> dict[str, float]:
    """Seconds between the newest sample and ``ready_until`` after each 0.25-s block."""
    config = WindowConfig(origin=float(block.t[0]))
    processor = HrvProcessor(block, config)
    size = max(1, round(0.25 * (block.sfreq or 1.0)))
    lags = []
    for chunk in split_block(block, [size]):
        processor.feed(chunk)
        lags.append(processor.data_end() - processor.ready_until())
    arr = np.asarray(lags[len(lags) // 10 :])  # after the first tenth (start-up)
    return {"p50": float(np.percentile(arr, 50)), "p99": float(np.percentile(arr, 99))}


def _ppg_entry(
    x: np.ndarray, sfreq: float, detect: Callable[..., IntArray] | None, with_lag: bool
) -> dict[str, Any]:
    import neurokit2 as nk

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cleaned = np.asarray(nk.ppg_clean(x, sampling_rate=sfreq), dtype=np.float64)
        info = nk.ppg_findpeaks(cleaned, sampling_rate=sfreq, method="elgendi")
    reference = np.asarray(info["PPG_Peaks"], dtype=np.int64)
    before, after = TEMPLATE_SPAN["ppg"]
    detector = PpgBeatDetector(sfreq, (round(before * sfreq), round(after * sfreq)))
    same = np.array([p for p, _ in detector.feed(cleaned) + detector.close()], dtype=np.int64)
    entry: dict[str, Any] = {"same_signal": match(same, reference, sfreq, PPG_TOLERANCE)}
    regular = regular_stretches(reference, sfreq, x.size)
    if regular.mean() < 0.9:
        entry["regular_share"] = float(regular.mean())
        entry["same_signal_regular"] = match(
            same[regular[same]], reference[regular[reference]], sfreq, PPG_TOLERANCE
        )
    if detect is not None:
        block = SampleBlock.regular("w/ppg", "ppg", ("PPG",), x, sfreq, T0)
        found = np.asarray(detect(block))
        entry["pipeline"] = match(found, reference, sfreq, PPG_TOLERANCE)
        if "regular_share" in entry:
            entry["pipeline_regular"] = match(
                found[regular[found]], reference[regular[reference]], sfreq, PPG_TOLERANCE
            )
        if with_lag:
            entry["final_lag_s"] = _lag(block)
    return entry


def _ppg(detect: Callable[..., IntArray], data: Path, with_lag: bool) -> dict[str, Any]:
    import neurokit2 as nk
    import pandas as pd

    out: dict[str, Any] = {"tolerance_s": PPG_TOLERANCE, "synthetic": {}, "real": {}}
    for sfreq in (25, 64, 100):
        x = nk.ppg_simulate(duration=300, sampling_rate=sfreq, heart_rate=80, random_state=7)
        usable = detect if sfreq >= 50 else None  # the extractor refuses beats under 50 Hz
        out["synthetic"][f"{sfreq}Hz"] = _ppg_entry(x, float(sfreq), usable, with_lag)
    example = data / "neurokit" / "bio_resting_5min_100hz.csv"
    if example.is_file():
        x = pd.read_csv(example)["PPG"].to_numpy(dtype=np.float64)
        out["real"]["neurokit/bio_resting_5min_100hz"] = _ppg_entry(x, 100.0, detect, with_lag)
    for subject in ("S02", "S05", "S09"):
        path = data / "stress-predict" / "Raw_data" / subject / "BVP.csv"
        if path.is_file():
            x = pd.read_csv(path, header=None, skiprows=2).to_numpy(dtype=np.float64)[:, 0]
            out["real"][f"stress-predict/{subject}/BVP"] = _ppg_entry(x, 64.0, detect, with_lag)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--module", default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    detect = _load(args.module)
    out: dict[str, Any] = {"tolerance_s": TOLERANCE, "synthetic": {}, "neurokit": {}}
    for sfreq in (130.0, 250.0, 1000.0):
        rng = np.random.default_rng(7)
        beats = synthetic_rr(300.0, rng)
        ecg = synthetic_ecg(beats, 300.0, sfreq, rng)
        block = SampleBlock.regular("s/ecg", "ecg", ("ECG",), ecg, sfreq, T0)
        truth = np.rint(beats * sfreq).astype(np.int64)
        truth = truth[truth < len(block)]
        entry = match(np.asarray(detect(block)), truth, sfreq)
        if args.module is None:
            entry["final_lag_s"] = _lag(block)
        out["synthetic"][f"{sfreq:g}Hz"] = entry
    folder = Path(args.data) / "neurokit"
    if folder.is_dir():
        import neurokit2 as nk
        import pandas as pd

        for name, sfreq in (
            ("ecg_1000hz.csv", 1000.0),
            ("bio_resting_5min_100hz.csv", 100.0),
            ("bio_resting_8min_100hz.csv", 100.0),
            ("bio_eventrelated_100hz.csv", 100.0),
        ):
            signal = pd.read_csv(folder / name)["ECG"].to_numpy(dtype=np.float64)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _, info = nk.ecg_peaks(nk.ecg_clean(signal, sampling_rate=sfreq), sfreq)
            reference = np.asarray(info["ECG_R_Peaks"], dtype=np.int64)
            block = SampleBlock.regular("nk/ecg", "ecg", ("ECG",), signal, sfreq, T0)
            entry = match(np.asarray(detect(block)), reference, sfreq)
            if args.module is None:
                entry["final_lag_s"] = _lag(block)
            out["neurokit"][name] = entry
    out["ppg"] = _ppg(detect, Path(args.data), with_lag=args.module is None)
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
