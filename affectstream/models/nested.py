"""Nested selection: choices that are tuned are made inside each training fold.

Comparing variants on the same leave-one-subject-out scores and keeping the best flatters
the winner. Here the context span (:func:`~affectstream.models.features.add_context_features`)
is chosen among candidates by an inner subject-wise cross-validation on the outer fold's
training participants only; the held-out participant never influences the choice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold, LeaveOneGroupOut

from affectstream.errors import ModelError
from affectstream.models.estimators import AffectClassifier
from affectstream.models.evaluation import metrics, scored_mask
from affectstream.models.features import add_context_features

logger = logging.getLogger(__name__)

#: Inner folds of the selection (over the outer fold's training participants).
INNER_SPLITS = 3


def with_context(frame: pd.DataFrame, seconds: float) -> pd.DataFrame:
    """``frame`` with context columns of span ``seconds`` (unchanged for 0).

    Context is causal and per participant (own past windows, no labels), so computing it on
    the whole table before splitting leaks nothing across participants.

    Parameters
    ----------
    frame : pandas.DataFrame
        Feature table without context columns.
    seconds : float
        Span; 0 for none.

    Returns
    -------
    pandas.DataFrame
    """
    return add_context_features(frame, seconds) if seconds > 0 else frame


def _balanced_accuracy(y: np.ndarray[Any, Any], pred: np.ndarray[Any, Any]) -> float:
    pos = y == 1
    return float(0.5 * (pred[pos].mean() + (1 - pred[~pos]).mean()))


def select_context(
    tables: dict[float, pd.DataFrame],
    subjects: Sequence[str],
    *,
    target: str,
    normalization: str,
    inner_splits: int = INNER_SPLITS,
    seed: int = 0,
    monotone: bool = False,
) -> tuple[float, dict[float, float]]:
    """Pick the context span by inner subject-wise CV (LightGBM, balanced accuracy).

    Parameters
    ----------
    tables : dict
        Span → feature table with that span's context columns (same rows).
    subjects : sequence of str
        The participants the choice may look at (an outer fold's training set).
    target, normalization : str
        As for :class:`~affectstream.models.estimators.AffectClassifier`.
    inner_splits : int
        ``GroupKFold`` splits over ``subjects``.
    seed : int
        Seed.
    monotone : bool
        Monotone LightGBM (:class:`~affectstream.models.estimators.AffectClassifier`).

    Returns
    -------
    span, scores
        The chosen span (ties: the shorter) and each candidate's inner balanced accuracy.
    """
    units = np.asarray(sorted(subjects))
    if units.size < 2:
        raise ModelError("Nested selection needs at least two training participants.")
    splits = min(inner_splits, units.size)
    scores: dict[float, float] = {}
    for span, table in sorted(tables.items()):
        all_subjects = table["subject"].astype(str).to_numpy()
        y_all = table[target].to_numpy(dtype=np.float64)
        scored = scored_mask(table, target)
        ys, preds = [], []
        for tr, te in GroupKFold(n_splits=splits).split(units, groups=units):
            train = np.isin(all_subjects, units[tr])
            test = np.isin(all_subjects, units[te]) & scored
            model = AffectClassifier(
                "lightgbm",
                target,
                normalization=normalization,
                random_state=seed,
                monotone=monotone,
            ).fit(table[train])
            p = model.predict_proba(table[np.isin(all_subjects, units[te])])[:, 1]
            keep = scored[np.isin(all_subjects, units[te])]
            ys.append(y_all[test].astype(int))
            preds.append((p[keep] >= model.threshold_).astype(int))
        scores[span] = _balanced_accuracy(np.concatenate(ys), np.concatenate(preds))
    best = max(sorted(scores), key=lambda s: (scores[s], -s))
    return best, scores


def nested_cross_validate(
    frame: pd.DataFrame,
    candidates: Sequence[float],
    *,
    kinds: Sequence[str] = ("lightgbm", "svm"),
    target: str = "arousal",
    normalization: str = "running",
    n_splits: int | None = None,
    max_train_rows: dict[str, int | None] | None = None,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    monotone: bool = False,
) -> dict[str, dict[str, Any]]:
    """Outer subject-wise CV with the context span chosen inside each training fold.

    Parameters
    ----------
    frame : pandas.DataFrame
        Feature table without context columns.
    candidates : sequence of float
        Context spans to choose from (0 = none).
    kinds : sequence of str
        Estimators; each uses the span chosen (with LightGBM) for its fold.
    target, normalization : str
        As for the estimators.
    n_splits : int, optional
        Outer ``GroupKFold`` splits; default leave one subject out.
    max_train_rows : dict, optional
        Per kind training thinning.
    seed : int
        Seed.
    progress : callable, optional
        ``progress(done, total)`` per outer fold.
    monotone : bool
        Monotone LightGBM (:class:`~affectstream.models.estimators.AffectClassifier`).

    Returns
    -------
    dict
        Per kind: :func:`~affectstream.models.evaluation.metrics` plus ``cv``,
        ``selected`` (held-out participants → span and inner scores), ``oof`` and ``folds``
        (as :func:`~affectstream.models.evaluation.cross_validate_by_subject`; not JSON).
    """
    tables = {float(c): with_context(frame, float(c)) for c in candidates}
    scored = scored_mask(frame, target)
    subjects = frame["subject"].astype(str).to_numpy()
    units = np.asarray(sorted(pd.unique(subjects[scored])))
    if units.size < 3:
        raise ModelError("Nested evaluation needs labelled windows from at least 3 participants.")
    splitter: Any = LeaveOneGroupOut() if n_splits is None else GroupKFold(n_splits=n_splits)
    folds = list(splitter.split(units, groups=units))
    p = {k: np.full(len(frame), np.nan) for k in kinds}
    threshold = {k: np.full(len(frame), np.nan) for k in kinds}
    selected: dict[str, Any] = {}
    for done, (tr, te) in enumerate(folds, start=1):
        span, inner = select_context(
            tables,
            units[tr],
            target=target,
            normalization=normalization,
            seed=seed,
            monotone=monotone,
        )
        selected[",".join(units[te])] = {"context_seconds": span, "inner_balanced_accuracy": inner}
        table = tables[span]
        train = np.isin(subjects, units[tr])
        test = np.isin(subjects, units[te])
        for kind in kinds:
            model = AffectClassifier(
                kind,
                target,
                normalization=normalization,
                max_train_rows=(max_train_rows or {}).get(kind),
                random_state=seed,
                monotone=monotone,
            ).fit(table[train])
            p[kind][test] = model.predict_proba(table[test])[:, 1]
            threshold[kind][test] = model.threshold_
        if progress:
            progress(done, len(folds))
    y = frame[target].to_numpy(dtype=np.float64)
    out = {}
    for kind in kinds:
        res = metrics(
            y[scored].astype(int), p[kind][scored], threshold[kind][scored], subjects[scored]
        )
        res.update(
            {
                "cv": (
                    "nested leave-one-subject-out"
                    if n_splits is None
                    else f"nested group-{n_splits}-fold"
                ),
                "kind": kind,
                "target": target,
                "normalization": normalization,
                "context_candidates": [float(c) for c in candidates],
                "selected": selected,
                "oof": (p[kind], threshold[kind]),
                "folds": [(units[a], units[b]) for a, b in folds],
            }
        )
        out[kind] = res
    return out
