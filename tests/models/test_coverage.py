"""Input coverage: inputs unlike any training window are flagged, confidence 0."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from affectstream.models.bundle import load_bundle, save_bundle
from affectstream.models.coverage import in_distribution, in_range_share, input_range
from affectstream.models.estimators import AffectClassifier
from affectstream.models.synthetic import synthetic_feature_frame
from affectstream.runtime import LiveEstimator
from affectstream.signal.columns import feature_columns


def test_in_range_share_counts_present_features_inside_the_range() -> None:
    train = np.column_stack([np.linspace(-1, 1, 201), np.linspace(0, 2, 201)])
    ranges = input_range(train)
    z = np.array(
        [
            [0.0, 1.0],  # inside both
            [0.0, 50.0],  # second far outside
            [np.nan, 1.0],  # one present, inside
            [np.nan, np.nan],  # nothing to judge by
            [-40.0, 50.0],  # both outside
        ]
    )
    np.testing.assert_allclose(in_range_share(z, ranges), [1.0, 0.5, 1.0, 0.0, 0.0])
    assert in_distribution(in_range_share(z, ranges), ranges).tolist() == [
        True,
        False,
        True,
        False,
        False,
    ]


def test_without_stored_range_only_the_clip_counts() -> None:
    z = np.array([[9.0, -9.5], [10.0, 0.0], [12.0, -10.0]])
    np.testing.assert_allclose(in_range_share(z, None, clip=10.0), [1.0, 0.5, 0.0])


def _scaled(frame: pd.DataFrame, gain: float) -> pd.DataFrame:
    """Every feature multiplied by ``gain`` (a device whose amplitudes differ by that
    factor, as a Muse's band powers differ from a 10-20 cap's)."""
    out = frame.copy()
    cols = feature_columns(frame)
    out[cols] = out[cols] * gain
    return out


@pytest.fixture(scope="module")
def bundle_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    frame = synthetic_feature_frame(6, 100, seed=31)
    lgb_model = AffectClassifier("lightgbm", normalization="baseline").fit(frame)
    svm_model = AffectClassifier("svm", normalization="baseline").fit(frame)
    return save_bundle(
        tmp_path_factory.mktemp("coverage") / "bundle",
        name="coverage-test",
        lightgbm=lgb_model,
        svm=svm_model,
        window={"window": 60.0, "step": 5.0},
        baseline_seconds=60.0 + 5.0 * 19,  # the frame's 20 reference windows
        provenance={"dataset": "synthetic"},
        evaluation={},
        card="# card\n",
    )


def test_bundle_stores_the_training_range(bundle_path: Path) -> None:
    meta = json.loads((bundle_path / "bundle.json").read_text())
    assert len(meta["input_range"]["low"]) == len(meta["features"])
    low, high = np.array(meta["input_range"]["low"]), np.array(meta["input_range"]["high"])
    assert (low <= high).all()


def test_new_people_like_the_training_ones_are_in_distribution(bundle_path: Path) -> None:
    bundle = load_bundle(bundle_path)
    frame = synthetic_feature_frame(3, 100, seed=32)
    scored = bundle.predict_frame(frame)[~frame["reference"].to_numpy()]
    assert scored["in_distribution"].mean() >= 0.9


def test_foreign_amplitudes_are_flagged_not_estimated(bundle_path: Path) -> None:
    bundle = load_bundle(bundle_path)
    frame = _scaled(synthetic_feature_frame(1, 60, seed=33), 200.0)
    not_ref = ~frame["reference"].to_numpy()
    scored = bundle.predict_frame(frame)[not_ref]
    assert scored["in_distribution"].mean() <= 0.1
    # The live path says the same, and its confidence is 0 for every flagged window.
    baseline_end = float(frame.loc[frame["reference"], "t_end"].max())
    live = LiveEstimator([bundle], baseline_end=baseline_end)
    every = [live.estimate(frame.iloc[[i]])[0] for i in range(len(frame))]
    records = [r for r, scored_row in zip(every, not_ref, strict=True) if scored_row]
    flagged = [r for r in records if not r["arousal_in_distribution"]]
    assert len(flagged) >= 0.9 * len(records)
    assert all(r["arousal_confidence"] == 0.0 for r in flagged)
    assert [r["arousal_in_distribution"] for r in records] == scored["in_distribution"].tolist()


def test_a_clipped_value_is_in_range_where_training_reached_the_clip() -> None:
    # Feature 0 was trained up to the clip (as stress-wrist's tonic EDA: 31 % of its scored
    # windows sit at +10); feature 1 never came near it.
    train = np.column_stack(
        [np.r_[np.linspace(-2, 9, 90), np.full(10, 10.0)], np.linspace(-2, 2, 100)]
    )
    ranges = input_range(train)
    assert ranges["high"][0] == 10.0
    z = np.array([[10.0, 0.0], [0.0, 10.0], [-10.0, 0.0]])
    # With a range, the range decides: the clip counts out only where training never got.
    np.testing.assert_allclose(in_range_share(z, ranges, clip=10.0), [1.0, 0.5, 0.5])
    # A feature without a stored range keeps the clip rule.
    ranges["low"][0] = ranges["high"][0] = float("nan")
    np.testing.assert_allclose(in_range_share(z, ranges, clip=10.0), [0.5, 0.5, 0.5])


def _stress_wrist_rows(values: list[list[float]], start: float) -> pd.DataFrame:
    frame = pd.DataFrame(
        values, columns=["eda_phasic_std", "eda_scr_rate", "eda_tonic_mean", "hr_mean"]
    )
    frame.insert(0, "t_end", start + 5.0 * np.arange(len(frame)))
    return frame


def test_shipped_stress_wrist_estimates_a_large_rise_and_flags_a_detached_sensor() -> None:
    """A rise far above the wearer's rest is what it was trained on (saturated z); skin
    conductance and heart rate collapsing far below the rest is foreign: flagged, confidence 0."""
    bundle = load_bundle("stress-wrist")
    rng = np.random.default_rng(5)
    rest = [0.05, 2.0, 3.0, 70.0]
    spread = [0.01, 1.0, 0.1, 2.0]  # a rest that varies as real ones do
    reference = [
        [m + s * rng.standard_normal() for m, s in zip(rest, spread, strict=True)]
        for _ in range(37)
    ]
    rows = _stress_wrist_rows(
        [*reference, [0.5, 12.0, 9.0, 100.0], [0.0, 0.0, 0.02, 30.0]], start=1000.0
    )
    live = LiveEstimator([bundle], baseline_end=float(rows["t_end"].iloc[36]))
    records = live.estimate(rows)
    risen, detached = records[-2], records[-1]
    assert risen["arousal_in_distribution"] and risen["arousal_confidence"] > 0
    assert risen["arousal_high"]
    assert not detached["arousal_in_distribution"]
    assert detached["arousal_confidence"] == 0.0
