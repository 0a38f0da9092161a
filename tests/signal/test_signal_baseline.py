"""BaselineNormalizer: scikit-learn style fit / partial_fit / transform."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from affectstream.errors import ConfigError
from affectstream.signal import BaselineNormalizer


def _frame(seed: int, n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "t_end": np.arange(n) * 5.0,
            "hrv_rmssd": rng.normal(40, 8, n),
            "eda_tonic_mean": rng.normal(5, 1, n),
            "quality_hrv": rng.uniform(0.5, 1, n),
            "usable_hrv": np.ones(n, dtype=bool),
            "quality_eda": np.ones(n),
            "usable_eda": np.ones(n, dtype=bool),
        }
    )


def test_fit_transform_zscores_against_the_baseline() -> None:
    rest, task = _frame(0), _frame(1)
    norm = BaselineNormalizer().fit(rest)
    out = norm.transform(task)
    expected = (task["hrv_rmssd"] - rest["hrv_rmssd"].mean()) / rest["hrv_rmssd"].std(ddof=0)
    np.testing.assert_allclose(out["hrv_rmssd"], expected)
    # meta columns pass through untouched
    pd.testing.assert_series_equal(out["quality_hrv"], task["quality_hrv"])
    pd.testing.assert_series_equal(out["t_end"], task["t_end"])


def test_partial_fit_in_pieces_equals_fit_on_all() -> None:
    data = _frame(2, 60)
    whole = BaselineNormalizer().fit(data)
    running = BaselineNormalizer()
    for start in range(0, 60, 7):
        running.partial_fit(data.iloc[start : start + 7])
    np.testing.assert_allclose(running.mean_, whole.mean_)
    np.testing.assert_allclose(running.var_, whole.var_)
    assert running.n_samples_seen_.tolist() == [60, 60]


def test_unusable_and_nan_windows_do_not_enter_the_baseline() -> None:
    data = _frame(3)
    data.loc[:9, "usable_hrv"] = False
    data.loc[:9, "hrv_rmssd"] = 1000.0  # garbage in unusable windows
    data.loc[20, "eda_tonic_mean"] = np.nan
    norm = BaselineNormalizer().fit(data)
    assert norm.mean_[0] == pytest.approx(data.loc[10:, "hrv_rmssd"].mean())
    assert norm.n_samples_seen_.tolist() == [30, 39]


@pytest.mark.parametrize("method", ["diff", "ratio"])
def test_other_methods(method: str) -> None:
    rest, task = _frame(4), _frame(5)
    out = BaselineNormalizer(method=method).fit(rest).transform(task)
    mean = rest["eda_tonic_mean"].mean()
    expected = task["eda_tonic_mean"] - mean if method == "diff" else task["eda_tonic_mean"] / mean
    np.testing.assert_allclose(out["eda_tonic_mean"], expected)


def test_too_few_baseline_windows_give_nan() -> None:
    out = BaselineNormalizer(min_samples=5).fit(_frame(6, 3)).transform(_frame(7))
    assert out["hrv_rmssd"].isna().all()


def test_errors_and_sklearn_conventions() -> None:
    with pytest.raises(ConfigError, match="not fitted"):
        BaselineNormalizer().transform(_frame(8))
    with pytest.raises(ConfigError, match="method"):
        BaselineNormalizer(method="minmax").fit(_frame(8))
    norm = BaselineNormalizer(method="diff", min_samples=2)
    assert clone(norm).get_params() == {"method": "diff", "min_samples": 2}
