"""Real recordings (../shared/data) load and replay cleanly; skipped when they are absent."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from affectstream.io import read_recording
from affectstream.signal import WindowConfig, extract_features

from .test_replay import REPLAYED, assert_same_rows, replay_into

pytestmark = pytest.mark.shared_data
WINDOW = WindowConfig(window=30.0, step=5.0)


def expected_windows(blocks: list, window: WindowConfig) -> int:  # type: ignore[type-arg]
    """Windows that fit between the first and the last sample of the recording."""
    start = min(float(b.t[0]) for b in blocks)
    end = max(float(b.t[0]) + len(b) / b.sfreq for b in blocks)
    return math.floor((end - start - window.window) / window.step + 1e-9) + 1


def test_eegmat_edf_loads_and_replays(shared_data: Path, tmp_path: Path) -> None:
    path = shared_data / "eegmat" / "data" / "Subject00_2.edf"
    blocks = {b.modality: b for b in read_recording(path)}
    assert set(blocks) == {"eeg", "ecg"}
    eeg = blocks["eeg"]
    assert eeg.sfreq == 500.0 and len(eeg.channels) == 20 and "Fp1" in eeg.channels
    # Scalp EEG in µV: a spread of tens of µV, not volts.
    spread = np.percentile(eeg.values, 99) - np.percentile(eeg.values, 1)
    assert 5.0 < spread < 5000.0
    # Features only: the EEG as it is (a model reading Muse positions maps it first).
    replayed = replay_into(tmp_path, [eeg, blocks["ecg"]], bundle="none")
    batch = extract_features([eeg, blocks["ecg"]], WINDOW)
    assert len(batch) == expected_windows([eeg], WINDOW)
    assert_same_rows(replayed, batch)


def test_neurokit_csv_loads_and_replays(shared_data: Path, tmp_path: Path) -> None:
    path = shared_data / "neurokit" / "bio_eventrelated_100hz.csv"
    blocks = read_recording(path, sfreq=100.0, units={"ecg": "mV"})
    assert sorted(b.modality for b in blocks) == ["ecg", "eda"]
    batch = extract_features(blocks, WINDOW)
    assert len(batch) == expected_windows(blocks, WINDOW)
    assert batch["usable_hrv"].all()
    # The replay scores with stress-wrist, whose EDA features are computed at its rate.
    assert_same_rows(replay_into(tmp_path, blocks), extract_features(blocks, REPLAYED))
