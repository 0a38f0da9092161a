"""EEG segment rejection relative to the channel's own scale: the same for any device gain."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from affectstream.signal import StreamingExtractor, WindowConfig, extract_features
from affectstream.signal.synthetic import split_block, synthetic_eeg
from affectstream.types import SampleBlock

T0 = 1_700_000_000.0
CHANNELS = ("TP9", "AF7", "AF8", "TP10")
SFREQ = 256.0
#: Short windows so that single artefacts show up as lowered quality in a few windows.
CONFIG = WindowConfig(window=10.0, step=2.0)


def _with_artefacts(seed: int) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Synthetic EEG with a blink on AF7 and a contact-loss drift on TP10, and their spans."""
    rng = np.random.default_rng(seed)
    values = synthetic_eeg(180.0, SFREQ, (6.0, 5.0, 10.0, 6.0), rng)
    blink_at, loss_at = 81.0, 131.0
    start = int(blink_at * SFREQ)
    values[start : start + 77, 1] += 300.0 * np.hanning(77)  # 0.3 s, 300 µV
    start = int(loss_at * SFREQ)
    drift = np.cumsum(rng.normal(0.0, 1.0, int(3 * SFREQ)))
    values[start : start + drift.size, 3] += 400.0 * drift / np.abs(drift).max()
    return values, [(blink_at, blink_at + 0.3), (loss_at, loss_at + 3.0)]


def _block(values: np.ndarray) -> SampleBlock:
    return SampleBlock.regular("s/eeg", "eeg", CHANNELS, values, SFREQ, T0)


def _hit(frame: pd.DataFrame, spans: list[tuple[float, float]], reach: float = 0.0) -> np.ndarray:
    """Windows that overlap an artefact widened by ``reach`` seconds on each side."""
    end = frame["t_end"].to_numpy() - T0
    start = end - CONFIG.window
    return np.any([(start < b + reach) & (end > a - reach) for a, b in spans], axis=0)


@pytest.mark.parametrize("gain", [0.25, 4.0])
def test_a_device_of_another_gain_is_judged_the_same(gain: float) -> None:
    values, spans = _with_artefacts(seed=1)
    reference = extract_features([_block(values)], CONFIG)
    scaled = extract_features([_block(values * gain)], CONFIG)
    # Every accept/reject decision is the same, so quality and relative powers are equal and
    # absolute powers scale by gain squared.
    np.testing.assert_allclose(scaled["quality_eeg"], reference["quality_eeg"], rtol=0, atol=0)
    np.testing.assert_allclose(scaled["eeg_alpha_rel_af7"], reference["eeg_alpha_rel_af7"])
    np.testing.assert_allclose(
        scaled["eeg_alpha_abs_tp10"], reference["eeg_alpha_abs_tp10"] * gain**2, rtol=1e-9
    )
    hit = _hit(reference, spans)
    assert (reference.loc[hit, "quality_eeg"] < 1.0).all()  # the artefacts are caught
    # windows clear of them (by the 2-s segment plus the filter's tail) keep every segment
    far = ~_hit(reference, spans, reach=3.0)
    assert far.sum() > len(reference) / 2
    assert (reference.loc[far, "quality_eeg"] == 1.0).all()


def test_absolute_limits_no_longer_reject_a_high_gain_device() -> None:
    clean = synthetic_eeg(120.0, SFREQ, (6.0, 5.0, 10.0, 6.0), np.random.default_rng(2))
    frame = extract_features([_block(clean * 4.0)], CONFIG)
    ptp = np.ptp(clean * 4.0, axis=0)
    assert ptp.max() > 150.0  # beyond the former absolute limit: it would have rejected these
    assert frame["quality_eeg"].min() > 0.95


def test_an_electrode_that_stops_following_the_scalp_is_rejected() -> None:
    rng = np.random.default_rng(3)
    values = synthetic_eeg(150.0, SFREQ, (6.0, 5.0, 10.0, 6.0), rng)
    # From 90 s, AF8 carries only 0.8 µV of amplifier noise: above the absolute 0.5 µV floor,
    # a twentieth of its own scale.
    values[int(90 * SFREQ) :, 2] = rng.normal(0.0, 0.8, values.shape[0] - int(90 * SFREQ))
    frame = extract_features([_block(values)], CONFIG)
    late = frame["t_end"] - T0 - CONFIG.window > 91.0
    early = frame["t_end"] - T0 < 89.0
    assert frame.loc[late, "eeg_alpha_abs_af8"].isna().all()
    assert frame.loc[early, "eeg_alpha_abs_af8"].notna().all()
    assert frame.loc[late, "eeg_alpha_abs_af7"].notna().all()


def test_relative_rejection_does_not_depend_on_how_the_stream_is_cut() -> None:
    values, _ = _with_artefacts(seed=4)
    block = _block(values * 4.0)
    batch = extract_features([block], CONFIG)
    extractor = StreamingExtractor(CONFIG, origin=T0)
    parts = [extractor.push(c) for c in split_block(block, [37, 1000, 256, 5])]
    parts.append(extractor.flush())
    streamed = pd.concat([p for p in parts if len(p)], ignore_index=True)
    pd.testing.assert_frame_equal(streamed, batch, check_exact=True)
