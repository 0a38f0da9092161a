"""Rebuild a regularly sampled stream (device positions, NaN rows for gaps) from timestamps.

A recording file or the store keeps the samples that arrived with their times, but not the
device counter. Within a run of samples whose spacing is one sampling period, positions are
consecutive; a longer step is a gap of ``round(step * sfreq) - 1`` missing samples. Counting
inside runs (instead of rounding every time onto one nominal grid) keeps every sample even
when the device clock drifts against the host clock.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from affectstream.errors import SignalError
from affectstream.types import FloatArray, Gap, IntArray, SampleBlock

logger = logging.getLogger(__name__)

#: A step longer than this many sampling periods is a gap.
GAP_FACTOR = 1.5


#: Sampling rates of common devices (Hz): Empatica E4 (1, 4, 32, 64), Muse (256), OpenBCI
#: Cyton (250) and Ganglion (200), Polar H10 ECG (130), clinical EEG (128, 500, 512, 1000...).
NOMINAL_RATES = (1.0, 4.0, 8.0, 25.0, 32.0, 50.0, 64.0, 100.0, 128.0, 130.0, 200.0, 250.0,
                 256.0, 500.0, 512.0, 1000.0, 1024.0, 2000.0, 2048.0)  # fmt: skip
#: A rate within this fraction of a nominal rate is taken to be it (crystal tolerance and
#: host-clock drift stay well below 0.5 %).
NOMINAL_TOLERANCE = 0.005
#: A gap in the timestamps longer than this (s) is refused by default: filling it with NaN
#: rows would take memory in proportion to its length (a year-long gap in a 130 KB file).
MAX_GAP_SECONDS = 3600.0


def estimate_sfreq(t: FloatArray, where: str) -> float:
    """Estimate a nominal sampling rate from timestamps.

    The rate is the number of sampling periods over the time they span, counted only inside
    runs without a gap (a step over 1.5 median steps starts a new run), so timestamps that
    were rounded (a Muse file's milliseconds: steps of 3 and 4 ms at 256 Hz) or jitter give
    the rate they average to, not the most common step. A rate within 0.5 % of a common
    device rate (:data:`NOMINAL_RATES`) or a whole number of Hz is rounded to it; otherwise
    the estimate is kept to 6 significant digits and a warning names it.

    Parameters
    ----------
    t : ndarray, shape (n,)
        Timestamps in seconds, increasing.
    where : str
        What the timestamps belong to, for error messages.

    Returns
    -------
    float
        Sampling rate in Hz.
    """
    if t.shape[0] < 2:
        raise SignalError(
            f"{where}: {t.shape[0]} sample(s) are too few to tell the sampling rate; "
            "give the rate explicitly (sfreq=... or --sfreq)."
        )
    steps = np.diff(t)
    if not np.all(steps > 0):
        bad = int(np.flatnonzero(~(steps > 0))[0])
        raise SignalError(
            f"{where}: timestamps must increase strictly, but sample {bad + 1} "
            f"(t={t[bad + 1]!r}) does not come after sample {bad} (t={t[bad]!r}). "
            "Sort the rows and drop duplicates."
        )
    inside = steps <= GAP_FACTOR * float(np.median(steps))
    rate = float(np.count_nonzero(inside)) / float(np.sum(steps[inside]))
    for nominal in NOMINAL_RATES:
        if abs(rate - nominal) / nominal < NOMINAL_TOLERANCE:
            return nominal
    whole = round(rate)
    if whole > 0 and abs(rate - whole) / rate < NOMINAL_TOLERANCE:
        return float(whole)
    logger.warning(
        "%s: sampling rate %.6g Hz from the timestamps is no common device rate; pass the "
        "rate (sfreq=..., --sfreq) if you know it",
        where,
        rate,
    )
    return float(f"{rate:.6g}")


def check_gaps(t: FloatArray, where: str, max_gap: float = MAX_GAP_SECONDS) -> None:
    """Refuse timestamps with a gap longer than ``max_gap`` seconds.

    Parameters
    ----------
    t : ndarray, shape (n,)
        Timestamps in seconds, increasing.
    where : str
        What the timestamps belong to, for error messages.
    max_gap : float
        Longest gap accepted, seconds.

    Raises
    ------
    SignalError
        Naming the gap and how to proceed.
    """
    if t.shape[0] < 2:
        return
    steps = np.diff(t)
    worst = int(np.argmax(steps))
    if float(steps[worst]) > max_gap:
        raise SignalError(
            f"{where}: {float(steps[worst]):.0f} s pass between sample {worst} and the next "
            f"(longer than {max_gap:.0f} s): is a timestamp wrong? Split the recording at the "
            "gap (or pass a larger max_gap)."
        )


def regular_positions(t: FloatArray, sfreq: float) -> IntArray:
    """Sample positions (0 = first sample) of timestamps of a regularly sampled stream.

    Parameters
    ----------
    t : ndarray, shape (n,)
        Timestamps in seconds, increasing.
    sfreq : float
        Nominal sampling rate in Hz.

    Returns
    -------
    ndarray of int64, shape (n,)
        Consecutive within runs, jumping over the samples missing in gaps.
    """
    if t.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    periods = np.diff(t) * sfreq
    jumps = np.where(periods > GAP_FACTOR, np.rint(periods), 1.0).astype(np.int64)
    return np.concatenate(([0], np.cumsum(jumps))).astype(np.int64)


def regular_block(
    *,
    stream: str,
    modality: str,
    channels: tuple[str, ...],
    unit: str,
    t: FloatArray,
    values: FloatArray,
    sfreq: float | None,
    device: str = "",
    gap_reasons: dict[float, str] | None = None,
    max_gap: float = MAX_GAP_SECONDS,
) -> SampleBlock:
    """Build a :class:`SampleBlock` with NaN rows and :class:`Gap` entries where samples miss.

    Parameters
    ----------
    stream, modality, channels, unit, device : str
        As in :class:`~affectstream.types.SampleBlock`.
    t : ndarray, shape (n,)
        Times of the samples present, seconds, increasing.
    values : ndarray, shape (n, n_channels)
        The samples present.
    sfreq : float or None
        Sampling rate; ``None`` for event streams (kept as they are, no grid).
    gap_reasons : dict, optional
        Reason of a gap by its start time in seconds (e.g. from stored gap events);
        the nearest within one sample period is used, otherwise ``"missing_samples"``.
    max_gap : float
        Longest gap (s) filled with NaN rows; a longer one raises :class:`SignalError`
        (memory grows with the length of the gaps, not with the data).

    Returns
    -------
    SampleBlock
    """
    t = np.asarray(t, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64).reshape(t.shape[0], len(channels))
    if sfreq is None or t.shape[0] == 0:
        return SampleBlock(
            stream=stream,
            modality=modality,
            channels=channels,
            unit=unit,
            sfreq=sfreq,
            t=t,
            values=values,
            index=np.arange(t.shape[0], dtype=np.int64),
            device=device,
        )
    check_gaps(t, f"stream {stream!r}", max_gap)
    pos = regular_positions(t, sfreq)
    n = int(pos[-1]) + 1
    full_t = np.empty(n)
    full_values = np.full((n, len(channels)), np.nan)
    full_values[pos] = values
    full_t[pos] = t
    missing = np.ones(n, dtype=bool)
    missing[pos] = False
    gaps: list[Gap] = []
    if missing.any():
        # Times of missing samples: linear between the samples around the gap.
        full_t[missing] = np.interp(np.flatnonzero(missing), pos, t)
        reasons = gap_reasons or {}
        starts = np.flatnonzero(np.diff(pos) > 1)
        for i in starts:
            first = int(pos[i]) + 1
            count = int(pos[i + 1] - pos[i]) - 1
            t_start = float(full_t[first])
            reason = "missing_samples"
            for when, why in reasons.items():
                if math.isclose(when, t_start, abs_tol=1.0 / sfreq):
                    reason = why
            gaps.append(
                Gap(
                    stream=stream,
                    first_index=first,
                    n_samples=count,
                    t_start=t_start,
                    t_end=float(full_t[first + count - 1]),
                    reason=reason,
                )
            )
    return SampleBlock(
        stream=stream,
        modality=modality,
        channels=channels,
        unit=unit,
        sfreq=float(sfreq),
        t=full_t,
        values=full_values,
        index=np.arange(n, dtype=np.int64),
        gaps=tuple(gaps),
        device=device,
    )
