"""Synthetic ECG, EDA and EEG with known ground truth, for tests, demos and benchmarks.

Raw signals only; labelled affect sessions (arousal/valence blocks) come from
:func:`affectstream.models.synthetic.synthetic_labelled_recording`.

The truth (beat times, SCR onsets, alpha amplitudes) is returned with the signal so tests can
derive their expectations from the input rather than from a previous run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from affectstream.types import FloatArray, SampleBlock
from affectstream.waveforms import ECG_BEAT_SPAN, ecg_beat, scr_response


@dataclass(frozen=True)
class SyntheticRecording:
    """Blocks of one synthetic session plus the ground truth used to make them."""

    blocks: list[SampleBlock]
    beat_times: FloatArray
    scr_onsets: FloatArray
    scr_amplitudes: FloatArray
    alpha_amplitudes: dict[str, float]


def synthetic_rr(duration: float, rng: np.random.Generator, mean_rr: float = 850.0) -> FloatArray:
    """Beat times (s from 0) of a heart with LF (0.1 Hz) and HF (0.25 Hz) modulation."""
    times = [0.5]
    while times[-1] < duration:
        t = times[-1]
        rr = (
            mean_rr
            + 40.0 * np.sin(2 * np.pi * 0.1 * t)
            + 30.0 * np.sin(2 * np.pi * 0.25 * t)
            + rng.normal(0.0, 15.0)
        )
        times.append(t + rr / 1000.0)
    return np.asarray(times[:-1])


def rr_events(
    beats: FloatArray,
    t0: float = 0.0,
    *,
    keep: np.ndarray | None = None,
    stream: str = "rr",
    device: str = "",
) -> SampleBlock:
    """RR intervals as an event stream: at each beat after the first, the interval (ms)
    ending there.

    Parameters
    ----------
    beats : ndarray
        Beat times (s from ``t0``), increasing, e.g. from :func:`synthetic_rr`.
    t0 : float
        Time of 0 (s since the epoch).
    keep : ndarray of bool, optional
        Beats whose interval is delivered (False: a gap); the first beat never is.
    stream, device : str
        Stream id and device of the block.

    Returns
    -------
    SampleBlock
        Modality ``rr``, unit ms, no sampling rate.
    """
    beats = np.asarray(beats, dtype=np.float64)
    chosen = np.ones(beats.size, dtype=bool) if keep is None else np.array(keep, dtype=bool)
    chosen[0] = False  # the first beat has no interval
    rr_ms = np.diff(beats)[chosen[1:]] * 1000.0
    return SampleBlock(
        stream=stream,
        modality="rr",
        channels=("RR",),
        unit="ms",
        sfreq=None,
        t=t0 + beats[chosen],
        values=rr_ms[:, None],
        index=np.arange(rr_ms.size, dtype=np.int64),
        device=device,
    )


def synthetic_ecg(
    beat_times: FloatArray, duration: float, sfreq: float, rng: np.random.Generator
) -> FloatArray:
    """ECG in µV: the beat template (:func:`affectstream.waveforms.ecg_beat`) at each beat time."""
    n = round(duration * sfreq)
    t = np.arange(n) / sfreq
    ecg = 150.0 * np.sin(2 * np.pi * 0.3 * t) + rng.normal(0.0, 15.0, n)  # wander and noise
    if beat_times.size == 0:
        return ecg
    lo, hi = ECG_BEAT_SPAN
    offsets = np.arange(int(lo * sfreq), int(hi * sfreq))
    # The RR interval ending at each beat (the first beat borrows the next one's).
    rr = np.diff(beat_times, prepend=np.nan)
    rr[0] = rr[1] if rr.size > 1 else 1.0
    shape = ecg_beat(offsets[None, :] / sfreq, rr[:, None])
    index = np.rint(beat_times * sfreq).astype(np.int64)[:, None] + offsets[None, :]
    inside = (index >= 0) & (index < n)
    np.add.at(ecg, index[inside], shape[inside])
    return ecg


def scr_kernel(sfreq: float, seconds: float, *, decay: float, rise: float) -> FloatArray:
    """One skin-conductance response of unit peak: ``exp(-t/decay) - exp(-t/rise)``.

    Parameters
    ----------
    sfreq : float
        Sampling rate in Hz.
    seconds : float
        Length of the kernel.
    decay, rise : float
        Time constants in seconds.

    Returns
    -------
    ndarray, shape (int(seconds * sfreq),)
    """
    return scr_response(np.arange(int(seconds * sfreq)) / sfreq, decay=decay, rise=rise)


def synthetic_eda(
    duration: float, sfreq: float, rng: np.random.Generator, mean_interval: float = 20.0
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """EDA in µS: slow tonic drift plus SCRs; returns (signal, onsets, amplitudes)."""
    n = round(duration * sfreq)
    t = np.arange(n) / sfreq
    tonic = 4.0 + 1.5 * np.sin(2 * np.pi * t / 900.0) + 0.3 * np.sin(2 * np.pi * t / 173.0)
    onsets = np.cumsum(rng.uniform(0.5, 1.5, int(duration / mean_interval) + 2) * mean_interval)
    onsets = onsets[onsets < duration - 1.0]
    amplitudes = rng.uniform(0.1, 0.6, onsets.size)
    eda = tonic + rng.normal(0.0, 0.002, n)
    kernel = scr_kernel(sfreq, 30.0, decay=4.0, rise=0.75)
    for onset, amplitude in zip(onsets, amplitudes, strict=True):
        start = round(onset * sfreq)
        stop = min(n, start + kernel.size)
        eda[start:stop] += amplitude * kernel[: stop - start]
    return eda, onsets, amplitudes


def synthetic_eeg(
    duration: float,
    sfreq: float,
    alpha: Sequence[float],
    rng: np.random.Generator,
) -> FloatArray:
    """EEG in µV, one column per entry of ``alpha``: 1/f noise plus 10 Hz alpha of that size."""
    n = round(duration * sfreq)
    freqs = np.fft.rfftfreq(n, 1.0 / sfreq)
    out = np.empty((n, len(alpha)))
    t = np.arange(n) / sfreq
    for ch, alpha_amplitude in enumerate(alpha):
        spectrum = rng.normal(size=freqs.size) + 1j * rng.normal(size=freqs.size)
        spectrum[1:] /= np.sqrt(freqs[1:])
        spectrum[0] = 0.0
        noise = np.fft.irfft(spectrum, n)
        noise *= 8.0 / noise.std()
        out[:, ch] = noise + alpha_amplitude * np.sin(2 * np.pi * 10.0 * t + ch)
    return out


def synthetic_recording(
    minutes: float = 60.0,
    *,
    seed: int = 0,
    t0: float = 1_700_000_000.0,
    ecg_sfreq: float = 250.0,
    eda_sfreq: float = 64.0,
    eeg_sfreq: float = 256.0,
    eeg_channels: Sequence[str] = ("TP9", "AF7", "AF8", "TP10"),
    eeg_alpha: Sequence[float] = (6.0, 5.0, 10.0, 6.0),
) -> SyntheticRecording:
    """One synthetic session: ECG, EDA and EEG starting at host time ``t0``.

    Parameters
    ----------
    minutes : float
        Duration.
    seed : int
        Random seed; the same seed gives the same recording.
    t0 : float
        Host time of the first sample of every stream.
    ecg_sfreq, eda_sfreq, eeg_sfreq : float
        Sampling rates in Hz.
    eeg_channels : sequence of str
        EEG channel names.
    eeg_alpha : sequence of float
        Amplitude (µV) of the 10 Hz alpha rhythm in each EEG channel.

    Returns
    -------
    SyntheticRecording
    """
    rng = np.random.default_rng(seed)
    duration = minutes * 60.0
    beats = synthetic_rr(duration, rng)
    ecg = synthetic_ecg(beats, duration, ecg_sfreq, rng)
    eda, onsets, amplitudes = synthetic_eda(duration, eda_sfreq, rng)
    eeg = synthetic_eeg(duration, eeg_sfreq, eeg_alpha, rng)
    blocks = [
        SampleBlock.regular("synthetic/ecg", "ecg", ("ECG",), ecg, ecg_sfreq, t0),
        SampleBlock.regular("synthetic/eda", "eda", ("EDA",), eda, eda_sfreq, t0),
        SampleBlock.regular("synthetic/eeg", "eeg", tuple(eeg_channels), eeg, eeg_sfreq, t0),
    ]
    return SyntheticRecording(
        blocks=blocks,
        beat_times=t0 + beats,
        scr_onsets=t0 + onsets,
        scr_amplitudes=amplitudes,
        alpha_amplitudes=dict(zip(eeg_channels, eeg_alpha, strict=True)),
    )


def split_block(block: SampleBlock, sizes: Sequence[int]) -> list[SampleBlock]:
    """Cut ``block`` into consecutive chunks of the given sizes (cycled), as BLE delivers them."""
    chunks = []
    start, i = 0, 0
    while start < len(block):
        stop = min(len(block), start + max(1, int(sizes[i % len(sizes)])))
        chunks.append(block.rows(start, stop))
        start, i = stop, i + 1
    return chunks
