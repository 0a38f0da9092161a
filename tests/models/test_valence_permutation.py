"""The within-person permutation test behind a valence calibration."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from affectstream.models.valence import (
    PERMUTATION_ALPHA,
    CalibrationBlock,
    PersonalValenceModel,
    block_windows,
    permutation_test,
)
from affectstream.models.valence_scoring import n_distinct_orders

T0 = 1_700_000_000.0
WINDOW = 10.0


def _person(
    ratings: list[float], effect: float, seed: int = 0, per_block: int = 12
) -> tuple[pd.DataFrame, list[CalibrationBlock]]:
    """Blocks of ``per_block`` windows; ``eeg_faa`` follows the rating with ``effect`` SDs.

    Arousal is rated calm throughout, so the protocol rules hold for any order of ratings.
    """
    rng = np.random.default_rng(seed)
    rating = np.repeat(ratings, per_block)
    t_end = T0 + WINDOW + 5.0 * np.arange(rating.size)
    frame = pd.DataFrame(
        {
            "t_end": t_end,
            "eeg_faa": rng.normal(0, 1, rating.size) + effect * (rating - 5.0) / 3.0,
            "hrv_rmssd": rng.normal(40, 5, rating.size),
        }
    )
    span = 5.0 * per_block
    blocks = [
        CalibrationBlock(T0 + span * k, T0 + span * (k + 1) - 0.001 + WINDOW, v, 3.0, f"b{k}")
        for k, v in enumerate(ratings)
    ]
    return frame, blocks


def test_the_fast_path_scores_the_real_order_as_the_fitted_models_do() -> None:
    ratings = [8.0, 2.0, 7.0, 3.0, 8.0, 2.0, 7.0, 3.0]
    frame, blocks = _person(ratings, effect=1.5)
    model = PersonalValenceModel().fit(frame, blocks, WINDOW)
    acc = model.accuracy_
    # The gain computed through the linear operators equals own-mean error minus the error
    # of the leave-one-episode-out ridge models fitted one by one.
    assert acc["permutation_gain"] == pytest.approx(acc["mae_own_mean"] - acc["mae"], abs=1e-6)
    assert acc["permutation_exact"] and acc["permutation_orders"] == n_distinct_orders(ratings)
    assert acc["permutation_orders"] == 8 * 7 * 6 * 5 * 4 * 3 * 2 // 2**4


def test_binary_ratings_tie_with_their_mirror_so_four_episodes_cannot_pass_and_six_can() -> None:
    four = [7.0, 3.0, 7.0, 3.0]
    frame, blocks = _person(four, effect=4.0)
    model = PersonalValenceModel().fit(frame, blocks, WINDOW)
    acc = model.accuracy_
    assert acc["permutation_orders"] == 6  # C(4, 2)
    # Only the real order and its mirror (7 <-> 3: the same fit, sign flipped) gain as much.
    assert acc["permutation_p"] == pytest.approx(2 / 6) == acc["permutation_min_p"]
    # A strong signal beats the own mean, but 6 orders cannot show it is not chance.
    assert acc["mae"] < acc["mae_own_mean"] and not model.calibrated_
    assert "too few episodes" in acc["reason"]
    assert "too few episodes" in model.confidence_text()
    assert not any(e.calibrated for e in model.predict(frame))
    six = [7.0, 3.0] * 3
    frame, blocks = _person(six, effect=4.0)
    model = PersonalValenceModel().fit(frame, blocks, WINDOW)
    assert model.accuracy_["permutation_orders"] == 20  # C(6, 3)
    assert model.accuracy_["permutation_p"] == pytest.approx(2 / 20)
    assert PERMUTATION_ALPHA >= 2 / 20  # the level admits the smallest p of 6 episodes
    assert model.calibrated_ and model.accuracy_["reason"] == ""


def test_ratings_that_follow_arousal_cannot_pass_as_valence() -> None:
    """The body shows arousal; ratings that only follow it are what a stress detector finds."""
    ratings = [7.0, 3.0] * 4
    frame, blocks = _person(ratings, effect=4.0)
    # Every pleasant episode rated calm, every unpleasant one aroused... except one calm
    # unpleasant episode the protocol rules require; valence still follows arousal exactly
    # within each stratum, so there is no other order to compare with.
    aroused = [
        CalibrationBlock(b.t_start, b.t_end, b.rating, 3.0 if b.rating > 5 else 8.0, b.label)
        for b in blocks
    ]
    aroused[1] = CalibrationBlock(blocks[1].t_start, blocks[1].t_end, 3.0, 4.0, blocks[1].label)
    model = PersonalValenceModel().fit(frame, aroused, WINDOW)
    acc = model.accuracy_
    assert acc["mae_margin_ci95"][1] < 0  # the former interval rule would have passed it
    # calm stratum: {7, 7, 7, 7, 3} (5 orders), aroused stratum: {3, 3, 3} (1 order)
    assert acc["permutation_orders"] == 5
    assert not model.calibrated_ and "too few episodes" in acc["reason"]
    only_arousal = [
        CalibrationBlock(b.t_start, b.t_end, b.rating, 3.0 if b.rating > 5 else 8.0, b.label)
        for b in blocks
    ]
    ids = block_windows(frame, only_arousal, WINDOW)
    x = frame[["eeg_faa", "hrv_rmssd"]].to_numpy()
    result = permutation_test(
        x[ids >= 0], ids[ids >= 0], ratings, 10.0, strata=["calm", "aroused"] * 4
    )
    assert result["permutation_orders"] == 1 and result["permutation_p"] == 1.0


def test_shuffled_ratings_rarely_pass() -> None:
    """Every distinct order of 8 binary ratings on data that follow the real order: only
    orders close to the real one may pass, never more than the test's level allows."""
    real = [7.0, 3.0, 7.0, 3.0, 7.0, 3.0, 7.0, 3.0]
    frame, blocks = _person(real, effect=2.0, seed=5)
    orders = sorted(set(itertools.permutations(real)))
    passed = []
    for order in orders:
        fake = [
            CalibrationBlock(b.t_start, b.t_end, r, b.arousal, b.label)
            for b, r in zip(blocks, order, strict=True)
        ]
        passed.append(PersonalValenceModel().fit(frame, fake, WINDOW).calibrated_)
    assert passed[orders.index(tuple(real))]  # the real ratings calibrate
    # p <= 0.1 over 70 orders: at most 7 orders can be that extreme (the real one and its
    # mirror among them).
    assert sum(passed) <= int(PERMUTATION_ALPHA * len(orders))


def test_random_orders_when_there_are_too_many_to_enumerate() -> None:
    ratings = [9.0, 1.0, 8.0, 2.0, 7.0, 3.0, 6.0, 4.0]  # 8! = 40,320 distinct orders
    frame, blocks = _person(ratings, effect=3.0, per_block=6)
    ids = block_windows(frame, blocks, WINDOW)
    x = frame[["eeg_faa", "hrv_rmssd"]].to_numpy()
    result = permutation_test(x[ids >= 0], ids[ids >= 0], ratings, 10.0)
    assert not result["permutation_exact"] and result["permutation_orders"] == 1999
    assert result["permutation_p"] == pytest.approx(1 / 2000)  # none of 1,999 gain as much


def test_a_model_stored_before_the_permutation_test_is_not_trusted() -> None:
    frame, blocks = _person([8.0, 2.0, 7.0, 3.0, 8.0, 2.0, 7.0, 3.0], effect=3.0)
    data = PersonalValenceModel().fit(frame, blocks, WINDOW).to_dict()
    assert data["calibrated"] is True
    for key in ("permutation_p", "permutation_min_p", "reason"):
        del data["accuracy"][key]
    old = PersonalValenceModel.from_dict(data)
    assert not old.calibrated_ and "re-calibrate" in old.accuracy_["reason"]
