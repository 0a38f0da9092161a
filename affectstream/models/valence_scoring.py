"""How a personal valence model is scored: leave one episode out, and a permutation test.

:func:`measure_leave_one_episode_out` predicts every episode with a ridge model
(:class:`StandardisedRidge`) that never saw any of its windows and compares the error with the
person's own mean rating. The interval over episodes alone let shuffled ratings pass as
calibrated too often (8.8 % of 600 shuffled fits on the synthetic data, docs/models.md):
with a handful of episodes a bootstrap interval is narrow by luck, and ratings shuffled
across episodes can still line up with something the body shows (arousal).

:func:`permutation_test` asks the question directly: over every distinct way of handing the
person's valence ratings to their episodes *within the same arousal stratum* (or 1,999
random ones when there are more than ``EXACT_ORDERS``), how often does the same
leave-one-episode-out procedure gain at least as much over the own mean as the real ratings
did? Keeping arousal fixed is the point: ratings that only follow arousal have no other
order to beat, so what a stress detector finds cannot pass as valence. The ridge prediction
is linear in the ratings, so each fold's prediction operator is computed once and every
order costs a matrix product.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.linear_model import Ridge

from affectstream.models.valence_blocks import (
    SCALE_MAX,
    SCALE_MID,
    SCALE_MIN,
    CalibrationBlock,
)
from affectstream.types import FloatArray

logger = logging.getLogger(__name__)

#: Bootstrap resamples (over episodes) behind the accuracy interval.
BOOTSTRAP = 2000
#: Significance level of the within-person permutation test. 0.1, not 0.05: eight binary
#: ratings in a 2 x 2 valence-arousal design have 36 within-arousal orders, and the real order
#: always ties with its mirror, so 2/36 = 0.056 is the smallest p they can reach.
PERMUTATION_ALPHA = 0.1
#: Most distinct rating orders enumerated exactly; with more, RANDOM_ORDERS are drawn.
EXACT_ORDERS = 5040
RANDOM_ORDERS = 1999


def bootstrap_mean_interval(
    values: FloatArray, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean over episodes.

    Parameters
    ----------
    values : ndarray
        One value per episode.
    seed : int
        Random seed.
    level : float
        Coverage.

    Returns
    -------
    (float, float)
    """
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, values.size, (BOOTSTRAP, values.size))
    means = values[draws].mean(axis=1)
    tail = (1.0 - level) / 2.0
    return float(np.quantile(means, tail)), float(np.quantile(means, 1.0 - tail))


def _standardise(matrix: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Imputation values, mean and scale of the training windows."""
    with np.errstate(all="ignore"):
        fill = np.nanmean(matrix, axis=0) if len(matrix) else np.zeros(matrix.shape[1])
    fill = np.where(np.isfinite(fill), fill, 0.0)
    filled = np.where(np.isfinite(matrix), matrix, fill)
    mean = filled.mean(axis=0)
    scale = filled.std(axis=0)
    return fill, mean, np.where(scale > 1e-12, scale, 1.0)


@dataclass
class StandardisedRidge:
    """Impute, standardise, ridge: kept as plain arrays so a stored model needs no pickle.

    Parameters
    ----------
    fill, mean, scale : ndarray
        Per-feature imputation value, centre and scale (from the training windows).
    coef : ndarray
        Ridge coefficients on the standardised features.
    intercept : float
    """

    fill: FloatArray
    mean: FloatArray
    scale: FloatArray
    coef: FloatArray
    intercept: float

    @classmethod
    def fit(cls, matrix: FloatArray, y: FloatArray, alpha: float) -> StandardisedRidge:
        """Fit on windows ``matrix`` (NaN = missing) and ratings ``y``."""
        fill, mean, scale = _standardise(matrix)
        filled = np.where(np.isfinite(matrix), matrix, fill)
        model = Ridge(alpha=alpha).fit((filled - mean) / scale, y)
        return cls(fill, mean, scale, np.asarray(model.coef_, float), float(model.intercept_))

    def predict(self, matrix: FloatArray) -> FloatArray:
        """Ratings of windows ``matrix``, clipped to the SAM scale."""
        filled = np.where(np.isfinite(matrix), matrix, self.fill)
        raw = ((filled - self.mean) / self.scale) @ self.coef + self.intercept
        return np.clip(raw, SCALE_MIN, SCALE_MAX)


def measure_leave_one_episode_out(
    x: FloatArray,
    ratings: FloatArray,
    groups: np.ndarray[Any, Any],
    blocks: Sequence[CalibrationBlock],
    alpha: float,
) -> dict[str, Any]:
    """Leave one episode out: held-out error against the person's own mean rating.

    Parameters
    ----------
    x : ndarray, shape (n_windows, n_features)
        Windows inside rated episodes.
    ratings : ndarray
        Each window's episode rating.
    groups : ndarray of int
        Each window's episode (index into ``blocks``).
    blocks : sequence of CalibrationBlock
    alpha : float
        Ridge penalty.

    Returns
    -------
    dict
        ``mae`` with its bootstrap interval over episodes, ``mae_own_mean``, the paired
        difference's interval ``mae_margin_ci95``, ``side_accuracy``, ``window_rmse`` and
        the held-out prediction of every episode.
    """
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
        predicted = StandardisedRidge.fit(x[~test], ratings[~test], alpha).predict(x[test])
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
    low, high = bootstrap_mean_interval(m)
    d_low, d_high = bootstrap_mean_interval(m - o)
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


def _distinct_orders(ratings: FloatArray) -> list[tuple[float, ...]]:
    """Every distinct assignment of the ratings (a multiset) to the episodes."""
    counts = Counter(ratings.tolist())
    values = sorted(counts)
    out: list[tuple[float, ...]] = []
    current: list[float] = []

    def extend() -> None:
        if len(current) == ratings.size:
            out.append(tuple(current))
            return
        for v in values:
            if counts[v]:
                counts[v] -= 1
                current.append(v)
                extend()
                current.pop()
                counts[v] += 1

    extend()
    return out


def n_distinct_orders(ratings: Sequence[float]) -> int:
    """How many distinct ways the ratings can be handed to the episodes.

    Parameters
    ----------
    ratings : sequence of float
        One rating per episode.

    Returns
    -------
    int
    """
    total = math.factorial(len(ratings))
    for count in Counter(ratings).values():
        total //= math.factorial(count)
    return total


def _fold_operators(
    x: FloatArray, groups: np.ndarray[Any, Any], episodes: FloatArray, alpha: float
) -> list[tuple[np.ndarray[Any, Any], FloatArray]]:
    """Per held-out episode: its training windows and the map from their (centred) ratings
    to the held-out windows' predictions (the ridge solution is linear in the ratings)."""
    operators = []
    for g in episodes:
        train = groups != g
        fill, mean, scale = _standardise(x[train])
        xs = (np.where(np.isfinite(x[train]), x[train], fill) - mean) / scale
        xt = (np.where(np.isfinite(x[~train]), x[~train], fill) - mean) / scale
        xs = xs - xs.mean(axis=0)  # what Ridge(fit_intercept=True) centres (≈ 0 already)
        gram = xs.T @ xs + alpha * np.eye(xs.shape[1])
        operators.append((train, xt @ np.linalg.solve(gram, xs.T)))
    return operators


def arousal_stratum(block: CalibrationBlock) -> str:
    """The arousal side an episode's valence rating is permuted within.

    Parameters
    ----------
    block : CalibrationBlock

    Returns
    -------
    str
        ``"aroused"`` (arousal above the midpoint), ``"calm"`` or ``"unrated"``.
    """
    if block.arousal is None:
        return "unrated"
    return "aroused" if block.arousal > SCALE_MID else "calm"


def _orders(
    real: FloatArray, strata: np.ndarray[Any, Any], seed: int
) -> tuple[FloatArray, bool, int]:
    """Rating orders that keep every rating within its arousal stratum, the real one first.

    Returns the orders (distinct, every one, when there are at most ``EXACT_ORDERS``; else
    ``RANDOM_ORDERS`` random ones), whether they are exhaustive, and how many distinct exist.
    """
    labels = sorted(set(strata.tolist()))
    members = [np.flatnonzero(strata == label) for label in labels]
    n_orders = math.prod(n_distinct_orders(real[m].tolist()) for m in members)
    if n_orders <= EXACT_ORDERS:
        per_stratum = [_distinct_orders(real[m]) for m in members]
        rows = []
        for combo in itertools.product(*per_stratum):
            row = np.empty_like(real)
            for m, values in zip(members, combo, strict=True):
                row[m] = values
            rows.append(row)
        return np.vstack([real, *rows]), True, n_orders
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(RANDOM_ORDERS):
        row = real.copy()
        for m in members:
            row[m] = rng.permutation(real[m])
        rows.append(row)
    return np.vstack([real, *rows]), False, n_orders


def permutation_test(
    x: FloatArray,
    groups: np.ndarray[Any, Any],
    episode_ratings: Sequence[float],
    alpha: float,
    *,
    strata: Sequence[str] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Is the leave-one-episode-out gain over the own mean more than rating order by chance?

    Valence ratings are permuted only among episodes of the same arousal stratum
    (:func:`arousal_stratum`): the null keeps what arousal explains, so ratings that merely
    follow arousal (what a stress detector would find) have nothing to beat and cannot pass.

    Parameters
    ----------
    x : ndarray, shape (n_windows, n_features)
        Windows inside rated episodes.
    groups : ndarray of int
        Each window's episode; ``episode_ratings[k]`` is the rating of the k-th distinct
        value of ``groups`` in sorted order.
    episode_ratings : sequence of float
        The real ratings.
    alpha : float
        Ridge penalty.
    strata : sequence of str, optional
        Each episode's stratum (same order as ``episode_ratings``); default one stratum.
    seed : int
        Seed of the random orders (only when there are more than ``EXACT_ORDERS``).

    Returns
    -------
    dict
        ``permutation_p`` (share of orders, the real one included, whose gain is at least
        the real one's), ``permutation_orders``, ``permutation_exact`` (all distinct orders
        were scored), ``permutation_min_p`` (the smallest p these ratings allow: twice
        1/orders when the ratings are symmetric about their mean within every stratum,
        whose mirror order always ties) and ``permutation_gain`` (own-mean error minus the
        model's).
    """
    episodes = np.unique(groups)
    real = np.asarray(episode_ratings, dtype=np.float64)
    labels = np.asarray(strata if strata is not None else ["all"] * real.size)
    orders, exact, _ = _orders(real, labels, seed)
    position = np.searchsorted(episodes, groups)
    window_ratings = orders[:, position].T  # (n_windows, n_orders + 1)
    own_mean = real.mean()  # the same for every order: same ratings
    own_error = np.abs(real - own_mean).mean()
    errors = np.zeros(len(orders))
    for k, (train, operator) in enumerate(_fold_operators(x, groups, episodes, alpha)):
        y = window_ratings[train]
        centre = y.mean(axis=0)
        predicted = np.clip(operator @ (y - centre) + centre, SCALE_MIN, SCALE_MAX)
        errors += np.abs(predicted.mean(axis=0) - orders[:, k])
    gains = own_error - errors / len(episodes)
    others = gains[1:]
    # The real order is one of the distinct orders (exact) or added to the random ones.
    at_least = int(np.sum(others >= gains[0] - 1e-9))
    p = at_least / len(others) if exact else (1 + at_least) / (1 + len(others))
    # Ratings symmetric about their mean within every stratum (e.g. 7s and 3s) have a mirror
    # order (every rating reflected) that a linear model fits as well, sign flipped: a tie.
    mirror = all(
        np.allclose(np.sort(real[labels == s]), np.sort(2.0 * own_mean - real[labels == s]))
        for s in set(labels.tolist())
    )
    ties = 2.0 if mirror and len(others) > 1 else 1.0
    return {
        "permutation_p": float(p),
        "permutation_orders": len(others),
        "permutation_exact": bool(exact),
        "permutation_min_p": ties / len(others) if exact else ties / (1 + len(others)),
        "permutation_gain": float(gains[0]),
    }
