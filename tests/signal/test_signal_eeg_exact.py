"""The EEG segment statistics computed the fast way equal numpy's plain way bit for bit.

The extractor takes segment extremes from a channel-major copy and medians from a full sort
(faster); these tests compare them with the plain formulas on the sample-major windows and
``np.median``, including NaN, infinities, signed zeros, ties and clipped rails.
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from affectstream.signal.eeg import _median_last, robust_scale, segment_extremes


def _bits(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float64).view(np.int64)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 128, 143])
def test_median_from_a_sort_equals_np_median_bit_for_bit(n: int) -> None:
    rng = np.random.default_rng(n)
    x = rng.standard_normal((50, 4, n)) * 10.0
    x[0, 0, 0] = np.nan
    x[1, 1, :] = np.nan
    x[2, 2, :] = 0.0
    x[3, 3, :] = -0.0
    x[4, 0, :] = np.inf
    x[5, 1, ::2] = -np.inf
    x[6] = np.round(x[6])  # ties
    np.testing.assert_array_equal(_bits(_median_last(x)), _bits(np.median(x, axis=-1)))


def test_robust_scale_equals_the_np_median_formula() -> None:
    rng = np.random.default_rng(1)
    segments = rng.standard_normal((40, 4, 512)) * 20.0
    segments[3, 1, 100] = np.nan
    segments[5, 2] = 7.0  # flat
    sub = segments[..., :: 512 // 128]
    plain = 1.4826 * np.median(np.abs(sub - np.median(sub, axis=-1, keepdims=True)), axis=-1)
    np.testing.assert_array_equal(_bits(robust_scale(segments)), _bits(plain))


@pytest.mark.parametrize(("nperseg", "hop"), [(512, 256), (1000, 500), (7, 4)])
def test_segment_extremes_equal_the_sample_major_formulas(nperseg: int, hop: int) -> None:
    rng = np.random.default_rng(nperseg)
    n_ch, n_seg = 4, 30
    n = (n_seg - 1) * hop + nperseg
    raw = rng.standard_normal((n, n_ch)) * 30.0
    raw[: n // 3, 0] = np.clip(raw[: n // 3, 0], -10.0, 10.0)  # rails
    raw[n // 2 : n // 2 + 5, 1] = np.nan
    raw[n // 4 :, 2] = np.round(raw[n // 4 :, 2])  # repeated extremes
    raw[-nperseg:, 3] = 5.0  # constant segment
    filtered = raw * 0.7 + 1e-3 * rng.standard_normal((n, n_ch))
    data = np.concatenate((filtered, raw), axis=1)
    windows = sliding_window_view(data, nperseg, axis=0)[::hop]
    filt, raw_w = windows[:, :n_ch], windows[:, n_ch:]
    mean = filt.mean(axis=-1, keepdims=True)
    segs = filt - mean
    top, bottom = raw_w.max(axis=-1, keepdims=True), raw_w.min(axis=-1, keepdims=True)
    tolerance = 1e-6 * (top - bottom)
    plain_clipped = np.mean((raw_w >= top - tolerance) | (raw_w <= bottom + tolerance), axis=-1)
    plain_ptp = segs.max(axis=-1) - segs.min(axis=-1)

    ptp, clipped = segment_extremes(data, mean[..., 0], nperseg, hop)

    assert ptp.shape == clipped.shape == (n_seg, n_ch)
    np.testing.assert_array_equal(_bits(ptp), _bits(plain_ptp))
    np.testing.assert_array_equal(_bits(clipped), _bits(plain_clipped))
    assert clipped[0, 0] > 0.1  # the rails were seen
