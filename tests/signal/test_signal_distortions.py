"""Quality flags catch what they claim, on recordings distorted in known ways (issue 12).

An EDA electrode toggling by ±0.05 µS makes dozens of "SCRs" a minute at quality 1.0 unless
the SCR rate is checked; EDA stuck at one value plus 0.001 µS of noise passes unless a
variance floor is checked; EEG hard-clipped at ±10 µV passes unless clipping is. Each case is
checked on synthetic data and, when ../shared/data is there, on real recordings (Empatica E4
EDA from Stress-Predict, clinical EEG from eegmat); the undistorted recordings keep their
quality.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from affectstream.io import load_recording, read_recording
from affectstream.io.montage import to_muse_montage
from affectstream.signal import WindowConfig, extract_features
from affectstream.signal.eda import MAX_SCR_RATE
from affectstream.signal.synthetic import synthetic_eda, synthetic_eeg
from affectstream.types import SampleBlock


def replaced(block: SampleBlock, values: np.ndarray) -> SampleBlock:
    return SampleBlock(
        stream=block.stream, modality=block.modality, channels=block.channels, unit=block.unit,
        sfreq=block.sfreq, t=block.t, values=values, index=block.index,
    )  # fmt: skip


def toggled(block: SampleBlock, freq: float, amplitude: float = 0.05) -> SampleBlock:
    """``block`` plus a square wave of ±``amplitude`` µS at ``freq`` Hz (a loose contact)."""
    phase = np.floor(2 * freq * (block.t - block.t[0])) % 2
    return replaced(block, block.values + amplitude * np.where(phase == 0, 1.0, -1.0)[:, None])


def check_toggle(eda: SampleBlock, freq: float) -> None:
    config = WindowConfig()
    clean = extract_features([eda], config)
    assert (clean["quality_eda"] > 0.9).all()
    assert clean["eda_scr_rate"].max() <= MAX_SCR_RATE
    bad = extract_features([toggled(eda, freq)], config)
    assert (bad["quality_eda"] == 0.0).all()
    assert bad["eda_scr_rate"].isna().all()  # no SCR numbers from a toggling contact


def test_toggling_eda_contact_on_synthetic_eda() -> None:
    values, _, _ = synthetic_eda(600.0, 32.0, np.random.default_rng(4))
    eda = SampleBlock.regular("band/eda", "eda", ("eda",), values, 32.0, 1e9)
    check_toggle(eda, 2.0)  # (at 4 Hz the 3-Hz cleaning low-pass leaves it below 0.05 µS)


@pytest.mark.shared_data
def test_toggling_eda_contact_on_real_e4_eda(shared_data: Path) -> None:
    recording = load_recording(shared_data / "stress-predict" / "Raw_data" / "S05")
    eda = next(b for b in recording.blocks if b.modality == "eda")
    first_20_minutes = slice(0, 1200 * 4)
    eda = SampleBlock(
        stream=eda.stream, modality="eda", channels=eda.channels, unit=eda.unit, sfreq=4.0,
        t=eda.t[first_20_minutes], values=eda.values[first_20_minutes],
        index=eda.index[first_20_minutes],
    )  # fmt: skip
    check_toggle(eda, 1.0)  # at 4 Hz sampling: one sample up, one down, ... per second


def check_clipping(eeg: SampleBlock) -> None:
    config = WindowConfig(window=10.0, step=2.0)
    clean = extract_features([eeg], config)
    assert clean["quality_eeg"].mean() > 0.99
    rails = np.clip(eeg.values, -10.0, 10.0)
    assert np.mean(np.abs(rails) == 10.0) > 0.1  # a real share of the samples is clipped
    clipped = extract_features([replaced(eeg, rails)], config)
    assert clipped["quality_eeg"].mean() < 0.2


def test_clipped_eeg_on_synthetic_eeg() -> None:
    values = synthetic_eeg(60.0, 256.0, (6.0, 5.0, 10.0, 6.0), np.random.default_rng(5))
    eeg = SampleBlock.regular("m/eeg", "eeg", ("TP9", "AF7", "AF8", "TP10"), values, 256.0, 1e9)
    check_clipping(eeg)


@pytest.mark.shared_data
def test_clipped_eeg_on_real_eeg(shared_data: Path) -> None:
    path = shared_data / "eegmat" / "data" / "Subject03_1.edf"
    mapped = to_muse_montage(next(b for b in read_recording(path) if b.modality == "eeg"))
    assert mapped is not None
    check_clipping(mapped)


def frozen(block: SampleBlock, noise: float = 0.001, seed: int = 0) -> SampleBlock:
    """``block`` stuck at its first value, plus ``noise`` µS of Gaussian sensor noise."""
    rng = np.random.default_rng(seed)
    values = block.values[0] + rng.normal(0.0, noise, block.values.shape)
    return replaced(block, values)


def _first_minutes(blocks: list[SampleBlock], minutes: int) -> SampleBlock:
    """The first ``minutes`` of the 4-Hz E4 EDA block among ``blocks``."""
    eda = next(b for b in blocks if b.modality == "eda")
    first = slice(0, minutes * 60 * 4)
    return SampleBlock(
        stream=eda.stream, modality="eda", channels=eda.channels, unit=eda.unit, sfreq=4.0,
        t=eda.t[first], values=eda.values[first], index=eda.index[first],
    )  # fmt: skip


def check_frozen(eda: SampleBlock) -> None:
    config = WindowConfig()
    clean = extract_features([eda], config)
    assert (clean["quality_eda"] > 0.9).all()
    bad = extract_features([frozen(eda)], config)
    assert (bad["quality_eda"] == 0.0).all()
    assert bad["eda_tonic_mean"].isna().all()  # no tonic level from a stuck reading


def test_frozen_eda_on_synthetic_eda() -> None:
    values, _, _ = synthetic_eda(300.0, 32.0, np.random.default_rng(6))
    check_frozen(SampleBlock.regular("band/eda", "eda", ("eda",), values, 32.0, 1e9))


@pytest.mark.shared_data
def test_frozen_eda_on_real_e4_eda(shared_data: Path) -> None:
    recording = load_recording(shared_data / "stress-predict" / "Raw_data" / "S12")
    check_frozen(_first_minutes(recording.blocks, 10))


@pytest.mark.shared_data
def test_real_eda_stable_within_the_e4_resolution_is_usable_and_its_frozen_copy_is_not(
    shared_data: Path,
) -> None:
    # S08's E4 skin conductance holds within one or two 0.0009-µS steps for minutes at a
    # time: a real, stable level (its raw values repeat), which the flat rule rejected.
    recording = load_recording(shared_data / "stress-predict" / "Raw_data" / "S08")
    eda = _first_minutes(recording.blocks, 15)
    config = WindowConfig(window=60.0, step=60.0)
    rows = extract_features([eda], config)
    raw = eda.values[:, 0]
    ends = ((rows["t_end"].to_numpy() - float(eda.t[0])) * 4.0).round().astype(int)
    stable = [i for i, end in enumerate(ends) if np.std(raw[end - 240 : end], ddof=1) < 0.0015]
    assert len(stable) >= 3  # the input has such windows
    assert rows["usable_eda"].iloc[stable].all()
    bad = extract_features([frozen(eda)], config)
    assert (bad["quality_eda"] == 0.0).all()
