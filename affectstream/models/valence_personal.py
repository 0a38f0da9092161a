"""One participant's valence model: fitted on rated episodes, trusted only when it earns it.

:class:`PersonalValenceModel` regresses the SAM rating on the window features and scores
itself leave one episode out (:mod:`affectstream.models.valence_scoring`); it is
``calibrated`` only when it beats the person's own mean rating by both tests there. It is
stored as plain JSON (:meth:`PersonalValenceModel.to_dict`), never pickled.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from affectstream.errors import ModelError
from affectstream.models.valence_blocks import (
    SCALE_MID,
    CalibrationBlock,
    ValenceEstimate,
    block_windows,
    check_calibration_blocks,
)
from affectstream.models.valence_scoring import (
    PERMUTATION_ALPHA,
    StandardisedRidge,
    arousal_stratum,
    measure_leave_one_episode_out,
    permutation_test,
)
from affectstream.signal.columns import feature_columns
from affectstream.types import FloatArray

logger = logging.getLogger(__name__)

#: Format version of the stored personal model (:meth:`PersonalValenceModel.to_dict`).
FORMAT_VERSION = 1


def calibration_verdict(accuracy: Mapping[str, Any]) -> tuple[bool, str]:
    """Calibrated or not, and why, from a model's measured accuracy.

    Two tests, both needed: the whole 95 % interval of the paired difference (model minus own
    mean, over episodes) below zero (a lucky point estimate is not enough), and the
    within-person permutation test at ``PERMUTATION_ALPHA`` (the gain is more than the
    order of the ratings gives by chance).

    Parameters
    ----------
    accuracy : mapping
        :attr:`PersonalValenceModel.accuracy_`.

    Returns
    -------
    (bool, str)
        The verdict and a one-line reason ("" when calibrated).
    """
    if "permutation_p" not in accuracy:
        return False, "fitted before the permutation test existed; re-calibrate"
    margin_high = float(accuracy["mae_margin_ci95"][1])
    p, min_p = float(accuracy["permutation_p"]), float(accuracy["permutation_min_p"])
    if margin_high >= 0.0:
        return False, (
            f"does not beat the own mean rating: the 95% interval of the error difference "
            f"reaches {margin_high:+.2f} SAM points"
        )
    if p > PERMUTATION_ALPHA + 1e-12:  # p is a ratio of counts: 2/20 is at the level
        if int(accuracy["permutation_orders"]) <= 1:
            return False, (
                "the valence ratings follow the arousal ratings (no other order within the "
                "same arousal): valence cannot be told from arousal; add a calm unpleasant "
                "or an aroused pleasant block"
            )
        if min_p > PERMUTATION_ALPHA + 1e-12:
            return False, (
                f"too few episodes to tell from chance: {accuracy['permutation_orders']} "
                f"distinct rating orders allow p >= {min_p:.2f} > {PERMUTATION_ALPHA}; add "
                f"calibration blocks (more episodes, or ratings that differ, give more orders)"
            )
        return False, (
            f"the gain over the own mean is not beyond chance: permutation p = {p:.3f} > "
            f"{PERMUTATION_ALPHA} over {accuracy['permutation_orders']} rating orders"
        )
    return True, ""


class PersonalValenceModel:
    """One participant's valence model from calibration episodes.

    Parameters
    ----------
    features : sequence of str, optional
        Feature columns; default every model-usable column of the calibration windows.
    alpha : float
        Ridge penalty on standardised features (strong: a handful of episodes).
    """

    def __init__(self, features: Sequence[str] | None = None, alpha: float = 10.0) -> None:
        self.features = list(features) if features is not None else None
        self.alpha = float(alpha)

    def fit(
        self,
        frame: pd.DataFrame,
        blocks: Sequence[CalibrationBlock],
        window: float,
        *,
        protocol_check: bool = True,
    ) -> PersonalValenceModel:
        """Fit on the windows inside rated episodes and score it leave one episode out.

        Parameters
        ----------
        frame : pandas.DataFrame
            One participant's feature table (``t_end`` plus features).
        blocks : sequence of CalibrationBlock
            The calibration episodes with their ratings.
        window : float
            Window length in seconds, to know which windows lie inside an episode.
        protocol_check : bool
            Refuse calibrations that cannot tell valence from stress
            (:func:`check_calibration_blocks`). Only evaluations of protocols that do not
            meet the rules (e.g. WESAD, one unpleasant condition) turn it off, to measure
            what such a calibration would do; such a model is never stored.

        Returns
        -------
        self
            With ``accuracy_`` (:func:`measure_leave_one_episode_out` plus the
            :func:`permutation_test` fields and ``reason``), ``calibrated_``
            (:func:`calibration_verdict`) and the final model fitted on every episode.

        Raises
        ------
        ModelError
            Too few episodes, or none unpleasant and calm (:func:`check_calibration_blocks`).
        """
        if "subject" in frame.columns and frame["subject"].nunique() > 1:
            raise ModelError("A personal valence model is fitted on one participant's windows.")
        features = self.features or feature_columns(frame)
        block_id = block_windows(frame, blocks, window)
        used = sorted({int(k) for k in block_id if k >= 0})
        if protocol_check:
            check_calibration_blocks([blocks[k] for k in used])
        elif len(used) < 3:
            raise ModelError(f"Leave-one-episode-out needs at least 3 episodes, got {len(used)}.")
        matrix = frame[features].to_numpy(dtype=np.float64)
        keep = np.isfinite(matrix).any(axis=0)  # a feature missing in every window says nothing
        self.features_ = [f for f, k in zip(features, keep, strict=True) if k]
        sel = block_id >= 0
        x, groups = matrix[sel][:, keep], block_id[sel]
        ratings = np.array([blocks[int(g)].rating for g in groups])
        self.window_ = float(window)
        self.blocks_ = [blocks[k] for k in used]
        self.accuracy_ = measure_leave_one_episode_out(x, ratings, groups, blocks, self.alpha)
        self.accuracy_.update(
            permutation_test(
                x,
                groups,
                [blocks[k].rating for k in used],
                self.alpha,
                strata=[arousal_stratum(blocks[k]) for k in used],
            )
        )
        self.calibrated_, self.accuracy_["reason"] = calibration_verdict(self.accuracy_)
        self.linear_ = StandardisedRidge.fit(x, ratings, self.alpha)
        return self

    def predict_rating(self, frame: pd.DataFrame) -> FloatArray:
        """Predicted SAM valence (1-9) of every window.

        Parameters
        ----------
        frame : pandas.DataFrame
            The same participant's windows (missing feature columns count as missing values).

        Returns
        -------
        numpy.ndarray
        """
        columns = {
            f: frame[f].to_numpy(np.float64) if f in frame else np.full(len(frame), np.nan)
            for f in self.features_
        }
        matrix = np.column_stack([columns[f] for f in self.features_])
        return self.linear_.predict(matrix)

    def probability_high(self, rating: float) -> float:
        """p(valence above the midpoint) for a predicted rating, from the held-out error.

        The held-out window residuals are treated as normal with the measured RMSE, so a
        model that misses by several points never claims certainty.

        Parameters
        ----------
        rating : float

        Returns
        -------
        float
        """
        sigma = max(float(self.accuracy_["window_rmse"]), 0.5)
        return 0.5 * (1.0 + math.erf((rating - SCALE_MID) / (sigma * math.sqrt(2.0))))

    def confidence_text(self) -> str:
        """The measured accuracy in words, shown next to every estimate."""
        acc = self.accuracy_
        low, high = acc["mae_ci95"]
        head = "personal model" if self.calibrated_ else "personal model NOT used"
        text = (
            f"{head}: leave-one-episode-out error {acc['mae']:.2f} SAM points "
            f"(95% CI {low:.2f}-{high:.2f}) vs {acc['mae_own_mean']:.2f} for the person's own "
            f"mean rating, over {acc['n_episodes']} calibration episodes"
        )
        if "permutation_p" in acc:
            text += f", permutation p = {acc['permutation_p']:.3f}"
        reason = acc.get("reason", "")
        return f"{text} ({reason})" if reason and not self.calibrated_ else text

    def predict(self, frame: pd.DataFrame) -> list[ValenceEstimate]:
        """Estimate valence for every window (unsmoothed; see :class:`ValenceSmoother`).

        Parameters
        ----------
        frame : pandas.DataFrame
            The same participant's windows.

        Returns
        -------
        list of ValenceEstimate
            ``calibrated`` is True only if the model beat the person's own mean rating.
        """
        text = self.confidence_text()
        basis = f"personal model on {len(self.features_)} features"
        return [
            ValenceEstimate(
                self.probability_high(float(r)),
                self.calibrated_,
                text,
                basis,
                rating=float(r),
                accuracy=self.accuracy_,
            )
            for r in self.predict_rating(frame)
        ]

    def to_dict(self) -> dict[str, Any]:
        """Everything needed to apply and explain the model, JSON-ready (no pickle).

        Returns
        -------
        dict
        """
        lin = self.linear_
        return {
            "format_version": FORMAT_VERSION,
            "kind": "personal-valence",
            "alpha": self.alpha,
            "window": self.window_,
            "features": self.features_,
            "calibrated": self.calibrated_,
            "accuracy": self.accuracy_,
            "blocks": [
                {
                    "t_start": b.t_start,
                    "t_end": b.t_end,
                    "rating": b.rating,
                    "arousal": b.arousal,
                    "label": b.label,
                    "session": b.session,
                }
                for b in self.blocks_
            ],
            "linear": {
                "fill": lin.fill.tolist(),
                "mean": lin.mean.tolist(),
                "scale": lin.scale.tolist(),
                "coef": lin.coef.tolist(),
                "intercept": lin.intercept,
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PersonalValenceModel:
        """Rebuild a model written by :meth:`to_dict`.

        Parameters
        ----------
        data : mapping

        Returns
        -------
        PersonalValenceModel

        Raises
        ------
        ModelError
            Unknown format or inconsistent arrays.
        """
        if data.get("kind") != "personal-valence" or data.get("format_version") != FORMAT_VERSION:
            raise ModelError(
                f"Not a personal valence model of format {FORMAT_VERSION} (kind "
                f"{data.get('kind')!r}, format {data.get('format_version')!r}); re-calibrate."
            )
        try:
            model = cls(list(data["features"]), float(data["alpha"]))
            lin = data["linear"]
            arrays = [np.asarray(lin[k], dtype=np.float64) for k in ("fill", "mean", "scale")]
            coef = np.asarray(lin["coef"], dtype=np.float64)
            if any(a.shape != (len(model.features or []),) for a in (*arrays, coef)):
                raise ValueError("array lengths differ from the feature list")
            model.features_ = list(model.features or [])
            model.linear_ = StandardisedRidge(
                arrays[0], arrays[1], arrays[2], coef, float(lin["intercept"])
            )
            model.window_ = float(data["window"])
            model.accuracy_ = dict(data["accuracy"])
            # A model stored under older, weaker rules is not trusted as calibrated.
            verdict, reason = calibration_verdict(model.accuracy_)
            model.calibrated_ = bool(data["calibrated"]) and verdict
            model.accuracy_.setdefault("reason", reason)
            model.blocks_ = [CalibrationBlock(**b) for b in data["blocks"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"Damaged personal valence model: {exc}; re-calibrate.") from None
        return model


def fit_personal_valence(
    frame: pd.DataFrame, blocks: Sequence[CalibrationBlock], window: float
) -> PersonalValenceModel:
    """Fit and score one participant's valence model (see :class:`PersonalValenceModel`).

    Parameters
    ----------
    frame : pandas.DataFrame
        The participant's feature windows.
    blocks : sequence of CalibrationBlock
        Calibration episodes with their self-reports.
    window : float
        Window length (s).

    Returns
    -------
    PersonalValenceModel
    """
    return PersonalValenceModel().fit(frame, blocks, window)
