"""One estimate from several bundles of the same target, weighted by what each one could see.

With wrist, chest and EEG devices the session runs every bundle that fits (e.g.
``stress-wrist`` on EDA/HR/temperature/movement with 60-s windows and ``eeg-workload`` on
EEG with 10-s windows). Each bundle's own fields are kept as ``<target>_by_<name>``,
``<target>_by_<name>_confidence`` and ``<target>_by_<name>_coverage``; the combined ones:

- ``<target>`` (and ``_svm``) = the confidence-weighted mean of the bundles' probabilities,
  where a bundle's confidence is its ``coverage x agreement x reference`` (docs/runtime.md);
  a bundle whose modality is missing has coverage 0 and drops out;
- ``<target>_confidence`` = the weighted mean of the estimating bundles' confidences (the
  weights are the confidences themselves) times the share of the session's bundles that
  estimate: a bundle that gives none (its modality lost, its reference still filling) is a
  missing part, so with one of two bundles missing the confidence is half the other's, not 0
  and not all of it; ``<target>_coverage`` = the share of all bundles' features present;
- ``<target>_basis``: every bundle with its probability and weight, and why the others gave
  none: ``"eeg-workload: no input"``, ``"...: input outside its training range"``,
  ``"...: no window yet"`` or the bundle's own reason (``"stress-wrist: reference filling,
  1 of 2 60-s windows"``, ``"stress-wrist: reference too short (...)"``);
  ``<target>_top1..3`` from the heaviest bundle.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from affectstream.models.bundle import ModelBundle


def bundle_name(bundle: ModelBundle) -> str:
    """A bundle's name for people (``stress-wrist``): its ``name``, else its model id.

    Parameters
    ----------
    bundle : ModelBundle

    Returns
    -------
    str
    """
    return str(bundle.meta.get("name") or bundle.model_id)


def bundle_key(bundle: ModelBundle) -> str:
    """Field-name-safe bundle name (``stress_wrist``).

    Parameters
    ----------
    bundle : ModelBundle

    Returns
    -------
    str
    """
    return re.sub(r"[^A-Za-z0-9]+", "_", bundle_name(bundle)).strip("_").lower()


def combine(
    target: str, results: Sequence[tuple[ModelBundle, dict[str, Any]]], top: int
) -> dict[str, Any]:
    """Combine the fields of several bundles of ``target`` for one window.

    Parameters
    ----------
    target : str
        ``"arousal"`` or ``"valence"``.
    results : sequence of (ModelBundle, dict)
        Each bundle with the fields it gave for this window (empty: no window yet).
    top : int
        Contributions kept.

    Returns
    -------
    dict
    """
    out: dict[str, Any] = {}
    weights, parts, missing = [], [], []
    n_present = n_total = 0.0
    for bundle, fields in results:
        key = f"{target}_by_{bundle_key(bundle)}"
        name = bundle_name(bundle)
        n_total += len(bundle.features)
        p = fields.get(target)
        conf = float(fields.get(f"{target}_confidence", 0.0) or 0.0)
        coverage = float(fields.get(f"{target}_coverage", 0.0) or 0.0)
        n_present += coverage * len(bundle.features)
        out[key] = math.nan if p is None else float(p)
        out[f"{key}_confidence"] = conf
        out[f"{key}_coverage"] = coverage
        if p is None or not math.isfinite(float(p)) or conf <= 0.0:
            if not fields:
                missing.append(f"{name}: no window yet")
            elif fields.get(f"{target}_basis"):  # the bundle says why (estimator.py)
                missing.append(str(fields[f"{target}_basis"]))
            elif fields.get(f"{target}_in_distribution") is False:
                missing.append(f"{name}: input outside its training range")
            else:
                missing.append(f"{name}: no input")
            continue
        weights.append((conf, bundle, fields))
        parts.append(f"{name} {float(p):.2f} (weight {conf:.2f})")
    total = sum(w for w, _, _ in weights)
    if total > 0:
        out[target] = sum(w * float(f[target]) for w, _, f in weights) / total
        out[f"{target}_svm"] = sum(w * float(f[f"{target}_svm"]) for w, _, f in weights) / total
        out[f"{target}_high"] = bool(out[target] >= 0.5)
        present = len(weights) / len(results)  # the missing parts lower the confidence
        out[f"{target}_confidence"] = present * sum(w * w for w, _, _ in weights) / total
        out[f"{target}_calibrated"] = all(
            bool(f.get(f"{target}_calibrated")) for _, _, f in weights
        )
        out[f"{target}_reference_final"] = all(
            bool(f.get(f"{target}_reference_final")) for _, _, f in weights
        )
        heaviest = max(weights, key=lambda item: item[0])[2]
        for k in range(top):
            out[f"{target}_top{k + 1}"] = heaviest.get(f"{target}_top{k + 1}")
    else:
        out[target] = out[f"{target}_svm"] = math.nan
        out[f"{target}_confidence"] = 0.0
        for k in range(top):
            out[f"{target}_top{k + 1}"] = None
    out[f"{target}_coverage"] = n_present / n_total if n_total else 0.0
    out[f"{target}_basis"] = (
        " + ".join(parts) + ("; " if parts and missing else "") + "; ".join(missing)
    )
    return out
