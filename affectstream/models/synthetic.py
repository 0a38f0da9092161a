"""Synthetic recordings and feature frames with arousal and valence as knobs, for tests.

One generator of labelled sessions (:func:`synthetic_labelled_recording`); the raw ECG / EDA /
EEG generator with beat-level ground truth for the signal layer is
:func:`affectstream.signal.synthetic.synthetic_recording`, whose SCR shape this one reuses.

The raw-signal generator follows well-replicated directions of effect, not a model of any
dataset: higher arousal raises heart rate, lowers beat-to-beat variability, raises tonic skin
conductance and the rate of skin-conductance responses, cools the periphery slightly and
suppresses EEG alpha; positive valence lowers left-frontal alpha relative to right (frontal
alpha asymmetry). ``effect=0`` removes every link between labels and signals, so a model must
then score at chance.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from affectstream.models.datasets import Recording, _labels_frame
from affectstream.signal.synthetic import scr_kernel
from affectstream.types import FloatArray, SampleBlock

#: Start of every synthetic session (2024-01-01T00:00:00Z), a realistic epoch time.
SYNTHETIC_T0 = 1_704_067_200.0


def _schedule(
    rng: np.random.Generator, duration: float, baseline_seconds: float, block_seconds: float
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Block start times and the (arousal, valence) of each block; the first block is rest."""
    starts = [0.0]
    arousal = [0.0]
    valence = [np.nan]
    t = baseline_seconds
    # Balanced, shuffled conditions so every subject has every combination.
    n_blocks = int(np.ceil((duration - baseline_seconds) / block_seconds))
    combos = np.array([(a, v) for a in (0.0, 1.0) for v in (0.0, 1.0)])
    order = np.concatenate([rng.permutation(4) for _ in range(n_blocks // 4 + 1)])[:n_blocks]
    for k in order:
        starts.append(t)
        arousal.append(combos[k, 0])
        valence.append(combos[k, 1])
        t += block_seconds
    return np.array(starts), np.array(arousal), np.array(valence)


def _state_at(times: FloatArray, starts: FloatArray, values: FloatArray) -> FloatArray:
    return values[np.searchsorted(starts, times, side="right") - 1]


def _smooth(x: FloatArray, n: int) -> FloatArray:
    if n <= 1:
        return x
    kernel = np.ones(n) / n
    padded = np.concatenate([np.full(n, x[0]), x, np.full(n, x[-1])])
    return np.convolve(padded, kernel, mode="same")[n:-n]


def synthetic_labelled_recording(
    subject: str,
    *,
    seed: int = 0,
    duration: float = 1200.0,
    baseline_seconds: float = 240.0,
    block_seconds: float = 120.0,
    arousal_effect: float = 1.0,
    valence_effect: float = 1.0,
    modalities: tuple[str, ...] = ("rr", "eda", "temp", "acc", "eeg"),
    eeg_rate: float = 128.0,
    schedule: Sequence[tuple[float, float, float]] | None = None,
) -> Recording:
    """Generate one subject's session with labelled arousal/valence blocks.

    Parameters
    ----------
    subject : str
        Subject id.
    seed : int
        Random seed (subject-specific baselines come from it).
    duration : float
        Session length in seconds.
    baseline_seconds : float
        Initial rest period (low arousal, valence unknown).
    block_seconds : float
        Length of each condition block after the rest period.
    arousal_effect, valence_effect : float
        Strength of the physiological response, 0 (none) to about 1 (clear).
    modalities : tuple of str
        Streams to generate, among ``"rr"``, ``"eda"``, ``"temp"``, ``"acc"``, ``"eeg"``.
    eeg_rate : float
        EEG sampling rate in Hz.
    schedule : sequence of (start, arousal, valence), optional
        A fixed protocol instead of the shuffled blocks: block starts (s from the session
        start, the first 0) with their arousal (0-1) and valence (0-1 or NaN).

    Returns
    -------
    Recording
    """
    rng = np.random.default_rng(seed)
    if schedule is not None:
        starts, arousal, valence = (
            np.array(c, dtype=np.float64) for c in zip(*schedule, strict=True)
        )
    else:
        starts, arousal, valence = _schedule(rng, duration, baseline_seconds, block_seconds)
    t0 = SYNTHETIC_T0
    device = f"synthetic-{subject}"
    blocks: list[SampleBlock] = []
    a_fx, v_fx = float(arousal_effect), float(valence_effect)

    if "rr" in modalities:
        hr_rest = rng.normal(68.0, 7.0)
        sd_rest = rng.uniform(35.0, 60.0)  # ms of beat-to-beat variability at rest
        beats: list[float] = []
        rr_values: list[float] = []
        t, previous = 0.0, 0.0
        while t < duration:
            a_now = float(_state_at(np.array([t]), starts, arousal)[0])
            mean_rr = 60000.0 / (hr_rest + 14.0 * a_fx * a_now)
            sd = sd_rest * (1.0 - 0.45 * a_fx * a_now)
            previous = 0.5 * previous + rng.normal(0.0, sd)  # AR(1): realistic RMSSD/SDNN
            rr = mean_rr + previous
            t += rr / 1000.0
            beats.append(t)
            rr_values.append(rr)
        blocks.append(
            SampleBlock(
                stream=f"{device}/rr",
                modality="rr",
                channels=("rr",),
                unit="ms",
                sfreq=None,
                t=t0 + np.array(beats),
                values=np.array(rr_values)[:, None],
                index=np.arange(len(beats), dtype=np.int64),
                device=device,
            )
        )

    if "eda" in modalities:
        rate = 4.0
        times = np.arange(0.0, duration, 1.0 / rate)
        a = _state_at(times, starts, arousal)
        tonic = rng.uniform(2.0, 8.0) * (1.0 + 0.25 * a_fx * _smooth(a, int(20 * rate)))
        tonic = tonic + np.cumsum(rng.normal(0.0, 0.002, times.size))  # slow drift
        phasic: FloatArray = np.zeros(times.size)
        scr_per_s = (2.0 + 6.0 * a_fx * a) / 60.0
        onsets = np.flatnonzero(rng.random(times.size) < scr_per_s / rate)
        kernel = scr_kernel(rate, 15.0, decay=3.0, rise=0.7)
        for onset in map(int, onsets):
            end = min(times.size, onset + kernel.size)
            phasic[onset:end] += rng.uniform(0.1, 0.5) * kernel[: end - onset]
        eda = tonic + phasic + rng.normal(0.0, 0.01, times.size)
        blocks.append(SampleBlock.regular(f"{device}/eda", "eda", ("eda",), eda, rate, t0))

    if "temp" in modalities:
        rate = 4.0
        times = np.arange(0.0, duration, 1.0 / rate)
        a = _state_at(times, starts, arousal)
        temp = rng.uniform(32.0, 34.5) - 0.4 * a_fx * _smooth(a, int(60 * rate))
        temp = temp + rng.normal(0.0, 0.02, times.size)
        blocks.append(SampleBlock.regular(f"{device}/temp", "temp", ("temp",), temp, rate, t0))

    if "acc" in modalities:
        rate = 32.0
        n = int(duration * rate)
        acc = rng.normal(0.0, 0.01, (n, 3))
        acc[:, 2] += 1.0  # gravity: wrist at rest, roughly flat
        blocks.append(SampleBlock.regular(f"{device}/acc", "acc", ("x", "y", "z"), acc, rate, t0))

    if "eeg" in modalities:
        n = int(duration * eeg_rate)
        times = np.arange(n) / eeg_rate
        a = _state_at(times, starts, arousal)
        v = np.nan_to_num(_state_at(times, starts, valence), nan=0.5)
        # 1/f background: integrated white noise, high-passed by a leak.
        background = np.empty((n, 4))
        for ch in range(4):
            white = rng.normal(0.0, 1.0, n)
            background[:, ch] = np.convolve(white, np.exp(-np.arange(64) / 8.0), mode="same")
        alpha_gain = 1.0 - 0.5 * a_fx * a
        left = alpha_gain * (1.0 - 0.35 * v_fx * v)  # positive valence: less left alpha
        right = alpha_gain * (1.0 - 0.35 * v_fx * (1.0 - v))
        phase = rng.uniform(0, 2 * np.pi, 4)
        freq = rng.normal(10.0, 0.5)
        gains = (left, right, alpha_gain, alpha_gain)  # AF7, AF8, TP9, TP10
        eeg = np.stack(
            [
                4.0 * background[:, ch]
                + 12.0 * gains[ch] * np.sin(2 * np.pi * freq * times + phase[ch])
                for ch in range(4)
            ],
            axis=1,
        )
        blocks.append(
            SampleBlock.regular(
                f"{device}/eeg", "eeg", ("AF7", "AF8", "TP9", "TP10"), eeg, eeg_rate, t0
            )
        )

    labels = _labels_frame(t0 + starts, arousal=arousal, valence=valence)
    return Recording(
        subject=subject, blocks=tuple(blocks), labels=labels, dataset="synthetic", files=()
    )


def synthetic_recordings(
    n_subjects: int = 6, *, seed: int = 0, **kwargs: object
) -> list[Recording]:
    """Generate several subjects with :func:`synthetic_labelled_recording`.

    Parameters
    ----------
    n_subjects : int
        Number of subjects.
    seed : int
        Base seed; subject ``k`` uses ``seed + k``.
    **kwargs
        Passed to :func:`synthetic_labelled_recording`.

    Returns
    -------
    list of Recording
    """
    return [
        synthetic_labelled_recording(f"SYN{k:02d}", seed=seed + k, **kwargs)  # type: ignore[arg-type]
        for k in range(n_subjects)
    ]


def synthetic_feature_frame(
    n_subjects: int = 8,
    n_windows: int = 120,
    *,
    seed: int = 0,
    arousal_effect: float = 1.0,
    valence_effect: float = 1.0,
    n_reference: int = 20,
    missing_modality_rate: float = 0.0,
) -> pd.DataFrame:
    """A feature table shaped like the signal layer's output, for fast estimator tests.

    Each subject has its own offsets (so per-participant normalisation matters); the label
    effect is ``effect`` standard deviations of the within-subject noise on a few features.

    Parameters
    ----------
    n_subjects, n_windows : int
        Table size.
    seed : int
        Random seed.
    arousal_effect, valence_effect : float
        Separation of the classes in within-subject standard deviations.
    n_reference : int
        Leading windows per subject that form the rest reference (arousal 0).
    missing_modality_rate : float
        Fraction of windows in which EDA is unusable (its features NaN).

    Returns
    -------
    pandas.DataFrame
        Columns ``subject``, ``session``, ``t_end``, ``reference``, ``arousal``,
        ``valence`` (and ``*_end``), ``session_seconds``, feature columns (``hrv_*``,
        ``eda_*``, ``temp_*``, ``eeg_*``) and ``usable_eda``.
    """
    rng = np.random.default_rng(seed)
    frames = []
    for s in range(n_subjects):
        arousal = np.r_[np.zeros(n_reference), rng.integers(0, 2, n_windows - n_reference)]
        valence = np.r_[np.full(n_reference, np.nan), rng.integers(0, 2, n_windows - n_reference)]
        a = arousal
        v = np.nan_to_num(valence, nan=0.5)
        offset = rng.normal(0.0, 3.0, 6)  # between-subject differences dwarf the effect
        scale = rng.uniform(0.5, 2.0, 6)
        noise = rng.normal(0.0, 1.0, (n_windows, 6))
        features = {
            "hrv_mean_hr": offset[0] + scale[0] * (noise[:, 0] + arousal_effect * a),
            "hrv_rmssd": offset[1] + scale[1] * (noise[:, 1] - arousal_effect * a),
            "eda_tonic_mean": offset[2] + scale[2] * (noise[:, 2] + arousal_effect * a),
            "temp_mean": offset[3] + scale[3] * noise[:, 3],
            "eeg_faa": offset[4] + scale[4] * (noise[:, 4] + valence_effect * (v - 0.5) * 2),
            "eeg_alpha_rel_af7": offset[5] + scale[5] * noise[:, 5],
        }
        frame = pd.DataFrame(features)
        usable = rng.random(n_windows) >= missing_modality_rate
        frame.loc[~usable, "eda_tonic_mean"] = np.nan
        frame.insert(0, "subject", f"SYN{s:02d}")
        frame.insert(1, "session", "0")
        frame.insert(2, "t_end", SYNTHETIC_T0 + 60.0 + 5.0 * np.arange(n_windows))
        frame.insert(3, "reference", np.arange(n_windows) < n_reference)
        frame["arousal"] = arousal.astype(np.float64)
        frame["valence"] = valence.astype(np.float64)
        # Labels are per window here, so the label at a window's end is the same.
        frame["arousal_end"] = frame["arousal"]
        frame["valence_end"] = frame["valence"]
        frame["session_seconds"] = 60.0 + 5.0 * np.arange(n_windows)
        frame["usable_eda"] = usable
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)
