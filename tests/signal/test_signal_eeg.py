"""EEG: Welch band powers from one STFT equal MNE's, asymmetry, engagement, rejection."""

from __future__ import annotations

import mne
import numpy as np
import pytest

from affectstream.errors import SignalError
from affectstream.signal import EEG_BANDS, WindowConfig, extract_features
from affectstream.signal.eeg import filter_eeg
from affectstream.signal.synthetic import synthetic_eeg
from affectstream.types import SampleBlock

T0 = 1_700_000_000.0
CHANNELS = ("TP9", "AF7", "AF8", "TP10")


def _eeg_block(
    duration: float, alpha: tuple[float, ...], seed: int, sfreq: float = 256.0
) -> SampleBlock:
    rng = np.random.default_rng(seed)
    data = synthetic_eeg(duration, sfreq, alpha, rng)
    return SampleBlock.regular("s/eeg", "eeg", CHANNELS, data, sfreq, T0)


@pytest.mark.parametrize("sfreq", [256.0, 500.0])
def test_band_powers_equal_psd_array_welch_on_the_filtered_window(sfreq: float) -> None:
    block = _eeg_block(120.0, (6.0, 5.0, 10.0, 6.0), seed=1, sfreq=sfreq)
    config = WindowConfig()
    frame = extract_features([block], config)
    filtered = filter_eeg(block, config)
    nperseg = round(2 * sfreq)
    for _, row in frame.iterrows():
        stop = round((row["t_end"] - T0) * sfreq)
        psd, freqs = mne.time_frequency.psd_array_welch(
            filtered[stop - round(60 * sfreq) : stop].T,
            sfreq,
            n_fft=nperseg,
            n_per_seg=nperseg,
            n_overlap=nperseg // 2,
            window="hann",
            verbose=False,
        )
        df = freqs[1] - freqs[0]
        total = psd[:, (freqs >= 1) & (freqs < 45)].sum(axis=1) * df
        for band, (lo, hi) in EEG_BANDS.items():
            theirs = psd[:, (freqs >= lo) & (freqs < hi)].sum(axis=1) * df
            ours = np.array([row[f"eeg_{band}_abs_{c.lower()}"] for c in CHANNELS])
            np.testing.assert_allclose(ours, theirs, rtol=1e-9)
            rel = np.array([row[f"eeg_{band}_rel_{c.lower()}"] for c in CHANNELS])
            np.testing.assert_allclose(rel, theirs / total, rtol=1e-9)


def test_frontal_alpha_asymmetry_follows_the_alpha_amplitudes() -> None:
    block = _eeg_block(90.0, (5.0, 4.0, 12.0, 5.0), seed=2)
    frame = extract_features([block])
    # sinusoid power A²/2 dominates the alpha band: ln(12²/4²) = 2.2, noise pulls it down
    assert (frame["eeg_faa"] > 1.0).all()
    assert (frame["eeg_faa"] < 2 * np.log(12 / 4) + 0.05).all()
    swapped = extract_features([block], WindowConfig(faa_channels=("AF8", "AF7")))
    np.testing.assert_allclose(swapped["eeg_faa"], -frame["eeg_faa"])


def test_engagement_is_beta_over_alpha_plus_theta() -> None:
    block = _eeg_block(90.0, (6.0, 5.0, 10.0, 6.0), seed=3)
    row = extract_features([block]).iloc[0]
    chans = [c.lower() for c in CHANNELS]
    beta = sum(row[f"eeg_beta_abs_{c}"] for c in chans)
    alpha = sum(row[f"eeg_alpha_abs_{c}"] for c in chans)
    theta = sum(row[f"eeg_theta_abs_{c}"] for c in chans)
    assert row["eeg_engagement"] == pytest.approx(beta / (alpha + theta))


def test_artifact_segments_are_rejected() -> None:
    block = _eeg_block(120.0, (6.0, 5.0, 10.0, 6.0), seed=4)
    values = block.values.copy()
    blink = 300.0 * np.hanning(77)  # a 0.3-s, 300 µV blink on AF7 at 81 s
    values[81 * 256 : 81 * 256 + 77, 1] += blink
    dirty = SampleBlock.regular("s/eeg", "eeg", CHANNELS, values, 256.0, T0)
    clean_frame = extract_features([block])
    dirty_frame = extract_features([dirty])
    hit = (dirty_frame["t_end"] - T0 > 81.3) & (dirty_frame["t_end"] - T0 - 60 < 81)
    assert (dirty_frame.loc[hit, "quality_eeg"] < 1.0).all()
    assert (dirty_frame.loc[~hit, "quality_eeg"] == 1.0).all()
    # without the rejected segments the AF7 delta power stays near the clean value
    ratio = dirty_frame.loc[hit, "eeg_delta_abs_af7"] / clean_frame.loc[hit, "eeg_delta_abs_af7"]
    assert (ratio.between(0.7, 1.3)).all()


def test_flat_channel_is_nan_and_lowers_quality() -> None:
    block = _eeg_block(90.0, (6.0, 5.0, 10.0, 6.0), seed=5)
    values = block.values.copy()
    values[:, 0] = 800.0  # railed TP9
    railed = SampleBlock.regular("s/eeg", "eeg", CHANNELS, values, 256.0, T0)
    frame = extract_features([railed])
    assert frame["eeg_alpha_abs_tp9"].isna().all()
    assert frame["eeg_alpha_abs_af7"].notna().all()
    np.testing.assert_allclose(frame["quality_eeg"], 0.75)


def test_eeg_in_volts_is_rejected_with_advice() -> None:
    block = _eeg_block(70.0, (6.0, 5.0, 10.0, 6.0), seed=6)
    volts = SampleBlock.regular("s/eeg", "eeg", CHANNELS, block.values * 1e-6, 256.0, T0)
    with pytest.raises(SignalError, match="1e6"):
        extract_features([volts])


def test_step_must_be_a_multiple_of_the_welch_hop() -> None:
    block = _eeg_block(70.0, (6.0, 5.0, 10.0, 6.0), seed=7)
    with pytest.raises(SignalError, match="multiple of the Welch hop"):
        extract_features([block], WindowConfig(step=2.5))
