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
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.svm import SVC
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from affectstream._validate import check_option
from affectstream.errors import ModelError, TrainingDataError
from affectstream.models._names import NORMALIZATIONS
from affectstream.models.coverage import input_range
from affectstream.models.datasets import TARGETS
from affectstream.models.feature_sets import monotone_constraints
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

#: The SVM's training set is thinned to this many windows (its cost is quadratic).
SVM_MAX_TRAIN_ROWS = 3000


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


#: Bookkeeping columns that make a DataFrame a feature table (participant, reference, time).
TABLE_COLUMNS = ("subject", "reference", "t_end")


class AffectClassifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """High/low classifier for one target: a scikit-learn estimator over feature tables.

    ``X`` is normally a feature table (:func:`~affectstream.models.features.recording_features`)
    with its bookkeeping columns: ``subject`` groups the windows by participant (the
    normaliser centres each participant on their own reference), ``reference`` marks the
    rest period (never a training label) and ``t_end`` orders the windows in time. Any other
    input (a 2-D array, or a frame without those columns) is read as one participant's
    windows in time order with no reference rows: that suits ``normalization="none"`` or
    ``"running"``, while ``"baseline"`` then has no reference and refuses it.

    Parameters
    ----------
    kind : {"lightgbm", "svm"}
        Estimator.
    target : {"arousal", "valence"}
        Label column of a feature table (used when ``fit`` gets no ``y``).
    normalization : {"baseline", "running", "none"}
        Per-participant normalisation.
    features : sequence of str, optional
        Feature columns; default every model-usable column of the training frame (for a
        plain matrix: its columns, named ``x0``, ``x1``, ... unless ``features`` names them).
    max_train_rows : int, optional
        Thin the training rows evenly per subject to this many (the SVM's cost grows with
        the square of the rows; consecutive 5-s-step windows are nearly duplicates anyway).
    random_state : int
        Seed.
    params : dict, optional
        Estimator overrides.
    monotone : bool
        LightGBM only: constrain the prediction to rise with the features that stress can
        only raise (:data:`~affectstream.models.feature_sets.RISING_WITH_STRESS`), so a
        protocol's phase order cannot teach the opposite direction. Ignored by the SVM.

    Attributes
    ----------
    classes_ : ndarray, shape (2,)
        The low and the high class, in that order.
    features_ : list of str
        Feature columns in model order.
    threshold_ : float
        Decision threshold: the training prevalence of the high class.
    pipeline_ : sklearn.pipeline.Pipeline
        Normaliser plus model (:func:`make_pipeline`), fitted.
    subjects_ : list of str
        Participants in the training data.
    n_train_windows_ : int
        Labelled windows the model was fitted on.
    n_features_in_ : int
        ``len(features_)``.
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
        monotone: bool = False,
    ) -> None:
        # scikit-learn convention: store the parameters as given; fit validates them.
        self.kind = kind
        self.target = target
        self.normalization = normalization
        self.features = features
        self.max_train_rows = max_train_rows
        self.random_state = random_state
        self.params = params
        self.monotone = monotone

    def __sklearn_tags__(self) -> Any:
        """Tags for scikit-learn: binary only, NaN allowed (missing modalities)."""
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.classifier_tags.multi_class = False
        return tags

    def _table(self, X: Any, *, reset: bool) -> tuple[pd.DataFrame, list[str] | None]:  # noqa: N803
        """``X`` as a feature table, and the matrix's column names when it was a plain matrix."""
        if not reset:
            check_is_fitted(self)
        if isinstance(X, pd.DataFrame) and all(c in X.columns for c in TABLE_COLUMNS):
            return X, None
        matrix = validate_data(self, X, reset=reset, ensure_all_finite="allow-nan")
        if not reset:
            columns = list(self.features_)
        elif self.features is not None and len(self.features) == matrix.shape[1]:
            columns = list(self.features)
        else:
            columns = [f"x{i}" for i in range(matrix.shape[1])]
        table = pd.DataFrame(matrix, columns=columns)
        table["subject"] = "0"
        table["reference"] = False
        table["t_end"] = np.arange(len(table), dtype=np.float64)
        return table, columns

    def _labels(
        self, table: pd.DataFrame, y: Any, *, from_matrix: bool
    ) -> tuple[np.ndarray[Any, Any], Any]:
        """Labelled rows (not reference) and their labels; NaN/None labels mean unlabelled."""
        if y is None:
            if from_matrix:
                raise TrainingDataError(
                    "AffectClassifier requires y to be passed, but the target y is None (a "
                    f"plain matrix has no {self.target!r} column)."
                )
            if self.target not in table.columns:
                raise TrainingDataError(f"Training frame has no {self.target!r} labels.")
            raw = table[self.target].to_numpy(dtype=np.float64)
            labelled = np.isfinite(raw)
            values: Any = np.where(labelled, raw, 0).astype(int)  # 0/1 labels as ints
        else:
            values = column_or_1d(y, warn=True)
            if len(values) != len(table):
                raise ValueError(f"y has {len(values)} labels for {len(table)} rows of X.")
            if values.dtype.kind == "f":
                labelled = np.isfinite(values)
            else:
                labelled = np.asarray(pd.notna(values), dtype=bool)
        labelled &= ~table["reference"].to_numpy(dtype=bool)
        rows = np.flatnonzero(labelled)
        check_classification_targets(values[rows])  # continuous labels: a ValueError
        if type_of_target(values[rows]) == "multiclass":
            raise TrainingDataError(
                "Only binary classification is supported: high and low "
                f"{self.target}; got {np.unique(values[rows]).size} classes."
            )
        return rows, values

    def fit(self, X: Any, y: Any = None) -> AffectClassifier:  # noqa: N803
        """Fit on every labelled, non-reference window.

        The normaliser sees all of each participant's windows (it needs their reference
        rows) but no labels; the classifier sees the labelled windows.

        Parameters
        ----------
        X : pandas.DataFrame or array-like, shape (n_windows, n_columns)
            Feature table (with ``subject``, ``reference``, ``t_end``), or a plain matrix
            of one participant's windows (see the class docstring).
        y : array-like, shape (n_windows,), optional
            Two-class labels; NaN (or None) marks an unlabelled window. Default the
            table's :attr:`target` column.

        Returns
        -------
        self
        """
        check_option("kind", self.kind, KINDS)
        check_option("target", self.target, TARGETS)
        check_option("normalization", self.normalization, NORMALIZATIONS)
        frame, columns = self._table(X, reset=True)
        if columns is not None:
            self.features_ = columns
        else:
            self.features_ = list(self.features) if self.features else feature_columns(frame)
        if not self.features_:
            raise TrainingDataError("Training frame has no feature columns (hrv_*, eda_*, ...).")
        labelled, values = self._labels(frame, y, from_matrix=columns is not None)
        classes = np.unique(values[labelled]) if labelled.size else np.array([])
        if classes.size != 2:
            raise TrainingDataError(
                f"Training needs windows of both {self.target} classes (high and low); "
                f"found one class {classes.tolist()} in {labelled.size} labelled windows."
            )
        self.classes_ = classes
        if self.max_train_rows:
            labelled = _evenly_thin(
                labelled, frame["subject"].to_numpy()[labelled], self.max_train_rows
            )
        params = dict(self.params or {})
        if self.kind == "lightgbm":
            params.setdefault("min_child_samples", min_child_samples(labelled.size))
            if self.monotone:
                params["monotone_constraints"] = monotone_constraints(self.features_)
                params["monotone_constraints_method"] = "advanced"
        self.pipeline_ = make_pipeline(
            self.kind,
            self.features_,
            normalization=self.normalization,
            random_state=self.random_state,
            params=params,
        )
        normalizer = self.pipeline_.named_steps["normalize"]
        z = normalizer.fit(frame).transform(frame)[labelled]
        y_high = (values[labelled] == classes[1]).astype(int)
        # Kept so a bundle can tell inputs unlike any training window (models/coverage.py).
        self.input_range_ = input_range(z)
        rest = Pipeline(self.pipeline_.steps[1:])
        if self.kind == "lightgbm":  # name the Booster's columns after the features
            rest.fit(z, y_high, model__feature_name=list(self.features_))
        else:
            rest.fit(z, y_high)
        self.threshold_ = float(np.mean(y_high))
        self.subjects_ = sorted(map(str, pd.unique(frame["subject"])))
        self.n_train_windows_ = int(labelled.size)
        self.n_features_in_ = len(self.features_)
        return self

    def _rest(self) -> Pipeline:
        return Pipeline(self.pipeline_.steps[1:])

    def normalized(self, X: Any) -> FloatArray:  # noqa: N803
        """The normalised feature matrix the classifier sees.

        Parameters
        ----------
        X : pandas.DataFrame or array-like
            Windows with the bookkeeping columns, or a plain matrix (see :meth:`fit`).

        Returns
        -------
        ndarray, shape (n_rows, n_features)
        """
        table, _ = self._table(X, reset=False)
        return np.asarray(self.pipeline_.named_steps["normalize"].transform(table))

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

    def predict_proba(self, X: Any) -> FloatArray:  # noqa: N803
        """Probabilities of the low and the high class for every window.

        Parameters
        ----------
        X : pandas.DataFrame or array-like
            Windows of one or more participants, with their reference rows.

        Returns
        -------
        ndarray, shape (n_rows, 2)
            Columns in :attr:`classes_` order: ``[:, 1]`` is the high class.
        """
        high = self.predict_proba_normalized(self.normalized(X))
        return np.column_stack([1.0 - high, high])

    def predict(self, X: Any) -> np.ndarray[Any, Any]:  # noqa: N803
        """High / low decisions at the prevalence threshold :attr:`threshold_`.

        Parameters
        ----------
        X : pandas.DataFrame or array-like

        Returns
        -------
        ndarray
            Labels from :attr:`classes_` (0/1 when trained on a feature table's column).
        """
        high = self.predict_proba_normalized(self.normalized(X)) >= self.threshold_
        return np.asarray(self.classes_[high.astype(int)])

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
