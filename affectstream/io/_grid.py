"""Rebuild a regularly sampled stream (device positions, NaN rows for gaps) from timestamps.

A recording file or the store keeps the samples that arrived with their times, but not the
device counter. Within a run of samples whose spacing is one sampling period, positions are
consecutive; a longer step is a gap of ``round(step * sfreq) - 1`` missing samples. Counting
inside runs (instead of rounding every time onto one nominal grid) keeps every sample even
when the device clock drifts against the host clock.
"""

from __future__ import annotations

import math

import numpy as np

from affectstream.errors import SignalError
from affectstream.types import FloatArray, Gap, IntArray, SampleBlock

#: A step longer than this many sampling periods is a gap.
GAP_FACTOR = 1.5


def estimate_sfreq(t: FloatArray, where: str) -> float:
    """Estimate a nominal sampling rate from timestamps.

    The median spacing gives the rate; a rate within 0.5 % of a whole number of Hz is
    rounded to it (device rates are whole numbers; the rest is clock drift or jitter).

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
    rate = 1.0 / float(np.median(steps))
    whole = round(rate)
    if whole > 0 and abs(rate - whole) / rate < 0.005:
        return float(whole)
    return float(f"{rate:.6g}")


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
