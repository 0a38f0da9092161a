"""Input coverage: is a window's normalised input inside what the model was trained on?

A tree model answers every input, however foreign: far outside the training range every
split falls the same way and the output is a constant (the ``eeg-workload`` bundle gave
0.004-0.015 for every window of a real Muse recording). Rather than emit that constant as an
estimate, a bundle records the range of each normalised feature over its training windows
(:func:`input_range`, stored as ``input_range`` in ``bundle.json``) and every estimate reports
the share of its present features inside that range (:func:`in_range_share`). Below
:data:`MIN_IN_RANGE` the estimate is out of distribution: flagged, confidence 0.

The normaliser clips z at ``±clip``. A clipped value counts as out of range only where the
training range does not reach it: ``stress-wrist`` (``baseline_z``) has 31 % of its scored
training windows at the +10 clip in tonic EDA (41 % of the stress windows), so a clipped value
is an input it was trained on (counting every clipped value as foreign flagged 14 % of its own
training windows; docs/models.md, "Input coverage"). Bundles written before this check have no
``input_range``; for them only features at the clip (``|z| >= clip``) count as out of range.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from affectstream.types import FloatArray

#: Training quantiles that bound a feature's range (the extreme 0.5 % each side are noise).
RANGE_QUANTILES = (0.005, 0.995)
#: Tolerance beyond the range, as a share of its width (new people differ a little).
RANGE_MARGIN = 0.25
#: Below this share of present features inside the range, the window is out of distribution.
MIN_IN_RANGE = 0.75


def input_range(z: FloatArray, quantiles: tuple[float, float] = RANGE_QUANTILES) -> dict[str, Any]:
    """Per-feature range of normalised training inputs.

    Parameters
    ----------
    z : ndarray, shape (n_windows, n_features)
        Normalised training features (NaN = missing).
    quantiles : (float, float)
        Lower and upper quantile.

    Returns
    -------
    dict
        ``low`` and ``high`` (lists, NaN where a feature was never present), ``quantiles``,
        ``margin`` and ``min_in_range``.
    """
    z = np.atleast_2d(np.asarray(z, dtype=np.float64))
    low = np.full(z.shape[1], np.nan)
    high = np.full(z.shape[1], np.nan)
    for j in range(z.shape[1]):
        col = z[:, j][np.isfinite(z[:, j])]
        if col.size:
            low[j], high[j] = np.quantile(col, quantiles)
    return {
        "low": low.tolist(),
        "high": high.tolist(),
        "quantiles": list(quantiles),
        "margin": RANGE_MARGIN,
        "min_in_range": MIN_IN_RANGE,
    }


def in_range_share(
    z: FloatArray, ranges: dict[str, Any] | None = None, *, clip: float | None = None
) -> FloatArray:
    """Share of each row's present features inside the training range.

    Parameters
    ----------
    z : ndarray, shape (n, n_features)
        Normalised features.
    ranges : dict, optional
        From :func:`input_range`; without it only ``clip`` is checked.
    clip : float, optional
        The normaliser's clip: values at or beyond it count as out of range for features
        without a stored range (with a range, the range decides: it includes the clip when
        the training windows reached it).

    Returns
    -------
    ndarray, shape (n,)
        In [0, 1]; 0 for a row with no feature present (nothing to judge it by).
    """
    z = np.atleast_2d(np.asarray(z, dtype=np.float64))
    present = np.isfinite(z)
    inside = present.copy()
    known = np.zeros(z.shape[1], dtype=bool)
    if ranges is not None:
        low = np.asarray(ranges["low"], dtype=np.float64)
        high = np.asarray(ranges["high"], dtype=np.float64)
        pad = float(ranges.get("margin", RANGE_MARGIN)) * (high - low)
        known = np.isfinite(low) & np.isfinite(high)
        with np.errstate(invalid="ignore"):
            ok = (z >= low - pad) & (z <= high + pad)
        inside &= np.where(known, ok, True)
    if clip is not None:
        with np.errstate(invalid="ignore"):
            inside &= known | (np.abs(z) < clip)
    n = present.sum(axis=1)
    return np.where(n > 0, inside.sum(axis=1) / np.maximum(n, 1), 0.0)


def in_distribution(share: FloatArray | float, ranges: dict[str, Any] | None = None) -> Any:
    """Whether each row's in-range share reaches the bundle's minimum.

    Parameters
    ----------
    share : ndarray
        From :func:`in_range_share`.
    ranges : dict, optional
        The bundle's ``input_range`` (its ``min_in_range``); default :data:`MIN_IN_RANGE`.

    Returns
    -------
    ndarray of bool
    """
    minimum = float((ranges or {}).get("min_in_range", MIN_IN_RANGE))
    return np.asarray(share, dtype=np.float64) >= minimum
