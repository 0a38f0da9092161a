"""EDA-rate train/serve skew of ``stress-wrist``: features and arousal, before and after, as JSON.

Usage: ``python benchmarks/bench_eda_rate_skew.py [--data ../shared/data] [--out FILE]``

``stress-wrist`` was trained on EDA averaged to 4 Hz. For each input below,
:func:`affectstream.runtime.rate_skew.measure_rate_skew` compares with that training
definition (a) the features at the stream's own rate, as live sessions computed them before
they honoured the bundle's common rate (``own_rate``), and (b) the live feature path as it
runs now (``live``): per feature (mean ratio - 1, median |relative difference|, max |diff|)
and the bundle's arousal (|probability difference|, share of high/low decisions flipped).

Inputs: emulated EDA band at 32 Hz with heart-rate events (the default affect script,
``--emulated`` wearers of 12 min); Non-EEG (Affectiva Q, 8 Hz) at its own rate; Stress-
Predict (Empatica E4, 4 Hz) linearly upsampled to 32 Hz (as a 32-Hz band would see the
same skin). Real data are read from ``--data`` and skipped when absent.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from affectstream.models.bundle_io import load_bundle, resolve_bundle
from affectstream.models.datasets import load_dataset
from affectstream.runtime.rate_skew import emulated_wrist, measure_rate_skew
from affectstream.types import SampleBlock


def upsampled(block: SampleBlock, factor: int) -> SampleBlock:
    """EDA/temperature linearly interpolated to ``factor`` times its rate (others as they are)."""
    if block.modality not in ("eda", "temp") or block.sfreq is None:
        return block
    n = (len(block) - 1) * factor + 1
    x = np.arange(n) / factor
    values = np.interp(x, np.arange(len(block)), block.values[:, 0])
    return SampleBlock.regular(
        block.stream, block.modality, block.channels, values, block.sfreq * factor,
        float(block.t[0]), device=block.device,
    )  # fmt: skip


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """Headline numbers: each feature's mean ratio - 1 and largest |difference|, arousal."""
    out: dict[str, Any] = {"windows": result["windows"], "subjects": result["subjects"]}
    for stage in ("own_rate", "live"):
        features, arousal = result[stage]["features"], result[stage]["arousal"]
        out[stage] = {
            f: {"mean_ratio_minus_1": float(f"{v['mean_ratio_minus_1']:.4g}"),
                "max_abs": float(f"{v['max_abs']:.4g}")}
            for f, v in features.items()
        } | {
            "arousal": {k: float(f"{v:.4g}") for k, v in arousal.items() if k != "n"}
        }  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--emulated", type=int, default=6, help="emulated wearers")
    parser.add_argument("--out", help="write the full report here (JSON)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    bundle = load_bundle(resolve_bundle("stress-wrist"))
    baseline = float(bundle.meta["normalization"]["baseline_seconds"])
    inputs = {"emulated-32hz": lambda: [emulated_wrist(s, 12.0) for s in range(args.emulated)]}
    data = Path(args.data)
    if (data / "noneeg").exists():
        inputs["noneeg-8hz"] = lambda: load_dataset("noneeg", data / "noneeg")
    if (data / "stress-predict").exists():
        inputs["stress-predict-4hz-upsampled-32hz"] = lambda: [
            rec.map_blocks(lambda b: upsampled(b, 8))
            for rec in load_dataset("stress-predict", data / "stress-predict")
        ]
    report: dict[str, Any] = {"bundle": bundle.model_id, "common_rate": bundle.common_rate}
    for name, load in inputs.items():
        started = time.perf_counter()
        result = measure_rate_skew(load(), bundle, baseline_seconds=baseline)
        result["seconds"] = round(time.perf_counter() - started, 1)
        report[name] = result
        print(json.dumps({name: summary(result)}), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
