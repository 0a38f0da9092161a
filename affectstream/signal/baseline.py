"""Per-participant baseline normalisation of feature tables (scikit-learn style)."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from affectstream._validate import check_option
from affectstream.errors import ConfigError
from affectstream.signal.columns import feature_columns

logger = logging.getLogger(__name__)


def _usable_mask(frame: pd.DataFrame, column: str) -> np.ndarray:
    family = str(column).split("_", 1)[0]
    flag = f"usable_{family}"
    if flag in frame.columns:
        return frame[flag].to_numpy(dtype=bool)
    return np.ones(len(frame), dtype=bool)


class BaselineNormalizer(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Express each feature relative to one participant's baseline.

    Fit on a calibration/rest period (``fit``), or keep running statistics of the
    participant's own windows so far (``partial_fit``), then ``transform`` later windows:
    ``(x - center_) / scale_``. Only windows marked ``usable_<family>`` count. Columns that are
    not features (:func:`~affectstream.signal.columns.feature_columns`) pass through unchanged.

    Parameters
    ----------
    method : {"zscore", "diff", "ratio"}
        ``zscore``: subtract the baseline mean, divide by its standard deviation;
        ``diff``: subtract the mean only; ``ratio``: divide by the mean.
    min_samples : int
        Features with fewer usable baseline windows than this come out NaN.

    Attributes
    ----------
    feature_names_in_ : list of str
    n_samples_seen_ : ndarray of int
        Usable baseline windows per feature.
    mean_, var_ : ndarray
        Baseline mean and variance (ddof=0) per feature.
    """

    def __init__(self, method: str = "zscore", min_samples: int = 3) -> None:
        self.method = method
        self.min_samples = min_samples

    def _check_params(self) -> None:
        check_option("method", self.method, ("zscore", "diff", "ratio"))
        if int(self.min_samples) < 1:
            raise ConfigError(f"min_samples must be >= 1, got {self.min_samples!r}.")

    def fit(self, X: pd.DataFrame, y: object = None) -> BaselineNormalizer:  # noqa: N803
        """Fit on a baseline period (replaces earlier statistics).

        Parameters
        ----------
        X : pandas.DataFrame
            Feature rows of the baseline period.
        y : ignored

        Returns
        -------
        self
        """
        for name in ("feature_names_in_", "n_samples_seen_", "mean_", "var_"):
            self.__dict__.pop(name, None)
        return self.partial_fit(X)

    def partial_fit(self, X: pd.DataFrame, y: object = None) -> BaselineNormalizer:  # noqa: N803
        """Update the running statistics with more of the participant's windows.

        Parameters
        ----------
        X : pandas.DataFrame
            New feature rows.
        y : ignored

        Returns
        -------
        self
        """
        self._check_params()
        if not isinstance(X, pd.DataFrame):
            raise ConfigError(
                f"BaselineNormalizer needs a pandas DataFrame of features, got {type(X)!r}."
            )
        if not hasattr(self, "feature_names_in_"):
            # sklearn's convention: feature_names_in_ in the input's column order.
            features = set(feature_columns(X))
            self.feature_names_in_ = [c for c in X.columns if c in features]
            n = len(self.feature_names_in_)
            self.n_samples_seen_ = np.zeros(n, dtype=np.int64)
            self.mean_ = np.zeros(n)
            self.var_ = np.zeros(n)
        for i, col in enumerate(self.feature_names_in_):
            if col not in X.columns:
                continue
            values = X[col].to_numpy(dtype=np.float64)[_usable_mask(X, col)]
            values = values[np.isfinite(values)]
            if values.size == 0:
                continue
            # Chan et al. parallel update of mean and variance.
            n_old, n_new = self.n_samples_seen_[i], values.size
            total = n_old + n_new
            delta = values.mean() - self.mean_[i]
            m2 = self.var_[i] * n_old + values.var() * n_new + delta**2 * n_old * n_new / total
            self.mean_[i] += delta * n_new / total
            self.var_[i] = m2 / total
            self.n_samples_seen_[i] = total
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:  # noqa: N803
        """Normalise features against the baseline; other columns are copied unchanged.

        Parameters
        ----------
        X : pandas.DataFrame
            Feature rows.

        Returns
        -------
        pandas.DataFrame
        """
        if not hasattr(self, "feature_names_in_"):
            raise ConfigError(
                "BaselineNormalizer is not fitted: call fit() on a baseline period or "
                "partial_fit() on the participant's windows first."
            )
        out = X.copy()
        enough = self.n_samples_seen_ >= int(self.min_samples)
        std = np.sqrt(self.var_)
        for i, col in enumerate(self.feature_names_in_):
            if col not in out.columns:
                continue
            x = out[col].to_numpy(dtype=np.float64)
            if not enough[i]:
                out[col] = np.nan
            elif self.method == "zscore":
                out[col] = (x - self.mean_[i]) / (std[i] if std[i] > 0 else 1.0)
            elif self.method == "diff":
                out[col] = x - self.mean_[i]
            else:
                out[col] = x / self.mean_[i] if self.mean_[i] != 0 else np.nan
        return out
