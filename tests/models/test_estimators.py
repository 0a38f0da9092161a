"""Estimators, normalisation and explanations on synthetic feature tables.

Expected accuracies follow from the generator's knobs: with a shift of ``effect`` within-
subject standard deviations on ``k`` independent features, the best possible balanced
accuracy is Phi(effect * sqrt(k) / 2).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm
from sklearn.metrics import balanced_accuracy_score

from affectstream.errors import ConfigError, FeatureMismatchError, ModelError
from affectstream.models.estimators import AffectClassifier, contributions
from affectstream.models.evaluation import scored_mask
from affectstream.models.features import feature_columns, mask_unusable, window_labels
from affectstream.models.normalize import ParticipantNormalizer, RunningStats
from affectstream.models.synthetic import synthetic_feature_frame

#: Features the synthetic frame shifts with arousal (hrv_mean_hr, hrv_rmssd, eda_tonic_mean).
AROUSAL_FEATURES = 3


def bayes_balanced_accuracy(effect: float, k: int) -> float:
    return float(norm.cdf(effect * math.sqrt(k) / 2))


def _score(model: AffectClassifier, frame: pd.DataFrame, target: str = "arousal") -> float:
    sel = scored_mask(frame, target)
    y = frame[target].to_numpy()[sel]
    return float(balanced_accuracy_score(y, model.predict(frame)[sel]))


@pytest.mark.parametrize("kind", ["lightgbm", "svm"])
@pytest.mark.parametrize("normalization", ["baseline", "running"])
def test_unseen_subjects_reach_the_separability_the_knobs_allow(
    kind: str, normalization: str
) -> None:
    effect = 1.5
    train = synthetic_feature_frame(10, 150, seed=1, arousal_effect=effect)
    test = synthetic_feature_frame(5, 150, seed=2, arousal_effect=effect)
    model = AffectClassifier(kind, "arousal", normalization=normalization).fit(train)
    best = bayes_balanced_accuracy(effect, AROUSAL_FEATURES)
    score = _score(model, test)
    # Estimated centres/scales cost a little; nothing can beat the Bayes rate beyond noise.
    assert best - 0.12 < score < best + 0.04


def test_normalisation_is_what_makes_cross_subject_work() -> None:
    # Between-subject offsets are 3 within-subject SDs: without normalisation they swamp the
    # effect, with it the model recovers most of the separability.
    train = synthetic_feature_frame(10, 150, seed=3, arousal_effect=1.5)
    test = synthetic_feature_frame(5, 150, seed=4, arousal_effect=1.5)
    raw = _score(AffectClassifier("lightgbm", normalization="none").fit(train), test)
    normalised = _score(AffectClassifier("lightgbm", normalization="baseline").fit(train), test)
    assert normalised > raw + 0.05


@pytest.mark.parametrize("kind", ["lightgbm", "svm"])
def test_no_effect_means_chance(kind: str) -> None:
    train = synthetic_feature_frame(8, 150, seed=5, arousal_effect=0.0)
    test = synthetic_feature_frame(6, 150, seed=6, arousal_effect=0.0)
    model = AffectClassifier(kind, "arousal", normalization="baseline").fit(train)
    # 6 x 130 scored windows: the standard error of a chance score is about 0.02.
    assert abs(_score(model, test) - 0.5) < 0.08


def test_valence_target_uses_the_valence_knob() -> None:
    train = synthetic_feature_frame(10, 150, seed=7, valence_effect=1.5, arousal_effect=0.0)
    test = synthetic_feature_frame(5, 150, seed=8, valence_effect=1.5, arousal_effect=0.0)
    model = AffectClassifier("lightgbm", "valence").fit(train)
    # valence shifts one feature (eeg_faa) by 2 * effect between the classes.
    best = bayes_balanced_accuracy(2 * 1.5, 1)
    assert best - 0.12 < _score(model, test, "valence") < best + 0.04


@pytest.mark.parametrize("kind", ["lightgbm", "svm"])
def test_missing_modality_rows_still_get_finite_probabilities(kind: str) -> None:
    train = synthetic_feature_frame(8, 100, seed=9, missing_modality_rate=0.3)
    test = synthetic_feature_frame(3, 100, seed=10, missing_modality_rate=0.0)
    test["eda_tonic_mean"] = np.nan  # EDA band not worn at all
    model = AffectClassifier(kind).fit(train)
    p = model.predict_proba(test)[:, 1]
    assert np.isfinite(p).all() and ((p >= 0) & (p <= 1)).all()
    # Arousal is still visible in the HRV features.
    assert _score(model, test) > 0.6


def test_pred_contrib_sums_to_the_raw_score() -> None:
    frame = synthetic_feature_frame(6, 80, seed=11, missing_modality_rate=0.2)
    model = AffectClassifier("lightgbm").fit(frame)
    z = model.normalized(frame)
    raw, top = contributions(model.booster, z, model.features_, top=3)
    np.testing.assert_allclose(raw, model.booster.predict(z, raw_score=True), rtol=1e-9, atol=1e-9)
    probability = 1 / (1 + np.exp(-raw))
    np.testing.assert_allclose(probability, model.predict_proba(frame)[:, 1], rtol=1e-9)
    assert all(len(row) == 3 for row in top)
    first = top[0]
    assert abs(first[0].contribution) >= abs(first[1].contribution) >= abs(first[2].contribution)
    assert {c.feature for row in top for c in row} <= set(model.features_)


def test_training_needs_both_classes() -> None:
    frame = synthetic_feature_frame(3, 50, seed=12)
    frame["arousal"] = np.where(frame["reference"], 0.0, 1.0)
    with pytest.raises(ModelError, match="both arousal classes"):
        AffectClassifier().fit(frame)


def test_invalid_kind_names_the_options() -> None:
    model = AffectClassifier("forest")  # scikit-learn convention: fit validates parameters
    assert model.get_params()["kind"] == "forest"
    with pytest.raises(ConfigError, match="'lightgbm', 'svm'"):
        model.fit(synthetic_feature_frame(3, 50, seed=12))


def test_baseline_normaliser_uses_only_reference_rows() -> None:
    frame = synthetic_feature_frame(3, 60, seed=13)
    features = feature_columns(frame)
    normalizer = ParticipantNormalizer(features, method="baseline").fit(frame)
    before = normalizer.transform(frame)
    changed = frame.copy()
    task = ~changed["reference"]
    changed.loc[task, features] = changed.loc[task, features] + 100.0
    after = normalizer.transform(changed)
    ref = frame["reference"].to_numpy()
    np.testing.assert_allclose(after[ref], before[ref])  # centre unchanged: task rows unused
    sub = frame["subject"] == frame["subject"].iloc[0]
    expected = (
        frame.loc[sub & ~frame["reference"], features].to_numpy()
        + 100.0
        - frame.loc[sub & frame["reference"], features].mean().to_numpy()
    ) / normalizer.scale_
    np.testing.assert_allclose(
        after[(sub & ~frame["reference"]).to_numpy()],
        np.clip(expected, -normalizer.clip, normalizer.clip),
    )


def test_running_normaliser_is_causal_and_matches_pandas() -> None:
    frame = synthetic_feature_frame(2, 80, seed=14)
    features = feature_columns(frame)
    normalizer = ParticipantNormalizer(features, method="running", halflife=50.0).fit(frame)
    before = normalizer.transform(frame)
    changed = frame.copy()
    late = changed["t_end"] > changed["t_end"].median()
    changed.loc[late, features] += 50.0
    after = normalizer.transform(changed)
    early = ~late.to_numpy()
    np.testing.assert_array_equal(after[early], before[early])
    one = frame[frame["subject"] == "SYN00"][features]
    ewm = one.ewm(halflife=50.0 / 5.0, ignore_na=True)  # 5-s steps
    expected = ((one - ewm.mean()) / ewm.std()).clip(-normalizer.clip, normalizer.clip)
    np.testing.assert_allclose(before[: len(one)], expected.to_numpy(), rtol=1e-9, atol=1e-12)


def test_running_stats_skip_missing_values() -> None:
    stats = RunningStats(2, halflife_rows=3.0)
    stats.update(np.array([1.0, 1.0]))
    mean, _ = stats.update(np.array([3.0, np.nan]))
    assert mean[1] == 1.0 and 1.0 < mean[0] < 3.0


def test_normaliser_reports_missing_baseline_and_columns() -> None:
    frame = synthetic_feature_frame(2, 40, seed=15)
    features = feature_columns(frame)
    normalizer = ParticipantNormalizer(features, method="baseline").fit(frame)
    no_ref = frame.assign(reference=False)
    with pytest.raises(ModelError, match=r"Participant 'SYN00'.*baseline"):
        normalizer.transform(no_ref)
    with pytest.raises(FeatureMismatchError, match="hrv_rmssd"):
        normalizer.transform(frame.drop(columns=["hrv_rmssd"]))


def test_feature_columns_exclude_time_quality_and_labels() -> None:
    frame = synthetic_feature_frame(1, 10, n_reference=2)
    frame["quality_eda"] = 1.0
    frame["t_start"] = frame["t_end"] - 60
    assert feature_columns(frame) == sorted(
        ["hrv_mean_hr", "hrv_rmssd", "eda_tonic_mean", "temp_mean", "eeg_faa", "eeg_alpha_rel_af7"]
    )


def test_mask_unusable_sets_only_that_family_to_nan() -> None:
    frame = synthetic_feature_frame(1, 10, n_reference=2)
    frame["usable_eda"] = [True, False] * 5
    masked = mask_unusable(frame)
    assert masked["eda_tonic_mean"].isna().tolist() == [False, True] * 5
    assert masked["hrv_mean_hr"].notna().all()


def test_window_labels_drop_windows_straddling_a_change() -> None:
    labels = pd.DataFrame({"t": np.arange(0.0, 100.0), "arousal": (np.arange(100) >= 50) * 1.0})
    t_end = np.array([40.0, 50.0, 55.0, 100.0, 110.0])
    got = window_labels(labels, t_end, window=10.0, target="arousal")
    # [30,40] low; [40,50] low (change at 50 belongs to the next second); [45,55] mixed;
    # [90,100] high; [100,110] beyond the labels.
    np.testing.assert_array_equal(got, [0.0, 0.0, np.nan, 1.0, np.nan])
