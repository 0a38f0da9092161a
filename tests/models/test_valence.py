"""Valence: the personal calibration protocol, its honest scoring and the uncalibrated estimate."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from affectstream.errors import ConfigError, ModelError
from affectstream.models.synthetic import synthetic_feature_frame
from affectstream.models.valence import (
    UNCALIBRATED_LEAN,
    CalibrationBlock,
    PersonalValenceModel,
    ValenceEstimate,
    ValenceSmoother,
    block_windows,
    fit_personal_valence,
    uncalibrated_valence,
)
from affectstream.models.valence_store import (
    delete_personal_valence,
    load_personal_valence,
    personal_valence_path,
    save_personal_valence,
)

#: Pleasant, unpleasant-calm, pleasant, unpleasant-stressful... (valence, arousal) per block.
RATINGS = [
    (8.0, 4.0),
    (2.0, 3.0),
    (7.0, 6.0),
    (3.0, 8.0),
    (8.0, 3.0),
    (2.0, 4.0),
    (7.0, 5.0),
    (3.0, 3.0),
]


def _one_participant_with_blocks(effect: float, seed: int = 0):  # type: ignore[no-untyped-def]
    """8 blocks of 12 windows (5-s steps); eeg_faa follows the rating with ``effect`` SDs."""
    frame = synthetic_feature_frame(1, 96, seed=seed, n_reference=0, valence_effect=0.0)
    window = 10.0
    rating = np.repeat([v for v, _ in RATINGS], 12)
    frame["valence"] = (rating > 5).astype(float)
    rng = np.random.default_rng(seed)
    frame["eeg_faa"] = rng.normal(0, 1, 96) + effect * (rating - 5.0) / 3.0
    t0 = float(frame["t_end"].iloc[0]) - window
    blocks = [
        CalibrationBlock(t0 + 60.0 * k, t0 + 60.0 * (k + 1) - 0.001 + window, v, a, f"b{k}")
        for k, (v, a) in enumerate(RATINGS)
    ]
    return frame, blocks, window


def test_personal_model_learns_the_participant() -> None:
    frame, blocks, window = _one_participant_with_blocks(effect=3.0)
    model = fit_personal_valence(frame, blocks, window)
    acc = model.accuracy_
    assert acc["n_episodes"] == 8 and acc["method"] == "leave one episode out"
    assert acc["mae"] < acc["mae_own_mean"] and model.calibrated_
    assert acc["mae_ci95"][0] <= acc["mae"] <= acc["mae_ci95"][1]
    estimates = model.predict(frame)
    assert all(e.calibrated for e in estimates)
    p = np.array([e.probability for e in estimates])
    assert p[frame["valence"] == 1].mean() > p[frame["valence"] == 0].mean()
    assert "leave-one-episode-out" in estimates[0].confidence
    assert "own mean" in estimates[0].confidence


def test_own_mean_baseline_is_computed_from_the_other_episodes() -> None:
    frame, blocks, window = _one_participant_with_blocks(effect=3.0)
    acc = PersonalValenceModel().fit(frame, blocks, window).accuracy_
    ratings = np.array([v for v, _ in RATINGS])
    # The bar is the own mean over all episodes (the stricter one) ...
    assert acc["mae_own_mean"] == pytest.approx(np.abs(ratings - ratings.mean()).mean())
    # ... and the leave-one-out own mean is reported beside it.
    expected = np.mean(
        [abs(np.delete(ratings, k).mean() - ratings[k]) for k in range(len(ratings))]
    )
    assert acc["mae_own_mean_others"] == pytest.approx(expected)


def test_held_out_episode_is_never_in_training(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each fold's training windows exclude every window of the held-out episode."""
    from affectstream.models import valence_scoring as module

    frame, blocks, window = _one_participant_with_blocks(effect=3.0)
    frame["eeg_faa"] = np.arange(len(frame), dtype=float)  # a window's identity
    seen: list[set[float]] = []
    original = module.StandardisedRidge.fit

    def spy(matrix, y, alpha):  # type: ignore[no-untyped-def]
        seen.append(set(matrix[:, 0]))  # the only feature: eeg_faa
        return original(matrix, y, alpha)

    monkeypatch.setattr(module.StandardisedRidge, "fit", staticmethod(spy))
    PersonalValenceModel(features=["eeg_faa"]).fit(frame, blocks, window)
    ids = block_windows(frame, blocks, window)
    for k, train in enumerate(seen[: len(blocks)]):
        held_out = set(frame["eeg_faa"][ids == k])
        assert held_out and not held_out & train


def test_model_without_signal_stays_uncalibrated() -> None:
    frame, blocks, window = _one_participant_with_blocks(effect=0.0, seed=3)
    model = PersonalValenceModel().fit(frame, blocks, window)
    assert not model.calibrated_  # it cannot beat the own mean rating on noise
    assert not any(e.calibrated for e in model.predict(frame))
    assert "NOT used" in model.confidence_text()


def test_calibration_needs_two_episodes_on_each_side() -> None:
    frame, blocks, window = _one_participant_with_blocks(effect=1.0)
    three_high_one_low = [blocks[0], blocks[2], blocks[4], blocks[1]]
    with pytest.raises(ModelError, match="at least 2 rated episodes on each side"):
        PersonalValenceModel().fit(frame, three_high_one_low, window)


def test_calibration_refuses_only_stressful_unpleasant_episodes() -> None:
    frame, blocks, window = _one_participant_with_blocks(effect=1.0)
    stressful = [
        CalibrationBlock(b.t_start, b.t_end, b.rating, 8.0 if b.rating < 5 else b.arousal)
        for b in blocks
    ]
    with pytest.raises(ModelError, match="rated calm"):
        PersonalValenceModel().fit(frame, stressful, window)
    unknown = [CalibrationBlock(b.t_start, b.t_end, b.rating) for b in blocks]
    with pytest.raises(ModelError, match="rated calm"):
        PersonalValenceModel().fit(frame, unknown, window)


def test_rating_outside_scale_is_refused() -> None:
    with pytest.raises(ConfigError, match="1-9 scale"):
        CalibrationBlock(0.0, 60.0, 10.0)
    with pytest.raises(ConfigError, match="1-9 scale"):
        CalibrationBlock(0.0, 60.0, 5.0, arousal=0.0)
    with pytest.raises(ConfigError, match="before it starts"):
        CalibrationBlock(60.0, 0.0, 5.0)


def test_stored_model_round_trips_without_pickle(tmp_path) -> None:  # type: ignore[no-untyped-def]
    frame, blocks, window = _one_participant_with_blocks(effect=3.0)
    model = fit_personal_valence(frame, blocks, window)
    folder = save_personal_valence("P01", model, sources=["s1"], home=tmp_path)
    data = json.loads((folder / "model.json").read_text())
    assert data["calibrated"] is True and data["participant"] == "P01"
    card = (folder / "card.md").read_text()
    assert "leave one episode out" in card and "own mean" in card
    loaded = load_personal_valence("P01", home=tmp_path)
    assert loaded is not None
    np.testing.assert_allclose(loaded.predict_rating(frame), model.predict_rating(frame))
    assert delete_personal_valence("P01", home=tmp_path)
    assert load_personal_valence("P01", home=tmp_path) is None
    assert not delete_personal_valence("P01", home=tmp_path)
    with pytest.raises(ConfigError, match="cannot name a valence model"):
        personal_valence_path("../etc", home=tmp_path)


def test_uncalibrated_estimate_says_so_and_only_leans() -> None:
    none = uncalibrated_valence(None)
    assert none.probability == 0.5 and not none.calibrated and none.basis == "prior"
    positive = uncalibrated_valence(2.0)
    negative = uncalibrated_valence(-2.0)
    assert positive.probability > 0.5 > negative.probability
    assert positive.probability + negative.probability == pytest.approx(1.0)
    assert not positive.calibrated and "not measured" in positive.confidence
    assert uncalibrated_valence(50.0).probability == pytest.approx(0.5 + UNCALIBRATED_LEAN)


def test_smoothed_valence_never_swings_within_seconds() -> None:
    """Alternating extreme raw estimates every 5 s: the smoothed one moves slowly."""
    smoother = ValenceSmoother()
    out = []
    for k in range(120):
        high = (k // 3) % 2 == 0  # the raw estimate flips between extremes every 15 s
        raw = ValenceEstimate(0.9999 if high else 0.0001, True, "", "", rating=9.0 if high else 1.0)
        out.append(smoother.update(1000.0 + 5.0 * k, raw))
    p = np.array([e.probability for e in out])
    r = np.array([e.rating for e in out])
    # 0.00 -> 0.98 within seconds is impossible: over any 10 s it moves < 0.2.
    assert np.abs(p[2:] - p[:-2]).max() < 0.2
    assert np.abs(r[2:] - r[:-2]).max() < 8.0 * 0.2
    # ...and it does follow a sustained change.
    steady = ValenceSmoother()
    last = [steady.update(5.0 * k, ValenceEstimate(0.9, True, "", "")) for k in range(120)][-1]
    assert last.probability == pytest.approx(0.9, abs=0.01)
    with pytest.raises(ConfigError):
        ValenceSmoother(0.0)


def test_missing_feature_column_counts_as_missing() -> None:
    frame, blocks, window = _one_participant_with_blocks(effect=3.0)
    model = fit_personal_valence(frame, blocks, window)
    partial = frame.drop(columns=["temp_mean"])
    assert np.isfinite(model.predict_rating(partial)).all()
    assert isinstance(partial, pd.DataFrame)


def test_live_asymmetry_z_score_is_against_the_usable_baseline() -> None:
    # The product's live path: eeg_faa relative to the mean and spread (ddof=0) of the
    # baseline windows marked usable; nothing before two of them.
    from affectstream.runtime.valence_live import LiveValence

    rng = np.random.default_rng(4)
    n, n_baseline = 40, 15
    faa = rng.normal(0.3, 0.6, n)
    usable = rng.random(n) > 0.25
    t_end = 60.0 + 5.0 * np.arange(n)
    live = LiveValence()
    rows = [pd.Series({"eeg_faa": faa[i], "usable_eeg": usable[i]}) for i in range(n)]
    z = [live.faa_z(rows[i], t_end[i], t_end[n_baseline - 1]) for i in range(n)]
    base = faa[:n_baseline][usable[:n_baseline]]
    for i in range(n_baseline, n):
        assert z[i] == pytest.approx((faa[i] - base.mean()) / base.std(), rel=1e-12)
    first_two_usable = np.flatnonzero(usable)[1]
    assert all(v is None for v in z[:first_two_usable])


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
