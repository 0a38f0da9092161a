"""Heart-rate variability from RR intervals, ECG or PPG.

Peaks are found once per stream on a causally filtered signal, as the samples arrive
(:mod:`affectstream.signal.beats`). ECG: NeuroKit2's "neurokit" detector (the one behind
``nk.ecg_peaks``) with a trailing threshold and a look-ahead of 0.05 s. PPG: NeuroKit2's
"elgendi" detector (``nk.ppg_findpeaks``) with a look-ahead of 0.2 s. Per-window HRV is then
plain numpy on the cached beats, with NeuroKit2's definitions: on the same peaks it equals
``nk.hrv_time``.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import statistics

import numpy as np

from affectstream.errors import SignalError
from affectstream.signal._base import Buffer, CausalFilter, Processor, butter, notch
from affectstream.signal.beat_stream import BeatDetector
from affectstream.signal.beats import EcgBeatDetector
from affectstream.signal.config import WindowConfig
from affectstream.signal.ppg_beats import PpgBeatDetector
from affectstream.types import FloatArray, IntArray, SampleBlock

logger = logging.getLogger(__name__)

HRV_FEATURES = (
    "hrv_mean_hr",
    "hrv_mean_nn",
    "hrv_sdnn",
    "hrv_rmssd",
    "hrv_pnn50",
    "hrv_lf",
    "hrv_hf",
    "hrv_lf_hf",
    "hrv_sd1",
    "hrv_sd2",
)
#: Physiologically plausible RR intervals (ms); others are artifacts or missed beats.
RR_RANGE = (300.0, 2000.0)
LF_BAND = (0.04, 0.15)
HF_BAND = (0.15, 0.4)
#: Resampling rate of the RR series for the spectrum, Hz.
RR_RESAMPLE_HZ = 4.0
#: Beat waveform around each peak for the template match, seconds before/after.
TEMPLATE_SPAN = {"ecg": (0.2, 0.1), "ppg": (0.3, 0.5)}
#: Two peaks closer than this are one beat (NeuroKit2's ``mindelay``), seconds.
MIN_BEAT_DISTANCE = 0.3
MIN_INTERVALS = 3
#: An interval differing from the median of the previous plausible ones by more than this
#: fraction is a missed, extra or ectopic beat (a causal form of Malik's 20 % rule).
RR_MAX_CHANGE = 0.2
RR_HISTORY = 5


def screen_intervals(rr: FloatArray, history: list[float]) -> np.ndarray:
    """Flag plausible RR intervals, in order, against the recent ones.

    Parameters
    ----------
    rr : ndarray
        New intervals in ms (NaN for undefined).
    history : list of float
        The last plausible intervals; updated in place (kept to ``RR_HISTORY`` values).

    Returns
    -------
    ndarray of bool
        True for intervals within ``RR_RANGE`` and within ``RR_MAX_CHANGE`` of the median of
        the previous ``RR_HISTORY`` plausible intervals (the median shrugs off single
        artifacts and follows a real change of rhythm within a few beats).
    """
    valid = np.zeros(rr.shape, dtype=bool)
    for i, value in enumerate(rr.tolist()):
        if not (RR_RANGE[0] <= value <= RR_RANGE[1]):
            continue
        reference = statistics.median(history) if len(history) >= 3 else value
        valid[i] = abs(value - reference) <= RR_MAX_CHANGE * reference
        history.append(value)
        del history[: max(0, len(history) - RR_HISTORY)]
    return valid


def hrv_time(
    rr: FloatArray, valid: np.ndarray | None = None, successive: np.ndarray | None = None
) -> dict[str, float]:
    """Time-domain and Poincaré HRV of one window of RR intervals.

    Parameters
    ----------
    rr : ndarray, shape (n,)
        Consecutive RR intervals in ms.
    valid : ndarray of bool, shape (n,), optional
        Which intervals are trustworthy; successive differences use only adjacent valid pairs.
    successive : ndarray of bool, shape (n - 1,), optional
        Which neighbouring intervals are consecutive beats (False where a beat is missing
        between them); default all.

    Returns
    -------
    dict
        ``hrv_mean_nn`` (ms), ``hrv_mean_hr`` (bpm, 60000 / mean NN), ``hrv_sdnn`` (ms,
        ddof=1), ``hrv_rmssd`` (ms), ``hrv_pnn50`` (%, NeuroKit2's definition: successive
        differences above 50 ms divided by the number of differences plus one),
        ``hrv_sd1``/``hrv_sd2`` (ms, Poincaré, ddof=1). NaN with fewer than 3 intervals.
    """
    rr = np.asarray(rr, dtype=np.float64)
    ok = np.ones(rr.shape, dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    out = dict.fromkeys(
        ("hrv_mean_hr", "hrv_mean_nn", "hrv_sdnn", "hrv_rmssd", "hrv_pnn50", "hrv_sd1", "hrv_sd2"),
        math.nan,
    )
    nn = rr[ok]
    if nn.size < MIN_INTERVALS:
        return out
    mean_nn = float(np.mean(nn))
    out["hrv_mean_nn"] = mean_nn
    out["hrv_mean_hr"] = 60000.0 / mean_nn
    out["hrv_sdnn"] = float(np.std(nn, ddof=1))
    pairs = ok[1:] & ok[:-1]
    if successive is not None:
        pairs &= np.asarray(successive, dtype=bool)
    first, second = rr[:-1][pairs], rr[1:][pairs]
    diff = second - first
    if diff.size >= 2:
        out["hrv_rmssd"] = float(np.sqrt(np.mean(diff**2)))
        out["hrv_pnn50"] = float(np.sum(np.abs(diff) > 50) / (diff.size + 1) * 100)
        out["hrv_sd1"] = float(np.std((first - second) / np.sqrt(2), ddof=1))
        out["hrv_sd2"] = float(np.std((first + second) / np.sqrt(2), ddof=1))
    return out


def hrv_frequency(beat_times: FloatArray, rr: FloatArray, *, lf: bool = True) -> dict[str, float]:
    """LF and HF power of one window of RR intervals.

    The RR series (value at each beat time) is resampled at 4 Hz by linear interpolation, its
    mean removed, and its Hann-windowed periodogram integrated over LF 0.04-0.15 Hz and
    HF 0.15-0.4 Hz (lower edge inclusive).

    Parameters
    ----------
    beat_times : ndarray
        Times (s) of the beats ending each interval, increasing.
    rr : ndarray
        The intervals in ms (valid ones only).
    lf : bool
        Whether the window is long enough for LF (see ``WindowConfig.lf_min_window``).

    Returns
    -------
    dict
        ``hrv_lf`` and ``hrv_hf`` in ms², ``hrv_lf_hf`` (ratio); NaN when not computable.
    """
    out = {"hrv_lf": math.nan, "hrv_hf": math.nan, "hrv_lf_hf": math.nan}
    if rr.size < 4:
        return out
    span = float(beat_times[-1] - beat_times[0])
    n = int(span * RR_RESAMPLE_HZ) + 1
    if span < 2.0 / HF_BAND[0] or n < 8:
        return out
    grid = beat_times[0] + np.arange(n) / RR_RESAMPLE_HZ
    series = np.interp(grid, beat_times, rr)
    series = series - series.mean()
    taper = _hann(n)
    spectrum = np.abs(np.fft.rfft(series * taper)) ** 2 / (RR_RESAMPLE_HZ * np.sum(taper**2))
    spectrum[1:] *= 2.0
    freqs = np.fft.rfftfreq(n, 1.0 / RR_RESAMPLE_HZ)
    df = freqs[1]
    hf_power = float(np.sum(spectrum[(freqs >= HF_BAND[0]) & (freqs < HF_BAND[1])]) * df)
    out["hrv_hf"] = hf_power
    if lf and span >= 2.0 / LF_BAND[0] * 0.9:
        lf_power = float(np.sum(spectrum[(freqs >= LF_BAND[0]) & (freqs < LF_BAND[1])]) * df)
        out["hrv_lf"] = lf_power
        out["hrv_lf_hf"] = lf_power / hf_power if hf_power > 0 else math.nan
    return out


@functools.lru_cache(maxsize=64)
def _hann(n: int) -> FloatArray:
    """Periodic Hann window of length ``n`` (as ``scipy.signal.get_window("hann", n)``)."""
    window = np.hanning(n + 1)[:-1]
    window.flags.writeable = False
    return window


class HrvProcessor(Processor):
    """HRV of one RR, ECG or PPG stream (see the module docstring)."""

    family = "hrv"

    def __init__(self, first: SampleBlock, config: WindowConfig) -> None:
        super().__init__(first, config)
        self.beat_t = np.empty(0)
        self.beat_pos = np.empty(0, dtype=np.int64)
        self.rr = np.empty(0)
        self.rr_valid = np.empty(0, dtype=bool)
        self.beat_quality = np.empty(0)
        # Position of the beat whose interval revealed an inserted (missed) beat, else the
        # beat's own: a window ending at or before it leaves the beat out.
        self.beat_found = np.empty(0, dtype=np.int64)
        self.history: list[float] = []
        self.detector: BeatDetector | None = None
        if self.modality == "rr":
            if self.sfreq is not None:
                raise SignalError(
                    f"RR stream {self.stream!r} must be an event stream (sfreq None): t holds "
                    f"the beat times and values the RR intervals in ms."
                )
            return
        if self.sfreq is None:
            raise SignalError(
                f"{self.modality.upper()} stream {self.stream!r} needs a sampling rate."
            )
        sfreq = self.sfreq
        if sfreq < 50:
            raise SignalError(
                f"{self.modality.upper()} stream {self.stream!r} is sampled at {sfreq:g} Hz; "
                f"beat detection needs at least 50 Hz. Send RR intervals instead."
            )
        if self.modality == "ecg":
            # NeuroKit2's "neurokit" cleaning (0.5 Hz high-pass, order 5, plus mains), causal.
            stages = [butter(5, 0.5, "highpass", sfreq), notch(config.line_freq, sfreq)]
        else:
            # NeuroKit2's "elgendi" PPG cleaning (0.5-8 Hz band-pass, order 3), causal.
            stages = [butter(3, (0.5, 8.0), "bandpass", sfreq)]
        # One cascade, one sosfilt call per block.
        self.filters = [CausalFilter(np.vstack([s for s in stages if s is not None]), 1)]
        self.buffer = Buffer(2)  # filtered signal, raw-is-NaN flag
        before, after = TEMPLATE_SPAN[self.modality]
        self.template = (round(before * sfreq), round(after * sfreq))
        # Kept before a trimmed window: the previous beat of the next interval (RR_RANGE's
        # 2 s) and the beats a detector still holds back, with room to spare.
        self.context_seconds = 5.0
        # Beats as the samples arrive (affectstream.signal.beats, .ppg_beats).
        if self.modality == "ecg":
            self.detector = EcgBeatDetector(sfreq, self.template)
        else:
            self.detector = PpgBeatDetector(sfreq, self.template)

    # -- input --------------------------------------------------------------------------
    def check_units(self, block: SampleBlock) -> None:
        if self.modality != "rr":
            return
        values = block.values[:, 0]
        finite = values[np.isfinite(values)]
        if block.unit not in ("ms", "") or (finite.size and float(np.median(finite)) < 10.0):
            shown = float(np.median(finite)) if finite.size else math.nan
            raise SignalError(
                f"RR stream {self.stream!r}: intervals must be in ms, got unit {block.unit!r} "
                f"with median {shown:.4g}. If they are in seconds, multiply by 1000."
            )

    def add_events(self, t: FloatArray, values: FloatArray) -> None:
        rr = values[:, 0]
        valid = screen_intervals(rr, self.history)
        self.beat_t = np.concatenate((self.beat_t, t))
        self.rr = np.concatenate((self.rr, rr))
        self.rr_valid = np.concatenate((self.rr_valid, valid))
        self.beat_quality = np.concatenate((self.beat_quality, valid.astype(np.float64)))

    def add_samples(self, values: FloatArray) -> None:
        x = values[:, :1]
        for stage in self.filters:
            x = stage(x)
        self.buffer.append(np.column_stack((x[:, 0], np.isnan(values[:, 0]))))
        if self.detector is not None:
            # The filter gives NaN where the raw sample is missing: a gap ends a run.
            self._add_beats(self.detector.feed(x[:, 0]))

    def drain(self) -> None:
        if self.detector is not None:
            self._add_beats(self.detector.close())

    def resume_position(self) -> int:
        return self.n

    def _add_beats(self, beats: list[tuple[int, float]]) -> None:
        """Append detected beats (position, quality) with their RR intervals and flags."""
        if not beats:
            return
        sfreq = self.rate
        new = np.array([b[0] for b in beats], dtype=np.int64)
        quality = np.array([b[1] for b in beats], dtype=np.float64)
        # One beat per mindelay: drop detections too close to the previous kept beat.
        min_gap = MIN_BEAT_DISTANCE * sfreq
        previous = int(self.beat_pos[-1]) if self.beat_pos.size else -(10**12)
        accepted = np.ones(new.size, dtype=bool)
        for i, pos in enumerate(new.tolist()):
            if pos - previous <= min_gap:
                accepted[i] = False
            else:
                previous = pos
        new, quality = new[accepted], quality[accepted]
        if new.size == 0:
            return
        inserted = self.detector.inserted if self.detector is not None else {}
        found = np.array([inserted.pop(p, p) for p in new.tolist()], dtype=np.int64)
        chain = np.concatenate((self.beat_pos[-1:], new))  # the previous beat, if any
        rr = np.diff(chain) / sfreq * 1000.0
        prev = chain[:-1]
        if not self.beat_pos.size:
            rr = np.concatenate(([math.nan], rr))
            prev = np.concatenate((new[:1], prev))
        # Valid: plausible, and no sample between the two beats is missing.
        first = int(prev[0])
        flags = self.buffer.get(first, int(new[-1]) + 1)[:, 1] != 0
        missing = np.concatenate(([0], np.cumsum(flags)))
        gap_free = missing[new - first + 1] - missing[prev - first] == 0
        valid = screen_intervals(np.where(gap_free, rr, np.nan), self.history)
        self.beat_pos = np.concatenate((self.beat_pos, new))
        self.beat_t = np.concatenate((self.beat_t, self.t_first + new / sfreq))
        self.rr = np.concatenate((self.rr, rr))
        self.rr_valid = np.concatenate((self.rr_valid, valid))
        self.beat_quality = np.concatenate((self.beat_quality, quality))
        self.beat_found = np.concatenate((self.beat_found, found))

    # -- output -------------------------------------------------------------------------
    def ready_until(self) -> float:
        if self.finished:
            return math.inf
        if self.modality == "rr":
            return self.last_t
        sfreq = self.rate
        assert self.detector is not None
        return self.t_first + self.detector.final / sfreq

    def columns(self) -> list[str]:
        return list(HRV_FEATURES)

    def window_beats(self, t_end: float) -> slice:
        """Index range of the beats inside the window ending at ``t_end``."""
        if self.modality == "rr":
            lo = np.searchsorted(self.beat_t, t_end - self.config.window, side="left")
            hi = np.searchsorted(self.beat_t, t_end, side="left")
        else:
            start, stop = self.window_positions(t_end)
            lo = np.searchsorted(self.beat_pos, start, side="left")
            hi = np.searchsorted(self.beat_pos, stop, side="left")
            # A missed beat inserted late counts only for windows that reach the beat which
            # revealed it (the last in the window otherwise), so rows emitted before the
            # correction equal batch rows.
            while hi > lo and self.beat_found[hi - 1] >= stop:
                hi -= 1
        return slice(int(lo), int(hi))

    def window(self, t_end: float) -> tuple[dict[str, float], float, str]:
        beats = self.window_beats(t_end)
        if self.modality == "rr":
            rr, valid = self.rr[beats], self.rr_valid[beats]
            times = self.beat_t[beats]
            # Successive only if no beat is missing between them (the device skipped some).
            successive = np.abs(np.diff(times) * 1000.0 - rr[1:]) < 0.5 * rr[1:]
            quality_beats = self.beat_quality[beats]
        else:
            inner = slice(beats.start + 1, max(beats.stop, beats.start + 1))
            rr, valid = self.rr[inner], self.rr_valid[inner]
            times = self.beat_t[inner]
            successive = None
            quality_beats = self.beat_quality[beats]
        if rr.size == 0:
            return self.nan_features(), 0.0, "no beats in window"
        coverage = min(1.0, float(np.sum(rr[valid])) / 1000.0 / self.config.window)
        quality = coverage * float(np.mean(quality_beats)) if quality_beats.size else 0.0
        features = hrv_time(rr, valid, successive)
        lf_ok = self.config.window >= self.config.lf_min_window
        features.update(hrv_frequency(times[valid], rr[valid], lf=lf_ok))
        reason = "" if valid.sum() >= MIN_INTERVALS else "fewer than 3 valid RR intervals"
        return {k: features[k] for k in HRV_FEATURES}, quality, reason

    def trim(self, before: float) -> None:
        keep_from = before - self.context_seconds
        first = int(np.searchsorted(self.beat_t, keep_from, side="left"))
        if first > 1:
            first -= 1  # keep one earlier beat so the next interval stays defined
            self.beat_t = self.beat_t[first:]
            self.beat_pos = self.beat_pos[first:] if self.beat_pos.size else self.beat_pos
            self.rr = self.rr[first:]
            self.rr_valid = self.rr_valid[first:]
            self.beat_quality = self.beat_quality[first:]
            self.beat_found = self.beat_found[first:] if self.beat_found.size else self.beat_found
        if self.modality != "rr":
            self.buffer.trim(self.position(keep_from))


def detect_beats(block: SampleBlock, config: WindowConfig | None = None) -> IntArray:
    """Beat positions of a whole ECG/PPG recording, as the extractor finds them.

    Parameters
    ----------
    block : SampleBlock
        An ``ecg`` or ``ppg`` recording.
    config : WindowConfig, optional
        Detection settings (``line_freq``).

    Returns
    -------
    ndarray of int64
        Sample positions (0 = first sample of ``block``) of the detected beats; pass them to
        ``nk.hrv_time(peaks, sampling_rate=block.sfreq)`` to compare.
    """
    config = config if config is not None else WindowConfig()
    if len(block) == 0:
        return np.empty(0, dtype=np.int64)
    processor = HrvProcessor(block, _with_origin(config, float(block.t[0])))
    processor.feed(block)
    processor.finish()
    return processor.beat_pos.copy()


def _with_origin(config: WindowConfig, origin: float) -> WindowConfig:
    return config if config.origin is not None else dataclasses.replace(config, origin=origin)
