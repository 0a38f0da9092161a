"""Raw recordings → the signal layer's features → models, and the CLI around them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from affectstream.cli import main
from affectstream.models.bundle import load_bundle
from affectstream.models.synthetic import synthetic_recordings
from affectstream.models.training import build_features, evaluate_frame
from tests.models.conftest import write_stress_predict

MODALITIES = ("rr", "eda", "temp", "acc")


@pytest.mark.slow
@pytest.mark.parametrize("effect", [1.0, 0.0])
def test_generator_knob_sets_what_the_signal_layer_and_models_recover(effect: float) -> None:
    recordings = synthetic_recordings(
        5, seed=40, duration=840.0, arousal_effect=effect, modalities=MODALITIES
    )
    frame, _, settings = build_features("synthetic", "", recordings=recordings)
    assert {"hrv_mean_hr", "eda_tonic_mean", "temp_mean"} <= set(frame.columns)
    report = evaluate_frame(frame, settings, kinds=("lightgbm",), chance=False)
    if effect:
        # +14 bpm, -45 % beat-to-beat variability, +25 % tonic EDA, 3x SCR rate.
        assert report["balanced_accuracy"] > 0.8
    else:
        assert abs(report["balanced_accuracy"] - 0.5) < 0.12


def _last_json(text: str) -> dict[str, object]:
    return json.loads(text.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.mark.slow
def test_train_then_score_the_bundle_on_other_participants(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Scored windows start after the 480-s reference period: alternate 120-s blocks there.
    train_dir = write_stress_predict(
        tmp_path / "train", {"S02": 2, "S03": 3, "S04": 4}, seconds=720, block_seconds=120
    )
    other_dir = write_stress_predict(
        tmp_path / "other", {"S05": 5, "S06": 6}, seconds=720, block_seconds=120
    )
    out = tmp_path / "bundle"
    code = main(
        [
            "train",
            "--dataset",
            "stress-predict",
            "--data",
            str(train_dir),
            "--out",
            str(out),
            "--line-freq",
            "60",
            "--json",
        ]
    )
    assert code == 0
    trained = _last_json(capsys.readouterr().out)
    assert trained["n_subjects"] == 3 and trained["cv"] == "leave-one-subject-out"
    card = (out / "MODEL_CARD.md").read_text()
    assert "leave-one-subject-out" in card and f"--out {out}" in card
    # The card carries the as-live score, both baselines, intervals and margins.
    for text in ("| as live | lightgbm |", "protocol_clock", "one_feature", "95 % CI", "Margins"):
        assert text in card
    bundle = load_bundle(out)
    assert bundle.meta["provenance"]["subjects"] == ["S02", "S03", "S04"]
    assert bundle.meta["window"]["line_freq"] == 60.0  # --line-freq reaches the bundle
    code = main(
        [
            "evaluate",
            "--model",
            str(out),
            "--dataset",
            "stress-predict",
            "--data",
            str(other_dir),
            "--json",
            "--plot",
            str(tmp_path / "plot.png"),
        ]
    )
    assert code == 0
    scored = _last_json(capsys.readouterr().out)
    for key in ("balanced_accuracy", "macro_f1", "auroc", "n_subjects", "n_windows"):
        assert key in scored
    assert scored["n_subjects"] == 2
    assert scored["trained_on_scored_subjects"] == []
    live = scored["baselines"]["as_live"]
    assert {"lightgbm", "svm", "protocol_clock", "one_feature"} <= set(live)
    assert "lightgbm-protocol_clock" in scored["baselines"]["margins_as_live"]
    assert (tmp_path / "plot.png").stat().st_size > 0


def test_cli_error_for_a_missing_dataset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["evaluate", "--dataset", "stress-predict", "--data", str(tmp_path), "--json"])
    assert code == 2
    assert "No stress-predict dataset" in capsys.readouterr().err
