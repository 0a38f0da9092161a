"""Non-EEG (WFDB) and WESAD E4 + questionnaire loaders on files written here, and
cross-protocol evaluation on them."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from affectstream.errors import ConfigError
from affectstream.models.crossprotocol import (
    cross_protocol,
    shared_features,
    to_common_rate,
)
from affectstream.models.features import recording_features
from affectstream.models.synthetic import synthetic_feature_frame
from affectstream.models.wrist_protocols import (
    load_noneeg,
    load_wesad_e4,
    noneeg_phases,
    read_wesad_quest,
)
from affectstream.signal import WindowConfig
from tests.models.conftest import E4_START, write_e4_subject

#: (phase, seconds): the Non-EEG order, shortened; the 30-s emotional cue is a cue.
PHASES = (
    ("Relax", 300),
    ("PhysicalStress", 120),
    ("Relax", 180),
    ("EmotionalStress", 30),
    ("CognitiveStress", 180),
    ("Relax", 180),
)


def write_noneeg(root: Path, subject: str = "Subject1") -> Path:
    """Write SubjectN_AccTempEDA (8 Hz, with .atr phases) and SubjectN_SpO2HR (1 Hz)."""
    import wfdb

    root.mkdir(parents=True, exist_ok=True)
    fs = 8
    seconds = sum(d for _, d in PHASES)
    n = seconds * fs
    eda = np.concatenate([np.full(d * fs, 2.0 if p == "Relax" else 4.0) for p, d in PHASES])
    signal = np.column_stack(
        [np.zeros(n), np.zeros(n), np.ones(n), np.full(n, 33.0), eda]
    )  # ax, ay, az (g), temp (°C), EDA (µS)
    wfdb.wrsamp(
        f"{subject}_AccTempEDA",
        fs=fs,
        units=["g", "g", "g", "degC", "uS"],
        sig_name=["ax", "ay", "az", "temp", "EDA"],
        p_signal=signal,
        fmt=["16"] * 5,
        adc_gain=[100.0] * 5,
        baseline=[0] * 5,
        write_dir=str(root),
    )
    starts = np.cumsum([0, *[d for _, d in PHASES[:-1]]]) * fs
    wfdb.wrann(
        f"{subject}_AccTempEDA",
        "atr",
        sample=(starts + 1).astype(np.int64),
        symbol=['"'] * len(PHASES),
        aux_note=[p for p, _ in PHASES],
        write_dir=str(root),
    )
    pulse = np.column_stack([np.full(seconds, 98.0), np.full(seconds, 70.0)])
    wfdb.wrsamp(
        f"{subject}_SpO2HR",
        fs=1,
        units=["%", "bpm"],
        sig_name=["SpO2", "hr"],
        p_signal=pulse,
        fmt=["16"] * 2,
        adc_gain=[10.0] * 2,
        baseline=[0] * 2,
        write_dir=str(root),
    )
    return root


def test_noneeg_loader_reads_streams_in_units_and_maps_phases(tmp_path: Path) -> None:
    root = write_noneeg(tmp_path / "noneeg")
    (rec,) = load_noneeg(root)
    blocks = {b.modality: b for b in rec.blocks}
    assert set(blocks) == {"eda", "temp", "acc", "hr"}
    assert blocks["eda"].sfreq == 8.0 and blocks["hr"].sfreq == 1.0
    np.testing.assert_allclose(blocks["temp"].values, 33.0, atol=1e-3)
    np.testing.assert_allclose(blocks["acc"].values[:, 2], 1.0, atol=1e-3)
    labels = rec.labels
    by_phase = dict(zip(labels["phase"], labels["arousal"], strict=False))
    assert by_phase["CognitiveStress"] == 1.0 and by_phase["Relax"] == 0.0
    assert np.isnan(by_phase["PhysicalStress"])  # movement, not psychological stress
    # The 30-s emotional cue is shorter than a condition: unscored.
    assert np.isnan(labels.loc[labels["phase"] == "EmotionalStress", "arousal"]).all()
    assert labels["t"].iloc[-1] - labels["t"].iloc[0] == pytest.approx(
        sum(d for _, d in PHASES), abs=0.2
    )


def test_noneeg_phases_reject_unknown_names() -> None:
    with pytest.raises(ConfigError, match="Unknown Non-EEG phase"):
        noneeg_phases([0, 80], ["Relax", "Sleep"], 8.0, 1000)


def test_noneeg_missing_folder_says_what_to_pass(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--data"):
        load_noneeg(tmp_path)


QUEST = """# Subj;S2;;;;;;;
# ORDER;Base;TSST;Medi 1;Fun;Medi 2;sRead;fRead;bRead
# START;1.00;4.30;8.00;9.00;10.30;11.00;11.30;12.00
# END;4.00;7.30;9.00;10.30;11.00;11.30;12.00;12.30
;;;;;;;;
# PANAS;1;2;3;4
# DIM;7;2;;;;;;
# DIM;3;8;;;;;;
# DIM;6;3;;;;;;
# DIM;8;5;;;;;;
# DIM;5;2;;;;;;
"""


def write_wesad_e4(root: Path, subject: str = "S2", seconds: int = 800) -> Path:
    """Write SX/SX_E4_Data/*.csv (E4 export) and SX/SX_quest.csv as WESAD distributes them."""
    tmp = write_e4_subject(root / "_tmp", f"{subject}_E4_Data", seconds=seconds)
    folder = root / subject
    folder.mkdir(parents=True)
    shutil.move(str(tmp), str(folder / f"{subject}_E4_Data"))
    shutil.rmtree(root / "_tmp")
    (folder / f"{subject}_quest.csv").write_text(QUEST)
    return root


def test_wesad_quest_reads_minutes_seconds_and_sam_per_condition(tmp_path: Path) -> None:
    root = write_wesad_e4(tmp_path / "WESAD")
    quest = read_wesad_quest(root / "S2" / "S2_quest.csv").set_index("condition")
    assert quest.loc["TSST", "start"] == 4 * 60 + 30 and quest.loc["TSST", "end"] == 7 * 60 + 30
    # DIM rows follow ORDER without the reading tasks: Base, TSST, Medi 1, Fun, Medi 2.
    assert quest.loc["Fun", "sam_valence"] == 8 and quest.loc["Medi 2", "sam_valence"] == 5
    assert np.isnan(quest.loc["sRead", "sam_valence"])


def test_wesad_e4_loader_labels_windows_from_the_questionnaire(tmp_path: Path) -> None:
    root = write_wesad_e4(tmp_path / "WESAD")
    (rec,) = load_wesad_e4(root)
    assert {b.modality for b in rec.blocks} >= {"eda", "ppg", "temp", "acc", "hr", "rr"}
    frame = recording_features(
        [rec], config=WindowConfig(60.0, 30.0), baseline_seconds=0.0, modalities=("eda",)
    )
    t = frame["t_end"].to_numpy() - E4_START
    arousal = frame["arousal"].to_numpy()
    valence = frame["valence"].to_numpy()
    in_base = (t > 60 + 60) & (t <= 240)
    in_tsst = (t > 270 + 60) & (t <= 450)
    in_fun = (t >= 540 + 60) & (t <= 630)
    assert in_base.any() and in_tsst.any() and in_fun.any()
    assert (arousal[in_base] == 0).all() and (arousal[in_tsst] == 1).all()
    assert np.isnan(arousal[in_fun]).all()  # amusement: not an arousal contrast here
    assert (valence[in_base] == 1).all() and (valence[in_tsst] == 0).all()
    assert (valence[in_fun] == 1).all()


def test_wesad_quest_rejects_impossible_seconds(tmp_path: Path) -> None:
    root = write_wesad_e4(tmp_path / "WESAD")
    path = root / "S2" / "S2_quest.csv"
    path.write_text(QUEST.replace("4.30;8.00", "4.75;8.00"))
    with pytest.raises(ConfigError, match=r"minutes\.seconds"):
        read_wesad_quest(path)


def test_common_rate_averages_8_hz_eda_to_4_hz(tmp_path: Path) -> None:
    (rec,) = load_noneeg(write_noneeg(tmp_path / "noneeg"))
    (slow,) = to_common_rate([rec], 4.0)
    before = {b.modality: b for b in rec.blocks}
    after = {b.modality: b for b in slow.blocks}
    assert after["eda"].sfreq == 4.0 and len(after["eda"]) == len(before["eda"]) // 2
    np.testing.assert_allclose(
        after["eda"].values[:, 0], before["eda"].values[:, 0].reshape(-1, 2).mean(axis=1)
    )
    assert after["acc"] is before["acc"] and after["hr"] is before["hr"]


def test_cross_protocol_uses_shared_features_and_reports_baselines() -> None:
    a = synthetic_feature_frame(6, 80, seed=1, arousal_effect=2.0)
    b = synthetic_feature_frame(5, 80, seed=2, arousal_effect=2.0).drop(
        columns=["hrv_mean_hr", "hrv_rmssd"]
    )  # the second device has no HRV
    features = shared_features(a, b)
    assert "hrv_mean_hr" not in features and "eda_tonic_mean" in features
    result = cross_protocol(a, b, normalization="baseline")
    assert result["features"] == features
    assert result["test_subjects"] == sorted(set(b["subject"]))
    # The effect is in EDA on both sides: it carries across.
    assert result["auroc"] > 0.75
    assert {"lightgbm", "svm", "protocol_clock", "one_feature"} <= set(
        result["baselines"]["as_live"]
    )


def write_two_protocols(root: Path) -> tuple[Path, Path]:
    """Three Stress-Predict and three Non-EEG participants in their layouts (small)."""
    from tests.models.conftest import write_stress_predict

    noneeg = root / "noneeg"
    for subject in ("Subject1", "Subject2", "Subject3"):
        write_noneeg(noneeg, subject)
    stress = write_stress_predict(
        root / "sp", {"S02": 2, "S03": 3, "S04": 4}, seconds=960, block_seconds=120
    )
    return stress, noneeg


def test_cross_protocol_command_runs_both_directions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from affectstream.cli import main

    stress, noneeg = write_two_protocols(tmp_path)
    argv = ["evaluate", "--dataset", "stress-predict", "--data", str(stress)]
    argv += ["--test-dataset", "noneeg", "--test-data", str(noneeg)]
    argv += ["--cache-dir", str(tmp_path / "cache"), "--report", str(tmp_path / "r.json"), "--json"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["mode"] == "cross-protocol"
    assert {"stress-predict->noneeg", "noneeg->stress-predict"} <= set(summary)
    assert summary["stress-predict->noneeg"]["n_subjects"] == 3
    assert "hr_mean" in summary["features"] and not any(
        f.startswith("hrv_") for f in summary["features"]
    )
    assert set(summary["pooled"]) == {"stress-predict", "noneeg"}
    assert summary["pooled"]["noneeg"]["n_subjects"] == 3
    assert list((tmp_path / "cache").glob("*.parquet"))  # a second run reads these
    assert main(argv) == 0


def test_cross_protocol_without_test_data_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from affectstream.cli import main

    argv = ["evaluate", "--dataset", "stress-predict", "--data", str(tmp_path)]
    assert main([*argv, "--test-dataset", "noneeg"]) == 2
    assert "--test-data" in capsys.readouterr().err
