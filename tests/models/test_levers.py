"""Lever measurement and Muse-like EEG: small synthetic data, real code paths."""

from __future__ import annotations

import numpy as np

from affectstream.models.levers import RISING_WITH_STRESS, Lever, lever_scores, markdown
from affectstream.models.muselike import MUSE_RATE, muse_like
from affectstream.models.synthetic import synthetic_feature_frame, synthetic_labelled_recording

ROWS = ("a LOSO", "b LOSO", "a -> b", "b -> a", "both -> a", "both -> b")


def test_lever_scores_every_setting_and_carries_a_shared_signal() -> None:
    # Two "protocols" from the same generator: the arousal effect is the same physiology,
    # so a model must carry from one to the other; with no effect it must not.
    frames = {
        "a": synthetic_feature_frame(5, 80, seed=51, arousal_effect=1.5),
        "b": synthetic_feature_frame(5, 80, seed=52, arousal_effect=1.5),
    }
    features = ["hrv_mean_hr", "hrv_rmssd", "eda_tonic_mean", "temp_mean"]
    lever = Lever("baseline_z, monotone", normalization="baseline_z", monotone=True)
    out = lever_scores(frames, lever, features=features, within_splits=3, pooled_splits=3)
    assert set(ROWS) <= set(out)
    assert out["worst_across"] == min(out[k]["balanced_accuracy"] for k in ROWS if "->" in k)
    assert out["worst_across"] > 0.65
    null = {
        name: synthetic_feature_frame(5, 80, seed=53 + i, arousal_effect=0.0)
        for i, name in enumerate(("a", "b"))
    }
    chance = lever_scores(null, lever, features=features, within_splits=3, pooled_splits=3)
    assert abs(chance["a -> b"]["auroc"] - 0.5) < 0.1
    assert "baseline_z, monotone" in markdown([out, chance])


def test_monotone_constraints_follow_the_feature_order() -> None:
    features = ["temp_mean", "eda_tonic_mean", "hr_mean"]
    params = Lever("m", monotone=True).lightgbm_params(features)
    assert params["monotone_constraints"] == [int(f in RISING_WITH_STRESS) for f in features]
    assert params["monotone_constraints"] == [0, 1, 1]
    assert "monotone_constraints" not in Lever("plain").lightgbm_params(features)


def test_muse_like_resamples_adds_noise_and_contact_loss() -> None:
    rec = synthetic_labelled_recording(
        "M1", seed=54, duration=300.0, modalities=("eeg",), eeg_rate=512.0
    )
    (eeg,) = [b for b in rec.blocks if b.modality == "eeg"]
    quiet = muse_like([rec], gain=1.0, noise_uv=0.0, loss_per_minute=0.0)[0]
    (q,) = [b for b in quiet.blocks if b.modality == "eeg"]
    assert q.sfreq == MUSE_RATE
    assert abs(len(q) - len(eeg) * MUSE_RATE / 512.0) <= 1
    assert q.channels == eeg.channels
    assert quiet.labels.equals(rec.labels)
    # Same signal power after an anti-aliased resample (the content is far below 128 Hz).
    assert np.isclose(np.std(q.values), np.std(eeg.values), rtol=0.1)
    louder = muse_like([rec], gain=3.0, noise_uv=0.0, loss_per_minute=0.0)[0]
    (g,) = [b for b in louder.blocks if b.modality == "eeg"]
    np.testing.assert_allclose(g.values, 3.0 * q.values, rtol=1e-9, atol=1e-9)
    lossy = muse_like([rec], gain=1.0, noise_uv=0.0, loss_per_minute=6.0, seed=1)[0]
    (lo,) = [b for b in lossy.blocks if b.modality == "eeg"]
    assert np.abs(lo.values - q.values).max() > 100.0  # contact-loss drifts of hundreds of µV


def test_every_lever_kind_carries_a_shared_signal_and_baselines_score_too() -> None:
    from affectstream.models.lever_fit import LeverSetup, fit_predict

    train = synthetic_feature_frame(4, 60, seed=55, arousal_effect=1.5)
    test = synthetic_feature_frame(3, 60, seed=56, arousal_effect=1.5)
    features = ["hrv_mean_hr", "eda_tonic_mean", "temp_mean"]
    setup = LeverSetup(features, "arousal", "running", {})
    y = test["arousal"].to_numpy(dtype=float)
    scored = np.isfinite(y) & ~test["reference"].to_numpy(dtype=bool)
    from sklearn.metrics import roc_auc_score

    for kind in ("logistic", "lightgbm+logistic", "lightgbm-platt", "one_feature"):
        p, t = fit_predict(kind, train, test, setup)
        assert p.shape == t.shape == (len(test),), kind
        assert np.isfinite(t[scored]).all(), kind
        assert roc_auc_score(y[scored].astype(int), p[scored]) > 0.65, kind
    # The clock baseline needs no features and is finite on every scored window.
    p, t = fit_predict("protocol_clock", train, test, setup)
    assert np.isfinite(p[scored]).all() and np.isfinite(t[scored]).all()
