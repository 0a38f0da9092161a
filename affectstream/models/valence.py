"""Valence: a per-participant calibration protocol, and an explicitly uncalibrated estimate.

No redistributable real valence data exists for a population model, and published
cross-subject valence results from physiology are close to chance. So valence comes from a
personal model fitted on a short calibration session:

1. show the participant labelled blocks (e.g. 8 stimuli of 60-120 s, mixed pleasant and
   unpleasant), each followed by a self-report on a 1-9 valence scale (SAM);
2. :func:`fit_personal_valence` labels each window inside a block high (rating above the
   scale midpoint) or low (below; midpoint ratings are dropped), standardises features with
   the participant's own calibration statistics, fits a regularised logistic regression and
   measures it by leave-one-block-out cross-validation — the number it reports is
   measured on that person, never assumed.

Before calibration, :func:`uncalibrated_valence` gives an estimate marked ``calibrated=False``
with its confidence spelled out: from frontal alpha asymmetry when EEG is present (a weak,
population-level direction), otherwise the uninformative 0.5.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import LeaveOneGroupOut
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from affectstream.errors import ConfigError, ModelError
from affectstream.signal.columns import feature_columns
from affectstream.types import FloatArray

logger = logging.getLogger(__name__)

SCALE_MIN, SCALE_MAX, SCALE_MID = 1.0, 9.0, 5.0


@dataclass(frozen=True)
class CalibrationBlock:
    """One stimulus block of the calibration protocol and the self-report after it.

    Parameters
    ----------
    t_start, t_end : float
        Block span, seconds since the epoch.
    rating : float
        Self-reported valence on the 1-9 scale.
    """

    t_start: float
    t_end: float
    rating: float

    def __post_init__(self) -> None:
        if not SCALE_MIN <= self.rating <= SCALE_MAX:
            raise ConfigError(
                f"Valence rating {self.rating!r} is outside the 1-9 scale; record the "
                f"self-report on the 9-point SAM scale."
            )
        if not self.t_end > self.t_start:
            raise ConfigError(
                f"Calibration block ends ({self.t_end}) before it starts ({self.t_start})."
            )


@dataclass(frozen=True)
class ValenceEstimate:
    """Valence for one window.

    Parameters
    ----------
    probability : float
        Probability that valence is high (above the scale midpoint).
    calibrated : bool
        True only when a personal model made the estimate.
    confidence : str
        What is known about how good this estimate is, in words and numbers.
    basis : str
        Which signals the estimate rests on.
    """

    probability: float
    calibrated: bool
    confidence: str
    basis: str


def _block_labels(
    frame: pd.DataFrame, blocks: Sequence[CalibrationBlock], window: float
) -> tuple[FloatArray, np.ndarray[Any, Any]]:
    t_end = frame["t_end"].to_numpy(dtype=np.float64)
    y = np.full(t_end.shape, np.nan)
    block_id = np.full(t_end.shape, -1)
    for k, block in enumerate(blocks):
        inside = (t_end - window >= block.t_start - 1e-9) & (t_end <= block.t_end + 1e-9)
        if block.rating != SCALE_MID:
            y[inside] = float(block.rating > SCALE_MID)
            block_id[inside] = k
    return y, block_id


class PersonalValenceModel:
    """One participant's valence model from a calibration session.

    Parameters
    ----------
    features : sequence of str, optional
        Feature columns; default every model-usable column.
    C : float
        Inverse regularisation strength of the logistic regression.
    """

    def __init__(self, features: Sequence[str] | None = None, C: float = 0.1) -> None:  # noqa: N803 - scikit-learn name
        self.features = list(features) if features is not None else None
        self.C = C

    def _pipeline(self) -> Pipeline:
        return Pipeline(
            [
                ("impute", SimpleImputer(strategy="mean", keep_empty_features=True)),
                ("scale", StandardScaler()),
                ("model", LogisticRegression(C=self.C, max_iter=1000)),
            ]
        )

    def fit(
        self, frame: pd.DataFrame, blocks: Sequence[CalibrationBlock], window: float
    ) -> PersonalValenceModel:
        """Fit on the windows lying wholly inside rated blocks.

        Parameters
        ----------
        frame : pandas.DataFrame
            One participant's feature table (``t_end`` plus features).
        blocks : sequence of CalibrationBlock
            The protocol's blocks with their ratings.
        window : float
            Window length in seconds, to know which windows lie inside a block.

        Returns
        -------
        self
        """
        if "subject" in frame.columns and frame["subject"].nunique() > 1:
            raise ModelError("A personal valence model is fitted on one participant's windows.")
        self.features_ = self.features or feature_columns(frame)
        y, block_id = _block_labels(frame, blocks, window)
        sel = np.isfinite(y)
        per_class = [len(set(block_id[sel & (y == c)])) for c in (0.0, 1.0)]
        if min(per_class) < 2:
            raise ModelError(
                f"Calibration needs at least two rated blocks on each side of the midpoint "
                f"({SCALE_MID:g}); got {per_class[0]} low and {per_class[1]} high blocks with "
                f"windows inside them. Add blocks or lengthen them beyond one window ({window} s)."
            )
        matrix = frame[self.features_].to_numpy(dtype=np.float64)[sel]
        yy, groups = y[sel].astype(int), block_id[sel]
        # Leave one block out: the personal model's accuracy, measured on this person.
        predicted = np.empty_like(yy)
        for train, test in LeaveOneGroupOut().split(matrix, yy, groups):
            if np.unique(yy[train]).size < 2:
                predicted[test] = round(float(yy[train].mean()))
                continue
            predicted[test] = self._pipeline().fit(matrix[train], yy[train]).predict(matrix[test])
        self.cv_balanced_accuracy_ = float(balanced_accuracy_score(yy, predicted))
        self.n_blocks_ = int(np.unique(groups).size)
        self.pipeline_ = self._pipeline().fit(matrix, yy)
        return self

    def predict(self, frame: pd.DataFrame) -> list[ValenceEstimate]:
        """Estimate valence for every window.

        Parameters
        ----------
        frame : pandas.DataFrame
            The same participant's windows.

        Returns
        -------
        list of ValenceEstimate
        """
        p = self.pipeline_.predict_proba(frame[self.features_].to_numpy(dtype=np.float64))[:, 1]
        confidence = (
            f"personal model; leave-one-block-out balanced accuracy "
            f"{self.cv_balanced_accuracy_:.2f} over {self.n_blocks_} calibration blocks"
        )
        return [
            ValenceEstimate(float(v), True, confidence, f"{len(self.features_)} features")
            for v in p
        ]


def uncalibrated_valence(faa_normalized: float | None, *, slope: float = 0.5) -> ValenceEstimate:
    """A population-level valence guess for a participant with no calibration yet.

    Parameters
    ----------
    faa_normalized : float or None
        Frontal alpha asymmetry (``eeg_faa``) relative to the participant's baseline, in
        units of its typical spread; None or NaN when no EEG is available.
    slope : float
        Log-odds per unit of normalised asymmetry; deliberately small.

    Returns
    -------
    ValenceEstimate
        ``calibrated=False``. The confidence states that no accuracy was measured.
    """
    if faa_normalized is None or not np.isfinite(faa_normalized):
        return ValenceEstimate(
            0.5,
            False,
            "uncalibrated, uninformative: no EEG and no personal calibration; run the "
            "valence calibration protocol",
            "prior",
        )
    probability = float(1.0 / (1.0 + np.exp(-slope * float(faa_normalized))))
    return ValenceEstimate(
        probability,
        False,
        "uncalibrated: frontal alpha asymmetry direction only; accuracy not measured here "
        "(published cross-subject valence from physiology is near chance, ~0.55-0.63); run "
        "the valence calibration protocol",
        "eeg_faa",
    )
