"""Small files in the layouts the loaders read, written by the tests themselves."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

E4_START = 1_644_227_574.0


def write_e4_subject(
    root: Path, subject: str, *, seconds: int = 120, start: float = E4_START
) -> Path:
    """Write an Empatica E4 export (the Stress-Predict Raw_data layout) with known values."""
    folder = root / "Raw_data" / subject
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)

    def regular(name: str, rate: float, values: np.ndarray) -> None:
        values = values.reshape(len(values), -1)
        cols = values.shape[1]
        head = ", ".join([f"{start:.6f}"] * cols) + "\n" + ", ".join([f"{rate:.6f}"] * cols)
        body = "\n".join(",".join(f"{v:g}" for v in row) for row in values)
        (folder / name).write_text(head + "\n" + body + "\n")

    regular("EDA.csv", 4.0, 2.0 + 0.01 * np.arange(seconds * 4))
    regular("BVP.csv", 64.0, np.sin(2 * np.pi * 1.2 * np.arange(seconds * 64) / 64.0))
    regular("TEMP.csv", 4.0, np.full(seconds * 4, 33.5))
    acc = np.zeros((seconds * 32, 3))
    acc[:, 2] = 64.0  # 1 g in E4 counts of 1/64 g
    acc[:, 0] = rng.integers(-5, 5, seconds * 32)
    regular("ACC.csv", 32.0, acc)
    regular("HR.csv", 1.0, np.full(seconds, 72.0))
    beats = np.arange(1.0, seconds - 1, 0.8)
    ibi = "\n".join(f"{b:.6f},0.800000" for b in beats)
    (folder / "IBI.csv").write_text(f"{start:.6f}, IBI\n{ibi}\n")
    return folder


def write_stress_predict(
    root: Path, subjects: dict[str, int], *, seconds: int = 120, block_seconds: int | None = None
) -> Path:
    """Write a Stress-Predict folder: raw E4 files plus 1 Hz labels.

    Stress is the second half, or every other ``block_seconds`` block when given.
    """
    rows = ["Participant,HR,respr,Time(sec),Label"]
    for subject, number in subjects.items():
        write_e4_subject(root, subject, seconds=seconds)
        for k in range(seconds):
            stress = (k // block_seconds) % 2 if block_seconds else int(k >= seconds // 2)
            rows.append(f"{number},70,12,{int(E4_START) + k},{stress}")
    (root / "Processed_data").mkdir()
    (root / "Processed_data" / "labels_hr_rsp_binary.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture
def stress_predict_dir(tmp_path: Path) -> Path:
    return write_stress_predict(tmp_path / "stress-predict", {"S02": 2, "S03": 3})


def write_wesad_pickle(root: Path, subject: str, *, seconds: int = 20) -> Path:
    """Write a WESAD-layout pickle: signal/chest and signal/wrist dicts, 700 Hz labels."""
    folder = root / subject
    folder.mkdir(parents=True)
    labels = np.zeros(seconds * 700, dtype=int)
    labels[: seconds * 350] = 1  # baseline, then stress
    labels[seconds * 350 :] = 2
    content = {
        "subject": subject,
        "label": labels,
        "signal": {
            "chest": {
                "ECG": np.full((seconds * 700, 1), 0.5),  # mV
                "EDA": np.ones((seconds * 700, 1)),
            },
            "wrist": {
                "ACC": np.tile([0.0, 0.0, 64.0], (seconds * 32, 1)),
                "BVP": np.zeros((seconds * 64, 1)),
                "EDA": np.full((seconds * 4, 1), 3.0),
                "TEMP": np.full((seconds * 4, 1), 32.0),
            },
        },
    }
    path = folder / f"{subject}.pkl"
    path.write_bytes(pickle.dumps(content))
    return path


def write_deap_file(root: Path, subject: str, *, trials: int = 2, seconds: int = 13) -> Path:
    """Write a DEAP preprocessed-python file: data (trials, 40, samples), labels (trials, 4)."""
    root.mkdir(parents=True, exist_ok=True)
    samples = int((seconds + 3) * 128)
    data = np.zeros((trials, 40, samples))
    for ch in range(40):
        data[:, ch, :] = ch  # channel index as value: picks are checkable
    labels = np.array([[7.0, 3.0, 5.0, 5.0], [2.0, 8.0, 5.0, 5.0]])[:trials]
    path = root / f"{subject}.dat"
    path.write_bytes(pickle.dumps({"data": data, "labels": labels}))
    return path
