"""Comparing nested lever runs (:mod:`.levers_nested`): tables, the nested choice, paired gaps.

Every function takes :func:`~affectstream.models.levers_nested.run_variant` outputs: per
variant, the inner (selection) scores of each outer fold and the held-out arrays ``y``,
``p``, ``threshold``, ``subject``, ``fold`` per setting.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from affectstream.models.baselines import summary

#: The three settings of the selection metric (its worst is the headline).
SETTINGS = ("SP within", "SP -> Non-EEG", "Non-EEG -> SP")


def _scores(arrays: Sequence[np.ndarray[Any, Any]]) -> dict[str, Any]:
    y, p, t, s = arrays[:4]
    res = summary(y, p, t, s)
    return {
        k: res[k]
        for k in ("balanced_accuracy", "auroc", "min_subject_balanced_accuracy", "ci", "n_subjects")
    }


def tabulate(
    runs: dict[str, dict[str, Any]], candidates: Sequence[str] | None = None
) -> dict[str, Any]:
    """Per-variant outer scores and the nested selection's outer scores.

    Parameters
    ----------
    runs : dict
        Variant name → :func:`run_variant` output (all with the same folds).
    candidates : sequence of str, optional
        The variants nested selection may choose (default all; the baselines are not).

    Returns
    -------
    dict
        ``variants``: name → setting → scores and ``worst``; ``nested``: the same for the
        per-fold choice, plus ``chosen`` (variant per fold).
    """
    variants: dict[str, Any] = {}
    for name, run in runs.items():
        row: dict[str, Any] = {s: _scores(run["outer"][s]) for s in SETTINGS}
        row["worst"] = min(row[s]["balanced_accuracy"] for s in SETTINGS)
        row["inner_worst"] = [min(f.values()) for f in run["inner"]]
        variants[name] = row
    chosen, outer = nested_outer(runs, candidates)
    nested: dict[str, Any] = {"chosen": chosen}
    nested.update({s: _scores(outer[s]) for s in SETTINGS})
    nested["worst"] = min(nested[s]["balanced_accuracy"] for s in SETTINGS)
    return {"variants": variants, "nested": nested}


def nested_outer(
    runs: dict[str, dict[str, Any]], candidates: Sequence[str] | None = None
) -> tuple[list[str], dict[str, Any]]:
    """The variant each outer fold chooses (best inner worst) and its outer predictions.

    Parameters
    ----------
    runs : dict
        Variant name → :func:`run_variant` output.
    candidates : sequence of str, optional
        The variants that may be chosen (default all).

    Returns
    -------
    chosen, outer
        Variant name per fold; per setting the held-out arrays (as in :func:`run_variant`).
    """
    names = [n for n in runs if candidates is None or n in candidates]
    n_folds = len(next(iter(runs.values()))["inner"])
    chosen = [max(names, key=lambda n: min(runs[n]["inner"][k].values())) for k in range(n_folds)]
    outer = {}
    for s in SETTINGS:
        pieces = []
        for k, name in enumerate(chosen):
            arrays = runs[name]["outer"][s]
            sel = arrays[4] == k
            pieces.append([a[sel] for a in arrays])
        outer[s] = [np.concatenate(a) for a in zip(*pieces, strict=True)]
    return chosen, outer


def _counts(arrays: Sequence[np.ndarray[Any, Any]], units: np.ndarray[Any, Any]) -> Any:
    """Per participant: true positives, positives, true negatives, negatives."""
    y, p, t, subjects = arrays[:4]
    hit = (p >= t).astype(int) == y
    out = np.zeros((units.size, 4))
    for i, u in enumerate(units):
        sel = subjects == u
        pos, neg = (y == 1) & sel, (y == 0) & sel
        out[i] = [(hit & pos).sum(), pos.sum(), (hit & neg).sum(), neg.sum()]
    return out


def paired_worst_difference(
    a: dict[str, Any], b: dict[str, Any], *, n_boot: int = 2000, seed: int = 0
) -> dict[str, Any]:
    """Worst-of-three balanced accuracy of ``a`` minus ``b``, with a participant interval.

    Participants are resampled with replacement within each protocol (the same resample for
    both recipes and for the two settings that score Stress-Predict people), and each
    resample's pooled balanced accuracies give one paired difference of the worst setting.

    Parameters
    ----------
    a, b : dict
        Setting → held-out arrays (:func:`run_variant`'s ``outer`` or :func:`nested_outer`).
    n_boot : int
        Resamples.
    seed : int
        Random seed.

    Returns
    -------
    dict
        ``difference`` (on all participants), ``ci95`` and ``share_above_zero``.
    """
    rng = np.random.default_rng(seed)

    def people(*settings: str) -> np.ndarray[Any, Any]:
        return np.asarray(sorted(set().union(*(set(x[s][3]) for s in settings for x in (a, b)))))

    # Both settings scored on Stress-Predict draw the same people (one resample), so they
    # share one list: a participant missing from one setting counts zero windows there.
    sp_people = people("SP within", "Non-EEG -> SP")
    units = {s: sp_people for s in ("SP within", "Non-EEG -> SP")}
    units["SP -> Non-EEG"] = people("SP -> Non-EEG")
    counts = {
        name: {s: _counts(arr[s], units[s]) for s in SETTINGS} for name, arr in (("a", a), ("b", b))
    }

    def worst(c: dict[str, Any], weights: dict[str, Any]) -> float:
        vals = []
        for s in SETTINGS:
            tp, pos, tn, neg = weights[s] @ c[s]
            if pos == 0 or neg == 0:  # a resample of people with no windows of one class
                return np.nan
            vals.append(0.5 * (tp / pos + tn / neg))
        return float(min(vals))

    ones = {s: np.ones(units[s].size) for s in SETTINGS}
    diffs = []
    for _ in range(n_boot):
        sp = np.bincount(
            rng.integers(0, units["SP within"].size, units["SP within"].size),
            minlength=units["SP within"].size,
        ).astype(float)
        ne = np.bincount(
            rng.integers(0, units["SP -> Non-EEG"].size, units["SP -> Non-EEG"].size),
            minlength=units["SP -> Non-EEG"].size,
        ).astype(float)
        w = {"SP within": sp, "Non-EEG -> SP": sp, "SP -> Non-EEG": ne}
        diffs.append(worst(counts["a"], w) - worst(counts["b"], w))
    d = np.asarray(diffs)
    d = d[np.isfinite(d)]
    if not d.size:  # every resample missed a class somewhere: no interval
        d = np.array([np.nan])
    return {
        "difference": worst(counts["a"], ones) - worst(counts["b"], ones),
        "ci95": [float(np.quantile(d, 0.025)), float(np.quantile(d, 0.975))],
        "share_above_zero": float((d > 0).mean()) if np.isfinite(d).all() else float("nan"),
    }


def markdown(table: dict[str, Any]) -> str:
    """Results table: as-live balanced accuracy / AUROC per setting, worst, nested row."""

    def cells(row: dict[str, Any]) -> str:
        return " | ".join(
            f"{row[s]['balanced_accuracy']:.3f} / {row[s]['auroc']:.3f}" for s in SETTINGS
        )

    lines = [
        "| variant | " + " | ".join(SETTINGS) + " | worst | inner worst per fold |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in table["variants"].items():
        inner = ", ".join(f"{x:.2f}" for x in row["inner_worst"])
        lines.append(f"| {name} | {cells(row)} | {row['worst']:.3f} | {inner} |")
    nested = table["nested"]
    lines.append(
        f"| **nested selection** (chosen: {'; '.join(nested['chosen'])}) | {cells(nested)} "
        f"| **{nested['worst']:.3f}** | |"
    )
    return "\n".join(lines)
