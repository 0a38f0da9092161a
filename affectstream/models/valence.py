"""Valence: a per-participant calibration protocol, and an explicitly uncalibrated estimate.

No redistributable real valence data exists for a population model, and across people a
physiological "valence" classifier turns out to be a stress detector in disguise (on real
wrist data, low-valence windows were almost all the stress condition). So valence comes from
a personal model fitted on calibration *episodes* of the same person:

1. the participant goes through stimulus blocks (protocol phases with ``calibration = true``,
   :mod:`affectstream.runtime.protocol`), each followed by a SAM self-report (valence and
   arousal, 1-9);
2. :class:`PersonalValenceModel` needs at least two episodes on each side of the valence
   midpoint, at least one of the unpleasant ones *not* stressful (arousal rated at most the
   midpoint), so that it cannot learn stress and call it valence;
3. it regresses the rating on the window features (ridge regression, features standardised
   within each training fold) and scores itself **leave one episode out**: every held-out
   episode is predicted by a model that never saw any of its windows, against the person's
   own mean rating (over all its episodes: the stricter bar; the leave-one-out mean is
   biased against itself). Only a model whose held-out error is below the own mean's with
   the whole 95% bootstrap interval of the paired difference below zero is ``calibrated``;
   the error, with its interval over episodes, travels with every estimate it makes.

Before calibration, :func:`uncalibrated_valence` gives an estimate marked ``calibrated=False``
with its confidence spelled out: from frontal alpha asymmetry when EEG is present (a weak,
population-level direction), otherwise the uninformative 0.5. :class:`ValenceSmoother` keeps
either kind from jumping between windows.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import Ridge

from affectstream.errors import ConfigError, ModelError
from affectstream.signal.columns import feature_columns
from affectstream.types import FloatArray

logger = logging.getLogger(__name__)

SCALE_MIN, SCALE_MAX, SCALE_MID = 1.0, 9.0, 5.0
#: Episodes needed on each side of the midpoint before a personal model is fitted.
MIN_EPISODES_PER_SIDE = 2
#: Bootstrap resamples (over episodes) behind the accuracy interval.
BOOTSTRAP = 2000
#: Format version of the stored personal model (:meth:`PersonalValenceModel.to_dict`).
FORMAT_VERSION = 1


def _check_rating(name: str, value: float | None) -> None:
    if value is not None and not SCALE_MIN <= value <= SCALE_MAX:
        raise ConfigError(
            f"{name.capitalize()} rating {value!r} is outside the 1-9 scale; record the "
            f"self-report on the 9-point SAM scale."
        )


@dataclass(frozen=True)
class CalibrationBlock:
    """One stimulus block (episode) of the calibration protocol and the self-report after it.

    Parameters
    ----------
    t_start, t_end : float
        Block span, seconds since the epoch.
    rating : float
        Self-reported valence on the 1-9 scale (SAM).
    arousal : float, optional
        Self-reported arousal on the 1-9 scale; tells stressful unpleasant episodes
        (arousal above the midpoint) from calm unpleasant ones.
    label : str
        The block's name (its protocol phase).
    session : str
        The session it belongs to; when given, only that session's windows (the feature
        table's ``session`` column) count, so sessions recorded at once do not mix.
    """

    t_start: float
    t_end: float
    rating: float
    arousal: float | None = None
    label: str = ""
    session: str = ""

    def __post_init__(self) -> None:
        _check_rating("valence", self.rating)
        _check_rating("arousal", self.arousal)
        if not self.t_end > self.t_start:
            raise ConfigError(
                f"Calibration block ends ({self.t_end}) before it starts ({self.t_start})."
            )

    @property
    def side(self) -> str:
        """``"high"``, ``"low"`` or ``"mid"`` (a rating exactly at the midpoint)."""
        if self.rating > SCALE_MID:
            return "high"
        return "low" if self.rating < SCALE_MID else "mid"

    @property
    def stressful(self) -> bool:
        """Unpleasant and rated aroused: the episodes a stress detector would also find."""
        return self.side == "low" and self.arousal is not None and self.arousal > SCALE_MID


@dataclass(frozen=True)
class ValenceEstimate:
    """Valence for one window.

    Parameters
    ----------
    probability : float
        Probability that valence is high (above the scale midpoint).
    calibrated : bool
        True only when a personal model that beat the person's own mean rating (the whole
        95% interval of the difference below zero) made it.
    confidence : str
        What is known about how good this estimate is, in words and numbers.
    basis : str
        Which signals the estimate rests on.
    rating : float, optional
        The personal model's predicted SAM rating (1-9); None when uncalibrated.
    accuracy : mapping, optional
        The personal model's measured accuracy (:attr:`PersonalValenceModel.accuracy_`).
    """

    probability: float
    calibrated: bool
    confidence: str
    basis: str
    rating: float | None = None
    accuracy: Mapping[str, Any] | None = None


def check_calibration_blocks(blocks: Sequence[CalibrationBlock]) -> None:
    """Refuse a calibration that cannot tell valence from stress.

    Parameters
    ----------
    blocks : sequence of CalibrationBlock
        The episodes that have windows inside them.

    Raises
    ------
    ModelError
        Fewer than two episodes on a side, or every unpleasant episode was stressful.
    """
    high = [b for b in blocks if b.side == "high"]
    low = [b for b in blocks if b.side == "low"]
    calm_low = [b for b in low if b.arousal is not None and b.arousal <= SCALE_MID]
    if len(high) < MIN_EPISODES_PER_SIDE or len(low) < MIN_EPISODES_PER_SIDE:
        raise ModelError(
            f"Calibration needs at least {MIN_EPISODES_PER_SIDE} rated episodes on each side of "
            f"the valence midpoint ({SCALE_MID:g}); got {len(low)} low and {len(high)} high "
            f"with windows inside them. Add calibration blocks (pleasant and unpleasant "
            f"stimuli) or lengthen them beyond one feature window."
        )
    if not calm_low:
        raise ModelError(
            f"No unpleasant calibration episode was rated calm (arousal <= {SCALE_MID:g}): a "
            f"model fitted on stressful ones would learn stress, not valence. Add at least one "
            f"unpleasant, calm block (e.g. sad pictures or music) with a valence and arousal "
            f"self-report."
        )


def block_windows(
    frame: pd.DataFrame, blocks: Sequence[CalibrationBlock], window: float
) -> np.ndarray[Any, Any]:
    """Index of the block each window lies wholly inside (-1: none).

    Parameters
    ----------
    frame : pandas.DataFrame
        Feature rows with ``t_end``.
    blocks : sequence of CalibrationBlock
    window : float
        Window length (s).

    Returns
    -------
    numpy.ndarray of int
    """
    t_end = frame["t_end"].to_numpy(dtype=np.float64)
    sessions = frame["session"].astype(str).to_numpy() if "session" in frame else None
    block_id = np.full(t_end.shape, -1)
    for k, block in enumerate(blocks):
        inside = (t_end - window >= block.t_start - 1e-9) & (t_end <= block.t_end + 1e-9)
        if block.session and sessions is not None:
            inside &= sessions == block.session
        block_id[inside & (block_id < 0)] = k
    return block_id


def _bootstrap_mean_interval(
    values: FloatArray, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean over episodes."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, values.size, (BOOTSTRAP, values.size))
    means = values[draws].mean(axis=1)
    tail = (1.0 - level) / 2.0
    return float(np.quantile(means, tail)), float(np.quantile(means, 1.0 - tail))


@dataclass
class _Linear:
    """Impute, standardise, ridge: kept as plain arrays so a stored model needs no pickle."""

    fill: FloatArray
    mean: FloatArray
    scale: FloatArray
    coef: FloatArray
    intercept: float

    @classmethod
    def fit(cls, matrix: FloatArray, y: FloatArray, alpha: float) -> _Linear:
        with np.errstate(all="ignore"):
            fill = np.nanmean(matrix, axis=0) if len(matrix) else np.zeros(matrix.shape[1])
        fill = np.where(np.isfinite(fill), fill, 0.0)
        filled = np.where(np.isfinite(matrix), matrix, fill)
        mean = filled.mean(axis=0)
        scale = filled.std(axis=0)
        scale = np.where(scale > 1e-12, scale, 1.0)
        model = Ridge(alpha=alpha).fit((filled - mean) / scale, y)
        return cls(fill, mean, scale, np.asarray(model.coef_, float), float(model.intercept_))

    def predict(self, matrix: FloatArray) -> FloatArray:
        filled = np.where(np.isfinite(matrix), matrix, self.fill)
        raw = ((filled - self.mean) / self.scale) @ self.coef + self.intercept
        return np.clip(raw, SCALE_MIN, SCALE_MAX)


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
            With ``accuracy_`` (see :meth:`measure`), ``calibrated_`` and the final model
            fitted on every episode.

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
        self.accuracy_ = self._measure(x, ratings, groups, blocks)
        # Calibrated only when the whole 95% interval of the paired difference (model minus
        # own mean, over episodes) is below zero: a lucky point estimate is not enough.
        self.calibrated_ = bool(self.accuracy_["mae_margin_ci95"][1] < 0.0)
        self.linear_ = _Linear.fit(x, ratings, self.alpha)
        return self

    def _measure(
        self,
        x: FloatArray,
        ratings: FloatArray,
        groups: np.ndarray[Any, Any],
        blocks: Sequence[CalibrationBlock],
    ) -> dict[str, Any]:
        """Leave one episode out: held-out error against the person's own mean rating."""
        episodes = np.unique(groups)
        # The bar: the person's own mean over *all* episodes. Its leave-one-out version is
        # biased against itself (leaving a high rating out lowers the mean of the rest), so
        # a model that only shrinks towards the overall mean would beat it on noise.
        overall_mean = float(np.mean([blocks[int(e)].rating for e in episodes]))
        model_err: list[float] = []
        own_err: list[float] = []
        loo_err: list[float] = []
        window_res: list[float] = []
        hits: list[float] = []
        per_episode = []
        for g in episodes:
            test = groups == g
            train_episodes = [e for e in episodes if e != g]
            own_mean = float(np.mean([blocks[int(e)].rating for e in train_episodes]))
            predicted = _Linear.fit(x[~test], ratings[~test], self.alpha).predict(x[test])
            truth = blocks[int(g)].rating
            episode_pred = float(predicted.mean())
            model_err.append(abs(episode_pred - truth))
            own_err.append(abs(overall_mean - truth))
            loo_err.append(abs(own_mean - truth))
            window_res.extend(predicted - truth)
            if truth != SCALE_MID:
                hits.append(float((episode_pred > SCALE_MID) == (truth > SCALE_MID)))
            per_episode.append(
                {
                    "label": blocks[int(g)].label,
                    "rating": truth,
                    "predicted": round(episode_pred, 3),
                    "own_mean_others": round(own_mean, 3),
                    "stressful": blocks[int(g)].stressful,
                }
            )
        m, o = np.asarray(model_err), np.asarray(own_err)
        low, high = _bootstrap_mean_interval(m)
        d_low, d_high = _bootstrap_mean_interval(m - o)
        rmse = float(np.sqrt(np.mean(np.square(window_res))))
        return {
            "method": "leave one episode out",
            "n_episodes": int(episodes.size),
            "n_windows": int(groups.size),
            "mae": float(m.mean()),
            "mae_ci95": [low, high],
            "mae_own_mean": float(o.mean()),
            "own_mean": overall_mean,
            "mae_own_mean_others": float(np.mean(loo_err)),
            "mae_margin_ci95": [d_low, d_high],
            "side_accuracy": float(np.mean(hits)) if hits else math.nan,
            "window_rmse": rmse,
            "episodes": per_episode,
        }

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
        return (
            f"{head}: leave-one-episode-out error {acc['mae']:.2f} SAM points "
            f"(95% CI {low:.2f}-{high:.2f}) vs {acc['mae_own_mean']:.2f} for the person's own "
            f"mean rating, over {acc['n_episodes']} calibration episodes"
        )

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
            model.linear_ = _Linear(arrays[0], arrays[1], arrays[2], coef, float(lin["intercept"]))
            model.window_ = float(data["window"])
            model.calibrated_ = bool(data["calibrated"])
            model.accuracy_ = dict(data["accuracy"])
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


#: Largest distance from 0.5 of an uncalibrated estimate (published cross-subject valence
#: from physiology is near chance, ~0.55-0.63 accuracy).
UNCALIBRATED_LEAN = 0.15
#: Time constant (s) of the smoothing applied to every live valence estimate.
SMOOTHING_SECONDS = 60.0
#: Step assumed for the first window (the usual feature step).
FIRST_STEP_SECONDS = 5.0


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
    # A population direction near chance may lean, never claim: at most UNCALIBRATED_LEAN.
    probability = float(np.clip(probability, 0.5 - UNCALIBRATED_LEAN, 0.5 + UNCALIBRATED_LEAN))
    return ValenceEstimate(
        probability,
        False,
        "uncalibrated: frontal alpha asymmetry direction only; accuracy not measured here "
        "(published cross-subject valence from physiology is near chance, ~0.55-0.63); run "
        "the valence calibration protocol",
        "eeg_faa",
    )


class ValenceSmoother:
    """Exponential smoothing of live valence over time, so it never jumps between windows.

    Valence is a slow state; a personal model is scored on whole episodes, and a population
    direction is near chance. The smoothed probability follows the raw one with time constant
    ``seconds``: a change takes about that long to show, and a single odd window moves the
    estimate by at most ``step / seconds`` of the way.

    Parameters
    ----------
    seconds : float
        Time constant (s).
    """

    def __init__(self, seconds: float = SMOOTHING_SECONDS) -> None:
        if not seconds > 0:
            raise ConfigError(f"Smoothing time constant must be > 0 s, got {seconds!r}.")
        self.seconds = float(seconds)
        self._t: float | None = None
        self._p = 0.5
        self._rating = SCALE_MID

    def update(self, t: float, estimate: ValenceEstimate) -> ValenceEstimate:
        """Fold one window's estimate in and return the smoothed one.

        Parameters
        ----------
        t : float
            Window end (s); non-decreasing.
        estimate : ValenceEstimate
            The raw estimate of this window.

        Returns
        -------
        ValenceEstimate
            Same fields, smoothed ``probability`` (and ``rating``).
        """
        # Both start from "don't know" (0.5, the midpoint) rather than from the first window.
        dt = FIRST_STEP_SECONDS if self._t is None else max(t - self._t, 0.0)
        weight = 1.0 - math.exp(-dt / self.seconds)
        self._t = t
        # In probability (not log-odds) space: a step moves it at most `weight` of the way.
        self._p += weight * (estimate.probability - self._p)
        rating = estimate.rating
        if rating is not None:
            self._rating += weight * (rating - self._rating)
            rating = self._rating
        return ValenceEstimate(
            self._p,
            estimate.calibrated,
            estimate.confidence,
            estimate.basis,
            rating=rating,
            accuracy=estimate.accuracy,
        )
