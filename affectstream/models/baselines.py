"""What an evaluation must sit beside: as-live scoring, the protocol clock, one feature, CIs.

A subject-wise score alone cannot tell stress from protocol phase (labels that follow the
session clock) or from what a single signal already gives. Every evaluation therefore also
reports, on the same held-out participants and folds:

- **as live**: every window after the reference period, labelled by the label at its end
  (transition windows included), the way a live session is judged;
- **protocol clock**: a model whose only input is time since the participant's session start
  (the label rate per 30-s bin of session time among the training participants);
- **one feature**: mean tonic EDA standardised against the participant's own reference
  (rest) windows, thresholded where it balances the training participants' errors;
- a **bootstrap interval over participants** for balanced accuracy and AUROC.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

from affectstream.models.features import CLOCK_COLUMN, END_SUFFIX
from affectstream.models.scoring import scored_mask

logger = logging.getLogger(__name__)

#: Width of the protocol-clock baseline's time bins (s).
CLOCK_BIN_SECONDS = 30.0
#: The one-feature baseline's input: tonic EDA level (µS), the classic arousal signal.
ONE_FEATURE = "eda_tonic_mean"
#: Floor of the reference-period standard deviation (µS): a flat rest would divide by ~0.
ONE_FEATURE_MIN_STD = 0.01

Folds = Sequence[tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]]


def live_mask(frame: pd.DataFrame, target: str) -> np.ndarray[Any, Any]:
    """Windows scored as live: outside the reference period, label known at the window's end.

    Parameters
    ----------
    frame : pandas.DataFrame
        Feature table with ``<target>_end``.
    target : str
        Label column.

    Returns
    -------
    ndarray of bool
        All False when the table has no ``<target>_end`` column.
    """
    column = target + END_SUFFIX
    if column not in frame.columns:
        return np.zeros(len(frame), dtype=bool)
    return scored_mask(frame, column)


def _balanced_accuracy(y: np.ndarray[Any, Any], pred: np.ndarray[Any, Any]) -> float:
    """Mean of the two recalls (sklearn's definition, without its input checks: the
    bootstrap calls this thousands of times)."""
    pos = y == 1
    return float(0.5 * (pred[pos].mean() + (1 - pred[~pos]).mean()))


def _auroc(y: np.ndarray[Any, Any], p: np.ndarray[Any, Any]) -> float:
    """Mann-Whitney AUROC with tied scores counted half (equals sklearn's roc_auc_score)."""
    from scipy.stats import rankdata

    ranks = rankdata(p)
    pos = y == 1
    n_pos = int(pos.sum())
    n_neg = y.size - n_pos
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def subject_bootstrap(
    y: np.ndarray[Any, Any],
    p: np.ndarray[Any, Any],
    threshold: float | np.ndarray[Any, Any],
    subjects: np.ndarray[Any, Any],
    *,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Percentile interval of pooled balanced accuracy and AUROC, resampling participants.

    Windows of one participant are not independent, so the participant is the unit that is
    resampled (with replacement); each resample pools the chosen participants' windows.

    Parameters
    ----------
    y : ndarray of int
        True labels.
    p : ndarray of float
        Scores (higher = class 1).
    threshold : float or ndarray
        Decision threshold (per row allowed).
    subjects : ndarray
        Participant of each row.
    n_boot : int
        Resamples.
    level : float
        Interval coverage.
    seed : int
        Random seed.

    Returns
    -------
    dict
        ``balanced_accuracy`` and ``auroc`` as ``[low, high]``, ``n_boot``, ``level``,
        ``unit`` (``"participant"``).
    """
    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype=np.float64)
    pred = (p >= threshold).astype(int)
    ids = pd.unique(subjects)
    rows = [np.flatnonzero(subjects == s) for s in ids]
    rng = np.random.default_rng(seed)
    bal, auc = [], []
    for _ in range(n_boot):
        pick = np.concatenate([rows[i] for i in rng.integers(0, len(ids), len(ids))])
        ys = y[pick]
        if np.unique(ys).size < 2:
            continue  # a resample of one class has no balanced accuracy
        bal.append(_balanced_accuracy(ys, pred[pick]))
        auc.append(_auroc(ys, p[pick]))
    alpha = (1.0 - level) / 2.0

    def interval(values: list[float]) -> list[float]:
        if not values:
            return [float("nan"), float("nan")]
        return [float(np.quantile(values, alpha)), float(np.quantile(values, 1.0 - alpha))]

    return {
        "balanced_accuracy": interval(bal),
        "auroc": interval(auc),
        "n_boot": len(bal),
        "level": level,
        "unit": "participant",
    }


def summary(
    y: np.ndarray[Any, Any],
    p: np.ndarray[Any, Any],
    threshold: float | np.ndarray[Any, Any],
    subjects: np.ndarray[Any, Any],
    *,
    seed: int = 0,
) -> dict[str, Any]:
    """Balanced accuracy, AUROC, per-participant minimum and the participant interval.

    Parameters
    ----------
    y, p, threshold, subjects
        As in :func:`subject_bootstrap`.
    seed : int
        Bootstrap seed.

    Returns
    -------
    dict
        ``balanced_accuracy``, ``auroc``, ``min_subject_balanced_accuracy``, ``ci``,
        ``n_windows``, ``n_subjects``.
    """
    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype=np.float64)
    pred = (p >= threshold).astype(int)
    both = np.unique(y).size == 2
    per = []
    for s in pd.unique(subjects):
        sel = subjects == s
        if np.unique(y[sel]).size == 2:
            per.append(balanced_accuracy_score(y[sel], pred[sel]))
    return {
        "balanced_accuracy": float(balanced_accuracy_score(y, pred)) if both else float("nan"),
        "auroc": float(roc_auc_score(y, p)) if both else float("nan"),
        "min_subject_balanced_accuracy": float(min(per)) if per else float("nan"),
        "ci": subject_bootstrap(y, p, threshold, subjects, seed=seed),
        "n_windows": int(y.size),
        "n_subjects": int(pd.unique(subjects).size),
    }


def session_clock(frame: pd.DataFrame) -> np.ndarray[Any, Any]:
    """Seconds since each participant's session start (``session_seconds``).

    Parameters
    ----------
    frame : pandas.DataFrame
        Feature table.

    Returns
    -------
    ndarray
        The column when present; otherwise window end time minus the participant's first
        window end (tables written before the column existed).
    """
    if CLOCK_COLUMN in frame.columns:
        return np.asarray(frame[CLOCK_COLUMN].to_numpy(dtype=np.float64))
    t_end = frame["t_end"].to_numpy(dtype=np.float64)
    first = frame.groupby("subject")["t_end"].transform("min").to_numpy(dtype=np.float64)
    return np.asarray(t_end - first)


def clock_scores(
    frame: pd.DataFrame, target: str, folds: Folds
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Protocol-clock baseline: P(label | 30-s bin of session time) from the training folds.

    Parameters
    ----------
    frame : pandas.DataFrame
        Feature table with ``session_seconds``, ``subject`` and ``reference``.
    target : str
        Label column (windows labelled over their whole span train it, like the models).
    folds : sequence of (train subjects, test subjects)
        The same folds as the model's.

    Returns
    -------
    p, threshold : ndarray
        Per row of ``frame``; NaN outside test folds. The threshold is the training
        prevalence, as for the models.
    """
    clock = session_clock(frame)
    bins = np.floor(clock / CLOCK_BIN_SECONDS).astype(int)
    subjects = frame["subject"].astype(str).to_numpy()
    y = frame[target].to_numpy(dtype=np.float64)
    trainable = scored_mask(frame, target)
    p = np.full(len(frame), np.nan)
    threshold = np.full(len(frame), np.nan)
    for train_subjects, test_subjects in folds:
        train = trainable & np.isin(subjects, train_subjects)
        test = np.isin(subjects, test_subjects)
        prevalence = float(y[train].mean())
        rate = pd.Series(y[train]).groupby(bins[train]).mean()
        # Bins the training participants never reached: carry the last known rate forward.
        full = rate.reindex(range(int(rate.index.min()), int(bins.max()) + 1)).ffill()
        lookup = full.reindex(bins[test]).to_numpy(dtype=np.float64)
        p[test] = np.where(np.isfinite(lookup), lookup, prevalence)
        threshold[test] = prevalence
    return p, threshold


def own_baseline_feature(frame: pd.DataFrame, feature: str = ONE_FEATURE) -> np.ndarray[Any, Any]:
    """A feature standardised against the participant's own reference (rest) windows.

    Parameters
    ----------
    frame : pandas.DataFrame
        Feature table with ``subject`` and ``reference``.
    feature : str
        Column.

    Returns
    -------
    ndarray
        ``(x - mean_ref) / max(std_ref, floor)`` per participant; NaN where the column or the
        participant's reference is missing.
    """
    if feature not in frame.columns:
        return np.full(len(frame), np.nan)
    x = frame[feature].to_numpy(dtype=np.float64)
    reference = frame["reference"].to_numpy(dtype=bool)
    subjects = frame["subject"].astype(str).to_numpy()
    out = np.full(len(frame), np.nan)
    for s in pd.unique(subjects):
        sel = subjects == s
        ref = x[sel & reference]
        ref = ref[np.isfinite(ref)]
        if ref.size == 0:
            continue
        out[sel] = (x[sel] - ref.mean()) / max(float(ref.std()), ONE_FEATURE_MIN_STD)
    return out


def best_threshold(y: np.ndarray[Any, Any], score: np.ndarray[Any, Any]) -> float:
    """Threshold on ``score`` that maximises balanced accuracy on (training) windows.

    Parameters
    ----------
    y : ndarray of int
        Labels.
    score : ndarray
        Scores, higher = class 1.

    Returns
    -------
    float
    """
    ok = np.isfinite(score)
    y, score = np.asarray(y[ok], dtype=int), score[ok]
    if np.unique(y).size < 2:
        return 0.0
    candidates = np.unique(np.quantile(score, np.linspace(0.01, 0.99, 99)))
    pos, neg = max(int(y.sum()), 1), max(int((1 - y).sum()), 1)
    best = max(
        candidates,
        key=lambda c: ((score >= c) & (y == 1)).sum() / pos + ((score < c) & (y == 0)).sum() / neg,
    )
    return float(best)


def one_feature_scores(
    frame: pd.DataFrame, target: str, folds: Folds, feature: str = ONE_FEATURE
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """One-feature baseline: own-baseline tonic EDA, threshold from the training folds.

    Parameters
    ----------
    frame : pandas.DataFrame
        Feature table.
    target : str
        Label column.
    folds : sequence of (train subjects, test subjects)
        The model's folds.
    feature : str
        Feature column.

    Returns
    -------
    score, threshold : ndarray
        Per row; the score is the standardised feature itself (its direction is fixed:
        higher = more aroused), so AUROC needs no training at all.
    """
    score = own_baseline_feature(frame, feature)
    subjects = frame["subject"].astype(str).to_numpy()
    y = frame[target].to_numpy(dtype=np.float64)
    trainable = scored_mask(frame, target) & np.isfinite(score)
    threshold = np.full(len(frame), np.nan)
    for train_subjects, test_subjects in folds:
        train = trainable & np.isin(subjects, train_subjects)
        threshold[np.isin(subjects, test_subjects)] = best_threshold(y[train], score[train])
    # Missing EDA: fall back to "at the participant's reference" (a neutral 0).
    return np.where(np.isfinite(score), score, 0.0), threshold


def leave_one_subject_out(frame: pd.DataFrame, target: str) -> list[tuple[Any, Any]]:
    """Leave-one-participant-out folds over the participants with scored windows.

    Parameters
    ----------
    frame : pandas.DataFrame
        Feature table.
    target : str
        Label column.

    Returns
    -------
    list of (train subjects, test subjects)
    """
    subjects = frame["subject"].astype(str).to_numpy()
    ids = sorted(pd.unique(subjects[np.isfinite(frame[target].to_numpy(dtype=np.float64))]))
    return [(np.array([s for s in ids if s != t]), np.array([t])) for t in ids]


def with_ensemble(
    models: dict[str, tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]],
) -> dict[str, tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]]:
    """Add ``ensemble``: the mean of the LightGBM and SVM probabilities and thresholds.

    Parameters
    ----------
    models : dict
        Name → (probability, threshold) per row.

    Returns
    -------
    dict
        ``models`` plus ``ensemble`` when both ``lightgbm`` and ``svm`` are there.
    """
    if not {"lightgbm", "svm"} <= set(models):
        return dict(models)
    (p_l, t_l), (p_s, t_s) = models["lightgbm"], models["svm"]
    return {**models, "ensemble": ((p_l + p_s) / 2.0, (t_l + t_s) / 2.0)}


def protocol_report(
    frame: pd.DataFrame,
    target: str,
    models: dict[str, tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]],
    folds: Folds,
    *,
    seed: int = 0,
) -> dict[str, Any]:
    """Score models and both baselines as trained and as live, with margins and intervals.

    Parameters
    ----------
    frame : pandas.DataFrame
        Feature table (with ``<target>_end`` and ``session_seconds``).
    target : str
        Label column.
    models : dict
        Name → (probability, threshold) per row of ``frame`` (NaN where not predicted).
    folds : sequence of (train subjects, test subjects)
        The folds the models were evaluated on; the baselines use the same.
    seed : int
        Bootstrap seed.

    Returns
    -------
    dict
        ``windowed`` (whole-window labels, transition windows left out) and ``as_live``
        (label at each window's end, every window after the reference period), each with
        one :func:`summary` per model plus ``protocol_clock`` and ``one_feature``; and
        ``margins``: each model's balanced accuracy and AUROC minus each baseline's, as live.
    """
    scored = np.isfinite(frame[target].to_numpy(dtype=np.float64)) & ~frame["reference"].to_numpy(
        dtype=bool
    )
    live = live_mask(frame, target)
    subjects = frame["subject"].astype(str).to_numpy()
    tested = np.isin(subjects, np.concatenate([np.asarray(t) for _, t in folds]))
    scores = dict(models)
    scores["protocol_clock"] = clock_scores(frame, target, folds)
    has_feature = ONE_FEATURE in frame.columns and bool(
        np.isfinite(frame[ONE_FEATURE].to_numpy(dtype=np.float64)).any()
    )
    if has_feature:  # no EDA (an EEG-only dataset): the baseline does not apply
        scores["one_feature"] = one_feature_scores(frame, target, folds)
    out: dict[str, Any] = {
        "clock": {"column": CLOCK_COLUMN, "bin_seconds": CLOCK_BIN_SECONDS},
        "one_feature": {
            "feature": ONE_FEATURE,
            "standardised": "against the participant's own reference windows",
            "applies": has_feature,
        },
    }
    for mode, mask, label in (
        ("windowed", scored, target),
        ("as_live", live, target + END_SUFFIX),
    ):
        if label not in frame.columns:
            continue
        y = frame[label].to_numpy(dtype=np.float64)
        section = {}
        for name, (p, threshold) in scores.items():
            sel = mask & tested & np.isfinite(p)
            if np.unique(y[sel]).size < 2:
                continue
            section[name] = summary(
                y[sel].astype(int), p[sel], threshold[sel], subjects[sel], seed=seed
            )
        out[mode] = section
    live_section = out.get("as_live", {})
    margins: dict[str, dict[str, float]] = {}
    for name in models:
        if name not in live_section:
            continue
        for baseline in ("protocol_clock", "one_feature"):
            if baseline in live_section:
                margins[f"{name}-{baseline}"] = {
                    k: live_section[name][k] - live_section[baseline][k]
                    for k in ("balanced_accuracy", "auroc")
                }
    out["margins_as_live"] = margins
    return out


def markdown_table(report: dict[str, Any]) -> str:
    """Render :func:`protocol_report` output as the model card's comparison table.

    Parameters
    ----------
    report : dict
        From :func:`protocol_report`.

    Returns
    -------
    str
        Markdown: one row per scorer and mode (balanced accuracy and AUROC with their 95 %
        participant intervals, worst participant), then the as-live margins.
    """

    def fmt(x: float) -> str:
        return f"{x:.3f}" if np.isfinite(x) else "n/a"

    lines = [
        "| scored | scorer | balanced accuracy (95 % CI) | AUROC (95 % CI) | worst participant |",
        "|---|---|---|---|---|",
    ]
    for mode, title in (("windowed", "whole windows"), ("as_live", "as live")):
        for name, res in report.get(mode, {}).items():
            bal, auc = res["ci"]["balanced_accuracy"], res["ci"]["auroc"]
            lines.append(
                f"| {title} | {name} | {fmt(res['balanced_accuracy'])} ({fmt(bal[0])}-"
                f"{fmt(bal[1])}) | {fmt(res['auroc'])} ({fmt(auc[0])}-{fmt(auc[1])}) | "
                f"{fmt(res['min_subject_balanced_accuracy'])} |"
            )
    margins = report.get("margins_as_live", {})
    if margins:
        lines.append("")
        lines.append("Margins as live (model minus baseline):")
        for pair, m in margins.items():
            lines.append(
                f"- {pair}: balanced accuracy {m['balanced_accuracy']:+.3f}, "
                f"AUROC {m['auroc']:+.3f}"
            )
    return "\n".join(lines)
