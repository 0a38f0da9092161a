"""Electrodermal activity: tonic level and slope, phasic activity and SCRs.

The stream is decomposed once, causally, after NeuroKit2's default ("highpass") method: the
cleaned signal (3 Hz low-pass, order 4, skipped at or below 6 Hz as NeuroKit2 does) is split
into phasic (0.05 Hz Butterworth high-pass) and tonic (cleaned minus phasic). NeuroKit2 filters
forwards and backwards with order 2; a causal order-2 high-pass rings after each response and
adds a spurious SCR about 12 s later, so the streaming-capable filter is first order, whose
return to baseline is monotonic. Windows are slices of these whole-stream signals, so
consecutive windows agree.

SCRs follow NeuroKit2's definitions (``nk.eda_peaks``): a peak is a local maximum of the
phasic signal; its onset the nearest local minimum before it; amplitude = phasic at peak
minus phasic at onset (µS); rise time = peak time minus onset time (s). Instead of NeuroKit2's
threshold relative to the largest response of the whole recording (which cannot be known
while streaming), an SCR counts when its amplitude is at least ``scr_min_amplitude`` µS and
it rises within ``scr_max_risetime`` s.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import scipy.signal as sps

from affectstream.errors import SignalError
from affectstream.signal._base import Buffer, CausalFilter, Processor, butter, ols_slope
from affectstream.signal.config import WindowConfig
from affectstream.types import FloatArray, SampleBlock

EDA_FEATURES = (
    "eda_tonic_mean",
    "eda_tonic_slope",
    "eda_phasic_std",
    "eda_scr_count",
    "eda_scr_rate",
    "eda_scr_amplitude_mean",
    "eda_scr_risetime_mean",
)
#: Plausible skin conductance (µS) and rate of change (µS/s), after Kleckner et al. (2018).
EDA_RANGE = (0.05, 60.0)
EDA_MAX_SLOPE = 10.0
#: A value repeated unchanged this long (s) is a flat line (electrode off or saturated).
FLAT_SECONDS = 10.0
#: SCRs per minute above which a window's responses are no skin physiology (an electrode
#: toggling, mains or motion pickup): the window is unusable. Real wrist EDA stays far below
#: (Stress-Predict, E4, 9 participants, 60-s windows: median 2/min, 99.9th percentile 25/min,
#: maximum 30/min; see docs/features.md).
MAX_SCR_RATE = 40.0
#: A window whose cleaned EDA varies less than this (standard deviation, µS) and like white
#: noise (successive changes as large as the spread itself, ratio above FLAT_NOISE_RATIO) shows
#: no skin conductance, only sensor noise on a frozen value: an electrode off or a stuck
#: reading. Real EDA drifts; on Stress-Predict's E4 data (25 participants, 60-s windows) 4.7 %
#: of windows are this flat, all moving by at most 1-2 of the E4's 0.0009-µS steps in a minute
#: (``python benchmarks/bench_eda_flat.py``).
FLAT_MAX_STD, FLAT_NOISE_RATIO = 0.0015, 0.7
#: ...unless the raw readings repeat (at least this share of samples equal to the one
#: before): then the signal sits on the device's own resolution steps, a skin conductance
#: stable within one step (0.0009 µS on the E4), not noise on a stuck value, which is never
#: repeated exactly. Those are the flat real windows above: 31-59 % repeated samples (median
#: 41 %, at most 8 distinct values in a minute); a frozen value plus 0.001 µS noise repeats
#: none (``python benchmarks/bench_eda_flat.py``). A value repeated for FLAT_SECONDS is still
#: a flat line.
QUANTIZED_SHARE = 0.2
#: SCR detection segments: length, context before (for onsets) and after (to confirm peaks),
#: in seconds. A peak is final once a lower sample follows it, so at 4 Hz one sample after it
#: (0.25 s) is enough; rows wait at most SCR_SEGMENT + SCR_AFTER for the EDA stream.
SCR_SEGMENT, SCR_BEFORE, SCR_AFTER = 0.25, 10.0, 0.25


def find_scrs(
    phasic: FloatArray, min_amplitude: float, max_rise: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Peaks and onsets of the SCRs in a phasic signal (NeuroKit2's definitions).

    Parameters
    ----------
    phasic : ndarray
        Phasic EDA in µS (finite).
    min_amplitude : float
        Smallest amplitude (peak minus onset, µS) kept.
    max_rise : int, optional
        Largest onset-to-peak distance kept, in samples.

    Returns
    -------
    peaks, onsets : ndarray of int
        Sample indices; peaks without a local minimum before them are dropped.
    """
    peaks, onsets, _ = _scrs_confirmed(phasic, min_amplitude, max_rise)
    return peaks, onsets


def _scrs_confirmed(
    phasic: FloatArray, min_amplitude: float, max_rise: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`find_scrs` plus, per peak, the index of the first lower sample after it."""
    peaks, props = sps.find_peaks(phasic, plateau_size=1)
    troughs, _ = sps.find_peaks(-phasic)
    where = np.searchsorted(troughs, peaks, side="left") - 1
    has_onset = where >= 0
    confirm = np.asarray(props["right_edges"], dtype=np.int64)[has_onset] + 1
    peaks, onsets = peaks[has_onset], troughs[where[has_onset]]
    keep = phasic[peaks] - phasic[onsets] >= min_amplitude
    if max_rise is not None:
        keep &= peaks - onsets <= max_rise
    return peaks[keep], onsets[keep], confirm[keep]


class EdaProcessor(Processor):
    """EDA features of one stream (see the module docstring)."""

    family = "eda"

    def __init__(self, first: SampleBlock, config: WindowConfig) -> None:
        super().__init__(first, config)
        if self.sfreq is None or self.sfreq < 1.0:
            raise SignalError(
                f"EDA stream {self.stream!r} has sampling rate {self.sfreq!r}; expected a "
                f"regular rate of at least 1 Hz (wrist devices send 4 Hz)."
            )
        sfreq = self.sfreq
        clean = butter(4, 3.0, "lowpass", sfreq) if sfreq > 6 else None
        self.clean = CausalFilter(clean, 1) if clean is not None else None
        self.high = CausalFilter(butter(1, 0.05, "highpass", sfreq), 1)  # type: ignore[arg-type]
        self.buffer = Buffer(4)  # tonic, phasic, sample is good, raw value repeated
        self.flat_run = 0
        self.last_value = math.nan
        self.segment = round(SCR_SEGMENT * sfreq)
        self.segment = max(self.segment, 1)
        # Onsets within the longest rise time are always inside the context before.
        self.before = round(max(SCR_BEFORE, config.scr_max_risetime + 1.0) * sfreq)
        self.after = max(round(SCR_AFTER * sfreq), 1)
        self.segments_done = 0
        self.scr_peak = np.empty(0, dtype=np.int64)
        self.scr_amplitude = np.empty(0)
        self.scr_risetime = np.empty(0)
        self.context_seconds = self.before / sfreq + SCR_SEGMENT

    def check_units(self, block: SampleBlock) -> None:
        values = block.values[:, 0]
        finite = values[np.isfinite(values)]
        median = float(np.median(finite)) if finite.size else math.nan
        if block.unit not in ("µS", "uS", "us", ""):
            raise SignalError(
                f"EDA stream {self.stream!r} is in {block.unit!r}; expected µS. Convert "
                f"nS by dividing by 1000, kΩ (skin resistance) with µS = 1000 / kΩ."
            )
        if finite.size and median > 100.0:
            raise SignalError(
                f"EDA stream {self.stream!r}: median {median:.4g} is far above skin "
                f"conductance ({EDA_RANGE[0]}-{EDA_RANGE[1]} µS). Values look like nS (divide "
                f"by 1000) or kΩ skin resistance (µS = 1000 / kΩ)."
            )

    def _good(self, x: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Per-sample validity (finite, in range, plausible slope, not a flat line), repeats."""
        sfreq = self.rate
        previous = np.concatenate(([self.last_value], x[:-1]))
        slope = np.abs(x - previous) * sfreq
        good = (x >= EDA_RANGE[0]) & (x <= EDA_RANGE[1]) & ~(slope > EDA_MAX_SLOPE)
        same = x == previous
        # Length of the run of repeated values ending at each sample (carried across blocks).
        index = np.arange(x.size)
        last_change = np.maximum.accumulate(np.where(same, -1, index))
        run = np.where(last_change >= 0, index - last_change, self.flat_run + index + 1)
        self.flat_run = int(run[-1])
        good &= run < FLAT_SECONDS * sfreq
        self.last_value = float(x[-1])
        return good.astype(np.float64), same.astype(np.float64)

    def add_samples(self, values: FloatArray) -> None:
        raw = values[:, :1]
        cleaned = self.clean(raw) if self.clean is not None else raw
        phasic = self.high(cleaned)[:, 0]
        tonic = cleaned[:, 0] - phasic
        good, repeated = self._good(raw[:, 0])
        self.buffer.append(np.column_stack((tonic, phasic, good, repeated)))
        ready = (self.n - self.after) // self.segment  # segments whose look-ahead arrived
        if ready > self.segments_done:
            self._detect(self.segments_done, ready)

    def drain(self) -> None:
        last = -(-self.n // self.segment)
        if last > self.segments_done:
            self._detect(self.segments_done, last)

    def resume_position(self) -> int:
        return max(self.n, self.segments_done * self.segment)

    def _detect(self, first: int, stop: int) -> None:
        """Detect the SCRs peaking in segments ``first..stop-1`` in one pass.

        Segment ``j`` sees the data up to ``hi_j = min(n, (j + 1) * L + after)``: a peak in
        it counts when the first lower sample after it (after a plateau) is before ``hi_j``.
        One pass over several segments then finds what segment-by-segment passes would, so
        the SCRs do not depend on how the stream was cut into blocks.
        """
        sfreq = self.rate
        seg = self.segment
        lo = max(0, first * seg - self.before)
        hi = min(self.n, stop * seg + self.after)
        phasic = self.buffer.get(lo, hi)[:, 1]
        max_rise = int(self.config.scr_max_risetime * sfreq)
        peaks, onsets, confirm = _find_scrs_finite(phasic, self.config.scr_min_amplitude, max_rise)
        self.segments_done = stop
        absolute = lo + peaks
        segment = absolute // seg
        limit = np.minimum(self.n, (segment + 1) * seg + self.after)
        keep = (segment >= first) & (segment < stop) & (lo + confirm < limit)
        if not np.any(keep):
            return
        self.scr_peak = np.concatenate((self.scr_peak, absolute[keep]))
        self.scr_amplitude = np.concatenate(
            (self.scr_amplitude, phasic[peaks[keep]] - phasic[onsets[keep]])
        )
        self.scr_risetime = np.concatenate(
            (self.scr_risetime, (peaks[keep] - onsets[keep]) / sfreq)
        )

    def ready_until(self) -> float:
        if self.finished:
            return math.inf
        sfreq = self.rate
        return self.t_first + self.segments_done * self.segment / sfreq

    def columns(self) -> list[str]:
        return list(EDA_FEATURES)

    def window(self, t_end: float) -> tuple[dict[str, float], float, str]:
        sfreq = self.rate
        start, stop = self.window_positions(t_end)
        data = self.buffer.view(start, stop)
        good = np.nan_to_num(data[:, 2], nan=0.0)
        quality = float(np.mean(good)) if good.size else 0.0
        if quality == 0.0:
            return self.nan_features(), 0.0, "no valid EDA samples"
        tonic, phasic = data[:, 0], data[:, 1]
        repeated = float(np.mean(data[:, 3][good > 0]))
        if _frozen(tonic + phasic, max(1, round(0.25 * sfreq)), repeated):
            return self.nan_features(), 0.0, "flat EDA: only sensor noise (electrode off?)"
        lo = np.searchsorted(self.scr_peak, start, side="left")
        hi = np.searchsorted(self.scr_peak, stop, side="left")
        count = int(hi - lo)
        rate = count / (self.config.window / 60.0)
        if rate > MAX_SCR_RATE:
            return self.nan_features(), 0.0, f"implausible SCR rate ({rate:.0f}/min)"
        amplitudes, risetimes = self.scr_amplitude[lo:hi], self.scr_risetime[lo:hi]
        features = {
            "eda_tonic_mean": _nanmean(tonic),
            "eda_tonic_slope": ols_slope(tonic, 1.0 / sfreq),
            "eda_phasic_std": _nanstd(phasic),
            "eda_scr_count": float(count),
            "eda_scr_rate": rate,
            "eda_scr_amplitude_mean": float(np.mean(amplitudes)) if count else math.nan,
            "eda_scr_risetime_mean": float(np.mean(risetimes)) if count else math.nan,
        }
        return features, quality, ""

    def trim(self, before: float) -> None:
        keep_from = self.position(before - self.context_seconds)
        self.buffer.trim(keep_from)
        first = int(np.searchsorted(self.scr_peak, keep_from, side="left"))
        if first:
            self.scr_peak = self.scr_peak[first:]
            self.scr_amplitude = self.scr_amplitude[first:]
            self.scr_risetime = self.scr_risetime[first:]


def _nanmean(x: FloatArray) -> float:
    """``np.nanmean(x)``; without NaN by ``np.mean``, which adds in the same order (same
    bits) without the masked copy: most windows have no gap, and the copy cost 4x the mean."""
    return float(np.mean(x)) if np.isfinite(x).all() else float(np.nanmean(x))


def _nanstd(x: FloatArray) -> float:
    """``np.nanstd(x, ddof=1)``, by ``np.std`` when there is no NaN (as :func:`_nanmean`)."""
    return float(np.std(x, ddof=1)) if np.isfinite(x).all() else float(np.nanstd(x, ddof=1))


def _frozen(cleaned: FloatArray, lag: int, repeated: float = 0.0) -> bool:
    """Whether ``cleaned`` is a frozen value plus noise (see :data:`FLAT_MAX_STD`).

    ``repeated`` is the share of raw samples equal to the one before (see
    :data:`QUANTIZED_SHARE`).
    """
    x = cleaned[np.isfinite(cleaned)]
    if x.size <= lag + 2:
        return False
    spread = float(np.std(x, ddof=1))
    if spread >= FLAT_MAX_STD:
        return False
    if spread == 0.0:
        return True
    if repeated >= QUANTIZED_SHARE:
        return False
    change = float(np.std(x[lag:] - x[:-lag], ddof=1))
    return change / (math.sqrt(2.0) * spread) > FLAT_NOISE_RATIO


def _find_scrs_finite(
    phasic: FloatArray, min_amplitude: float, max_rise: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_scrs_confirmed` on each finite run separately (a gap ends every response)."""
    finite = np.isfinite(phasic)
    if finite.all():
        return _scrs_confirmed(phasic, min_amplitude, max_rise)
    edges = np.flatnonzero(np.diff(np.concatenate(([0], finite.view(np.int8), [0]))))
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for start, stop in zip(edges[::2], edges[1::2], strict=True):
        if stop - start < 3:
            continue
        peaks, onsets, confirm = _scrs_confirmed(phasic[start:stop], min_amplitude, max_rise)
        found.append((peaks + start, onsets + start, confirm + start))
    if not found:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, empty
    return (
        np.concatenate([f[0] for f in found]),
        np.concatenate([f[1] for f in found]),
        np.concatenate([f[2] for f in found]),
    )


def decompose_eda(
    block: SampleBlock, config: WindowConfig | None = None
) -> tuple[FloatArray, FloatArray]:
    """Tonic and phasic components of a whole EDA recording, as the extractor computes them.

    Parameters
    ----------
    block : SampleBlock
        An ``eda`` recording in µS.
    config : WindowConfig, optional
        Settings.

    Returns
    -------
    tonic, phasic : ndarray
        One value per sample position (NaN where samples are missing).
    """
    config = config if config is not None else WindowConfig()
    if config.origin is None and len(block):
        config = dataclasses.replace(config, origin=float(block.t[0]))
    processor = EdaProcessor(block, config)
    processor.feed(block)
    data = processor.buffer.get(0, processor.n)
    return data[:, 0], data[:, 1]
