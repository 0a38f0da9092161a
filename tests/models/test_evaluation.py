"""Subject-wise evaluation: metrics, calibration bins, the chance check, the plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from affectstream.errors import ModelError
from affectstream.models.evaluation import (
    chance_check,
    cross_validate_by_subject,
    metrics,
    plot_report,
    reliability_bins,
    shuffle_within_subject,
)
from affectstream.models.synthetic import synthetic_feature_frame


def test_metrics_are_consistent_with_the_confusion_matrix() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    p = np.clip(y * 0.4 + rng.random(400) * 0.6, 0, 1)
    subjects = np.repeat(["a", "b", "c", "d"], 100)
    result = metrics(y, p, 0.5, subjects)
    (tn, fp), (fn, tp) = result["confusion_matrix"]
    assert tn + fp + fn + tp == 400
    expected = 0.5 * (tp / (tp + fn) + tn / (tn + fp))
    assert result["balanced_accuracy"] == pytest.approx(expected)
    assert result["brier"] == pytest.approx(np.mean((p - y) ** 2))
    assert set(result["per_subject"]) == {"a", "b", "c", "d"}
    spread = result["spread"]
    assert spread["min"] <= spread["mean"] <= spread["max"]
    assert result["n_windows"] == 400 and result["n_subjects"] == 4


def test_reliability_bins_count_every_prediction() -> None:
    p = np.array([0.05, 0.15, 0.15, 0.95, 1.0])
    y = np.array([0, 0, 1, 1, 1])
    bins = reliability_bins(y, p, n_bins=10)
    assert sum(b["count"] for b in bins) == 5
    assert bins[1]["count"] == 2 and bins[1]["observed"] == 0.5
    assert bins[9]["count"] == 2  # 1.0 falls in the last bin


def test_shuffle_keeps_each_subjects_class_balance() -> None:
    frame = synthetic_feature_frame(4, 60, seed=1)
    shuffled = shuffle_within_subject(frame, "arousal", seed=2)
    for _, group in frame.groupby("subject"):
        assert shuffled.loc[group.index, "arousal"].sum() == group["arousal"].sum()
    assert (shuffled["arousal"] != frame["arousal"]).any()
    ref = frame["reference"]
    np.testing.assert_array_equal(shuffled.loc[ref, "arousal"], frame.loc[ref, "arousal"])


def test_loso_finds_the_effect_and_the_chance_check_does_not() -> None:
    frame = synthetic_feature_frame(6, 120, seed=3, arousal_effect=1.5)
    result = cross_validate_by_subject(frame, kind="lightgbm", normalization="baseline")
    assert result["cv"] == "leave-one-subject-out" and result["n_subjects"] == 6
    assert result["balanced_accuracy"] > 0.75
    chance = chance_check(frame, kind="lightgbm", normalization="baseline", n_splits=3)
    # 6 x 100 scored windows: a chance score's standard error is about 0.02.
    assert abs(chance["balanced_accuracy"] - 0.5) < 0.08
    predictions = result["predictions"]
    assert len(predictions) == result["n_windows"] and predictions["p"].between(0, 1).all()


def test_group_kfold_option() -> None:
    frame = synthetic_feature_frame(6, 60, seed=4)
    result = cross_validate_by_subject(frame, kind="svm", n_splits=3)
    assert result["cv"] == "group-3-fold" and result["n_subjects"] == 6


def test_needs_two_subjects() -> None:
    frame = synthetic_feature_frame(1, 60, seed=5)
    with pytest.raises(ModelError, match="at least two"):
        cross_validate_by_subject(frame)


def test_plot_is_written(tmp_path: Path) -> None:
    frame = synthetic_feature_frame(3, 60, seed=6)
    result = cross_validate_by_subject(frame, n_splits=3)
    result.pop("predictions")
    path = plot_report({"lightgbm": result}, tmp_path / "report.png", "test")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("folds", [0, 1, 7])
def test_impossible_fold_counts_are_one_line_errors(folds: int) -> None:
    from affectstream.errors import ConfigError

    frame = synthetic_feature_frame(6, 30, seed=4)
    with pytest.raises(ConfigError, match=f"--folds {folds}: .* 2 to 6 folds") as info:
        cross_validate_by_subject(frame, kind="svm", n_splits=folds)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("folds", ["0", "1", "two"])
def test_cli_refuses_bad_folds_before_loading_data(
    folds: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from affectstream.cli import main

    argv = ["evaluate", "--dataset", "wesad", "--data", str(tmp_path), "--folds", folds]
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "--folds" in err[-1] and "Traceback" not in "\n".join(err)
