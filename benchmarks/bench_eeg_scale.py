"""Where clean EEG sits against its own scale: the numbers behind ``eeg_max_ptp_scale``.

Usage: ``python benchmarks/bench_eeg_scale.py [--data ../shared/data/eegmat] [--recordings 12]``

For eegmat recordings (as loaded, and Muse-like copies at gains 1, 0.25 and 4 from
:func:`affectstream.models.muselike.muse_like`), every 2-s Welch segment (1-s hop, first 5
skipped for the filter's start-up) of the signal layer's filtered EEG
(:func:`affectstream.signal.eeg.filter_eeg`) is compared with its channel's scale: the median
over the last 60 segments of each segment's robust scale (``robust_scale``: 1.4826 × its
median absolute deviation). Printed as
JSON: quantiles of peak-to-peak / scale, the share of segments a relative limit of 10, 12, 15
accepts, and the share the former absolute 150 µV limit accepted.

``--feature-change`` also extracts every eegmat recording's EEG features on the
``eeg-workload`` windows (10 s, step 2 s) with the current rules and with the former ones
(absolute 150 µV, no relative limits) and reports how many windows have any band power that
differs, and the mean EEG quality under each: whether the bundle's training features moved.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from affectstream.models.datasets import Recording, load_eegmat
from affectstream.models.muselike import muse_like
from affectstream.signal import WindowConfig, extract_features
from affectstream.signal.eeg import EEG_SCALE_SECONDS, filter_eeg, robust_scale


def ratios(recordings: list[Recording]) -> dict[str, Any]:
    """Peak-to-peak over the channel's scale, and peak-to-peak in µV, of every segment."""
    rel: list[np.ndarray[Any, Any]] = []
    ptps: list[np.ndarray[Any, Any]] = []
    for rec in recordings:
        block = next(b for b in rec.blocks if b.modality == "eeg")
        x = filter_eeg(block)
        n = round(2 * float(block.sfreq or 0.0))
        segs = sliding_window_view(x, n, axis=0)[:: n - n // 2][5:]
        segs = segs - segs.mean(axis=-1, keepdims=True)
        scale = robust_scale(segs)
        span = round(EEG_SCALE_SECONDS)
        reference = np.array(
            [np.median(scale[max(0, i - span + 1) : i + 1], axis=0) for i in range(len(scale))]
        )
        ptp = segs.max(axis=-1) - segs.min(axis=-1)
        rel.append(ptp / reference)
        ptps.append(ptp)
    r, p = np.concatenate(rel).ravel(), np.concatenate(ptps).ravel()
    return {
        "n_segments": int(r.size),
        "ptp_over_scale_quantiles": {
            q: round(float(np.quantile(r, float(q) / 100.0)), 2) for q in ("50", "99", "99.9")
        },
        "accepted_relative": {str(k): round(float(np.mean(r <= k)), 4) for k in (10, 12, 15)},
        "accepted_absolute_150uV": round(float(np.mean(p <= 150.0)), 4),
    }


def feature_change(recordings: list[Recording]) -> dict[str, Any]:
    """Windows whose band powers differ between the current and the former artefact rules."""
    current = WindowConfig(window=10.0, step=2.0)
    former = WindowConfig(
        window=10.0, step=2.0, eeg_max_ptp=150.0, eeg_max_ptp_scale=1e9, eeg_min_std_scale=1e-9
    )
    n_windows, changed = 0, 0
    quality: dict[str, list[float]] = {"current": [], "former": []}
    for rec in recordings:
        blocks = [b for b in rec.blocks if b.modality == "eeg"]
        new, old = extract_features(blocks, current), extract_features(blocks, former)
        cols = [c for c in new.columns if c.startswith("eeg_") and "_abs_" in c]
        a, b = new[cols].to_numpy(), old[cols].to_numpy()
        same = np.all((a == b) | (np.isnan(a) & np.isnan(b)), axis=1)
        n_windows += len(new)
        changed += int((~same).sum())
        quality["current"].append(float(new["quality_eeg"].mean()))
        quality["former"].append(float(old["quality_eeg"].mean()))
    return {
        "recordings": len(recordings),
        "windows": n_windows,
        "windows_with_a_changed_band_power": changed,
        "mean_quality_current": round(float(np.mean(quality["current"])), 4),
        "mean_quality_former": round(float(np.mean(quality["former"])), 4),
    }


def main() -> None:
    """Print the JSON report."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="../shared/data/eegmat")
    parser.add_argument("--recordings", type=int, default=12)
    parser.add_argument("--feature-change", action="store_true")
    args = parser.parse_args()
    everyone = load_eegmat(args.data)
    recordings = everyone[: args.recordings]
    report: dict[str, Any] = {"eegmat": ratios(recordings)}
    if args.feature_change:
        report["eeg_workload_feature_change"] = feature_change(everyone)
    for gain in (1.0, 0.25, 4.0):
        report[f"muse_like_gain_{gain:g}"] = ratios(muse_like(recordings, gain=gain))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
