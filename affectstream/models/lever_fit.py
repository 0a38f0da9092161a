"""Fit one lever's model on one training table and score another (used by :mod:`.levers`).

A lever's ``kind`` says what is fitted:

- ``lightgbm`` / ``svm``: :class:`~affectstream.models.estimators.AffectClassifier`;
- ``logistic``: a logistic regression on the (imputed, standardised) features, the simplest
  model that can combine a few reference-referenced signals;
- ``lightgbm+logistic`` / ``lightgbm+svm``: the mean of both probabilities and thresholds;
- ``lightgbm-platt``: LightGBM whose scores are mapped through a logistic (Platt) curve
  fitted on out-of-fold scores of the training participants (calibrated probabilities);
- ``one_feature`` / ``protocol_clock``: the two baselines every evaluation reports
  (:mod:`affectstream.models.baselines`), fitted on the training table the same way.

Every function returns the test table's probability and decision threshold per row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from affectstream.models.baselines import clock_scores, one_feature_scores
from affectstream.models.estimators import SVM_MAX_TRAIN_ROWS, AffectClassifier
from affectstream.models.scoring import scored_mask, scored_subjects

#: What a lever may fit.
LEVER_KINDS = (
    "lightgbm",
    "svm",
    "logistic",
    "lightgbm+logistic",
    "lightgbm+svm",
    "lightgbm-platt",
    "one_feature",
    "protocol_clock",
)
#: Inner participant folds for the Platt curve's out-of-fold scores.
PLATT_SPLITS = 4

Scores = tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]


@dataclass(frozen=True, slots=True)
class LeverSetup:
    """What a lever's model is fitted with (every kind gets the same four).

    Parameters
    ----------
    features : sequence of str
        Model columns.
    target : str
        Label column.
    normalization : str
        Per-participant normalisation of the ``AffectClassifier`` kinds.
    params : dict
        LightGBM overrides.
    """

    features: Sequence[str]
    target: str
    normalization: str
    params: dict[str, Any]


def _affect(kind: str, train: pd.DataFrame, test: pd.DataFrame, setup: LeverSetup) -> Scores:
    model = AffectClassifier(
        kind,
        setup.target,
        normalization=setup.normalization,
        features=setup.features,
        params=setup.params if kind == "lightgbm" else None,
        max_train_rows=SVM_MAX_TRAIN_ROWS if kind == "svm" else None,
    ).fit(train)
    return model.predict_proba(test)[:, 1], np.full(len(test), model.threshold_)


def _logistic(train: pd.DataFrame, test: pd.DataFrame, setup: LeverSetup) -> Scores:
    """Logistic regression on the given columns (already referenced per participant)."""
    features, target = setup.features, setup.target
    rows = scored_mask(train, target)
    y = train.loc[rows, target].to_numpy(dtype=np.float64).astype(int)
    model: Pipeline = make_pipeline(
        SimpleImputer(strategy="constant", fill_value=0.0, keep_empty_features=True),
        StandardScaler(),
        LogisticRegression(C=1.0, max_iter=1000),
    )
    model.fit(train.loc[rows, list(features)].to_numpy(dtype=np.float64), y)
    p = model.predict_proba(test[list(features)].to_numpy(dtype=np.float64))[:, 1]
    return p, np.full(len(test), float(y.mean()))


def _logit(p: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Log-odds of probabilities, clipped away from 0 and 1 (the Platt curve's input)."""
    out: np.ndarray[Any, Any] = np.log(np.clip(p, 1e-6, 1 - 1e-6) / np.clip(1 - p, 1e-6, 1))
    return out


def _platt(train: pd.DataFrame, test: pd.DataFrame, setup: LeverSetup) -> Scores:
    """LightGBM, its scores mapped by a Platt curve fitted on out-of-fold training scores."""
    target = setup.target
    subjects = train["subject"].astype(str).to_numpy()
    units = np.asarray(scored_subjects(train, target))
    oof = np.full(len(train), np.nan)
    for tr, te in GroupKFold(n_splits=min(PLATT_SPLITS, units.size)).split(units, groups=units):
        inner_test = np.isin(subjects, units[te])
        oof[inner_test] = _affect(
            "lightgbm", train[np.isin(subjects, units[tr])], train[inner_test], setup
        )[0]
    rows = scored_mask(train, target) & np.isfinite(oof)
    y = train[target].to_numpy(dtype=np.float64)[rows].astype(int)
    logit = _logit(oof[rows])
    curve = LogisticRegression(C=1e6).fit(logit[:, None], y)
    p_raw = _affect("lightgbm", train, test, setup)[0]
    z = _logit(p_raw)
    p = np.full(len(test), np.nan)
    ok = np.isfinite(z)
    p[ok] = curve.predict_proba(z[ok, None])[:, 1]
    return p, np.full(len(test), float(y.mean()))


def _baseline(kind: str, train: pd.DataFrame, test: pd.DataFrame, target: str) -> Scores:
    """A baseline fitted on ``train``'s participants, applied to ``test``'s."""
    both = pd.concat(
        [
            train.assign(subject="train:" + train["subject"].astype(str)),
            test.assign(subject="test:" + test["subject"].astype(str)),
        ],
        ignore_index=True,
    )
    subjects = both["subject"].to_numpy()
    folds = [(np.unique(subjects[: len(train)]), np.unique(subjects[len(train) :]))]
    scorer = clock_scores if kind == "protocol_clock" else one_feature_scores
    p, t = scorer(both, target, folds)
    return p[len(train) :], t[len(train) :]


def fit_predict(kind: str, train: pd.DataFrame, test: pd.DataFrame, setup: LeverSetup) -> Scores:
    """Fit ``kind`` on ``train``; probability and threshold for every row of ``test``.

    Parameters
    ----------
    kind : str
        One of :data:`LEVER_KINDS`.
    train, test : pandas.DataFrame
        Feature tables (participants disjoint).
    setup : LeverSetup
        Model columns, label, normalisation and LightGBM overrides.

    Returns
    -------
    p, threshold : ndarray
    """
    if kind in ("lightgbm", "svm"):
        return _affect(kind, train, test, setup)
    if kind == "logistic":
        return _logistic(train, test, setup)
    if kind == "lightgbm-platt":
        return _platt(train, test, setup)
    if kind in ("one_feature", "protocol_clock"):
        return _baseline(kind, train, test, setup.target)
    if kind in ("lightgbm+logistic", "lightgbm+svm"):
        first = _affect("lightgbm", train, test, setup)
        if kind == "lightgbm+svm":
            second = _affect("svm", train, test, setup)
        else:
            second = _logistic(train, test, setup)
        return (first[0] + second[0]) / 2.0, (first[1] + second[1]) / 2.0
    raise ValueError(f"unknown lever kind {kind!r}; expected one of {', '.join(LEVER_KINDS)}")
