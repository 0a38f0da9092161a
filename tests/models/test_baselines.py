"""As-live labels, the protocol-clock and one-feature baselines, participant intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from affectstream.models.baselines import (
    CLOCK_BIN_SECONDS,
    best_threshold,
    clock_scores,
    leave_one_subject_out,
    live_mask,
    own_baseline_feature,
    protocol_report,
    subject_bootstrap,
)
from affectstream.models.features import window_labels, window_labels_at_end
from affectstream.models.synthetic import synthetic_feature_frame
from affectstream.models.training import DATASET_SETTINGS, evaluate_frame


def test_label_at_end_keeps_transition_windows_that_whole_window_labels_drop() -> None:
    labels = pd.DataFrame({"t": [0.0, 100.0, 200.0], "arousal": [0.0, 1.0, np.nan]})
    t_end = np.array([60.0, 130.0, 190.0, 250.0])
    whole = window_labels(labels, t_end, 60.0, "arousal")
    at_end = window_labels_at_end(labels, t_end, "arousal")
    # 130 s: the window (70, 130] straddles the change at 100 s.
    np.testing.assert_array_equal(np.isnan(whole), [False, True, False, True])
    np.testing.assert_array_equal(at_end[:3], [0.0, 1.0, 1.0])
    assert np.isnan(at_end[3])  # after the labelled span


def _clock_frame(n_subjects: int = 5, seed: int = 0) -> pd.DataFrame:
    """Windows whose label is a fixed protocol phase and whose physiology is pure noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_subjects):
        clock = 60.0 + 5.0 * np.arange(200)
        label = ((clock >= 420) & (clock < 720)).astype(float)
        rows.append(
            pd.DataFrame(
                {
                    "subject": f"P{s}",
                    "t_end": 1e9 + clock,
                    "session_seconds": clock,
                    "reference": clock <= 240,
                    "arousal": label,
                    "arousal_end": label,
                    "eda_tonic_mean": rng.normal(5.0 + s, 0.3, clock.size),
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def test_protocol_clock_baseline_finds_labels_that_follow_the_clock() -> None:
    frame = _clock_frame()
    folds = leave_one_subject_out(frame, "arousal")
    p, threshold = clock_scores(frame, "arousal", folds)
    scored = ~frame["reference"].to_numpy()
    y = frame["arousal"].to_numpy()[scored]
    decisions = p[scored] >= threshold[scored]
    # Every bin lies wholly inside one phase (edges at multiples of the bin width).
    assert 420 % CLOCK_BIN_SECONDS == 0 and 720 % CLOCK_BIN_SECONDS == 0
    assert np.mean(decisions == y) > 0.97
    report = protocol_report(frame, "arousal", {}, folds)
    assert report["as_live"]["protocol_clock"]["auroc"] > 0.97
    # The one feature is noise here: it must not look informative.
    assert abs(report["as_live"]["one_feature"]["auroc"] - 0.5) < 0.1


def test_own_baseline_feature_is_standardised_on_the_reference_windows() -> None:
    frame = pd.DataFrame(
        {
            "subject": ["a"] * 4 + ["b"] * 4,
            "reference": [True, True, False, False] * 2,
            "eda_tonic_mean": [1.0, 3.0, 4.0, 0.0, 10.0, 10.0, 10.5, 9.0],
        }
    )
    z = own_baseline_feature(frame)
    # a: mean 2, std 1; b: std 0 -> floored at 0.01 µS.
    np.testing.assert_allclose(z[:4], [-1.0, 1.0, 2.0, -2.0])
    np.testing.assert_allclose(z[4:], [0.0, 0.0, 50.0, -100.0])


def test_best_threshold_separates_separable_scores() -> None:
    y = np.array([0, 0, 0, 1, 1, 1])
    score = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    t = best_threshold(y, score)
    assert 0.3 < t <= 0.7


def test_subject_interval_brackets_the_pooled_score_and_collapses_when_perfect() -> None:
    rng = np.random.default_rng(1)
    subjects = np.repeat([f"s{i}" for i in range(12)], 50)
    y = rng.integers(0, 2, subjects.size)
    p = np.clip(0.3 * y + 0.7 * rng.random(subjects.size), 0, 1)
    ci = subject_bootstrap(y, p, 0.5, subjects, n_boot=300)
    low, high = ci["auroc"]
    from sklearn.metrics import roc_auc_score

    assert low <= roc_auc_score(y, p) <= high and high - low > 0.0
    perfect = subject_bootstrap(y, y.astype(float), 0.5, subjects, n_boot=50)
    assert perfect["balanced_accuracy"] == [1.0, 1.0]


def test_every_evaluation_reports_live_scores_baselines_and_margins() -> None:
    frame = synthetic_feature_frame(6, 80, seed=3, arousal_effect=2.0)
    report = evaluate_frame(
        frame, DATASET_SETTINGS["synthetic"], kinds=("lightgbm",), chance=False, n_splits=3
    )
    baselines = report["baselines"]
    live = baselines["as_live"]
    assert {"lightgbm", "protocol_clock", "one_feature"} <= set(live)
    assert live_mask(frame, "arousal").sum() == live["lightgbm"]["n_windows"]
    # The synthetic labels are random in time: the clock cannot predict them.
    assert abs(live["protocol_clock"]["auroc"] - 0.5) < 0.1
    assert live["lightgbm"]["auroc"] > 0.8
    margin = baselines["margins_as_live"]["lightgbm-protocol_clock"]["auroc"]
    assert margin == pytest.approx(live["lightgbm"]["auroc"] - live["protocol_clock"]["auroc"])
    low, high = live["lightgbm"]["ci"]["balanced_accuracy"]
    assert low <= live["lightgbm"]["balanced_accuracy"] <= high


def test_fast_metrics_equal_sklearn() -> None:
    from sklearn.metrics import balanced_accuracy_score, roc_auc_score

    from affectstream.models.baselines import _auroc, _balanced_accuracy

    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 300)
    p = np.round(rng.random(300) + 0.2 * y, 1)  # rounded: many ties
    pred = (p >= 0.6).astype(int)
    assert _auroc(y, p) == pytest.approx(roc_auc_score(y, p))
    assert _balanced_accuracy(y, pred) == pytest.approx(balanced_accuracy_score(y, pred))


def test_one_feature_baseline_is_left_out_without_eda() -> None:
    frame = _clock_frame().drop(columns=["eda_tonic_mean"])
    report = protocol_report(frame, "arousal", {}, leave_one_subject_out(frame, "arousal"))
    assert "one_feature" not in report["as_live"] and not report["one_feature"]["applies"]
    assert "protocol_clock" in report["as_live"]


def test_ensemble_is_the_mean_of_both_models() -> None:
    from affectstream.models.baselines import with_ensemble

    p_l, p_s = np.array([0.2, 0.8]), np.array([0.4, 0.6])
    t = np.array([0.3, 0.3]), np.array([0.5, 0.5])
    out = with_ensemble({"lightgbm": (p_l, t[0]), "svm": (p_s, t[1])})
    np.testing.assert_allclose(out["ensemble"][0], [0.3, 0.7])
    np.testing.assert_allclose(out["ensemble"][1], [0.4, 0.4])
    assert "ensemble" not in with_ensemble({"lightgbm": (p_l, t[0])})
