"""LightGBM and SVM classifiers for high/low arousal or valence.

Both are scikit-learn :class:`~sklearn.pipeline.Pipeline` objects whose first step is the
group-aware :class:`~affectstream.models.normalize.ParticipantNormalizer`.

Missing modalities
    LightGBM handles NaN natively: each split learns which side missing values go to, so one
    model serves every combination of worn sensors. The SVM cannot take NaN, so its pipeline
    imputes 0 after normalisation (0 = "as at this participant's baseline", a neutral value)
    and appends a missing-indicator column per feature, letting the kernel tell "absent"
    from "at baseline". One model per available-modality set would need 2^k models and
    split the already small training data between them, so we do not do that.

Probabilities
    The SVM's probabilities come from ``CalibratedClassifierCV(SVC(), ensemble=False)``
    (sigmoid), not from the deprecated ``SVC(probability=True)``. Decisions use a threshold
    equal to the training prevalence of the high class, which balances the two error rates.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.svm import SVC

from affectstream._validate import check_option
from affectstream.errors import ModelError
from affectstream.models.coverage import input_range
from affectstream.models.datasets import TARGETS
from affectstream.models.normalize import ParticipantNormalizer
from affectstream.signal.columns import feature_columns
from affectstream.types import FloatArray

logger = logging.getLogger(__name__)

KINDS = ("lightgbm", "svm")

#: LightGBM settings: small trees, strong regularisation; the data are a few thousand
#: highly autocorrelated windows from a couple of dozen people. ``min_child_samples`` is
#: set from the training size (:func:`min_child_samples`) unless given in ``params``.
LIGHTGBM_PARAMS: dict[str, Any] = {
    "n_estimators": 300,
    "learning_rate": 0.03,
    "num_leaves": 4,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.8,
    "reg_lambda": 1.0,
    "n_jobs": 1,
    "verbose": -1,
}
SVM_PARAMS: dict[str, Any] = {"C": 1.0, "gamma": "scale", "kernel": "rbf"}


@dataclass(frozen=True)
class Contribution:
    """One feature's additive contribution to a prediction's raw (log-odds) score."""

    feature: str
    value: float
    contribution: float


def min_child_samples(n_rows: int) -> int:
    """Leaf size for LightGBM: 2 % of the training windows, between 10 and 200.

    Parameters
    ----------
    n_rows : int
        Training windows.

    Returns
    -------
    int
    """
    return int(np.clip(n_rows // 50, 10, 200))


def make_pipeline(
    kind: str,
    features: Sequence[str],
    *,
    normalization: str = "baseline",
    random_state: int = 0,
    params: dict[str, Any] | None = None,
) -> Pipeline:
    """Build an unfitted classification pipeline.

    Parameters
    ----------
    kind : {"lightgbm", "svm"}
        Estimator.
    features : sequence of str
        Feature columns, in model order.
    normalization : {"baseline", "running", "none"}
        Per-participant normalisation (see :mod:`affectstream.models.normalize`).
    random_state : int
        Seed.
    params : dict, optional
        Overrides of :data:`LIGHTGBM_PARAMS` / :data:`SVM_PARAMS`.

    Returns
    -------
    sklearn.pipeline.Pipeline
        Steps ``normalize`` then ``model`` (LightGBM) or ``impute`` and ``model`` (SVM).
    """
    check_option("kind", kind, KINDS)
    normalizer = ParticipantNormalizer(features=tuple(features), method=normalization)
    if kind == "lightgbm":
        import lightgbm as lgb

        settings = {
            **LIGHTGBM_PARAMS,
            "min_child_samples": 20,
            "random_state": random_state,
            **(params or {}),
        }
        return Pipeline([("normalize", normalizer), ("model", lgb.LGBMClassifier(**settings))])
    settings = {**SVM_PARAMS, "random_state": random_state, **(params or {})}
    return Pipeline(
        [
            ("normalize", normalizer),
            (
                "impute",
                SimpleImputer(
                    strategy="constant",
                    fill_value=0.0,
                    add_indicator=True,
                    keep_empty_features=True,
                ),
            ),
            (
                "model",
                CalibratedClassifierCV(SVC(**settings), method="sigmoid", cv=3, ensemble=False),
            ),
        ]
    )


def _evenly_thin(index: np.ndarray[Any, Any], groups: np.ndarray[Any, Any], cap: int) -> Any:
    """Keep at most ``cap`` rows, spread evenly over time within each group."""
    if len(index) <= cap:
        return index
    keep = []
    per_group = max(1, cap // len(pd.unique(groups)))
    for g in pd.unique(groups):
        rows = index[groups == g]
        take = np.linspace(0, len(rows) - 1, min(per_group, len(rows))).round().astype(int)
        keep.append(rows[np.unique(take)])
    return np.concatenate(keep)


class AffectClassifier:
    """High/low classifier for one target, trained on a labelled feature table.

    Parameters
    ----------
    kind : {"lightgbm", "svm"}
        Estimator.
    target : {"arousal", "valence"}
        Label column.
    normalization : {"baseline", "running", "none"}
        Per-participant normalisation.
    features : sequence of str, optional
        Feature columns; default every model-usable column of the training frame.
    max_train_rows : int, optional
        Thin the training rows evenly per subject to this many (the SVM's cost grows with
        the square of the rows; consecutive 5-s-step windows are nearly duplicates anyway).
    random_state : int
        Seed.
    params : dict, optional
        Estimator overrides.
    """

    def __init__(
        self,
        kind: str = "lightgbm",
        target: str = "arousal",
        *,
        normalization: str = "baseline",
        features: Sequence[str] | None = None,
        max_train_rows: int | None = None,
        random_state: int = 0,
        params: dict[str, Any] | None = None,
    ) -> None:
        self.kind = check_option("kind", kind, KINDS)
        self.target = check_option("target", target, TARGETS)
        self.normalization = normalization
        self.features = list(features) if features is not None else None
        self.max_train_rows = max_train_rows
        self.random_state = random_state
        self.params = params

    def fit(self, frame: pd.DataFrame) -> AffectClassifier:
        """Fit on every labelled, non-reference window of ``frame``.

        The normaliser sees all of each participant's windows (it needs their reference
        rows) but no labels; the classifier sees the labelled windows.

        Parameters
        ----------
        frame : pandas.DataFrame
            Feature table from :func:`~affectstream.models.features.recording_features`.

        Returns
        -------
        self
        """
        if self.target not in frame.columns:
            raise ModelError(f"Training frame has no {self.target!r} labels.")
        self.features_ = self.features or feature_columns(frame)
        if not self.features_:
            raise ModelError("Training frame has no feature columns (hrv_*, eda_*, ...).")
        y_all = frame[self.target].to_numpy(dtype=np.float64)
        labelled = np.flatnonzero(np.isfinite(y_all) & ~frame["reference"].to_numpy(dtype=bool))
        if labelled.size == 0 or np.unique(y_all[labelled]).size < 2:
            raise ModelError(
                f"Training needs windows of both {self.target} classes; found "
                f"{np.unique(y_all[labelled]).tolist()} in {labelled.size} labelled windows."
            )
        if self.max_train_rows:
            labelled = _evenly_thin(
                labelled, frame["subject"].to_numpy()[labelled], self.max_train_rows
            )
        params = dict(self.params or {})
        if self.kind == "lightgbm":
            params.setdefault("min_child_samples", min_child_samples(labelled.size))
        self.pipeline_ = make_pipeline(
            self.kind,
            self.features_,
            normalization=self.normalization,
            random_state=self.random_state,
            params=params,
        )
        normalizer = self.pipeline_.named_steps["normalize"]
        z = normalizer.fit(frame).transform(frame)[labelled]
        y = y_all[labelled].astype(int)
        # Kept so a bundle can tell inputs unlike any training window (models/coverage.py).
        self.input_range_ = input_range(z)
        rest = Pipeline(self.pipeline_.steps[1:])
        if self.kind == "lightgbm":  # name the Booster's columns after the features
            rest.fit(z, y, model__feature_name=list(self.features_))
        else:
            rest.fit(z, y)
        self.threshold_ = float(np.mean(y))
        self.subjects_ = sorted(map(str, pd.unique(frame["subject"])))
        self.n_train_windows_ = int(labelled.size)
        return self

    def _rest(self) -> Pipeline:
        return Pipeline(self.pipeline_.steps[1:])

    def normalized(self, frame: pd.DataFrame) -> FloatArray:
        """The normalised feature matrix the classifier sees.

        Parameters
        ----------
        frame : pandas.DataFrame
            Windows with the bookkeeping columns.

        Returns
        -------
        ndarray, shape (n_rows, n_features)
        """
        return np.asarray(self.pipeline_.named_steps["normalize"].transform(frame))

    def predict_proba_normalized(self, z: FloatArray) -> FloatArray:
        """Probability of the high class from already-normalised features.

        Parameters
        ----------
        z : ndarray, shape (n, n_features)

        Returns
        -------
        ndarray, shape (n,)
        """
        if self.kind == "lightgbm":  # the Booster directly: what bundles and live use
            return np.asarray(self.booster.predict(z), dtype=np.float64)
        return np.asarray(self._rest().predict_proba(z)[:, 1], dtype=np.float64)

    def predict_proba(self, frame: pd.DataFrame) -> FloatArray:
        """Probability of the high class for every window of ``frame``.

        Parameters
        ----------
        frame : pandas.DataFrame
            Windows of one or more participants, with their reference rows.

        Returns
        -------
        ndarray, shape (n_rows,)
        """
        return self.predict_proba_normalized(self.normalized(frame))

    def predict(self, frame: pd.DataFrame) -> np.ndarray[Any, Any]:
        """High (1) / low (0) decisions at the prevalence threshold.

        Parameters
        ----------
        frame : pandas.DataFrame

        Returns
        -------
        ndarray of int
        """
        return (self.predict_proba(frame) >= self.threshold_).astype(int)

    @property
    def booster(self) -> Any:
        """The fitted LightGBM Booster (LightGBM models only)."""
        if self.kind != "lightgbm":
            raise ModelError("Only LightGBM models have a Booster.")
        return self.pipeline_.named_steps["model"].booster_


def contributions(
    booster: Any, z: FloatArray, features: Sequence[str], top: int = 5
) -> tuple[FloatArray, list[list[Contribution]]]:
    """Per-row top feature contributions from LightGBM's ``pred_contrib``.

    Parameters
    ----------
    booster : lightgbm.Booster
        Fitted booster.
    z : ndarray, shape (n, n_features)
        Normalised features.
    features : sequence of str
        Feature names in column order.
    top : int
        Contributions to keep per row, largest absolute value first.

    Returns
    -------
    raw_score : ndarray, shape (n,)
        The sum of all contributions plus the bias: the raw (log-odds) score.
    top_contributions : list of list of Contribution
    """
    contrib = np.asarray(booster.predict(z, pred_contrib=True), dtype=np.float64)
    raw = contrib.sum(axis=1)
    order = np.argsort(-np.abs(contrib[:, :-1]), axis=1)[:, :top]
    rows = [
        [Contribution(features[j], float(z[i, j]), float(contrib[i, j])) for j in order[i]]
        for i in range(z.shape[0])
    ]
    return raw, rows
