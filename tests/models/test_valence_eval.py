"""``evaluate --target valence``: the personal calibration scored per participant on files in
the WESAD layout (E4 export + SAM questionnaire) and on synthetic recordings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from affectstream.cli import main
from affectstream.errors import ConfigError
from affectstream.models.training import build_features
from affectstream.models.valence_eval import evaluate_personal_valence, recording_episodes
from affectstream.models.wesad_layout import CONDITIONS, write_wesad_layout
from affectstream.models.wrist_protocols import load_wesad_e4, read_wesad_quest


def test_generated_files_read_back_with_their_ratings(tmp_path: Path) -> None:
    root = write_wesad_layout(tmp_path / "W", 1, calm_unpleasant=True)
    quest = read_wesad_quest(root / "S2" / "S2_quest.csv")
    assert quest["condition"].tolist() == [c[0] for c in CONDITIONS]
    meditations = quest[quest["condition"].str.startswith("Medi")]
    assert (meditations["sam_valence"] < 5).all() and (meditations["sam_arousal"] <= 5).all()
    (recording,) = load_wesad_e4(root)
    episodes = recording_episodes(recording, float(quest["end"].max()) + 1e10)
    assert [e.rating for e in episodes] == quest["sam_valence"].tolist()
    assert [e.arousal for e in episodes] == quest["sam_arousal"].tolist()


@pytest.mark.slow
def test_wesad_protocol_cannot_calibrate_and_the_command_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """WESAD has one unpleasant condition (TSST): nobody meets the calibration rules."""
    root = write_wesad_layout(tmp_path / "W", 2)
    argv = ["evaluate", "--target", "valence", "--dataset", "wesad-e4", "--data", str(root)]
    assert main([*argv, "--json", "--report", str(tmp_path / "r.json")]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["calibration"] == {"n_people": 0}
    assert summary["diagnostic"]["n_people"] == 2  # scored without the rules, to show why
    people = json.loads((tmp_path / "r.json").read_text())["people"]
    assert all("at least 2 rated episodes" in p["calibration"] for p in people)
    assert all(p["n_low"] == 1 and p["n_high"] == 4 for p in people)


@pytest.mark.slow
def test_wrist_only_valence_without_arousal_does_not_calibrate(tmp_path: Path) -> None:
    """Calm unpleasant meditations vs calm pleasant baseline look the same on a wrist here
    (the generator's valence acts on EEG only): the method must not claim a calibration."""
    root = write_wesad_layout(tmp_path / "W", 3, calm_unpleasant=True)
    frame, recordings, settings = build_features("wesad-e4", root)
    report = evaluate_personal_valence(frame, recordings, settings.window)
    assert report["calibration"]["n_people"] == 3  # the rules are met...
    assert report["calibration"]["n_calibrated"] == 0  # ...and nothing passes as calibrated


@pytest.mark.slow
def test_synthetic_valence_with_eeg_calibrates_and_shuffled_ratings_mostly_do_not() -> None:
    from affectstream.models.synthetic import synthetic_recordings

    recordings = synthetic_recordings(3, duration=1200.0, baseline_seconds=240.0)
    frame, recordings, settings = build_features("synthetic", "", recordings=recordings)
    report = evaluate_personal_valence(frame, recordings, settings.window)
    calibration = report["calibration"]
    assert calibration["n_calibrated"] == calibration["n_people"] == 3
    assert calibration["mae"] < calibration["mae_own_mean"]
    assert calibration["mae_margin_ci95_over_people"][1] < 0
    assert report["chance"]["shuffled_fits"] == 15
    assert report["chance"]["false_calibration_rate"] < 0.5


def test_valence_target_needs_a_dataset_with_ratings(tmp_path: Path) -> None:
    argv = ["evaluate", "--target", "valence", "--dataset", "eegmat", "--data", str(tmp_path)]
    from affectstream.cli import evaluate

    with pytest.raises(ConfigError, match="wesad-e4 or synthetic"):
        evaluate._valence(__import__("argparse").Namespace(
            dataset="eegmat", data=str(tmp_path), model=None, test_dataset=None,
            line_freq=None, subjects=None, report=None, json=True))  # fmt: skip
    assert main(argv) != 0


def test_negative_shuffle_count_is_refused_in_one_line() -> None:
    from affectstream.cli import evaluate

    with pytest.raises(ConfigError, match="--shuffles must be 0 or more"):
        evaluate._valence(__import__("argparse").Namespace(
            dataset="synthetic", data="none", model=None, test_dataset=None,
            line_freq=None, subjects=None, report=None, json=True, shuffles=-1))  # fmt: skip
