"""Per-participant normalisation as a group-aware scikit-learn transformer.

Physiology differs far more between people than between a person's calm and stressed
states, so every feature is expressed relative to the participant's own reference:

- ``"baseline"``: the mean of the participant's reference windows (the rest period at the
  start of a session, column ``reference``); never labelled task windows.
- ``"running"``: an exponentially weighted running mean and standard deviation of all the
  participant's windows up to and including the current one (causal; what a live session
  computes with :class:`RunningStats`, needing no protocol). Half-life ``halflife`` seconds.
- ``"baseline_z"``: centred on the reference windows' mean like ``"baseline"``, and divided
  by the reference windows' own standard deviation (floored at
  :data:`REFERENCE_SCALE_FLOOR` of the training scale): a z-score against the participant's
  own rest, as the one-feature baseline is. Insensitive to a device's amplitude (gain) and to
  how strongly a person's signals vary; slow changes since the rest are kept, not
  normalised away as a running mean does.

For ``"baseline"`` the scale comes from the training participants (the median of their
within-participant standard deviation per feature), so one short baseline cannot blow up a
z-score; ``"running"`` divides by the participant's own running standard deviation. The same
functions serve batch evaluation and live inference: :meth:`ParticipantNormalizer.reference_center`
or :class:`RunningStats` for a participant's reference, :meth:`ParticipantNormalizer.apply`
for any row.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from affectstream._validate import check_option
from affectstream.errors import FeatureMismatchError, ModelError
from affectstream.models._names import NORMALIZATIONS
from affectstream.types import FloatArray

logger = logging.getLogger(__name__)

#: Methods that centre on the participant's reference (rest) windows.
REFERENCE_METHODS = ("baseline", "baseline_z")
#: ``baseline_z``: the reference spread is at least this share of the training scale, so a
#: short, flat rest cannot turn small changes into huge z-scores.
REFERENCE_SCALE_FLOOR = 0.1


class ParticipantNormalizer(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Express each participant's features relative to that participant's own reference.

    Parameters
    ----------
    features : sequence of str
        Feature columns to normalise, in output order.
    method : {"baseline", "running", "none", "baseline_z"}
        Reference used for centring and scaling (see module docstring).
    subject_column, reference_column, time_column : str
        Bookkeeping columns of the input frame.
    clip : float
        Normalised values are clipped to ``[-clip, clip]`` so one artefact cannot dominate.
    halflife : float
        Half-life in seconds of the running statistics (``method="running"``).
    """

    def __init__(
        self,
        features: Sequence[str] = (),
        method: str = "baseline",
        subject_column: str = "subject",
        reference_column: str = "reference",
        time_column: str = "t_end",
        clip: float = 10.0,
        halflife: float = 600.0,
    ) -> None:
        self.features = features
        self.method = method
        self.subject_column = subject_column
        self.reference_column = reference_column
        self.time_column = time_column
        self.clip = clip
        self.halflife = halflife

    # ------------------------------------------------------------------ helpers
    def _values(self, frame: pd.DataFrame) -> FloatArray:
        missing = [c for c in self.features if c not in frame.columns]
        if missing:
            raise FeatureMismatchError(
                f"Input lacks feature columns {missing[:10]}{'...' if len(missing) > 10 else ''}; "
                f"the model was trained on {len(self.features)} features. Extract features with "
                f"the same affectstream version and modalities."
            )
        return frame[list(self.features)].to_numpy(dtype=np.float64)

    def _check_frame(self, frame: Any) -> pd.DataFrame:
        if not isinstance(frame, pd.DataFrame):
            raise ModelError(
                f"ParticipantNormalizer needs a pandas DataFrame with {self.subject_column!r}, "
                f"{self.reference_column!r} and feature columns, got {type(frame).__name__}."
            )
        for column in (self.subject_column, self.reference_column, self.time_column):
            if column not in frame.columns:
                raise ModelError(f"ParticipantNormalizer input lacks column {column!r}.")
        return frame

    # ------------------------------------------------------------------ public API
    def _reference_values(self, frame: pd.DataFrame) -> FloatArray:
        values = self._values(frame)
        ref = frame[self.reference_column].to_numpy(dtype=bool)
        if not ref.any():
            raise ModelError(
                "No reference (baseline) windows for this participant: 'baseline' "
                "normalisation needs the rest period at the start of the session. Record a "
                "baseline, or use method='running'."
            )
        return np.asarray(values[ref], dtype=np.float64)

    def reference_center(self, frame: pd.DataFrame) -> FloatArray:
        """Mean of the reference rows of one participant's windows: one value per feature."""
        values = self._reference_values(frame)
        with np.errstate(all="ignore"), _quiet_nan_warnings():
            return np.asarray(np.nanmean(values, axis=0), dtype=np.float64)

    def reference_spread(self, frame: pd.DataFrame) -> FloatArray:
        """Standard deviation (ddof=0) of the reference rows of one participant, per feature.

        For a z-score against the participant's own baseline (pass it as ``scale`` to
        :meth:`apply`), as the live uncalibrated valence does with frontal asymmetry.

        Parameters
        ----------
        frame : pandas.DataFrame
            The participant's windows; only the rows flagged in the reference column count.

        Returns
        -------
        ndarray, shape (n_features,)
            NaN where a feature has no finite reference value.
        """
        values = self._reference_values(frame)
        with np.errstate(all="ignore"), _quiet_nan_warnings():
            return np.asarray(np.nanstd(values, axis=0), dtype=np.float64)

    def reference_scale(self, frame: pd.DataFrame) -> FloatArray:
        """Standard deviation of one participant's reference rows, floored (``baseline_z``).

        Parameters
        ----------
        frame : pandas.DataFrame
            One participant's windows, with the reference column.

        Returns
        -------
        ndarray, shape (n_features,)
            ``max(std, REFERENCE_SCALE_FLOOR * training scale)``; the training scale where
            the reference has fewer than two values of a feature.
        """
        values = self._values(frame)
        ref = frame[self.reference_column].to_numpy(dtype=bool)
        with np.errstate(all="ignore"), _quiet_nan_warnings():
            spread = np.nanstd(values[ref], axis=0, ddof=1) if ref.sum() > 1 else None
        floor = REFERENCE_SCALE_FLOOR * self.scale_
        if spread is None:
            return np.asarray(self.scale_, dtype=np.float64)
        return np.where(np.isfinite(spread), np.maximum(spread, floor), self.scale_)

    def apply(
        self, values: FloatArray, center: FloatArray, scale: FloatArray | None = None
    ) -> FloatArray:
        """Normalise rows given a participant's centre (and scale).

        Parameters
        ----------
        values : ndarray, shape (n, n_features)
            Raw feature values in :attr:`features` order.
        center : ndarray, shape (n_features,) or (n, n_features)
            The participant's reference per feature.
        scale : ndarray, optional
            The participant's spread (running method); default the fitted training scale.

        Returns
        -------
        ndarray, shape (n, n_features)
            NaN stays NaN (missing stays missing).
        """
        spread = self.scale_ if scale is None else np.where(scale > 0, scale, np.nan)
        z = (np.asarray(values, dtype=np.float64) - center) / spread
        return np.clip(z, -self.clip, self.clip)

    def _halflife_rows(self, times: FloatArray) -> float:
        step = float(np.median(np.diff(times))) if times.size > 1 else 1.0
        return max(1.0, self.halflife / step) if step > 0 else 1.0

    def _centers(self, frame: pd.DataFrame) -> tuple[FloatArray, FloatArray | None]:
        values = self._values(frame)
        centers = np.full_like(values, np.nan)
        scales = np.full_like(values, np.nan) if self.method in ("running", "baseline_z") else None
        subjects = frame[self.subject_column].to_numpy()
        for subject in pd.unique(subjects):
            rows = np.flatnonzero(subjects == subject)
            part = frame.iloc[rows]
            if self.method == "none":
                centers[rows] = 0.0
            elif self.method in REFERENCE_METHODS:
                try:
                    centers[rows] = self.reference_center(part)
                except ModelError as exc:
                    raise ModelError(f"Participant {subject!r}: {exc}") from None
                if scales is not None:
                    scales[rows] = self.reference_scale(part)
            else:  # running: causal exponentially weighted statistics in time order
                times = part[self.time_column].to_numpy(dtype=np.float64)
                order = np.argsort(times, kind="stable")
                stats = RunningStats(len(self.features), self._halflife_rows(times[order]))
                for i in order:
                    centers[rows[i]], scales[rows[i]] = stats.update(values[rows[i]])  # type: ignore[index]
        return centers, scales

    def fit(self, frame: pd.DataFrame, y: Any = None) -> ParticipantNormalizer:
        """Learn the per-feature scale from the training participants.

        Parameters
        ----------
        frame : pandas.DataFrame
            Windows of several participants (subject, reference, time and feature columns).
        y : ignored

        Returns
        -------
        self
        """
        check_option("method", self.method, NORMALIZATIONS)
        frame = self._check_frame(frame)
        if not self.features:
            raise ModelError("ParticipantNormalizer needs the list of feature columns.")
        values = self._values(frame)
        subjects = frame[self.subject_column].to_numpy()
        spreads = []
        self.centers_: dict[str, list[float]] = {}
        for subject in pd.unique(subjects):
            rows = subjects == subject
            with np.errstate(all="ignore"), _quiet_nan_warnings():
                spreads.append(np.nanstd(values[rows], axis=0))
                if self.method in REFERENCE_METHODS:
                    ref = rows & frame[self.reference_column].to_numpy(dtype=bool)
                    self.centers_[str(subject)] = np.nanmean(values[ref], axis=0).tolist()
        with _quiet_nan_warnings():
            scale = np.nanmedian(np.vstack(spreads), axis=0)
        # Features constant for everyone get scale 1 (they carry no information anyway).
        self.scale_ = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
        self.n_features_in_ = len(self.features)
        return self

    def transform(self, frame: pd.DataFrame) -> FloatArray:
        """Normalise every row with its own participant's reference.

        Parameters
        ----------
        frame : pandas.DataFrame
            Windows (any participants, including unseen ones).

        Returns
        -------
        ndarray, shape (n_rows, n_features)
        """
        frame = self._check_frame(frame)
        centers, scales = self._centers(frame)
        return self.apply(self._values(frame), centers, scales)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray[Any, Any]:
        """Names of the output columns (the feature list).

        Parameters
        ----------
        input_features : ignored

        Returns
        -------
        ndarray of str
        """
        return np.asarray(list(self.features), dtype=object)


class RunningStats:
    """Exponentially weighted running mean and standard deviation, one update per window.

    The same recursion serves batch evaluation and live sessions. Missing values (NaN) leave
    that feature's state untouched.

    Parameters
    ----------
    n_features : int
        Number of features.
    halflife_rows : float
        Half-life in windows (``halflife_seconds / step``).
    """

    def __init__(self, n_features: int, halflife_rows: float) -> None:
        self.decay = float(0.5 ** (1.0 / halflife_rows))
        self.sum_w = np.zeros(n_features)
        self.sum_w2 = np.zeros(n_features)
        self.sum_wx = np.zeros(n_features)
        self.sum_wx2 = np.zeros(n_features)

    def update(self, x: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Add one window and return the running (mean, standard deviation) including it.

        Parameters
        ----------
        x : ndarray, shape (n_features,)

        Returns
        -------
        mean, std : ndarray, shape (n_features,)
            NaN where fewer than two values have been seen.
        """
        x = np.asarray(x, dtype=np.float64)
        ok = np.isfinite(x)
        d = self.decay
        self.sum_w[ok] = d * self.sum_w[ok] + 1.0
        self.sum_w2[ok] = d * d * self.sum_w2[ok] + 1.0
        self.sum_wx[ok] = d * self.sum_wx[ok] + x[ok]
        self.sum_wx2[ok] = d * self.sum_wx2[ok] + x[ok] ** 2
        with np.errstate(all="ignore"):
            mean = self.sum_wx / self.sum_w
            biased = np.maximum(self.sum_wx2 / self.sum_w - mean**2, 0.0)
            # Unbiased weighted variance, as pandas' ewm(...).std() computes it.
            denom = self.sum_w**2 - self.sum_w2
            var = np.where(denom > 0, biased * self.sum_w**2 / denom, np.nan)
        return mean, np.sqrt(var)


@contextlib.contextmanager
def _quiet_nan_warnings() -> Iterator[None]:
    """Silence numpy's all-NaN-slice warnings: all-NaN columns are expected (missing modality)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        yield
