"""Valence: the personal calibration protocol and the uncalibrated estimate."""

from __future__ import annotations

import numpy as np
import pytest

from affectstream.errors import ConfigError, ModelError
from affectstream.models.synthetic import synthetic_feature_frame
from affectstream.models.valence import (
    CalibrationBlock,
    PersonalValenceModel,
    uncalibrated_valence,
)


def _one_participant_with_blocks(effect: float, seed: int = 0):  # type: ignore[no-untyped-def]
    """8 blocks of 12 windows (5-s steps), alternating pleasant (rating 8) and unpleasant (2)."""
    frame = synthetic_feature_frame(1, 96, seed=seed, n_reference=0, valence_effect=effect)
    window = 10.0
    valence = np.repeat([1.0, 0.0] * 4, 12)
    frame["valence"] = valence
    # Rebuild eeg_faa from the known labels so the blocks match the knob exactly.
    rng = np.random.default_rng(seed)
    frame["eeg_faa"] = rng.normal(0, 1, 96) + effect * (2 * valence - 1)
    t0 = float(frame["t_end"].iloc[0]) - window
    blocks = [
        CalibrationBlock(
            t0 + 60.0 * k, t0 + 60.0 * (k + 1) - 0.001 + window, 8.0 if k % 2 == 0 else 2.0
        )
        for k in range(8)
    ]
    return frame, blocks, window


def test_personal_model_learns_the_participant() -> None:
    frame, blocks, window = _one_participant_with_blocks(effect=1.5)
    model = PersonalValenceModel().fit(frame, blocks, window)
    assert model.n_blocks_ == 8
    assert model.cv_balanced_accuracy_ > 0.8  # a 3-SD class separation on eeg_faa
    estimates = model.predict(frame)
    assert all(e.calibrated for e in estimates)
    p = np.array([e.probability for e in estimates])
    assert p[frame["valence"] == 1].mean() > p[frame["valence"] == 0].mean()
    assert "leave-one-block-out" in estimates[0].confidence


def test_personal_model_without_signal_reports_chance() -> None:
    frame, blocks, window = _one_participant_with_blocks(effect=0.0, seed=3)
    model = PersonalValenceModel().fit(frame, blocks, window)
    assert model.cv_balanced_accuracy_ < 0.75  # measured, not assumed


def test_calibration_needs_blocks_on_both_sides() -> None:
    frame, blocks, window = _one_participant_with_blocks(effect=1.0)
    only_high = [*[b for b in blocks if b.rating > 5][:3], blocks[1]]
    with pytest.raises(ModelError, match="at least two rated blocks"):
        PersonalValenceModel().fit(frame, only_high, window)


def test_rating_outside_scale_is_refused() -> None:
    with pytest.raises(ConfigError, match="1-9 scale"):
        CalibrationBlock(0.0, 60.0, 10.0)
    with pytest.raises(ConfigError, match="before it starts"):
        CalibrationBlock(60.0, 0.0, 5.0)


def test_uncalibrated_estimate_says_so() -> None:
    none = uncalibrated_valence(None)
    assert none.probability == 0.5 and not none.calibrated and none.basis == "prior"
    positive = uncalibrated_valence(2.0)
    negative = uncalibrated_valence(-2.0)
    assert positive.probability > 0.5 > negative.probability
    assert positive.probability + negative.probability == pytest.approx(1.0)
    assert not positive.calibrated and "not measured" in positive.confidence


def test_live_uncalibrated_valence_z_scores_asymmetry_against_the_usable_baseline() -> None:
    # The product's live path (LiveEstimator without a valence bundle): eeg_faa relative to
    # the mean and spread (ddof=0) of the baseline windows marked usable.
    import pandas as pd

    from affectstream.runtime.estimator import LiveEstimator

    rng = np.random.default_rng(4)
    n, n_baseline = 40, 15
    faa = rng.normal(0.3, 0.6, n)
    usable = rng.random(n) > 0.25
    frame = pd.DataFrame({"t_end": 60.0 + 5.0 * np.arange(n), "eeg_faa": faa, "usable_eeg": usable})
    live = LiveEstimator([], baseline_end=float(frame["t_end"].iloc[n_baseline - 1]))
    records = [live.estimate(frame.iloc[[i]])[0] for i in range(n)]
    base = faa[:n_baseline][usable[:n_baseline]]
    for i in range(n_baseline, n):
        z = (faa[i] - base.mean()) / base.std()
        assert records[i]["valence"] == pytest.approx(
            uncalibrated_valence(z).probability, rel=1e-12
        )
        assert records[i]["valence_basis"] == "eeg_faa"
    first_two_usable = np.flatnonzero(usable)[1]
    assert all(r["valence_basis"] == "prior" for r in records[:first_two_usable])


def test_reference_spread_is_the_population_std_of_the_reference_rows() -> None:
    from affectstream.models.normalize import ParticipantNormalizer

    frame = synthetic_feature_frame(1, 40, seed=5)
    features = ("hrv_mean_hr", "eda_tonic_mean")
    normalizer = ParticipantNormalizer(features)
    ref = frame.loc[frame["reference"], list(features)].to_numpy()
    np.testing.assert_allclose(normalizer.reference_spread(frame), np.nanstd(ref, axis=0))
    np.testing.assert_allclose(normalizer.reference_center(frame), np.nanmean(ref, axis=0))
    with pytest.raises(ModelError, match="No reference"):
        normalizer.reference_spread(frame.assign(reference=False))
