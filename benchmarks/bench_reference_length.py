"""How long a reference ``stress-wrist`` needs, and how often its training inputs hit the clip.

Usage: ``python benchmarks/bench_reference_length.py [--shared ../shared/data]
[--cache-dir .affectstream/cache]``

Builds the bundle's pooled training table (``crossprotocol.shared_frames``, as ``train``
does), then (1) the share of scored windows (and of the stress windows among them) whose
normalised input sits at the clip, and the share in distribution with and without counting
clipped values as out of range; (2) each participant re-normalised against only its first
k reference windows and scored by the shipped LightGBM (in-sample: the trend over k is the
point, not the level). Prints JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

from affectstream.models.bundle import load_bundle
from affectstream.models.coverage import in_range_share
from affectstream.models.crossprotocol import pool_frames, shared_frames


def main() -> None:
    """Run the measurement and print JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shared", type=Path, default=Path("../shared/data"))
    parser.add_argument("--cache-dir", default=None)
    args = parser.parse_args()
    bundle = load_bundle("stress-wrist")
    norm, features = bundle.normalizer, bundle.features
    frames, _, _ = shared_frames(
        {"stress-predict": args.shared / "stress-predict", "noneeg": args.shared / "noneeg"},
        cache_dir=args.cache_dir,
    )
    table = pool_frames(frames).sort_values(["subject", "t_end"])
    scored = ~table["reference"].to_numpy(dtype=bool)
    z = bundle.normalized(table)[scored]
    clip = float(bundle.meta["normalization"]["clip"])
    ranges = bundle.meta["input_range"]
    stress = table["arousal"].to_numpy()[scored] == 1
    out: dict[str, object] = {
        "at_clip": dict(
            zip(features, np.nanmean(z >= clip - 1e-9, axis=0).round(3).tolist(), strict=True)
        ),
        "at_clip_stress_windows": dict(
            zip(
                features,
                np.nanmean(z[stress] >= clip - 1e-9, axis=0).round(3).tolist(),
                strict=True,
            )
        ),
        # The former rule: a clipped value out of range whatever the training range says.
        "in_distribution_range_and_clip": float(
            np.mean(in_range_share(np.where(np.abs(z) >= clip, 1e12, z), ranges) >= 0.75)
        ),
        "in_distribution_range": float(np.mean(in_range_share(z, ranges) >= 0.75)),
    }
    threshold = float(bundle.meta["thresholds"]["lightgbm"])
    by_k = {}
    for k in (1, 2, 3, 5, 8, 13, 25, 37):
        probs, labels = [], []
        for _, part in table.groupby("subject"):
            ref = part[part["reference"].astype(bool)].iloc[:k]
            task = part[~part["reference"].astype(bool) & part["arousal"].notna()]
            if ref.empty or task.empty:
                continue
            zk = norm.apply(
                task[features].to_numpy(dtype=float),
                norm.reference_center(ref),
                norm.reference_scale(ref),
            )
            probs.append(bundle.booster.predict(zk))
            labels.append(task["arousal"].to_numpy())
        p, y = np.concatenate(probs), np.concatenate(labels)
        by_k[k] = {
            "balanced_accuracy": round(float(balanced_accuracy_score(y, p >= threshold)), 3),
            "auroc": round(float(roc_auc_score(y, p)), 3),
        }
    out["reference_windows"] = by_k
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
