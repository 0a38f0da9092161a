"""Loaders on small files of each layout, written by the tests (and on the real data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from affectstream.errors import ConfigError
from affectstream.models.datasets import (
    DEAP_CHANNELS,
    DEAP_MUSE,
    MUSE_FROM_1020,
    load_dataset,
    load_deap,
    load_eegmat,
    load_stress_predict,
    load_wesad,
)
from tests.models.conftest import (
    E4_START,
    write_deap_file,
    write_e4_subject,
    write_stress_predict,
    write_wesad_pickle,
)


def _block(recording, modality):  # type: ignore[no-untyped-def]
    return next(b for b in recording.blocks if b.modality == modality)


def test_stress_predict_units_times_and_labels(stress_predict_dir: Path) -> None:
    recordings = load_stress_predict(stress_predict_dir)
    assert [r.subject for r in recordings] == ["S02", "S03"]
    rec = recordings[0]
    acc = _block(rec, "acc")
    assert acc.unit == "g"
    np.testing.assert_allclose(acc.values[:, 2], 1.0)  # 64 counts of 1/64 g
    eda = _block(rec, "eda")
    assert eda.sfreq == 4.0 and eda.t[0] == E4_START
    np.testing.assert_allclose(eda.t[4], E4_START + 1.0)
    rr = _block(rec, "rr")
    assert rr.sfreq is None and rr.unit == "ms"
    np.testing.assert_allclose(rr.values[:, 0], 800.0)  # 0.8 s intervals
    np.testing.assert_allclose(rr.t[0], E4_START + 1.0)
    labels = rec.labels
    stress_times = labels.loc[labels["arousal"] == 1, "t"]
    assert stress_times.min() == E4_START + 60  # the writer labels the second half as stress


def test_stress_predict_accepts_parent_folder(stress_predict_dir: Path) -> None:
    recordings = load_dataset("stress-predict", stress_predict_dir.parent, ["S03"])
    assert [r.subject for r in recordings] == ["S03"]


def test_stress_predict_unknown_subject_names_available(stress_predict_dir: Path) -> None:
    with pytest.raises(ConfigError, match="S02, S03"):
        load_stress_predict(stress_predict_dir, ["S99"])


def test_unknown_subject_is_refused_before_any_file_is_read(tmp_path: Path) -> None:
    write_deap_file(tmp_path, "s01", trials=1, seconds=4)
    # s01 would need trust_pickle=True; the unknown s07 is named first, with what is there.
    with pytest.raises(ConfigError, match=r"DEAP subject 's07' not found .*available: s01\."):
        load_deap(tmp_path, ["s01", "s07"])


def test_stress_predict_missing_file(stress_predict_dir: Path) -> None:
    (stress_predict_dir / "Raw_data" / "S02" / "TEMP.csv").unlink()
    with pytest.raises(ConfigError, match=r"Missing E4 file .*TEMP\.csv"):
        load_stress_predict(stress_predict_dir, ["S02"])


@pytest.mark.parametrize(
    "content, message",
    [
        ("1644227574.0\n", "has 1 rows"),
        ("1644227574.0\n4.0\nabc\n", "Corrupt E4 file"),
        ("12.0\n4.0\n1.0\n", "expected a Unix time"),
        # Two columns where EDA has one channel.
        (
            "1644227574.0, 1644227574.0\n4.0, 4.0\n1.0, 2.0\n",
            r"EDA\.csv' has 2 column\(s\); expected 1 \(eda\)",
        ),
    ],
)
def test_stress_predict_corrupt_file(stress_predict_dir: Path, content: str, message: str) -> None:
    (stress_predict_dir / "Raw_data" / "S02" / "EDA.csv").write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_stress_predict(stress_predict_dir, ["S02"])


def test_stress_predict_without_labels_gives_empty_label_frame(tmp_path: Path) -> None:
    root = write_stress_predict(tmp_path / "sp", {"S02": 2})
    write_e4_subject(root, "S01")
    rec = load_stress_predict(root, ["S01"])[0]
    assert rec.labels.empty


def test_not_a_dataset_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="No stress-predict dataset"):
        load_stress_predict(tmp_path)


def _write_edf(path: Path, seconds: float, sfreq: float = 128.0) -> dict[str, np.ndarray]:
    import mne

    names = ["Fp1", "Fp2", "F7", "F8", "T5", "T6", "Cz"]
    rng = np.random.default_rng(1)
    n = int(seconds * sfreq)
    data_uv = rng.normal(0.0, 20.0, (len(names), n))
    info = mne.create_info([f"EEG {c}" for c in names], sfreq, "eeg")
    raw = mne.io.RawArray(data_uv * 1e-6, info, verbose="error")
    mne.export.export_raw(path, raw, fmt="edf", verbose="error")
    return dict(zip(names, data_uv, strict=True))


def test_eegmat_muse_like_channels_in_microvolts(tmp_path: Path) -> None:
    data = tmp_path / "eegmat" / "data"
    data.mkdir(parents=True)
    rest = _write_edf(data / "Subject00_1.edf", 30.0)
    _write_edf(data / "Subject00_2.edf", 12.0)
    recordings = load_eegmat(tmp_path)
    assert [(r.subject, r.session) for r in recordings] == [
        ("Subject00", "rest"),
        ("Subject00", "arithmetic"),
    ]
    eeg = recordings[0].blocks[0]
    assert eeg.channels == tuple(MUSE_FROM_1020) and eeg.unit == "µV"
    expected_af7 = (rest["Fp1"] + rest["F7"]) / 2
    # EDF stores 16-bit integers: allow one quantisation step of the exported range.
    step = (np.ptp(np.concatenate(list(rest.values())))) / 2**15
    np.testing.assert_allclose(eeg.values[:, 0], expected_af7, atol=2 * step)
    np.testing.assert_allclose(eeg.values[:, 2], rest["T5"], atol=2 * step)
    task = recordings[1]
    assert task.start > recordings[0].end  # sessions do not overlap
    assert task.labels["arousal"].iloc[0] == 1.0 and recordings[0].labels["arousal"].iloc[0] == 0.0


def test_eegmat_missing_channels(tmp_path: Path) -> None:
    import mne

    data = tmp_path / "data"
    data.mkdir()
    for k in (1, 2):
        info = mne.create_info(["EEG Cz"], 128.0, "eeg")
        raw = mne.io.RawArray(np.zeros((1, 128 * 5)), info, verbose="error")
        mne.export.export_raw(data / f"Subject01_{k}.edf", raw, fmt="edf", verbose="error")
    with pytest.raises(ConfigError, match="lacks channels"):
        load_eegmat(tmp_path)


def test_eegmat_corrupt_edf(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "Subject02_1.edf").write_bytes(b"0       not an edf header")
    (data / "Subject02_2.edf").write_bytes(b"")
    with pytest.raises(ConfigError, match="Cannot read EDF"):
        load_eegmat(tmp_path)


def test_wesad_refuses_pickles_without_trust(tmp_path: Path) -> None:
    write_wesad_pickle(tmp_path, "S2")
    with pytest.raises(ConfigError, match="trust_pickle=True"):
        load_wesad(tmp_path)


def test_wesad_layout_units_and_labels(tmp_path: Path) -> None:
    write_wesad_pickle(tmp_path, "S2", seconds=20)
    rec = load_wesad(tmp_path, trust_pickle=True)[0]
    np.testing.assert_allclose(_block(rec, "acc").values[:, 2], 1.0)
    np.testing.assert_allclose(_block(rec, "ecg").values[:, 0], 500.0)  # 0.5 mV in µV
    assert _block(rec, "ppg").sfreq == 64.0
    labels = rec.labels.dropna()
    assert labels["arousal"].tolist() == [0.0, 1.0]
    np.testing.assert_allclose(labels["t"].tolist(), [0.0, 10.0])  # change at half of 20 s


def test_wesad_corrupt_and_wrong_layout(tmp_path: Path) -> None:
    folder = tmp_path / "S3"
    folder.mkdir()
    (folder / "S3.pkl").write_bytes(b"not a pickle")
    with pytest.raises(ConfigError, match="Corrupt WESAD file"):
        load_wesad(tmp_path, trust_pickle=True)
    import pickle

    (folder / "S3.pkl").write_bytes(pickle.dumps({"label": [1]}))
    with pytest.raises(ConfigError, match="lacks 'signal'"):
        load_wesad(tmp_path, trust_pickle=True)


def test_deap_trials_channels_and_labels(tmp_path: Path) -> None:
    write_deap_file(tmp_path, "s01", trials=2, seconds=13)
    with pytest.raises(ConfigError, match="trust_pickle=True"):
        load_deap(tmp_path)
    recordings = load_deap(tmp_path, trust_pickle=True)
    assert [r.session for r in recordings] == ["trial01", "trial02"]
    eeg = _block(recordings[0], "eeg")
    index = {name: i for i, name in enumerate(DEAP_CHANNELS)}
    # Each channel holds its own index, so each Muse channel is the mean of its neighbours' indices.
    for column, group in enumerate(DEAP_MUSE.values()):
        np.testing.assert_allclose(eeg.values[:, column], np.mean([index[n] for n in group]))
    assert len(eeg) == 13 * 128  # the 3-s pre-trial segment is dropped
    first, second = recordings[0].labels, recordings[1].labels
    assert (first["valence"].iloc[0], first["arousal"].iloc[0]) == (1.0, 0.0)  # ratings 7, 3
    assert (second["valence"].iloc[0], second["arousal"].iloc[0]) == (0.0, 1.0)  # ratings 2, 8


def test_deap_wrong_shape(tmp_path: Path) -> None:
    import pickle

    (tmp_path / "s02.dat").write_bytes(
        pickle.dumps({"data": np.zeros((2, 10, 100)), "labels": np.zeros((2, 4))})
    )
    with pytest.raises(ConfigError, match="expected \\(trials, 40 channels"):
        load_deap(tmp_path, trust_pickle=True)


@pytest.mark.shared_data
def test_real_stress_predict_subject(shared_data: Path) -> None:
    rec = load_stress_predict(shared_data / "stress-predict", ["S02"])[0]
    acc = _block(rec, "acc")
    magnitude = np.linalg.norm(acc.values, axis=1)
    assert 0.8 < np.median(magnitude) < 1.2  # gravity, so counts were converted to g
    assert 20.0 < np.median(_block(rec, "temp").values) < 40.0
    assert set(rec.labels["arousal"].unique()) == {0.0, 1.0}
    assert rec.labels["t"].min() >= rec.start - 60  # labels join on the same Unix clock


@pytest.mark.shared_data
def test_real_eegmat_subject(shared_data: Path) -> None:
    rest, task = load_eegmat(shared_data / "eegmat", ["Subject00"])
    eeg = rest.blocks[0]
    assert eeg.sfreq == 500.0 and eeg.channels == ("AF7", "AF8", "TP9", "TP10")
    assert 1.0 < float(np.std(eeg.values)) < 500.0  # µV, not V
    assert task.end - task.start == pytest.approx(62.0, abs=0.1)
