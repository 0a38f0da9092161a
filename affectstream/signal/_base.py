"""Shared machinery of the per-modality processors: input checks, causal filters, buffers.

Every processor is incremental: it is fed sample blocks in time order and keeps only the
state it needs (filter states, the tail of its derived signals, detected events). The batch
entry point feeds whole recordings through the same code, which is why batch and streaming
give identical numbers.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from abc import ABC, abstractmethod
from typing import Literal

import numpy as np
import scipy.signal as sps

from affectstream.errors import SignalError
from affectstream.signal.config import WindowConfig
from affectstream.types import FloatArray, SampleBlock

logger = logging.getLogger(__name__)

#: Relative disagreement allowed between the nominal rate and the timestamps.
RATE_TOLERANCE = 0.05
#: Shortest span (s) over which timestamps are compared with the sampling rate.
RATE_CHECK_SPAN_S = 10.0
#: Blocks of a stream whose values are checked for the wrong unit.
UNIT_CHECK_BLOCKS = 20


class CausalFilter:
    """A second-order-sections IIR filter that carries its state across blocks.

    NaN samples give NaN output; the filter restarts in steady state on the first finite
    sample after a gap, so the output does not depend on how the input was cut into blocks.

    Parameters
    ----------
    sos : ndarray, shape (n_sections, 6)
        Filter coefficients.
    n_channels : int
        Number of columns filtered independently.
    """

    def __init__(self, sos: FloatArray, n_channels: int) -> None:
        self.sos = np.asarray(sos, dtype=np.float64)
        self._zi_unit = sps.sosfilt_zi(self.sos)
        self._state = np.full((self.sos.shape[0], 2, n_channels), np.nan)

    def __call__(self, x: FloatArray) -> FloatArray:
        """Filter ``x`` of shape (n, n_channels), continuing from the previous call."""
        if x.shape[0] == 0:
            return x.copy()
        finite = np.isfinite(x)
        if finite.all():
            # Fast path: all channels at once (same arithmetic per sample as the loop below).
            state = self._state
            if not np.isfinite(state).all():
                fresh = self._zi_unit[:, :, None] * x[0][None, None, :]
                state = np.where(np.isfinite(state), state, fresh)
            out, zf = sps.sosfilt(self.sos, x.T, axis=-1, zi=np.transpose(state, (0, 2, 1)))
            self._state = np.ascontiguousarray(np.transpose(zf, (0, 2, 1)))
            return np.ascontiguousarray(out.T)
        y = np.full_like(x, np.nan)
        for ch in range(x.shape[1]):
            col = x[:, ch]
            ok = finite[:, ch]
            state = self._state[:, :, ch]
            edges = np.flatnonzero(np.diff(np.concatenate(([0], ok.view(np.int8), [0]))))
            for start, stop in zip(edges[::2], edges[1::2], strict=True):
                if start > 0 or not np.isfinite(state).all():
                    state = self._zi_unit * col[start]
                y[start:stop, ch], state = sps.sosfilt(self.sos, col[start:stop], zi=state)
            if not ok[-1]:
                state = np.full_like(state, np.nan)
            self._state[:, :, ch] = state
        return y


def butter(
    order: int,
    cutoff: float | tuple[float, float],
    btype: Literal["lowpass", "highpass", "bandpass"],
    sfreq: float,
) -> FloatArray | None:
    """Butterworth SOS, or None when the cutoff is at or above Nyquist (filter skipped)."""
    nyquist = sfreq / 2.0
    edges = cutoff if isinstance(cutoff, tuple) else (cutoff,)
    if max(edges) >= nyquist * 0.98:
        if btype == "bandpass":
            return butter(order, edges[0], "highpass", sfreq)
        if btype == "lowpass":
            return None
    sos = sps.butter(order, cutoff, btype=btype, fs=sfreq, output="sos")
    return np.asarray(sos, dtype=np.float64)


def notch(line_freq: float, sfreq: float, quality: float = 30.0) -> FloatArray | None:
    """IIR notch at the mains frequency as SOS, or None when above Nyquist."""
    if line_freq >= sfreq / 2.0 * 0.98:
        return None
    b, a = sps.iirnotch(line_freq, quality, fs=sfreq)
    return np.asarray(sps.tf2sos(b, a), dtype=np.float64)


class Buffer:
    """A growable 2-D array addressed by absolute sample position, trimmed from the front.

    Trimming only moves an offset; rows are compacted when an append needs the room, so
    the cost per sample stays constant however often the buffer is trimmed. The array
    doubles when the rows held need more than half of it and halves back (never below
    :attr:`MIN_ROWS`) once they fit in a quarter: a burst (a device catching up after a
    stall) raises the capacity only until the rows it brought are trimmed, so a session's
    memory does not keep the high-water mark of its worst burst.
    """

    #: Smallest capacity in rows.
    MIN_ROWS = 1024

    def __init__(self, n_columns: int) -> None:
        self._data = np.empty((self.MIN_ROWS, n_columns))
        self._offset = 0  # row of self._data holding position self.start
        self.start = 0  # absolute position of the first row held
        self.stop = 0  # absolute position one past the last row

    @property
    def capacity(self) -> int:
        """Rows the buffer can hold before it reallocates."""
        return int(self._data.shape[0])

    def append(self, rows: FloatArray) -> None:
        """Append rows of shape (n, n_columns)."""
        n_have = self.stop - self.start
        capacity = self._data.shape[0]
        if n_have == 0 and rows.shape[0] > capacity:
            # Adopt the (freshly built) rows without copying when they are C-ordered floats.
            self._data = np.ascontiguousarray(rows, dtype=np.float64)
            self._offset = 0
            self.stop += rows.shape[0]
            return
        end = self._offset + n_have
        if end + rows.shape[0] > capacity:
            needed = n_have + rows.shape[0]
            grow = needed > capacity // 2
            size = max(needed * 2, self.MIN_ROWS) if grow or self._oversized(needed) else capacity
            end = self._resize(size, self._offset, end)
        self._data[end : end + rows.shape[0]] = rows
        self.stop += rows.shape[0]

    def _oversized(self, rows: int) -> bool:
        """Whether ``rows`` fit in a quarter of an array larger than the minimum."""
        return self._data.shape[0] > self.MIN_ROWS and rows * 4 <= self._data.shape[0]

    def _resize(self, size: int, lo: int, hi: int) -> int:
        """Move rows ``lo:hi`` to the front of an array of ``size`` rows; the new end."""
        kept = self._data[lo:hi]
        data = self._data if size == self._data.shape[0] else np.empty((size, self._data.shape[1]))
        data[: hi - lo] = kept.copy()
        self._data, self._offset = data, 0
        return hi - lo

    def get(self, start: int, stop: int) -> FloatArray:
        """Rows for absolute positions [start, stop); positions not held are NaN."""
        out = np.full((max(stop - start, 0), self._data.shape[1]), np.nan)
        lo, hi = max(start, self.start), min(stop, self.stop)
        if hi > lo:
            base = self._offset - self.start
            out[lo - start : hi - start] = self._data[lo + base : hi + base]
        return out

    def view(self, start: int, stop: int) -> FloatArray:
        """Like :meth:`get` but a view when the range is held completely."""
        if start >= self.start and stop <= self.stop:
            base = self._offset - self.start
            return self._data[start + base : stop + base]
        return self.get(start, stop)

    def trim(self, before: int) -> None:
        """Forget positions before ``before`` (and give back room a burst left unused)."""
        drop = min(before, self.stop) - self.start
        if drop > 0:
            self._offset += drop
            self.start += drop
            n_have = self.stop - self.start
            if self._oversized(n_have):
                self._resize(max(n_have * 2, self.MIN_ROWS), self._offset, self._offset + n_have)


def normalize_channel(name: str) -> str:
    """Channel name as used in feature names: ``"EEG Fp1"`` -> ``"fp1"``."""
    lowered = name.strip().lower()
    if lowered.startswith("eeg"):
        lowered = lowered[3:]
    cleaned = "".join(c if c.isalnum() else "_" for c in lowered).strip("_")
    return cleaned or "ch"


class Processor(ABC):
    """Incremental feature extractor of one stream.

    Parameters
    ----------
    first : SampleBlock
        The stream's first block (fixes channels, rate and time origin).
    config : WindowConfig
        Window settings.
    """

    family: str = ""
    #: Seconds of data before a window's start kept for context.
    context_seconds: float = 0.0

    def __init__(self, first: SampleBlock, config: WindowConfig) -> None:
        self.config = config
        self.stream = first.stream
        self.modality = first.modality
        self.channels = first.channels
        self.sfreq = first.sfreq
        self.t_first = float(first.t[0]) if len(first) else math.nan
        self.index0 = int(first.index[0]) if len(first) else 0
        self.n = 0  # samples (or events) received, including NaN rows filled for gaps
        self.last_t = -math.inf
        self.finished = False
        self.paused = False  # silent for longer than max_lag: rows no longer wait for it
        self._unit_checks = 0
        if self.sfreq is not None and (not math.isfinite(self.sfreq) or self.sfreq <= 0):
            raise SignalError(
                f"Stream {self.stream!r} has sampling rate {self.sfreq!r}; expected a "
                f"positive number of Hz (or None for event streams such as RR intervals)."
            )

    @property
    def rate(self) -> float:
        """The sampling rate in Hz; only regularly sampled streams have one."""
        if self.sfreq is None:
            raise SignalError(
                f"Stream {self.stream!r} is an event stream without a sampling rate; this "
                "step needs a regularly sampled stream (give the block its sfreq)."
            )
        return self.sfreq

    # -- input --------------------------------------------------------------------------
    def feed(self, block: SampleBlock) -> None:
        """Check ``block`` and add its samples to the state."""
        if block.stream != self.stream or block.channels != self.channels:
            raise SignalError(
                f"Block of stream {block.stream!r} {block.channels} fed to the processor of "
                f"{self.stream!r} {self.channels}; keep one processor per stream."
            )
        if len(block) == 0:
            return
        if self.paused:
            block = self._after_pause(block)
            if len(block) == 0:
                return
            self.paused = False
        if math.isnan(self.t_first):
            self.t_first = float(block.t[0])
            self.index0 = int(block.index[0])
        if self._unit_checks < UNIT_CHECK_BLOCKS:  # the unit does not change mid-stream
            self.check_units(block)
            self._unit_checks += 1
        if self.sfreq is None:
            t = np.asarray(block.t, dtype=np.float64)
            steps = np.diff(np.concatenate(([self.last_t], t)))
            if not np.all(steps > 0):
                bad = int(np.flatnonzero(~(steps > 0))[0])
                raise SignalError(
                    f"Timestamps of event stream {self.stream!r} must increase strictly; "
                    f"sample {bad} at t={t[bad]!r} does not come after the previous event. "
                    f"Sort the events and drop duplicates."
                )
            self.last_t = float(t[-1])
            self.n += len(block)
            self.add_events(t, np.asarray(block.values, dtype=np.float64))
            return
        values = self._regularize(block)
        self.n += values.shape[0]
        self.add_samples(values)

    def _regularize(self, block: SampleBlock) -> FloatArray:
        """Place the block's rows at their device positions, NaN rows for missing samples."""
        sfreq = self.rate
        pos = block.index.astype(np.int64) - self.index0
        t = np.asarray(block.t, dtype=np.float64)
        steps = np.diff(pos)
        if pos[0] < self.n or np.any(steps <= 0):
            raise SignalError(
                f"Stream {self.stream!r}: device sample indices must increase without overlap "
                f"(got index {int(block.index[0])} after {self.index0 + self.n - 1}). Feed "
                f"blocks once each, in time order."
            )
        if len(t) >= 2:
            if np.any(np.diff(t) <= 0):
                raise SignalError(
                    f"Stream {self.stream!r}: timestamps must increase; they go back or repeat "
                    f"in this block. Check the clock model."
                )
            # Only in blocks of at least RATE_CHECK_SPAN_S: a live clock model may stamp a few
            # packets closer than a period apart (device/clock.py, after a burst), which says
            # nothing about the rate; across short blocks the drift check below judges it.
            if pos[-1] - pos[0] >= RATE_CHECK_SPAN_S * sfreq:
                per_sample = float(t[-1] - t[0]) / float(pos[-1] - pos[0])
                if abs(per_sample * sfreq - 1.0) > RATE_TOLERANCE:
                    raise SignalError(
                        f"Stream {self.stream!r}: the timestamps advance {per_sample:.6g} s per "
                        f"sample ({1 / per_sample:.4g} Hz) but sfreq is {sfreq:g} Hz. Fix "
                        f"the sampling rate or the timestamps."
                    )
        expected = self.t_first + pos[0] / sfreq
        drift = float(t[0] - expected)
        if abs(drift) > max(1.0, 0.01 * (t[0] - self.t_first)):
            raise SignalError(
                f"Stream {self.stream!r}: sample index {int(block.index[0])} is stamped "
                f"{drift:+.3f} s away from where {sfreq:g} Hz puts it. The sampling rate "
                f"contradicts the timestamps, or a gap has no device index jump; send the real "
                f"device indices (gaps become NaN rows)."
            )
        if pos[0] == self.n and pos[-1] - pos[0] == len(pos) - 1:
            return np.asarray(block.values, dtype=np.float64)
        out = np.full((int(pos[-1]) - self.n + 1, block.values.shape[1]), np.nan)
        out[pos - self.n] = block.values
        return out

    def skip_to(self, index: int) -> None:
        """Say the stream's next sample has device index ``index``: its gap is NaN now.

        The rows the next block would fill the gap with (:meth:`_regularize`) are added at
        once, so windows in the gap complete without waiting for that block; results do
        not depend on where blocks are cut, so they are the same. Event streams, a paused
        or finished stream, and an index not past the samples received change nothing.

        Parameters
        ----------
        index : int
            Device index of the next sample.
        """
        if self.sfreq is None or math.isnan(self.t_first) or self.paused or self.finished:
            return
        missing = int(index) - self.index0 - self.n
        if missing > 0:
            self.n += missing
            self.add_samples(np.full((missing, len(self.channels)), np.nan))

    def _after_pause(self, block: SampleBlock) -> SampleBlock:
        """The rows of ``block`` at or after :meth:`resume_position` (the rest was drained)."""
        if self.sfreq is None or math.isnan(self.t_first):
            return block  # events only ever come after the last one
        keep = block.index.astype(np.int64) - self.index0 >= self.resume_position()
        if keep.all():
            return block
        logger.info(
            "%s resumed: %d samples inside the part already drained are left out of features",
            self.stream,
            int(np.count_nonzero(~keep)),
        )
        return dataclasses.replace(
            block, t=block.t[keep], values=block.values[keep], index=block.index[keep]
        )

    def position(self, t: float) -> int:
        """Sample position (0 = first sample) of time ``t``, rounded to the nearest sample."""
        sfreq = self.rate
        return round((t - self.t_first) * sfreq)

    def window_positions(self, t_end: float) -> tuple[int, int]:
        """Sample positions [start, stop) of the window ending at ``t_end``."""
        sfreq = self.rate
        stop = self.position(t_end)
        return stop - round(self.config.window * sfreq), stop

    def data_end(self) -> float:
        """Time just after the last sample received."""
        if math.isnan(self.t_first):
            return -math.inf
        if self.sfreq is None:
            return self.last_t
        return self.t_first + self.n / self.sfreq

    # -- to implement -------------------------------------------------------------------
    def check_units(self, block: SampleBlock) -> None:  # noqa: B027 - optional hook
        """Raise a SignalError when the values are clearly in the wrong unit."""

    def add_samples(self, values: FloatArray) -> None:
        """Regular streams: consume ``values`` (n, n_channels) at positions [n - len, n)."""
        raise NotImplementedError

    def add_events(self, t: FloatArray, values: FloatArray) -> None:
        """Event streams: consume events at times ``t``."""
        raise NotImplementedError

    def drain(self) -> None:  # noqa: B027 - optional hook
        """Process whatever still waits for look-ahead, as if the data ended here."""

    def resume_position(self) -> int:
        """First sample position a stream may continue at after :meth:`pause`."""
        return self.n

    def finish(self) -> None:
        """End of the stream: process whatever is still waiting for more context."""
        self.drain()
        self.finished = True

    def pause(self) -> None:
        """The stream went silent: drain it as at its end, but let it resume later.

        Windows are then computed from the data it sent. When it resumes, samples before
        :meth:`resume_position` (inside a detection segment already drained) are left out
        and the rest continues after a gap (NaN rows up to the first new sample), exactly
        as if the stream had had a device gap.
        """
        self.drain()
        self.paused = True

    @abstractmethod
    def ready_until(self) -> float:
        """Latest window end whose features can be computed now."""

    @abstractmethod
    def columns(self) -> list[str]:
        """Feature columns, in order."""

    @abstractmethod
    def window(self, t_end: float) -> tuple[dict[str, float], float, str]:
        """Features, quality (0..1) and a reason ('' if fine) of the window ending at t_end."""

    @abstractmethod
    def trim(self, before: float) -> None:
        """Forget state that no window ending after ``before + window`` needs."""

    def nan_features(self) -> dict[str, float]:
        """All feature columns set to NaN."""
        return dict.fromkeys(self.columns(), math.nan)


def ols_slope(y: FloatArray, dt: float) -> float:
    """Least-squares slope per second of ``y`` sampled every ``dt`` s, NaN-aware."""
    ok = np.isfinite(y)
    if ok.sum() < 2:
        return math.nan
    x = np.flatnonzero(ok) * dt
    yy = y[ok]
    xc = x - x.mean()
    denom = float(np.dot(xc, xc))
    return float(np.dot(xc, yy - yy.mean()) / denom) if denom > 0 else math.nan
