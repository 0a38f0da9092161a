"""EEG band powers, frontal alpha asymmetry and engagement from one STFT.

Each channel is filtered causally with a band-pass designed by MNE (``mne.filter.create_filter``,
IIR Butterworth order 4, 1-45 Hz, ``phase="forward"``) and a mains notch. The filtered stream is
cut once into Welch segments of ``eeg_welch_seconds`` with half overlap, aligned so that every
window's segments are exactly the ones ``mne.time_frequency.psd_array_welch`` would use on that
window (``n_per_seg = n_fft = eeg_welch_seconds * sfreq``, ``n_overlap = n_per_seg // 2``,
``window="hann"``). Each segment's periodogram is reduced to band powers at once; a window's
band power is the mean over its segments, i.e. Welch's estimate integrated over the band.

Bad-segment rejection is relative to each channel's own scale, so that a device whose µV are
off by a factor (a 0.25x or 4x gain) is judged as a calibrated one. A segment's robust scale
is the median absolute deviation of its filtered samples (times 1.4826, a standard deviation
for Gaussian data; a blink barely moves it); the channel's scale is the median of that over its
last ``EEG_SCALE_SECONDS`` of segments that pass the absolute limits, the current one included
(so the first segments of a stream are judged against a short history). A segment is rejected
when its filtered peak-to-peak exceeds ``eeg_max_ptp_scale`` times the channel's scale (blinks,
contact-loss drifts) or its standard deviation is below ``eeg_min_std_scale`` times it (an
electrode that stopped following the scalp). Absolute limits remain only for what no scalp EEG
does: peak-to-peak above ``eeg_max_ptp`` µV, standard deviation below ``eeg_min_std`` µV
(flat or railed electrode), a NaN sample. Two further rules are scale-free already: the mains
power (50 or 60 Hz) left after the notch and band-pass exceeds its 1-45 Hz power (line noise is
judged by what can reach the features, so a line the notch removes does not reject the EEG),
and raw samples sitting at their maximum or minimum for more than ``EEG_MAX_CLIPPED`` of the
segment (an amplifier's rails). A channel's window features use its accepted segments only,
and are NaN when fewer than half were accepted.
"""

from __future__ import annotations

import dataclasses
import logging
import math

import numpy as np
import scipy.signal as sps
from numpy.lib.stride_tricks import sliding_window_view

from affectstream.errors import SignalError
from affectstream.signal._base import Buffer, CausalFilter, Processor, normalize_channel, notch
from affectstream.signal.config import EEG_BANDS, WindowConfig
from affectstream.types import FloatArray, SampleBlock

logger = logging.getLogger(__name__)

#: Mains frequencies (Hz) whose residual power the segment rule checks.
MAINS_FREQS = (50.0, 60.0)
#: Share of a segment's raw samples at its maximum or minimum above which it is clipped
#: (real EEG reaches its extremes at a sample or two: 0.1-0.2 % of a 2-s segment).
EEG_MAX_CLIPPED = 0.02

#: Span (s) of recent segments whose median robust scale is a channel's reference scale: long
#: enough that a few seconds of artefact cannot move the median, short enough to follow a
#: re-seated electrode within a minute.
EEG_SCALE_SECONDS = 60.0
#: Median absolute deviation to standard deviation for Gaussian data.
MAD_TO_STD = 1.4826
#: Samples per segment the robust scale is computed from (every k-th sample).
SCALE_SAMPLES = 128

BAND_NAMES = tuple(EEG_BANDS)
TOTAL_BAND = (EEG_BANDS["delta"][0], EEG_BANDS["gamma"][1])
MIN_GOOD_FRACTION = 0.5
#: Welch segments transformed together.
FRAME_CHUNK = 128


def robust_scale(segments: FloatArray) -> FloatArray:
    """A segment's amplitude that a blink barely moves: 1.4826 x median absolute deviation.

    Parameters
    ----------
    segments : ndarray, shape (..., n_samples)
        Filtered EEG segments.

    Returns
    -------
    ndarray, shape (...)
        In the samples' unit; a standard deviation for Gaussian data.
    """
    # Every k-th sample (about SCALE_SAMPLES per segment) tells the amplitude as well as all
    # of them and keeps the two medians cheap (they were a third of the EEG extraction time).
    sub = segments[..., :: max(1, segments.shape[-1] // SCALE_SAMPLES)]
    centred = sub - _median_last(sub)[..., None]
    return np.asarray(MAD_TO_STD * _median_last(np.abs(centred)), dtype=np.float64)


def _median_last(x: FloatArray) -> FloatArray:
    """``np.median(x, axis=-1)`` to the last bit, from a full sort.

    numpy's vectorised sort of ~128 floats is several times faster than the two-point
    partition ``np.median`` runs; the middle values are the same, NaN sorts last (a NaN
    anywhere gives NaN, as ``np.median``), and the middle values are averaged as
    ``np.median`` does.
    """
    ordered = np.sort(x, axis=-1)
    n = ordered.shape[-1]
    # np.median's mean of the middle value(s) adds them to 0.0 first (so -0.0 becomes 0.0).
    if n % 2:
        middle = 0.0 + ordered[..., n // 2]
    else:
        middle = (0.0 + ordered[..., n // 2 - 1] + ordered[..., n // 2]) / 2.0
    return np.asarray(np.where(np.isnan(ordered[..., -1]), np.nan, middle), dtype=np.float64)


def segment_extremes(
    data: FloatArray, mean: FloatArray, nperseg: int, hop: int
) -> tuple[FloatArray, FloatArray]:
    """Peak-to-peak of the demeaned filtered segments and the raw samples' clipped share.

    Parameters
    ----------
    data : ndarray, shape (n_samples, 2 * n_channels)
        Filtered channels, then raw channels; segment ``k`` is rows ``k * hop`` to
        ``k * hop + nperseg``.
    mean : ndarray, shape (n_segments, n_channels)
        Each filtered segment's mean (its constant detrend).
    nperseg, hop : int
        Segment length and hop in samples.

    Returns
    -------
    ptp : ndarray, shape (n_segments, n_channels)
        ``max(filt - mean) - min(filt - mean)`` per segment.
    clipped : ndarray, shape (n_segments, n_channels)
        Share of a segment's raw samples within 1e-6 of its range from its maximum or
        minimum (an amplifier's rails hold the signal there; a clean one touches them once).
    """
    n_ch = mean.shape[1]
    # From a channel-major copy, whose segments lie contiguously: on the sample-major
    # windows these reductions stride through memory and took half of the EEG time.
    # Maxima, minima and counts do not depend on the order they are taken in, so the
    # numbers are those of the sample-major windows to the last bit. (Sums stay on the
    # sample-major windows, where numpy adds in sample order; it adds pairwise here.)
    spans = sliding_window_view(np.ascontiguousarray(data.T), nperseg, axis=-1)[:, ::hop]
    top, bottom = spans.max(axis=-1).T, spans.min(axis=-1).T  # (segments, 2 * channels)
    raw_top, raw_bottom = top[:, n_ch:], bottom[:, n_ch:]
    tolerance = 1e-6 * (raw_top - raw_bottom)
    upper, lower = (raw_top - tolerance).T[..., None], (raw_bottom + tolerance).T[..., None]
    raw = spans[n_ch:]
    clipped = np.mean((raw >= upper) | (raw <= lower), axis=-1).T
    # Rounding is monotonic, so max(fl(filt - mean)) is fl(max(filt) - mean) exactly.
    ptp = (top[:, :n_ch] - mean) - (bottom[:, :n_ch] - mean)
    return np.asarray(ptp, dtype=np.float64), np.asarray(clipped, dtype=np.float64)


class EegProcessor(Processor):
    """EEG features of one multi-channel stream (see the module docstring)."""

    family = "eeg"

    def __init__(self, first: SampleBlock, config: WindowConfig) -> None:
        super().__init__(first, config)
        if self.sfreq is None or self.sfreq < 2 * TOTAL_BAND[1]:
            raise SignalError(
                f"EEG stream {self.stream!r} has sampling rate {self.sfreq!r}; expected a "
                f"regular rate of at least {2 * TOTAL_BAND[1]:g} Hz."
            )
        sfreq = self.sfreq
        self.nperseg = round(config.eeg_welch_seconds * sfreq)
        self.hop = self.nperseg - self.nperseg // 2
        step_samples = config.step * sfreq
        if abs(step_samples - round(step_samples)) > 1e-6 or round(step_samples) % self.hop:
            raise SignalError(
                f"EEG stream {self.stream!r}: the step ({config.step} s = {step_samples:g} "
                f"samples at {sfreq:g} Hz) must be a multiple of the Welch hop ({self.hop} "
                f"samples) so windows share segments. Choose step and eeg_welch_seconds to fit."
            )
        import mne  # slow to import; only EEG streams need it

        band = mne.filter.create_filter(
            None,
            sfreq,
            TOTAL_BAND[0],
            TOTAL_BAND[1],
            method="iir",
            iir_params={"order": 4, "ftype": "butter", "output": "sos"},
            phase="forward",
            verbose=False,
        )
        n_ch = len(self.channels)
        mains = notch(config.line_freq, sfreq)
        sections = [np.asarray(band["sos"])] if mains is None else [mains, np.asarray(band["sos"])]
        self.filter = CausalFilter(np.vstack(sections), n_ch)  # one cascade, one call
        self.names = [normalize_channel(c) for c in self.channels]
        self.band_columns = [
            f"eeg_{band}_{kind}_{ch}"
            for ch in self.names
            for kind in ("abs", "rel")
            for band in BAND_NAMES
        ]
        self.taper = sps.get_window("hann", self.nperseg)
        self.scale = 1.0 / (sfreq * float(np.sum(self.taper**2)))
        self.freqs = np.fft.rfftfreq(self.nperseg, 1.0 / sfreq).astype(np.float64)
        self.df = float(self.freqs[1])
        # Band sums as differences of a cumulative sum over bins: [lo, hi) index ranges.
        edges = [*EEG_BANDS.values(), TOTAL_BAND]
        self.band_lo = np.array([np.searchsorted(self.freqs, lo) - 1 for lo, _ in edges])
        self.band_hi = np.array([np.searchsorted(self.freqs, hi) - 1 for _, hi in edges])
        # Periodogram value at each mains frequency (one bin of a Hann-tapered DFT) times the
        # width of the +-1 Hz band around it, of the filtered signal: what the notch and the
        # band-pass leave is what can reach the features. Both 50 and 60 Hz, so a wrong
        # line_freq setting does not let the other mains through unseen.
        t = np.arange(self.nperseg) / sfreq
        self.line_bases = [
            np.stack((np.cos(2 * np.pi * f * t), np.sin(2 * np.pi * f * t)), axis=1)
            * self.taper[:, None]
            for f in MAINS_FREQS
            if f < sfreq / 2.0
        ]
        self.line_scale = 2.0 * self.scale * self.df * 1.5  # Hann: 1.5 bins noise bandwidth
        self.samples = Buffer(2 * n_ch)  # filtered, raw (for clipping)
        self.n_bands = len(BAND_NAMES) + 1
        self.frames = Buffer(n_ch * self.n_bands + n_ch)  # band powers, then good flags
        if config.origin is None:
            raise RuntimeError("EEG processor built before the extractor fixed the time origin.")
        first_start = self.position(config.origin) - round(config.window * sfreq)
        self.frame0 = first_start % self.hop  # position of frame 0's first sample
        self.frames_done = 0
        self.n_window_frames = (round(config.window * sfreq) - self.nperseg) // self.hop + 1
        left, right = (normalize_channel(c) for c in config.faa_channels)
        self.faa_pair = (
            (self.names.index(left), self.names.index(right))
            if left in self.names and right in self.names
            else None
        )
        self.context_seconds = config.eeg_welch_seconds
        # Robust scales of the last segments (NaN where the absolute limits failed): the
        # reference of the next segments' relative limits.
        n_scale = max(1, round(EEG_SCALE_SECONDS * sfreq / self.hop))
        self.scale_history = np.full((n_scale - 1, n_ch), np.nan)

    def check_units(self, block: SampleBlock) -> None:
        values = block.values[:4096]  # the first samples tell the unit
        finite = values[np.isfinite(values)]
        biggest = float(np.max(np.abs(finite))) if finite.size else 0.0
        if block.unit in ("V", "mV") or 0.0 < biggest < 1e-3:
            raise SignalError(
                f"EEG stream {self.stream!r}: values up to {biggest:.3g} {block.unit} look like "
                f"volts; expected µV. Multiply volts by 1e6 (millivolts by 1e3)."
            )

    def add_samples(self, values: FloatArray) -> None:
        n_ch = len(self.channels)
        # Filtered into the left half of the rows the buffer keeps (filtered, raw): a whole
        # recording's copies and their first-touch page faults cost as much as the filter.
        rows = np.empty((values.shape[0], 2 * n_ch))
        self.filter(values, out=rows[:, :n_ch])
        rows[:, n_ch:] = values
        self.samples.append(rows)
        n_ready = (self.n - self.frame0 - self.nperseg) // self.hop + 1
        if n_ready > self.frames_done:
            self._frames(self.frames_done, n_ready)
            self.frames_done = n_ready

    def _frames(self, first: int, stop: int) -> None:
        """Band powers and accept flags of Welch segments ``first..stop-1``."""
        for chunk_start in range(first, stop, FRAME_CHUNK):  # chunks keep arrays in cache
            self._frame_chunk(chunk_start, min(stop, chunk_start + FRAME_CHUNK))

    def _frame_chunk(self, first: int, stop: int) -> None:
        n_ch = len(self.channels)
        lo = self.frame0 + first * self.hop
        hi = self.frame0 + (stop - 1) * self.hop + self.nperseg
        data = self.samples.view(lo, hi)
        windows = sliding_window_view(data, self.nperseg, axis=0)[:: self.hop]
        filt = windows[:, :n_ch]  # (frames, channels, nperseg), a view
        filt_mean = filt.mean(axis=-1, keepdims=True)
        segs = filt - filt_mean  # detrend="constant", as MNE
        psd = np.abs(np.fft.rfft(segs * self.taper, axis=-1)) ** 2 * self.scale
        psd[..., 1 : -1 if self.nperseg % 2 == 0 else None] *= 2.0
        cumulative = np.cumsum(psd, axis=-1)
        powers = (cumulative[..., self.band_hi] - cumulative[..., self.band_lo]) * self.df
        # Mains power left after the notch and band-pass: the projection of the filtered
        # segment on each mains frequency, tapered; the larger one counts.
        line_power = np.zeros(powers.shape[:-1])
        for basis in self.line_bases:
            projected = np.sum(np.abs(segs @ basis) ** 2, axis=-1) * self.line_scale
            line_power = np.maximum(line_power, projected)
        ptp, clipped = segment_extremes(data, filt_mean[..., 0], self.nperseg, self.hop)
        cfg = self.config
        std = np.sqrt(np.mean(segs**2, axis=-1))
        with np.errstate(invalid="ignore"):
            plausible = (
                np.isfinite(powers[..., -1])
                & (ptp <= cfg.eeg_max_ptp)
                & (std >= cfg.eeg_min_std)
                & ~(line_power > powers[..., -1])
                & ~(clipped > EEG_MAX_CLIPPED)
            )
            reference = self._reference_scale(segs, plausible)
            good = (
                plausible
                & (ptp <= cfg.eeg_max_ptp_scale * reference)
                & (std >= cfg.eeg_min_std_scale * reference)
            )
        rows = np.concatenate((powers.reshape(len(powers), -1), good.astype(np.float64)), axis=1)
        self.frames.append(rows)

    def _reference_scale(self, segs: FloatArray, plausible: np.ndarray) -> FloatArray:
        """Each segment's channel scale: median robust scale of the recent plausible segments.

        Segments are taken in order and the history carries over between calls, so the
        result does not depend on how the stream was cut into blocks.
        """
        scale = np.where(plausible, robust_scale(segs), np.nan)
        history = np.concatenate((self.scale_history, scale))
        spans = sliding_window_view(history, len(self.scale_history) + 1, axis=0)
        # Median over the finite entries: NaNs sort last, so it sits at (n - 1) // 2 and n // 2.
        ordered = np.sort(spans, axis=-1)
        n = np.isfinite(spans).sum(axis=-1)
        lo = np.take_along_axis(ordered, np.maximum((n - 1) // 2, 0)[..., None], axis=-1)
        hi = np.take_along_axis(ordered, (n // 2)[..., None], axis=-1)
        reference = np.where(n > 0, 0.5 * (lo[..., 0] + hi[..., 0]), np.nan)
        self.scale_history = history[len(history) - len(self.scale_history) :]
        return np.asarray(reference, dtype=np.float64)

    def ready_until(self) -> float:
        if self.finished:
            return math.inf
        return self.data_end()

    def columns(self) -> list[str]:
        cols = [
            f"eeg_{b}_{kind}_{ch}"
            for ch in self.names
            for kind in ("abs", "rel")
            for b in BAND_NAMES
        ]
        return [*cols, "eeg_faa", "eeg_engagement"]

    def window_frame_range(self, t_end: float) -> tuple[int, int]:
        """Welch segments [first, stop) of the window ending at ``t_end``."""
        start, _ = self.window_positions(t_end)
        first = (start - self.frame0) // self.hop
        return first, first + self.n_window_frames

    def window(self, t_end: float) -> tuple[dict[str, float], float, str]:
        n_ch = len(self.channels)
        first, stop = self.window_frame_range(t_end)
        rows = self.frames.get(max(first, 0), stop)
        if first < 0:
            rows = np.concatenate((np.full((-first, rows.shape[1]), np.nan), rows))
        powers = rows[:, : n_ch * self.n_bands].reshape(len(rows), n_ch, self.n_bands)
        good = np.nan_to_num(rows[:, n_ch * self.n_bands :], nan=0.0) > 0
        good_fraction = good.mean(axis=0)
        quality = float(good_fraction.mean())
        # Mean over each channel's accepted segments (NaN below MIN_GOOD_FRACTION).
        n_good = good.sum(axis=0)
        sums = np.where(good[:, :, None], powers, 0.0).sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            channel_means = sums / n_good[:, None]
            channel_means[good_fraction < MIN_GOOD_FRACTION] = np.nan
            absolute = channel_means[:, :-1]
            relative = absolute / channel_means[:, -1:]
        values = np.concatenate((absolute, relative), axis=1).ravel().tolist()
        features: dict[str, float] = dict(zip(self.band_columns, values, strict=True))
        alpha, beta, theta = (BAND_NAMES.index(b) for b in ("alpha", "beta", "theta"))
        if self.faa_pair is not None:
            left, right = self.faa_pair
            with np.errstate(divide="ignore", invalid="ignore"):
                features["eeg_faa"] = float(
                    np.log(channel_means[right, alpha]) - np.log(channel_means[left, alpha])
                )
        else:
            features["eeg_faa"] = math.nan
        usable = np.all(np.isfinite(channel_means), axis=1)
        if usable.any():
            used = channel_means[usable]
            features["eeg_engagement"] = float(
                used[:, beta].sum() / (used[:, alpha].sum() + used[:, theta].sum())
            )
        else:
            features["eeg_engagement"] = math.nan
        reason = "" if usable.any() else "no EEG channel with enough clean segments"
        return features, quality, reason

    def trim(self, before: float) -> None:
        start, _ = self.window_positions(before + self.config.window)
        first = (start - self.frame0) // self.hop
        self.frames.trim(first)
        self.samples.trim(self.frame0 + self.frames_done * self.hop)


def filter_eeg(block: SampleBlock, config: WindowConfig | None = None) -> FloatArray:
    """The band-passed, notched EEG of a whole recording, as the extractor computes it.

    Parameters
    ----------
    block : SampleBlock
        An ``eeg`` recording in µV.
    config : WindowConfig, optional
        Settings (``line_freq``).

    Returns
    -------
    ndarray, shape (n_samples, n_channels)
    """
    config = config if config is not None else WindowConfig()
    if config.origin is None and len(block):
        config = dataclasses.replace(config, origin=float(block.t[0]))
    processor = EegProcessor(block, config)
    processor.feed(block)
    n_ch = len(processor.channels)
    return processor.samples.get(0, processor.n)[:, :n_ch]
