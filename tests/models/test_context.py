"""Context features: causal, per participant, the same in batch, live and runtime paths."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from affectstream.errors import ModelError
from affectstream.models.bundle import load_bundle, save_bundle
from affectstream.models.estimators import AffectClassifier
from affectstream.models.features import (
    ContextMean,
    add_context_features,
    context_name,
    feature_columns,
)
from affectstream.models.synthetic import synthetic_feature_frame

SPAN = 30.0  # seconds: six 5-s steps, short enough for the small synthetic tables


def _expected_context(frame: pd.DataFrame, feature: str, seconds: float) -> np.ndarray:
    """Reference computation: NaN-aware mean over windows with t_end in (t - seconds, t]."""
    out = np.full(len(frame), np.nan)
    for _, part in frame.groupby("subject"):
        t = part["t_end"].to_numpy()
        v = part[feature].to_numpy()
        for i, idx in enumerate(part.index):
            sel = v[(t > t[i] - seconds) & (t <= t[i])]
            sel = sel[np.isfinite(sel)]
            out[frame.index.get_loc(idx)] = sel.mean() if sel.size else np.nan
    return out


def test_context_columns_are_the_mean_of_the_recent_windows() -> None:
    frame = synthetic_feature_frame(3, 40, seed=31, missing_modality_rate=0.2)
    out = add_context_features(frame, SPAN)
    base = feature_columns(frame)
    assert feature_columns(out) == sorted(base + [context_name(f, SPAN) for f in base])
    for feature in ("eda_tonic_mean", "hrv_mean_hr"):
        np.testing.assert_allclose(
            out[context_name(feature, SPAN)].to_numpy(),
            _expected_context(frame, feature, SPAN),
            rtol=1e-12,
        )


def test_context_is_causal_and_per_participant() -> None:
    frame = synthetic_feature_frame(2, 40, seed=32)
    name = context_name("eda_tonic_mean", SPAN)
    before = add_context_features(frame, SPAN)[name].to_numpy()
    changed = frame.copy()
    first = changed["subject"] == changed["subject"].iloc[0]
    cut = changed.loc[first, "t_end"].median()
    future = first & (changed["t_end"] > cut)
    changed.loc[future, "eda_tonic_mean"] += 100.0
    changed.loc[~first, "eda_tonic_mean"] += 100.0  # another participant
    after = add_context_features(changed, SPAN)[name].to_numpy()
    past = (first & (changed["t_end"] <= cut)).to_numpy()
    np.testing.assert_array_equal(after[past], before[past])
    assert np.all(after[future.to_numpy()] > before[future.to_numpy()])


def test_context_span_must_be_positive() -> None:
    with pytest.raises(ModelError, match="positive seconds"):
        ContextMean(["eda_tonic_mean"], 0.0)


@pytest.fixture(scope="module")
def context_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    frame = add_context_features(
        synthetic_feature_frame(6, 100, seed=33, missing_modality_rate=0.1), SPAN
    )
    lgb_model = AffectClassifier("lightgbm", normalization="running").fit(frame)
    svm_model = AffectClassifier("svm", normalization="running").fit(frame)
    return save_bundle(
        tmp_path_factory.mktemp("ctx") / "bundle",
        name="ctx-bundle",
        lightgbm=lgb_model,
        svm=svm_model,
        window={"window": 60.0, "step": 5.0},
        baseline_seconds=60.0 + 5.0 * 19,
        provenance={"dataset": "synthetic", "subjects": lgb_model.subjects_},
        evaluation={},
        card="# card\n",
        context_seconds=SPAN,
    )


def test_bundle_records_its_context(context_bundle: Path) -> None:
    bundle = load_bundle(context_bundle)
    assert bundle.context_seconds == SPAN
    base = bundle.meta["context"]["features"]
    assert sorted(bundle.features) == sorted(base + [context_name(f, SPAN) for f in base])


def test_live_paths_equal_batch_scoring_with_context(context_bundle: Path) -> None:
    from affectstream.runtime import LiveEstimator

    bundle = load_bundle(context_bundle)
    raw = synthetic_feature_frame(1, 60, seed=34, missing_modality_rate=0.2)
    # Batch: the table without context columns; the bundle adds them itself.
    batch = bundle.predict_frame(raw)["probability"].to_numpy()
    with_columns = bundle.predict_frame(add_context_features(raw, SPAN))["probability"]
    np.testing.assert_array_equal(batch, with_columns.to_numpy())
    base = bundle.meta["context"]["features"]
    # Fed one window at a time, as a live session does.
    live = LiveEstimator([bundle], baseline_end=None)
    streamed = [live.estimate(raw.iloc[[i]][["t_end", *base]])[0] for i in range(len(raw))]
    np.testing.assert_allclose([r["arousal"] for r in streamed], batch, rtol=1e-12)
    runtime = LiveEstimator([bundle], baseline_end=None).estimate(raw[["t_end", *base]])
    np.testing.assert_allclose([r["arousal"] for r in runtime], batch, rtol=1e-12)
