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
