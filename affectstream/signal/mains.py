"""Tell the mains frequency (50 or 60 Hz) from the spectrum of ECG or EEG.

Power-line interference is a narrow peak at the mains frequency. :func:`detect_line_freq`
compares the power within ±1 Hz of 50 and of 60 Hz with the power of the bands beside each
(2-5 Hz away, where the signal itself is smooth); the frequency whose peak stands clearly
above its neighbours (:data:`PEAK_RATIO`) and above the other one is the mains. A clean
recording (or one sampled too slowly to see 60 Hz) has no such peak: the answer is None and
the caller keeps its setting.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import scipy.signal as sps

from affectstream.types import FloatArray, SampleBlock

logger = logging.getLogger(__name__)

#: Candidate mains frequencies, Hz.
LINE_FREQS = (50.0, 60.0)
#: A line peak's mean power over its neighbours' for it to count as mains interference.
PEAK_RATIO = 4.0
#: Seconds of signal examined at most (the first ones without gaps).
MAX_SECONDS = 120.0


def line_peak_ratio(x: FloatArray, sfreq: float, freq: float) -> float:
    """Mean power within ±1 Hz of ``freq`` over the mean power 2-5 Hz beside it.

    Parameters
    ----------
    x : ndarray, shape (n,)
        One channel, no NaN.
    sfreq : float
        Sampling rate, Hz.
    freq : float
        Candidate mains frequency, Hz.

    Returns
    -------
    float
        NaN when ``freq + 5`` Hz is above the Nyquist frequency or ``x`` is too short.
    """
    if freq + 5.0 >= sfreq / 2.0 or x.shape[0] < int(2 * sfreq):
        return float("nan")
    f, power = sps.welch(x - np.mean(x), fs=sfreq, nperseg=int(2 * sfreq))
    peak = power[(f >= freq - 1.0) & (f <= freq + 1.0)]
    near = power[(np.abs(f - freq) >= 2.0) & (np.abs(f - freq) <= 5.0)]
    base = float(np.mean(near))
    return float(np.mean(peak)) / base if base > 0 else float("nan")


def detect_line_freq(blocks: Sequence[SampleBlock]) -> float | None:
    """The mains frequency the ECG/EEG streams show, or None when none shows clearly.

    Parameters
    ----------
    blocks : sequence of SampleBlock
        A recording; streams other than ECG and EEG are ignored.

    Returns
    -------
    float or None
        50.0 or 60.0.
    """
    scores = {freq: [] for freq in LINE_FREQS}  # type: dict[float, list[float]]
    for block in blocks:
        if block.modality not in ("ecg", "eeg") or not block.sfreq or not len(block):
            continue
        n = min(len(block), int(MAX_SECONDS * block.sfreq))
        for column in block.values[:n].T:
            finite = column[np.isfinite(column)]
            for freq in LINE_FREQS:
                ratio = line_peak_ratio(finite, float(block.sfreq), freq)
                if np.isfinite(ratio):
                    scores[freq].append(ratio)
    best = {freq: float(np.median(r)) for freq, r in scores.items() if r}
    if not best:
        return None
    freq = max(best, key=lambda k: best[k])
    others = [v for k, v in best.items() if k != freq]
    if best[freq] >= PEAK_RATIO and all(best[freq] > 2.0 * v for v in others):
        logger.info("mains at %g Hz (line peak %.1fx its neighbours)", freq, best[freq])
        return freq
    return None
