"""Line noise is judged after the notch, by what can reach the features (issue 12).

A 17 µV mains line that the notch removes must not make EEG unusable; a line the notch does
not remove (60 Hz mains with a 50 Hz setting) must. On synthetic EEG and, when
../shared/data is there, on real clinical EEG (eegmat).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from affectstream.io import read_recording
from affectstream.io.montage import to_muse_montage
from affectstream.signal import WindowConfig, extract_features
from affectstream.signal.synthetic import synthetic_eeg
from affectstream.types import SampleBlock


def with_line(block: SampleBlock, freq: float, amplitude: float) -> SampleBlock:
    line = amplitude * np.sin(2 * np.pi * freq * (block.t - block.t[0]) + 0.3)
    return SampleBlock(
        stream=block.stream, modality="eeg", channels=block.channels, unit=block.unit,
        sfreq=block.sfreq, t=block.t, values=block.values + line[:, None], index=block.index,
    )  # fmt: skip


def quality(frame: pd.DataFrame) -> float:
    return float(frame[[c for c in frame if c.startswith("quality_eeg")]].to_numpy().mean())


def band_change(frame: pd.DataFrame, clean: pd.DataFrame) -> float:
    """Largest relative change of an absolute band power over windows and channels.

    The first window is left out: it holds the notch's start-up transient (a causal IIR
    notch with Q 30 rings for a fraction of a second when a line starts at full amplitude).
    """
    columns = [c for c in clean if c.startswith("eeg_") and "_abs_" in c]
    ratio = frame[columns].to_numpy()[1:] / clean[columns].to_numpy()[1:]
    return float(np.max(np.abs(ratio - 1.0)))


def check_mains_rule(eeg: SampleBlock) -> None:
    at50 = WindowConfig(window=10.0, step=2.0, line_freq=50.0)
    clean = extract_features([eeg], at50)
    assert quality(clean) > 0.95
    notched = extract_features([with_line(eeg, 50.0, 17.0)], at50)
    assert quality(notched) == quality(clean)  # the notch removes it: nothing rejected
    assert band_change(notched, clean) < 1e-3  # and the features hardly see it (< 0.1 %)
    # 60 Hz mains, notch set to 50 Hz: what is left is rejected, not passed as clean.
    missed = extract_features([with_line(eeg, 60.0, 100.0)], at50)
    assert quality(missed) < 0.1
    at60 = WindowConfig(window=10.0, step=2.0, line_freq=60.0)
    right = extract_features([with_line(eeg, 60.0, 100.0)], at60)
    assert quality(right) == quality(extract_features([eeg], at60))


def test_mains_rule_on_synthetic_muse_eeg() -> None:
    rng = np.random.default_rng(8)
    values = synthetic_eeg(60.0, 256.0, (6.0, 5.0, 10.0, 6.0), rng)
    check_mains_rule(SampleBlock.regular("m/eeg", "eeg", ("TP9", "AF7", "AF8", "TP10"),
                                         values, 256.0, 1e9))  # fmt: skip


@pytest.mark.shared_data
def test_mains_rule_on_real_eeg(shared_data: Path) -> None:
    path = shared_data / "eegmat" / "data" / "Subject03_1.edf"
    eeg = next(b for b in read_recording(path) if b.modality == "eeg")
    mapped = to_muse_montage(eeg)
    assert mapped is not None
    first_minute = slice(0, 60 * 500)
    check_mains_rule(
        SampleBlock(
            stream=mapped.stream,
            modality="eeg",
            channels=mapped.channels,
            unit="µV",
            sfreq=mapped.sfreq,
            t=mapped.t[first_minute],
            values=mapped.values[first_minute],
            index=mapped.index[first_minute],
        )
    )
