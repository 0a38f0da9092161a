"""Stress-Predict loader and the Empatica E4 CSV readers it (and the E4 importer) use."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from affectstream.errors import ConfigError
from affectstream.models.recording import (
    Recording,
    _find_dataset_folder,
    _labels_frame,
    channel_block,
    select_subjects,
)
from affectstream.types import FloatArray, SampleBlock

logger = logging.getLogger(__name__)


def _read_e4_csv(path: Path) -> tuple[float, float, FloatArray]:
    """Read an Empatica E4 CSV: start time row, sampling-rate row, then samples."""
    if not path.is_file():
        raise ConfigError(f"Missing E4 file {str(path)!r}; re-extract the dataset.")
    try:
        raw = pd.read_csv(path, header=None, skipinitialspace=True, dtype=np.float64)
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ConfigError(
            f"Corrupt E4 file {str(path)!r}: expected numeric rows (start time, sampling "
            f"rate, samples) ({exc}). Re-extract the dataset."
        ) from None
    if raw.shape[0] < 3:
        raise ConfigError(
            f"E4 file {str(path)!r} has {raw.shape[0]} rows; expected a start-time row, a "
            f"sampling-rate row and samples."
        )
    head = raw.to_numpy(dtype=np.float64)
    start, rate = float(head[0, 0]), float(head[1, 0])
    if not (np.isfinite(start) and start > 1e9) or not (np.isfinite(rate) and rate > 0):
        raise ConfigError(
            f"E4 file {str(path)!r} starts with start time {start!r} and rate {rate!r}; "
            f"expected a Unix time in seconds and a positive sampling rate in Hz."
        )
    return start, rate, raw.iloc[2:].to_numpy(dtype=np.float64)


def _read_e4_ibi(path: Path, stream: str, device: str) -> SampleBlock:
    if not path.is_file():
        raise ConfigError(f"Missing E4 file {str(path)!r}; re-extract the dataset.")
    try:
        first = path.read_text().splitlines()[0]
        start = float(first.split(",")[0])
        rows = pd.read_csv(path, header=None, skiprows=1, dtype=np.float64).to_numpy()
    except pd.errors.EmptyDataError:
        rows = np.empty((0, 2))
        start = float(path.read_text().split(",")[0])
    except (ValueError, IndexError, pd.errors.ParserError) as exc:
        raise ConfigError(
            f"Corrupt E4 IBI file {str(path)!r}: expected a 'start, IBI' header then rows of "
            f"(seconds since start, interval in s) ({exc})."
        ) from None
    if rows.ndim != 2 or (rows.size and rows.shape[1] != 2):
        raise ConfigError(f"E4 IBI file {str(path)!r} must have two columns, got {rows.shape}.")
    return SampleBlock(
        stream=stream,
        modality="rr",
        channels=("rr",),
        unit="ms",
        sfreq=None,
        t=start + rows[:, 0],
        values=rows[:, 1:2] * 1000.0,
        index=np.arange(rows.shape[0], dtype=np.int64),
        device=device,
    )


def read_e4_folder(folder: Path, *, device: str = "empatica-e4") -> tuple[SampleBlock, ...]:
    """Read one Empatica E4 session export (EDA, BVP, TEMP, ACC, HR and IBI CSV files).

    Parameters
    ----------
    folder : path
        Folder holding ``EDA.csv``, ``BVP.csv``, ``TEMP.csv``, ``ACC.csv``, ``HR.csv`` and
        ``IBI.csv``.
    device : str
        Device name written into the blocks.

    Returns
    -------
    tuple of SampleBlock
        ``eda`` (µS), ``ppg`` (BVP, arbitrary units), ``temp`` (°C), ``acc`` (g, from the
        E4's 1/64 g), ``hr`` (bpm) and ``rr`` (IBI in ms, beat times as ``t``).
    """
    folder = Path(folder)
    blocks: list[SampleBlock] = []
    spec = (
        ("EDA.csv", "eda", ("eda",), 1.0),
        ("BVP.csv", "ppg", ("bvp",), 1.0),
        ("TEMP.csv", "temp", ("temp",), 1.0),
        ("ACC.csv", "acc", ("x", "y", "z"), 1.0 / 64.0),  # E4 counts are 1/64 g
        ("HR.csv", "hr", ("hr",), 1.0),
    )
    for name, modality, channels, scale in spec:
        start, rate, values = _read_e4_csv(folder / name)
        where = f"E4 file {str(folder / name)!r}"
        blocks.append(channel_block(device, modality, channels, values * scale, rate, start, where))
    blocks.append(_read_e4_ibi(folder / "IBI.csv", f"{device}/rr", device))
    return tuple(blocks)


def load_stress_predict(path: Path | str, subjects: Sequence[str] | None = None) -> list[Recording]:
    """Load Stress-Predict (Empatica E4, stress tasks vs baseline/relaxation).

    Parameters
    ----------
    path : path
        The ``stress-predict`` folder (holding ``Raw_data/`` and ``Processed_data/``) or its
        parent.
    subjects : sequence of str, optional
        Subject ids such as ``"S02"``; default all folders under ``Raw_data``.

    Returns
    -------
    list of Recording
        One per subject; ``arousal`` = 1 during stress tasks, 0 during baseline/relaxation,
        joined on Unix time from ``Processed_data/labels_hr_rsp_binary.csv``. Subjects without
        labels (S01) come with an empty label frame.
    """
    root = _find_dataset_folder(Path(path), "stress-predict", "Raw_data")
    labels_path = root / "Processed_data" / "labels_hr_rsp_binary.csv"
    if not labels_path.is_file():
        raise ConfigError(f"Missing Stress-Predict labels {str(labels_path)!r}.")
    try:
        labels = pd.read_csv(labels_path, usecols=["Participant", "Time(sec)", "Label"])
    except ValueError as exc:
        raise ConfigError(
            f"Corrupt labels file {str(labels_path)!r}: expected columns Participant, "
            f"Time(sec), Label ({exc})."
        ) from None
    available = sorted(p.name for p in (root / "Raw_data").iterdir() if p.is_dir())
    recordings = []
    for subject in select_subjects(subjects, available, "Stress-Predict", root / "Raw_data"):
        folder = root / "Raw_data" / subject
        blocks = read_e4_folder(folder)
        try:
            number = int(subject.lstrip("Ss"))
        except ValueError:
            raise ConfigError(f"Subject folder {subject!r} is not named like 'S02'.") from None
        rows = labels[labels["Participant"] == number].sort_values("Time(sec)")
        if rows.empty:
            logger.warning(
                "Stress-Predict %s has no labels; its windows will not be scored", subject
            )
        recordings.append(
            Recording(
                subject=subject,
                blocks=blocks,
                labels=_labels_frame(rows["Time(sec)"], arousal=rows["Label"]),
                dataset="stress-predict",
                files=(*sorted(str(p) for p in folder.glob("*.csv")), str(labels_path)),
            )
        )
    return recordings
