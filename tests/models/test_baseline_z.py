"""``baseline_z``: a z-score against the participant's own rest, batch and live alike."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from affectstream.models.bundle import load_bundle, save_bundle
from affectstream.models.estimators import AffectClassifier
from affectstream.models.normalize import REFERENCE_SCALE_FLOOR, ParticipantNormalizer
from affectstream.models.synthetic import synthetic_feature_frame
from affectstream.runtime import LiveEstimator
from affectstream.signal.columns import feature_columns


def test_z_against_own_reference_and_gain_invariant() -> None:
    frame = synthetic_feature_frame(3, 60, seed=41)
    features = feature_columns(frame)
    norm = ParticipantNormalizer(features, method="baseline_z", clip=1e9).fit(frame)
    z = norm.transform(frame)
    one = frame["subject"] == frame["subject"].iloc[0]
    x = frame.loc[one, features].to_numpy(dtype=np.float64)
    ref = frame.loc[one, "reference"].to_numpy(dtype=bool)
    spread = np.maximum(np.nanstd(x[ref], axis=0, ddof=1), REFERENCE_SCALE_FLOOR * norm.scale_)
    expected = (x - np.nanmean(x[ref], axis=0)) / spread
    np.testing.assert_allclose(z[one.to_numpy()], expected, rtol=1e-10)
    # A device with 50 times the amplitude gives the same z (unless the floor binds).
    louder = frame.copy()
    louder[features] = louder[features] * 50.0
    z_loud = norm.transform(louder)
    floor_binds = np.nanstd(x[ref], axis=0, ddof=1) * 50.0 < REFERENCE_SCALE_FLOOR * norm.scale_
    cols = ~floor_binds
    np.testing.assert_allclose(z_loud[one.to_numpy()][:, cols], expected[:, cols], rtol=1e-8)


def test_baseline_z_bundle_live_equals_batch(tmp_path: Path) -> None:
    frame = synthetic_feature_frame(5, 80, seed=42)
    lgb_model = AffectClassifier("lightgbm", normalization="baseline_z").fit(frame)
    svm_model = AffectClassifier("svm", normalization="baseline_z").fit(frame)
    path = save_bundle(
        tmp_path / "bz",
        name="bz",
        lightgbm=lgb_model,
        svm=svm_model,
        window={"window": 60.0, "step": 5.0},
        baseline_seconds=60.0 + 5.0 * 19,
        provenance={"dataset": "synthetic"},
        evaluation={},
        card="# card\n",
    )
    bundle = load_bundle(path)
    assert bundle.meta["normalization"]["method"] == "baseline_z"
    new = synthetic_feature_frame(1, 50, seed=43)
    ref = new["reference"].to_numpy()
    live = LiveEstimator([bundle], baseline_end=float(new.loc[ref, "t_end"].max()))
    records = [live.estimate(new.iloc[[i]])[0] for i in range(len(new))]
    got = np.array([r["arousal"] for r, in_ref in zip(records, ref, strict=True) if not in_ref])
    np.testing.assert_allclose(got, lgb_model.predict_proba(new)[~ref, 1], rtol=1e-10)
    assert isinstance(bundle.predict_frame(new), pd.DataFrame)
