"""The streaming skeleton both beat detectors share, and their common tools.

:class:`BeatDetector` holds what the R-peak detector (:mod:`affectstream.signal.beats`) and
the PPG pulse-peak detector (:mod:`affectstream.signal.ppg_beats`) both do with a stream,
whatever decides where a beat is: cut it into runs at missing samples (NaN), keep the
signal of the current run, turn per-position flags ("inside a QRS complex / a pulse wave")
into complexes, keep one beat per complex, hold each beat until its template waveform has
arrived, score it against the recent beats' mean waveform and report how far the beats are
final. Each detector subclasses it with only its own state: how the flags are computed
(:meth:`BeatDetector._extend`, :meth:`BeatDetector._close_run`) and which peak of a
complex is the beat (:meth:`BeatDetector._peak_in`).

Also here, for both: :class:`Boxcar` (NeuroKit2's boxcar smoothing as running sums, so
the output does not depend on how the input is cut) and :func:`most_prominent` (the beat
inside a complex, as NeuroKit2 picks it).
"""

from __future__ import annotations

import collections
import itertools
from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import scipy.signal as sps

from affectstream.signal._base import Buffer
from affectstream.types import FloatArray

_peaks: Any  # find_peaks' compiled steps (see most_prominent); the public function without
try:
    from scipy.signal import _peak_finding_utils as _peaks
except ImportError:  # pragma: no cover - a scipy that moved them
    _peaks = None


def _private_steps_agree() -> bool:
    """Whether scipy's private steps still give what ``find_peaks`` gives (checked once)."""
    x = np.array([0.0, 2.0, 1.0, 3.0, 0.5, 3.0, 0.0, 1.0, 0.0])
    try:
        locmax = _peaks._local_maxima_1d(x)[0]
        prominences = _peaks._peak_prominences(x, locmax, -1)[0]
        want, props = sps.find_peaks(x, prominence=(None, None))
        return bool(np.array_equal(locmax, want) and np.allclose(prominences, props["prominences"]))
    except Exception:  # any change to a private API means: do not use it
        return False


if _peaks is not None and not _private_steps_agree():  # pragma: no cover - a changed scipy
    _peaks = None

#: Recent beats averaged into the template each beat's waveform is compared with.
TEMPLATE_BEATS = 8


class Boxcar:
    """A centred moving average of a stream, NeuroKit2's ``signal_smooth(kernel="boxcar")``.

    ``scipy.ndimage.uniform_filter1d(x, size, mode="nearest")`` over a whole run, computed from
    a running sum carried across calls: the output does not depend on how the input is cut.

    Parameters
    ----------
    size : int
        Boxcar length in samples.
    ahead : int, optional
        Samples after each position inside its window (at most ``size - 1``); by default
        ``uniform_filter1d``'s centred window, ``[i - size // 2, i + (size - 1) // 2]``.
        0 makes the average trailing (causal): ``[i - size + 1, i]``.
    """

    def __init__(self, size: int, ahead: int | None = None) -> None:
        self.size = max(int(size), 1)
        centred = self.size - 1 - self.size // 2
        self.ahead = centred if ahead is None else min(max(int(ahead), 0), self.size - 1)
        self.behind = self.size - 1 - self.ahead
        self._sums = np.empty(0)  # running sums of the padded input, last size + 1 kept
        self._count = 0  # padded inputs summed so far
        self._emitted = 0  # padded positions whose output was given
        self._last = float("nan")

    def push(self, values: FloatArray) -> FloatArray:
        """Add samples; return the outputs that became final (in order)."""
        if values.size == 0:
            return values[:0].copy()
        if self._count == 0:  # edge repeated before the first sample
            values = np.concatenate((np.full(self.behind, values[0]), values))
            self._emitted = self.behind
        self._last = float(values[-1])
        return self._add(values)

    def close(self) -> FloatArray:
        """End of the run: repeat the last sample and return the remaining outputs."""
        if self._count == 0:
            return np.empty(0)
        out = self._add(np.full(self.ahead, self._last))
        self._sums, self._count, self._emitted = np.empty(0), 0, 0
        return out

    def _add(self, values: FloatArray) -> FloatArray:
        carry = self._sums[-1] if self._sums.size else 0.0
        sums = np.cumsum(np.concatenate(([carry], values)))[1:]
        base = self._count - self._sums.size  # padded position of self._sums[0]
        every = np.concatenate((self._sums, sums))
        self._count += values.size
        # Output at padded position p: (S[p + ahead] - S[p - behind - 1]) / size, S[-1] = 0.
        stop = self._count - self.ahead
        first, last = self._emitted, max(stop, self._emitted)  # positions [first, last)
        # Slices, not index arrays: the positions are consecutive (a whole recording is
        # one call, and fancy indexing of it costs several times the sums).
        hi = every[first + self.ahead - base : last + self.ahead - base]
        lo = np.zeros(last - first)
        zeros = min(max(0, self.behind + 1 - first), last - first)  # S[negative] = 0
        lo[zeros:] = every[first + zeros - self.behind - 1 - base : last - self.behind - 1 - base]
        self._emitted = last
        keep = self.size + 1
        self._sums = every[-keep:]
        return np.asarray((hi - lo) / self.size, dtype=np.float64)


class BeatDetector(ABC):
    """Beats of a cleaned stream found as the samples arrive: what both detectors share.

    A subclass computes, position by position, whether a sample is inside a complex and
    passes those flags to :meth:`_edges`; :meth:`_peak_in` says which sample of a closed
    complex is the beat (or none). Everything else is here: runs, release, quality,
    :attr:`final`.

    Missing samples (NaN) end a run: the run is finished as at the end of a recording and
    a new one starts with the next finite sample, so a gap gives the same beats whether it
    is NaN rows or the end of the data so far.

    Parameters
    ----------
    sfreq : float
        Sampling rate in Hz.
    template : tuple of int
        Samples before and after a peak compared with the recent beats' mean waveform.
    min_delay : float
        Refractory period in seconds: a peak within it of the previous beat is dropped.
    """

    def __init__(self, sfreq: float, template: tuple[int, int], min_delay: float) -> None:
        self.sfreq = sfreq
        self.template = template
        self.min_delay = int(np.rint(min_delay * sfreq))
        #: Beats inserted late (a detector that searches for missed beats fills it):
        #: position -> position of the beat whose arrival revealed it (a window ending
        #: before that never counts it, so rows do not depend on when the correction
        #: came). Consumers pop what they read.
        self.inserted: dict[int, int] = {}
        self.x = Buffer(1)  # cleaned signal of the current run
        self.waves: collections.deque[FloatArray] = collections.deque(maxlen=TEMPLATE_BEATS)
        self.last_peak = -(10**12)
        self.final = 0  # beats before this position are final
        self._pending: list[int] = []  # beats found, waiting for their template waveform
        self._n = 0  # positions received
        self._run_start: int | None = None
        self._reset_run(0)

    @property
    @abstractmethod
    def lookahead(self) -> int:
        """Samples after a position needed before its complex membership is final."""

    @abstractmethod
    def _extend(self, pos: int, x: FloatArray) -> list[tuple[int, float]]:
        """Add finite samples starting at ``pos`` (:meth:`_append` them); return new beats."""

    @abstractmethod
    def _close_run(self) -> list[tuple[int, float]]:
        """Decide the run's last positions as at the end of a recording; return its beats."""

    @abstractmethod
    def _peak_in(self, beg: int, end: int) -> int | None:
        """The beat of the complex after ``beg`` up to ``end`` (positions), or None."""

    def _reset_run(self, start: int) -> None:
        """Forget the run's state; the next run's first position is ``start`` or later."""
        self._run_start = None
        self._q_pos = start  # next position whose complex flag is decided
        self._prev_q: bool | None = None  # complex flag of the position before _q_pos
        self._beg: int | None = None  # start (last position outside) of an open complex

    def feed(self, x: FloatArray) -> list[tuple[int, float]]:
        """Add cleaned samples (NaN where missing); return new beats as (position, quality)."""
        beats: list[tuple[int, float]] = []
        finite = np.isfinite(x)
        start = self._n
        self._n += x.size
        if finite.all():  # the usual block: one finite piece
            return self._extend(start, x) if x.size else beats
        edges = np.flatnonzero(np.diff(np.concatenate(([1], finite.view(np.int8), [1]))))
        # Alternating [finite piece][NaN piece]...: handle each piece in order.
        cuts = np.concatenate(([0], edges, [x.size]))
        for lo, hi in itertools.pairwise(cuts.tolist()):
            if hi <= lo:
                continue
            if finite[lo]:
                beats += self._extend(start + lo, x[lo:hi])
            else:
                beats += self.close()
                self._reset_run(start + hi)
                self.final = start + hi
        return beats

    def close(self) -> list[tuple[int, float]]:
        """End the current run as at the end of a recording; return its last beats."""
        if self._run_start is None:
            return []
        beats = self._close_run()
        self._reset_run(self._n)
        self.final = self._n
        return beats

    def _append(self, pos: int, x: FloatArray) -> None:
        """Keep the samples of the run, starting one at ``pos`` if none is open."""
        if self._run_start is None:
            self._run_start = pos
            self._q_pos = pos
            self.x = _empty_at(pos)
        self.x.append(x[:, None])

    def _edges(self, inside: np.ndarray) -> None:
        """Find the complexes that the flags of the next positions open and close."""
        first = self._q_pos
        self._q_pos += inside.size
        prev = inside[0] if self._prev_q is None else self._prev_q
        flags = np.concatenate(([prev], inside))
        self._prev_q = bool(inside[-1])
        change = np.flatnonzero(flags[1:] != flags[:-1])
        for i in change.tolist():
            at = first + i - 1  # position of the last sample before the change
            if flags[i + 1]:  # a complex starts after `at`
                self._beg = at
            elif self._beg is not None:  # NeuroKit2 ignores complex ends before the first start
                peak = self._peak_in(self._beg, at)
                self._beg = None
                if peak is not None:
                    self._pending.append(peak)
                    self._found(peak, at)
        open_from = self._beg + 1 if self._beg is not None else self._q_pos
        self.final = min(self._q_pos, open_from)
        self._trim(min(open_from, self._q_pos))

    def _found(self, peak: int, at: int) -> None:  # noqa: B027 - an optional hook
        """A new beat at ``peak``, its complex ending at ``at`` (a hook; nothing here)."""

    def _trim(self, decided: int) -> None:
        """Drop the signal no open complex, pending beat or template still needs.

        Parameters
        ----------
        decided : int
            The oldest position that may still belong to a complex.
        """
        keep = decided - sum(self.template)
        if self._pending:
            keep = min(keep, self._pending[0] - self.template[0])
        self.x.trim(keep)

    def _ready(self, everything: bool) -> int:
        """How many of the pending beats go out now (their template waveform arrived)."""
        if everything:
            return len(self._pending)
        stops = np.asarray(self._pending) + self.template[1]
        return int(np.searchsorted(stops, self.x.stop, "right"))

    def _release(self, everything: bool = False) -> list[tuple[int, float]]:
        """The found beats whose template waveform has arrived, with their quality.

        A beat's quality needs ``template[1]`` samples after it; the beat waits for them (and
        :attr:`final` stays before it), so the quality does not depend on how the input is
        cut. At the end of a run every beat goes out (too close to the end: quality 0).
        """
        pending = self._pending
        if not pending:
            return []
        ready = self._ready(everything)
        beats = self._quality(pending[:ready]) if ready else []
        del pending[:ready]
        waiting = [p for p in pending if p not in self.inserted]
        if waiting:
            # An inserted beat does not hold rows back: windows ending before the beat that
            # revealed it leave it out (see :attr:`inserted`).
            self.final = min(self.final, waiting[0])
        return beats

    def _quality(self, peaks: list[int]) -> list[tuple[int, float]]:
        """Each beat's correlation with the mean waveform of the last 8 beats, itself included.

        A beat too close to its run's edges for its whole waveform gets 0 and stays out of
        the template. The template of each beat is summed from its 8 waveforms alone, so
        the numbers do not depend on how many beats one call handles.
        """
        before, after = self.template
        start = self._run_start if self._run_start is not None else self.x.stop
        whole = [p for p in peaks if p - before >= start and p + after <= self.x.stop]
        if not whole:
            return [(p, 0.0) for p in peaks]
        offsets = np.arange(-before, after)
        lo = self.x.start
        waves = self.x.view(lo, self.x.stop)[:, 0][np.asarray(whole)[:, None] - lo + offsets]
        recent = list(self.waves)
        history = np.vstack([*recent, waves]) if recent else waves
        templates = _templates(history, len(recent))
        self.waves.extend(waves[-TEMPLATE_BEATS:].copy())
        wc = waves - waves.mean(axis=1, keepdims=True)
        tc = templates - templates.mean(axis=1, keepdims=True)
        num = np.einsum("ij,ij->i", wc, tc)
        denom = np.sqrt(np.einsum("ij,ij->i", wc, wc) * np.einsum("ij,ij->i", tc, tc))
        corr = np.divide(num, denom, out=np.zeros(len(whole)), where=denom > 0)
        quality = dict(zip(whole, np.clip(corr, 0.0, 1.0).tolist(), strict=True))
        return [(p, quality.get(p, 0.0)) for p in peaks]


def _templates(history: FloatArray, first: int) -> FloatArray:
    """Mean of each row from ``first`` on with up to TEMPLATE_BEATS - 1 rows before it.

    Equal, bit for bit, to ``history[max(0, j + 1 - TEMPLATE_BEATS) : j + 1].mean(axis=0)``
    for each row ``j``: the rows are added in the same order (one after the other, as
    numpy reduces over the first axis) and the sum divided by the count, but all rows at
    once instead of a mean per beat.
    """
    if history.shape[0] - first <= 2:  # a beat or two (live): numpy's mean is cheaper
        rows = [
            history[max(0, j + 1 - TEMPLATE_BEATS) : j + 1].mean(axis=0)
            for j in range(first, history.shape[0])
        ]
        return np.asarray(rows, dtype=np.float64).reshape(-1, history.shape[1])
    stops = np.arange(first + 1, history.shape[0] + 1)
    starts = np.maximum(stops - TEMPLATE_BEATS, 0)
    counts = stops - starts
    total = history[starts].copy()
    for k in range(1, TEMPLATE_BEATS):
        more = counts > k
        total[more] += history[starts[more] + k]
    out: FloatArray = total / counts[:, None]
    return out


def most_prominent(data: FloatArray) -> int | None:
    """Position of the most prominent local maximum of ``data`` (None if it has none).

    ``scipy.signal.find_peaks(data, prominence=(None, None))`` and the first of the largest
    prominences, as NeuroKit2 picks the R peak of a QRS; called once per beat, so the two
    compiled steps of ``find_peaks`` are called directly when scipy has them (its argument
    checks cost more than the work on a QRS-long slice).
    """
    x = np.ascontiguousarray(data, dtype=np.float64)
    if _peaks is None:
        locmax, props = sps.find_peaks(x, prominence=(None, None))
        return int(locmax[np.argmax(props["prominences"])]) if locmax.size else None
    locmax = _peaks._local_maxima_1d(x)[0]
    if locmax.size <= 1:
        return int(locmax[0]) if locmax.size else None
    prominences = _peaks._peak_prominences(x, locmax, -1)[0]
    return int(locmax[np.argmax(prominences)])


def _empty_at(position: int) -> Buffer:
    """An empty one-column buffer whose first row will be at ``position``."""
    buffer = Buffer(1)
    buffer.start = buffer.stop = position
    return buffer
