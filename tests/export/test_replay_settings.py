"""Replay reproduces a session: its recorded windows, model and mains frequency; the mains
frequency is detected when not given; a model whose EEG channels are absent is refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from affectstream.cli import main
from affectstream.io import read_recording
from affectstream.io.montage import model_channels_missing, to_muse_montage
from affectstream.models.datasets import MUSE_FROM_1020
from affectstream.signal.mains import detect_line_freq
from affectstream.types import SampleBlock

from .test_layouts import ms_rounded_times, muse_eeg, write_muselsl


def last_json(capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def with_line(block: SampleBlock, freq: float, amplitude: float) -> SampleBlock:
    """``block`` with a mains sine of ``amplitude`` µV added to every channel."""
    line = amplitude * np.sin(2 * np.pi * freq * (block.t - block.t[0]))
    return SampleBlock(
        stream=block.stream, modality=block.modality, channels=block.channels,
        unit=block.unit, sfreq=block.sfreq, t=block.t, values=block.values + line[:, None],
        index=block.index, gaps=block.gaps, device=block.device,
    )  # fmt: skip


def test_line_frequency_is_detected_from_the_spectrum() -> None:
    eeg = SampleBlock.regular("m/eeg", "eeg", ("TP9", "AF7", "AF8", "TP10"), muse_eeg(60.0),
                              256.0, 1e9)  # fmt: skip
    assert detect_line_freq([eeg]) is None  # clean: nothing to tell
    assert detect_line_freq([with_line(eeg, 60.0, 17.0)]) == 60.0
    assert detect_line_freq([with_line(eeg, 50.0, 17.0)]) == 50.0
    eda = SampleBlock.regular("e/eda", "eda", ("eda",), np.ones(400), 4.0, 1e9)
    assert detect_line_freq([eda]) is None  # no ECG/EEG: no spectrum to read


@pytest.mark.shared_data
def test_line_frequency_on_real_eeg_with_a_known_line(shared_data: Path) -> None:
    path = shared_data / "eegmat" / "data" / "Subject03_1.edf"
    eeg = next(b for b in read_recording(path) if b.modality == "eeg")
    for freq in (50.0, 60.0):
        assert detect_line_freq([with_line(eeg, freq, 17.0)]) == freq


def test_stored_session_replays_with_its_own_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Saved with 20-s windows, 60 Hz and no model; replayed by id with no flags: the same."""
    eeg = muse_eeg(50.0, seed=7)
    times = ms_rounded_times(len(eeg))
    eeg = eeg + 17.0 * np.sin(2 * np.pi * 60.0 * (times - times[0]))[:, None]
    path = tmp_path / "muse.csv"
    write_muselsl(path, eeg, times)
    store = str(tmp_path / "store")
    first_rows = tmp_path / "first.csv"
    assert main(["replay", str(path), "--store", store, "--save", "--session-id", "s1",
                 "--window", "20", "--step", "5", "--model", "none", "--no-progress", "--json",
                 "--out", str(first_rows)]) == 0  # fmt: skip
    first = last_json(capsys)
    assert first["line_freq"] == 60.0  # detected: the file has a 60 Hz line
    assert (first["window_s"], first["step_s"], first["model"]) == (20.0, 5.0, None)
    again_rows = tmp_path / "again.csv"
    assert main(["replay", "s1", "--store", store, "--no-progress", "--json",
                 "--out", str(again_rows)]) == 0  # fmt: skip
    again = last_json(capsys)
    assert again["source_kind"] == "session"
    assert (again["window_s"], again["step_s"], again["line_freq"]) == (20.0, 5.0, 60.0)
    assert again["model"] is None and again["n_estimates"] == 0
    assert again["n_feature_rows"] == first["n_feature_rows"] == (50 - 20) // 5 + 1
    a, b = pd.read_csv(first_rows), pd.read_csv(again_rows)
    features = [c for c in a if c.startswith("eeg_")]
    np.testing.assert_allclose(b[features], a[features], rtol=1e-9)


def test_montage_mapping_is_the_eegmat_loaders() -> None:
    names = sorted({n for group in MUSE_FROM_1020.values() for n in group} | {"Cz", "O1"})
    rng = np.random.default_rng(2)
    values = rng.normal(0, 10.0, (512, len(names)))
    block = SampleBlock.regular("x/eeg", "eeg", [f"EEG {n}" for n in names], values, 256.0, 1e9)
    mapped = to_muse_montage(block)
    assert mapped is not None and mapped.channels == tuple(MUSE_FROM_1020)
    column = {n: values[:, i] for i, n in enumerate(names)}
    for i, group in enumerate(MUSE_FROM_1020.values()):
        np.testing.assert_allclose(mapped.values[:, i], np.mean([column[n] for n in group], 0))
    assert model_channels_missing(["eeg_alpha_abs_af7", "hrv_rmssd"], [block]) == ["af7"]
    assert model_channels_missing(["eeg_alpha_abs_af7", "eeg_faa"], [mapped]) == []
    no_t6 = SampleBlock.regular("x/eeg", "eeg", ["Fp1", "F7", "Fp2", "F8", "T5"],
                                values[:, :5], 256.0, 1e9)  # fmt: skip
    assert to_muse_montage(no_t6) is None


@pytest.mark.shared_data
def test_eegmat_replays_through_the_eeg_model_on_mapped_channels(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = shared_data / "eegmat" / "data" / "Subject00_2.edf"
    rows = tmp_path / "rows.csv"
    assert main(["replay", str(path), "--no-progress", "--json", "--out", str(rows)]) == 0
    summary = last_json(capsys)
    assert summary["model"] == "eeg-workload@0.1.0" and summary["n_estimates"] > 0
    assert any("mapped to the Muse positions" in w for w in summary["warnings"])  # type: ignore[union-attr]
    arousal = pd.read_csv(rows)["arousal"].dropna()
    # Before the mapping every window got the same 0.003771 (the model saw no channel).
    assert arousal.nunique() > len(arousal) // 2
    assert {"eeg_alpha_abs_af7", "eeg_alpha_abs_tp10"} <= set(pd.read_csv(rows).columns)


def test_model_with_absent_channels_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.normal(0, 15.0, (256 * 30, 2)), columns=["eeg_fz", "eeg_cz"])
    frame.insert(0, "time", 1e9 + np.arange(len(frame)) / 256.0)
    path = tmp_path / "fz-cz.csv"
    frame.to_csv(path, index=False)
    assert main(["replay", str(path), "--model", "eeg-workload", "--no-progress", "--json"]) == 2
    err = capsys.readouterr().err
    assert "Refusing to score" in err and "['af7', 'af8', 'tp10', 'tp9']" in err
    # Without --model: features only, and the summary says why.
    assert main(["replay", str(path), "--window", "10", "--no-progress", "--json"]) == 0
    summary = last_json(capsys)
    assert summary["n_estimates"] == 0 and summary["n_feature_rows"] > 0
    assert any("does not have" in w for w in summary["warnings"])  # type: ignore[union-attr]


def test_replay_of_data_no_model_reads_is_features_only_and_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Skin temperature alone feeds no shipped arousal bundle: no model runs (not the best
    of those at 0 % coverage), the features are still computed, and one warning says why."""
    from affectstream.runtime.estimator import features_only_note

    seconds, rate = 120.0, 4.0
    t = 1e9 + np.arange(int(seconds * rate)) / rate
    path = tmp_path / "temp.csv"
    pd.DataFrame({"time": t, "temp": 33.0 + 0.01 * np.sin(t / 30.0)}).to_csv(path, index=False)
    assert main(["replay", str(path), "--no-progress", "--json"]) == 0
    summary = last_json(capsys)
    assert summary["model"] is None and summary["n_estimates"] == 0
    assert summary["n_feature_rows"]
    assert summary["warnings"] == [features_only_note({"temp"})]
