"""The loaded model bundle: both estimators plus what is needed to feed them live.

Bundle folders are read and written by :mod:`affectstream.models.bundle_io` (layout, trust
list, checksums); its public names stay importable from here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from affectstream.errors import FeatureMismatchError
from affectstream.models.bundle_io import BUNDLE_FILES as BUNDLE_FILES
from affectstream.models.bundle_io import BUNDLE_FORMAT as BUNDLE_FORMAT
from affectstream.models.bundle_io import BUNDLES_DIR as BUNDLES_DIR
from affectstream.models.bundle_io import MANIFEST as MANIFEST
from affectstream.models.bundle_io import SKOPS_TRUSTED_TYPES as SKOPS_TRUSTED_TYPES
from affectstream.models.bundle_io import load_bundle as load_bundle
from affectstream.models.bundle_io import resolve_bundle as resolve_bundle
from affectstream.models.bundle_io import save_bundle as save_bundle
from affectstream.models.bundle_io import shipped_bundles as shipped_bundles
from affectstream.models.bundle_io import verify_shipped as verify_shipped
from affectstream.models.bundle_io import write_shipped_manifest as write_shipped_manifest
from affectstream.models.coverage import in_distribution, in_range_share
from affectstream.models.estimators import Contribution, contributions
from affectstream.models.features import ContextMean, add_context_features
from affectstream.models.normalize import ParticipantNormalizer
from affectstream.signal.columns import feature_family
from affectstream.types import FloatArray

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AffectEstimate:
    """One window's estimate.

    Parameters
    ----------
    target : str
        ``"arousal"`` or ``"valence"``.
    probability : float
        Probability of the high class (LightGBM, the primary model).
    probability_svm : float
        The SVM's calibrated probability (a second opinion).
    high : bool
        Decision at the model's threshold.
    model_id : str
        Bundle name and version.
    contributions : tuple of Contribution
        Top LightGBM feature contributions (log-odds).
    calibrated : bool
        False for population models applied to a new person before any personal calibration.
    input_in_range : float
        Share of the window's present features inside the bundle's training range
        (:mod:`affectstream.models.coverage`).
    in_distribution : bool
        False when that share is below the bundle's minimum: the input is unlike anything
        the model was trained on, and ``probability`` must not be read as an estimate.
    """

    target: str
    probability: float
    probability_svm: float
    high: bool
    model_id: str
    contributions: tuple[Contribution, ...] = field(default=())
    calibrated: bool = False
    input_in_range: float = 1.0
    in_distribution: bool = True


class ModelBundle:
    """A loaded bundle: both estimators plus what is needed to feed them.

    Use :func:`load_bundle`; construct directly only from fitted parts.

    Parameters
    ----------
    meta : dict
        Contents of ``bundle.json``.
    booster : lightgbm.Booster
        The LightGBM model.
    svm : sklearn.pipeline.Pipeline
        Imputer + calibrated SVC on normalised features.
    path : Path, optional
        Where it was loaded from.
    """

    def __init__(self, meta: dict[str, Any], booster: Any, svm: Any, path: Path | None = None):
        self.meta = meta
        self.booster = booster
        self.svm = svm
        self.path = path
        norm = meta["normalization"]
        self.normalizer = ParticipantNormalizer(
            features=tuple(meta["features"]),
            method=norm["method"],
            clip=norm["clip"],
            halflife=norm.get("halflife", 600.0),
        )
        self.normalizer.scale_ = np.asarray(norm["scale"], dtype=np.float64)

    @property
    def features(self) -> list[str]:
        """Exact feature list, in model column order."""
        return list(self.meta["features"])

    @property
    def context_seconds(self) -> float:
        """Span of the context features (0: the bundle has none)."""
        return float((self.meta.get("context") or {}).get("seconds", 0.0))

    def new_context(self) -> ContextMean | None:
        """Fresh per-participant context state for live use (None without context features).

        Returns
        -------
        ContextMean or None
        """
        if self.context_seconds <= 0:
            return None
        return ContextMean(self.meta["context"]["features"], self.context_seconds)

    @property
    def target(self) -> str:
        """``"arousal"`` or ``"valence"``."""
        return str(self.meta["target"])

    @property
    def common_rate(self) -> float | None:
        """Rate (Hz) EDA and temperature were averaged down to in training, if any.

        Sessions compute this bundle's features at that rate (``WindowConfig.common_rate``);
        None: each stream at its own rate, as in training.
        """
        rate = (self.meta.get("provenance") or {}).get("common_rate")
        return float(rate) if rate else None

    @property
    def model_id(self) -> str:
        """``name@affectstream-version``."""
        return f"{self.meta['name']}@{self.meta['versions']['affectstream']}"

    def row_values(self, features: Mapping[str, float]) -> FloatArray:
        """One window's raw values in model order, absent families as NaN.

        Parameters
        ----------
        features : mapping
            Feature name → value.

        Returns
        -------
        ndarray, shape (1, n_features)
        """
        self.check_features(list(features))
        return np.array([[float(features.get(f, np.nan)) for f in self.features]])

    def check_features(self, columns: Sequence[str], features: Sequence[str] | None = None) -> None:
        """Raise :class:`FeatureMismatchError` unless every model feature is in ``columns``.

        Parameters
        ----------
        columns : sequence of str
            Columns of the feature table to score.
        features : sequence of str, optional
            Features to check; default :attr:`features`.
        """
        wanted = list(self.features if features is None else features)
        present = set(columns)
        families = {feature_family(c) for c in present}
        # A family that is entirely absent is a modality not worn: allowed, treated as NaN.
        # A family present with missing columns means different feature definitions.
        missing = [f for f in wanted if f not in present and feature_family(f) in families]
        if not any(f in present for f in wanted):
            missing = wanted
        if missing:
            raise FeatureMismatchError(
                f"Bundle {self.meta['name']!r} needs {len(self.features)} features; the input "
                f"lacks {len(missing)}: {missing[:8]}{'...' if len(missing) > 8 else ''}. "
                f"Compute features with the window settings in the bundle "
                f"({self.meta['window']}) and the same modalities, or retrain."
            )

    def normalized(self, frame: pd.DataFrame) -> FloatArray:
        """Normalise a feature table per participant with the bundle's method and scale.

        Parameters
        ----------
        frame : pandas.DataFrame
            Windows with ``subject``, ``reference`` and ``t_end`` columns; context columns
            are computed here when the bundle has them and the table does not.

        Returns
        -------
        ndarray, shape (n_rows, n_features)
        """
        context = self.new_context()
        if context is not None and not set(context.names) <= set(frame.columns):
            self.check_features(list(frame.columns), context.features)
            absent = [f for f in context.features if f not in frame.columns]
            frame = add_context_features(
                frame.assign(**{f: np.nan for f in absent}), context.seconds, context.features
            )
        self.check_features(list(frame.columns))
        absent = [f for f in self.features if f not in frame.columns]
        if absent:
            frame = frame.assign(**{f: np.nan for f in absent})
        return self.normalizer.transform(frame)

    def predict_normalized(self, z: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Both models' probabilities of the high class from normalised features.

        Parameters
        ----------
        z : ndarray, shape (n, n_features)

        Returns
        -------
        p_lightgbm, p_svm : ndarray, shape (n,)
        """
        z = np.atleast_2d(np.asarray(z, dtype=np.float64))
        if z.shape[1] != len(self.features):
            raise FeatureMismatchError(
                f"Expected {len(self.features)} normalised features, got {z.shape[1]}."
            )
        p_lgb = np.asarray(self.booster.predict(z), dtype=np.float64)
        p_svm = np.asarray(self.svm.predict_proba(z)[:, 1], dtype=np.float64)
        return p_lgb, p_svm

    def predict_frame(self, frame: pd.DataFrame, top: int = 5) -> pd.DataFrame:
        """Score every window of a feature table.

        Parameters
        ----------
        frame : pandas.DataFrame
            Windows of one or more participants, including their reference rows.
        top : int
            Contributions to keep per row.

        Returns
        -------
        pandas.DataFrame
            ``probability`` (LightGBM), ``probability_svm``, ``high``, ``raw_score``,
            ``contributions`` (list of Contribution), ``input_in_range`` and
            ``in_distribution`` (:meth:`input_in_range`) per row, same index as ``frame``.
        """
        z = self.normalized(frame)
        p_lgb, p_svm = self.predict_normalized(z)
        raw, top_rows = contributions(self.booster, z, self.features, top=top)
        share = self.input_in_range(z)
        return pd.DataFrame(
            {
                "input_in_range": share,
                "in_distribution": in_distribution(share, self.meta.get("input_range")),
                "probability": p_lgb,
                "probability_svm": p_svm,
                "high": p_lgb >= self.meta["thresholds"]["lightgbm"],
                "raw_score": raw,
                "contributions": top_rows,
            },
            index=frame.index,
        )

    def estimate(
        self,
        features: Mapping[str, float],
        center: FloatArray,
        scale: FloatArray | None = None,
        top: int = 5,
        *,
        with_svm: bool = True,
    ) -> AffectEstimate:
        """Estimate one live window (state kept by :class:`~affectstream.runtime.LiveEstimator`).

        Parameters
        ----------
        features : mapping
            Feature name → raw value for the window (extra names are ignored; a modality
            that is not worn may be absent and is treated as missing).
        center : ndarray, shape (n_features,)
            The participant's reference: the mean of their baseline windows, or the running
            mean (:class:`~affectstream.models.normalize.RunningStats`).
        scale : ndarray, optional
            The participant's running standard deviation (``running`` bundles).
        top : int
            Contributions to keep.
        with_svm : bool
            Also run the SVM (about 2 ms per row, against about 0.1 ms for the rest);
            False leaves ``probability_svm`` NaN.

        Returns
        -------
        AffectEstimate
        """
        values = self.row_values(features)
        z = self.normalizer.apply(values, np.asarray(center, dtype=np.float64), scale)
        if with_svm:
            p_lgb, p_svm = self.predict_normalized(z)
        else:
            p_lgb, p_svm = np.asarray(self.booster.predict(z), dtype=np.float64), np.array([np.nan])
        _, rows = contributions(self.booster, z, self.features, top=top)
        share = float(self.input_in_range(z)[0])
        return AffectEstimate(
            target=self.target,
            probability=float(p_lgb[0]),
            probability_svm=float(p_svm[0]),
            high=bool(p_lgb[0] >= self.meta["thresholds"]["lightgbm"]),
            model_id=self.model_id,
            contributions=tuple(rows[0]),
            calibrated=False,
            input_in_range=share,
            in_distribution=bool(in_distribution(share, self.meta.get("input_range"))),
        )

    def input_in_range(self, z: FloatArray) -> FloatArray:
        """Share of each row's present normalised features inside the training range.

        Uses the bundle's ``input_range`` (written at training time); bundles without it
        are checked against the normaliser's clip only
        (:func:`~affectstream.models.coverage.in_range_share`).

        Parameters
        ----------
        z : ndarray, shape (n, n_features)
            Normalised features.

        Returns
        -------
        ndarray, shape (n,)
        """
        clip = self.meta["normalization"].get("clip")
        return in_range_share(
            z, self.meta.get("input_range"), clip=float(clip) if clip is not None else None
        )
