"""``baseline_z``: a reference shorter than the trained ones is pooled with the training
participants' typical reference spread, in proportion to the trained span it covers; a
full-length reference keeps its own spread (training is unchanged)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from affectstream.models.bundle import load_bundle, save_bundle
from affectstream.models.estimators import AffectClassifier
from affectstream.models.normalize import REFERENCE_SCALE_FLOOR, ParticipantNormalizer
from affectstream.models.synthetic import synthetic_feature_frame
from affectstream.runtime import LiveEstimator
from affectstream.signal.columns import feature_columns

N_REFERENCE = 20


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return synthetic_feature_frame(5, 80, seed=44, n_reference=N_REFERENCE)


def _fitted(frame: pd.DataFrame) -> ParticipantNormalizer:
    return ParticipantNormalizer(feature_columns(frame), method="baseline_z", clip=1e9).fit(frame)


def test_fit_records_the_typical_reference_spread_and_span(frame: pd.DataFrame) -> None:
    norm = _fitted(frame)
    features = list(norm.features)
    spreads, spans = [], []
    for _, part in frame.groupby("subject"):
        ref = part[part["reference"]]
        spreads.append(ref[features].std(ddof=1).to_numpy())
        spans.append(ref["t_end"].max() - ref["t_end"].min())
    np.testing.assert_allclose(norm.reference_spread_, np.nanmedian(spreads, axis=0))
    assert norm.reference_span_ == pytest.approx(float(np.median(spans)))
    # Other methods have no such statistics (and a refit as another method drops them).
    norm.set_params(method="baseline").fit(frame)
    assert not hasattr(norm, "reference_spread_")


def test_a_full_length_reference_keeps_its_own_spread(frame: pd.DataFrame) -> None:
    """Every training participant's reference spans the trained span: the rule before."""
    norm = _fitted(frame)
    former = _fitted(frame)
    del former.reference_spread_, former.reference_span_
    for _, part in frame.groupby("subject"):
        assert norm.reference_weight(part.loc[part["reference"], "t_end"].to_numpy()) == 1.0
        assert np.array_equal(norm.reference_scale(part), former.reference_scale(part))
    assert np.array_equal(norm.transform(frame), former.transform(frame))  # bit for bit


def test_a_short_reference_is_pooled_by_the_span_it_covers(frame: pd.DataFrame) -> None:
    norm = _fitted(frame)
    features = list(norm.features)
    part = frame[frame["subject"] == frame["subject"].iloc[0]]
    short = part.assign(reference=False)
    short.iloc[:2, short.columns.get_loc("reference")] = True  # two windows, one step apart
    times = short.loc[short["reference"], "t_end"].to_numpy()
    weight = (times[1] - times[0]) / norm.reference_span_
    assert 0 < weight < 1 and norm.reference_weight(times) == pytest.approx(weight)
    own = short.loc[short["reference"], features].std(ddof=1).to_numpy()
    pooled = np.sqrt(weight * own**2 + (1 - weight) * norm.reference_spread_**2)
    expected = np.maximum(pooled, REFERENCE_SCALE_FLOOR * norm.scale_)
    np.testing.assert_allclose(norm.reference_scale(short), expected, rtol=1e-12)
    # Two (nearly) identical windows: the scale comes from the training participants, not
    # from the floor, so a small change is not many z-scores.
    flat = short.copy()
    flat.loc[flat["reference"], features] = flat.loc[flat["reference"], features].iloc[0].values
    typical = np.sqrt(1 - weight) * norm.reference_spread_
    np.testing.assert_allclose(
        norm.reference_scale(flat), np.maximum(typical, REFERENCE_SCALE_FLOOR * norm.scale_)
    )
    # Without the end times the weight is unknown: said, not guessed.
    with pytest.raises(Exception, match="end times"):
        norm.reference_scale(short.drop(columns="t_end"))


def test_a_normaliser_without_the_statistics_keeps_the_former_rule(frame: pd.DataFrame) -> None:
    """Bundles written before: the reference's own spread, floored, however short."""
    norm = _fitted(frame)
    del norm.reference_spread_, norm.reference_span_
    part = frame[frame["subject"] == frame["subject"].iloc[0]].assign(reference=False)
    part.iloc[:2, part.columns.get_loc("reference")] = True
    x = part.loc[part["reference"], list(norm.features)].to_numpy(dtype=float)
    own = np.maximum(np.nanstd(x, axis=0, ddof=1), REFERENCE_SCALE_FLOOR * norm.scale_)
    assert norm.reference_weight(part["t_end"].to_numpy()) == 1.0
    np.testing.assert_allclose(norm.reference_scale(part), own)


def test_the_bundle_carries_them_and_live_equals_batch_on_a_short_reference(
    tmp_path: Path, frame: pd.DataFrame
) -> None:
    lgb_model = AffectClassifier("lightgbm", normalization="baseline_z").fit(frame)
    svm_model = AffectClassifier("svm", normalization="baseline_z").fit(frame)
    path = save_bundle(
        tmp_path / "bz",
        name="bz",
        lightgbm=lgb_model,
        svm=svm_model,
        window={"window": 60.0, "step": 5.0},
        baseline_seconds=60.0 + 5.0 * (N_REFERENCE - 1),
        provenance={"dataset": "synthetic"},
        evaluation={},
        card="# card\n",
    )
    bundle = load_bundle(path)
    fitted = lgb_model.pipeline_.named_steps["normalize"]
    np.testing.assert_allclose(bundle.normalizer.reference_spread_, fitted.reference_spread_)
    assert bundle.normalizer.reference_span_ == fitted.reference_span_
    # A new participant whose baseline holds only 3 of its windows.
    new = synthetic_feature_frame(1, 50, seed=45, n_reference=N_REFERENCE)
    new["reference"] = np.arange(len(new)) < 3
    end = float(new.loc[new["reference"], "t_end"].max())
    live = LiveEstimator([bundle], baseline_end=end)
    records = [live.estimate(new.iloc[[i]])[0] for i in range(len(new))]
    after = ~new["reference"].to_numpy()
    got = np.array([r["arousal"] for r, keep in zip(records, after, strict=True) if keep])
    norm = bundle.normalizer
    z = norm.apply(
        new.loc[after, bundle.features].to_numpy(dtype=float),
        norm.reference_center(new),
        norm.reference_scale(new),
    )
    np.testing.assert_allclose(got, bundle.booster.predict(z), rtol=1e-10)
    assert norm.reference_weight(new.loc[new["reference"], "t_end"].to_numpy()) < 1
