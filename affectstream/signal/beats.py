"""Streaming R-peak detection with a short look-ahead.

NeuroKit2's "neurokit" detector (``nk.ecg_findpeaks(method="neurokit")``, the one behind
``nk.ecg_peaks``) run as the samples arrive, with one departure so that a beat is known soon
after its QRS ends:

- the absolute gradient of the cleaned ECG is smoothed with a centred 0.1-s boxcar
  (``smoothgrad``, NeuroKit2's ``signal_smooth(kernel="boxcar")``, ``uniform_filter1d`` with the
  edges repeated);
- departure: the threshold average ``avggrad`` is a *trailing* 0.75-s boxcar of ``smoothgrad``
  (the last 0.75 s up to the sample, :data:`AVG_AHEAD` = 0) where NeuroKit2's is centred (it
  needs 0.37 s of later data). Both are running sums, so the output does not depend on how
  the input is cut;
- a QRS complex is where ``smoothgrad > 1.5 * avggrad``; its R peak is the most prominent local
  maximum of the ECG inside it;
- a QRS shorter than 0.4 times the mean length of the recent ones is ignored (NeuroKit2 takes
  the mean over the whole segment, which a stream cannot know: here over the last
  :data:`QRS_HISTORY` complexes);
- refractory rule: a peak within 0.3 s of the previous beat is dropped (NeuroKit2's
  ``mindelay``);
- added with the departure: a complex whose peak ``smoothgrad`` is under
  :data:`STRENGTH_WEIGHT` times the median of the recent beats' is a P or T wave, not a beat
  (the trailing threshold is lower at a QRS onset, and a P wave passing it would make the
  refractory rule drop the R peak after it), unless no beat came for :data:`MAX_SILENCE`;
  a weak complex let in that way starts the history of strengths afresh (the amplitude
  dropped: the old strong beats would reject the new weak ones for :data:`QRS_HISTORY` beats);
- with it, at a run's start (the session's, or after missing samples) the trailing window
  would reach before the first sample: the first 0.75 s of a run are compared with the
  average of those 0.75 s instead (known once they have arrived, so they are decided up to
  0.75 s late, once per run);
- a beat with fewer than :data:`TENTATIVE_BEATS` before it in the strength history (the
  session's first, the first after an amplitude drop) may be a P wave: it waits for the 0.3 s
  after it, and a complex there 1 / :data:`STRENGTH_WEIGHT` times stronger replaces it.

Agreement with NeuroKit2 instead of equality: ``python benchmarks/bench_beats.py --data
../shared/data`` (docs/features.md, "Latency"). The look-ahead is one sample for the gradient
plus half the 0.1-s boxcar: 0.05-0.06 s at any rate (:meth:`EcgBeatDetector.lookahead`). A
beat is final when its QRS ends, so the detector also reports how far beats are final
(:attr:`EcgBeatDetector.final`): never more than the look-ahead plus the length of a QRS still
open behind the newest sample, except in a run's first 0.75 s and 0.3 s after a tentative
beat (above). A missed beat is not waited for; it is corrected late and flagged: when a beat
closes an interval over :data:`SEARCH_RR` times the median of the recent ones, the strongest
complex near the middle of that interval whose ``smoothgrad`` reaches :data:`SEARCH_WEIGHT`
times the median beat strength (under the regular threshold, over noise) is inserted before
it and recorded in :attr:`EcgBeatDetector.inserted` with the beat that revealed it. Rows do
not wait for it: a window ending before that later beat leaves the inserted beat out
(``affectstream.signal.hrv.HrvProcessor.window_beats``), so rows emitted before the
correction equal batch rows. Without a beat to insert the long interval
is flagged invalid by the interval screen (:func:`affectstream.signal.hrv.screen_intervals`)
and left out of the HRV.

Missing samples (NaN) end a run: the run is finished as at the end of a recording and a new one
starts with the next finite sample, so a gap gives the same beats whether it is NaN rows or the
end of the data so far.

The stream's runs, the beats' release and quality and :attr:`EcgBeatDetector.final` are
the skeleton it shares with the PPG detector (:mod:`affectstream.signal.ppg_beats`):
:class:`~affectstream.signal.beat_stream.BeatDetector`.
"""

from __future__ import annotations

import collections
import logging
import statistics

import numpy as np

from affectstream.signal._base import Buffer
from affectstream.signal.beat_stream import BeatDetector, Boxcar, _empty_at, most_prominent
from affectstream.types import FloatArray

logger = logging.getLogger(__name__)

#: NeuroKit2's "neurokit" detector settings (``_ecg_findpeaks_neurokit``), seconds or weights.
SMOOTH_WINDOW, AVG_WINDOW, GRAD_THRESH_WEIGHT, MIN_LEN_WEIGHT, MIN_DELAY = 0.1, 0.75, 1.5, 0.4, 0.3
#: Seconds after a sample inside its threshold average (NeuroKit2: half of AVG_WINDOW).
AVG_AHEAD = 0.0
#: A complex whose peak ``smoothgrad`` is under this times the median of the recent beats' is
#: not a beat (a P or T wave) ...
STRENGTH_WEIGHT = 0.3
#: ... unless no beat came for this many seconds.
MAX_SILENCE = 2.0
#: While fewer beats than this are in the strength history (a session's first beats, the
#: first after a MAX_SILENCE), a beat waits MIN_DELAY for a stronger complex to replace it.
TENTATIVE_BEATS = 3
#: Recent QRS complexes whose mean length sets the shortest QRS accepted.
QRS_HISTORY = 16
#: Missed-beat search: an interval longer than SEARCH_RR times the median of the last
#: RR_BEATS intervals is searched for a complex whose ``smoothgrad`` reaches SEARCH_WEIGHT
#: times the median beat strength, within SEARCH_CENTRE of the interval's middle (as a
#: fraction of the interval); found, it is inserted and flagged (:attr:`EcgBeatDetector.inserted`).
SEARCH_RR, SEARCH_WEIGHT, SEARCH_CENTRE, RR_BEATS = 1.6, 0.15, 0.2, 8
#: Seconds of signal kept behind the newest beat for the search: an interval is searched only
#: within it (so that every cut of the input searches the same ones), and it holds one missed
#: beat between two at the longest plausible RR (2 s, ``affectstream.signal.hrv.RR_RANGE``).
SEARCH_SPAN = 4.5


class EcgBeatDetector(BeatDetector):
    """R peaks of a cleaned ECG stream, found as the samples arrive (see the module docstring).

    The stream's runs, the beats' release, quality and :attr:`final` are
    :class:`~affectstream.signal.beat_stream.BeatDetector`'s; this class computes which
    positions are inside a QRS complex and which complexes are beats.

    Parameters
    ----------
    sfreq, template
        As for :class:`~affectstream.signal.beat_stream.BeatDetector`.
    avg_ahead : float, optional
        Seconds after a sample inside its threshold average: 0 trailing (the default),
        ``AVG_WINDOW / 2`` NeuroKit2's centred average (for comparisons).
    strength_weight : float, optional
        :data:`STRENGTH_WEIGHT`; 0 turns the weak-complex rule off.
    search_back : bool, optional
        Whether a long interval is searched for a missed beat (:data:`SEARCH_RR`).
    """

    def __init__(
        self,
        sfreq: float,
        template: tuple[int, int],
        avg_ahead: float = AVG_AHEAD,
        strength_weight: float = STRENGTH_WEIGHT,
        search_back: bool = True,
    ) -> None:
        self.smooth = int(np.rint(SMOOTH_WINDOW * sfreq))
        self.avg = int(np.rint(AVG_WINDOW * sfreq))
        self.avg_ahead = int(np.rint(avg_ahead * sfreq))
        self.search_back = search_back
        self.intervals: collections.deque[int] = collections.deque(maxlen=RR_BEATS)
        # Samples of the signal kept before the oldest open position.
        self._history = max(self.avg, int(np.rint(SEARCH_SPAN * sfreq)) if search_back else 0)
        box = Boxcar(self.avg, self.avg_ahead)
        self._avg_shape = (box.behind, box.ahead, box.size)
        # A window reaching before the run's first sample would repeat that sample (Boxcar's
        # edge): with little or no history the threshold is then whatever the first sample
        # was. Off-centre averages hold the run's first positions instead (_threshold).
        self._start_hold = box.behind if box.ahead < Boxcar(self.avg).ahead else 0
        self.grad = Buffer(1)  # smoothgrad, by position
        self.lengths: collections.deque[int] = collections.deque(maxlen=QRS_HISTORY)
        self.strengths: collections.deque[float] = collections.deque(maxlen=QRS_HISTORY)
        self.strength_weight = strength_weight
        self.max_silence = int(np.rint(MAX_SILENCE * sfreq))
        self._tentative: int | None = None  # a pending beat a stronger complex may replace
        # Last: the base starts the first run, and _reset_run needs the settings above.
        super().__init__(sfreq, template, MIN_DELAY)

    @property
    def lookahead(self) -> int:
        """Samples after a position needed before its QRS membership is final."""
        box_s, box_a = Boxcar(self.smooth), Boxcar(self.avg, self.avg_ahead)
        return 1 + box_s.ahead + box_a.ahead

    def _reset_run(self, start: int) -> None:
        super()._reset_run(start)
        self._box_s = Boxcar(self.smooth)
        self._box_a = Boxcar(self.avg, self.avg_ahead)
        self._grad_pos = start  # next position whose gradient is computed
        self._s_pos = start  # next position of smoothgrad output
        self._previous: int | None = None  # the last beat of this run
        self._prior: int | None = None  # the beat before it
        self._counted = False  # whether the interval ending at _previous is in `intervals`
        self._held: FloatArray | None = np.empty(0) if self._start_hold else None

    # -- the pipeline ---------------------------------------------------------------------
    def _append(self, pos: int, x: FloatArray) -> None:
        if self._run_start is None:
            self._grad_pos = self._s_pos = pos
            self.grad = _empty_at(pos)
        super()._append(pos, x)

    def _extend(self, pos: int, x: FloatArray) -> list[tuple[int, float]]:
        self._append(pos, x)
        # np.gradient: one-sided at the run's ends, central inside (needs the next sample).
        first, stop = self._grad_pos, self.x.stop - 1
        if stop <= first:
            return []
        xs = self.x.get(first - 1, stop + 1)[:, 0]
        grad = np.abs((xs[2:] - xs[:-2]) / 2.0)
        if first == self._run_start:
            grad[0] = abs(xs[2] - xs[1])
        self._grad_pos = stop
        self._smooth(self._box_s.push(grad))
        self._certain()
        return self._release()

    def _certain(self) -> None:
        """Move :attr:`final` past samples that cannot be part of a QRS, whatever follows.

        ``smoothgrad`` is known 0.05 s after a sample, ``avggrad`` (if not trailing) later. But
        ``smoothgrad`` is never negative, so the part of a sample's 0.75-s average already
        known bounds ``avggrad`` from below: where ``smoothgrad`` stays under 1.5 times that
        bound, no QRS can start, and no beat before that point can still be found. Beats
        do not change; rows just need not wait the full look-ahead between heartbeats. With
        the trailing average (``avg_ahead`` 0) ``avggrad`` is known with ``smoothgrad`` and
        this has nothing to add.
        """
        if self._beg is not None or self._prev_q is not False or self._s_pos <= self._q_pos:
            return
        behind, ahead, size = self._avg_shape
        lo = max(self._q_pos - behind, self.grad.start)
        known = self.grad.get(lo, self._s_pos)[:, 0]
        sums = np.concatenate(([0.0], np.cumsum(known)))
        p = np.arange(self._q_pos, self._s_pos)
        start = np.maximum(p - behind, lo) - lo
        stop = np.minimum(p + ahead + 1, self._s_pos) - lo
        bound = (sums[stop] - sums[start]) / size
        # A margin of 1e-9 covers the rounding of a sum formed differently from Boxcar's.
        quiet = known[p - lo] <= GRAD_THRESH_WEIGHT * bound * (1.0 - 1e-9)
        run = int(np.argmin(quiet)) if not quiet.all() else quiet.size
        self.final = max(self.final, self._q_pos + run)

    def _close_run(self) -> list[tuple[int, float]]:
        run_start = self._run_start
        assert run_start is not None
        if self.x.stop - run_start < 2:
            return self._release(everything=True)
        # The last sample's gradient is one-sided (as np.gradient's edge).
        last = self.x.get(self.x.stop - 2, self.x.stop)[:, 0]
        self._smooth(self._box_s.push(np.array([abs(last[1] - last[0])])))
        self._smooth(self._box_s.close())
        self._decide(self._threshold(self._box_a.close(), end=True))
        return self._release(everything=True)

    def _ready(self, everything: bool) -> int:
        """Pending beats that go out now: a tentative one also waits MIN_DELAY after it."""
        pending = self._pending
        ready = super()._ready(everything)
        if not everything:
            decided = self._beg + 1 if self._beg is not None else self._q_pos
            if self._tentative is not None and decided <= self._tentative + self.min_delay:
                ready = min(ready, pending.index(self._tentative))
        if self._tentative is not None and self._tentative in pending[:ready]:
            self._tentative = None
        return ready

    def _smooth(self, smoothgrad: FloatArray) -> None:
        if smoothgrad.size == 0:
            return
        self.grad.append(smoothgrad[:, None])
        self._s_pos += smoothgrad.size
        self._decide(self._threshold(self._box_a.push(smoothgrad)))

    def _threshold(self, avggrad: FloatArray, end: bool = False) -> FloatArray:
        """``avggrad`` with the run's start held back until its first whole window is in.

        A position whose window would reach before the run's first sample gets the average
        of the first whole window (the first 0.75 s of the run) instead: the trailing
        window of the first position it fits, known once that position has arrived (a run
        shorter than the window: the average of the whole run, at its end). The run's first
        0.75 s are decided then, so they wait up to 0.75 s once per run; elsewhere nothing
        changes.
        """
        if self._held is None:
            return avggrad
        held = np.concatenate((self._held, avggrad))
        whole = self._start_hold  # offset in the run of the first whole window's position
        if held.size > whole:
            held[:whole] = held[whole]
        elif end and held.size:
            assert self._run_start is not None
            held[:] = float(np.mean(self.grad.get(self._run_start, self._s_pos)[:, 0]))
        else:
            self._held = held
            return avggrad[:0]
        self._held = None
        return held

    def _decide(self, avggrad: FloatArray) -> None:
        if avggrad.size == 0:
            return
        first = self._q_pos
        smoothgrad = self.grad.get(first, first + avggrad.size)[:, 0]
        self._edges(smoothgrad > GRAD_THRESH_WEIGHT * avggrad)

    def _trim(self, decided: int) -> None:
        # The missed-beat search (_found) needs _history samples before the oldest open one.
        super()._trim(decided - self._history)
        # :meth:`_certain` sums, :meth:`_found` searches.
        self.grad.trim(decided - 1 - self._history)

    def _peak_in(self, beg: int, end: int) -> int | None:
        self.lengths.append(end - beg)
        if end - beg < sum(self.lengths) / len(self.lengths) * MIN_LEN_WEIGHT:
            return None
        top = most_prominent(self.x.view(beg, end)[:, 0])
        if top is None:
            return None
        peak = beg + top
        strength = float(self.grad.view(beg + 1, end + 1)[:, 0].max())
        recent = self.strengths
        if peak - self.last_peak <= self.min_delay:  # refractory: one beat per 0.3 s ...
            if self._tentative != self.last_peak or strength * self.strength_weight <= recent[-1]:
                return None
            # ... but a beat found with no comparable beats before it was a P wave if this
            # complex is as much stronger as the weak-complex rule asks: this is the beat.
            self._pending.remove(self.last_peak)
            for missed, revealed_by in self.inserted.items():
                if revealed_by == self.last_peak:
                    self.inserted[missed] = peak
            recent[-1], self.last_peak, self._tentative = strength, peak, peak
            return peak
        # The trailing threshold is lower at a QRS's onset than NeuroKit2's centred one, so a
        # P wave can pass it 0.15-0.2 s before the R peak, which the refractory rule then
        # drops. A complex much weaker than the recent beats is such a wave, unless no beat
        # came for MAX_SILENCE (the signal's amplitude changed, e.g. a moved electrode).
        if (
            self.strength_weight > 0
            and recent
            and strength < self.strength_weight * statistics.median(recent)
        ):
            if peak - self.last_peak <= self.max_silence:
                return None
            # Let in only by the silence: the amplitude dropped, and the old strong beats
            # would keep rejecting the new weak ones for up to QRS_HISTORY beats.
            recent.clear()
        # A beat with few to compare it with may be a P wave: it waits for the refractory
        # 0.3 s after it, in which the R peak would replace it (above).
        few = len(recent) < TENTATIVE_BEATS and self.strength_weight > 0
        self._tentative = peak if few else None
        recent.append(strength)
        self.last_peak = peak
        return peak

    def _found(self, peak: int, at: int) -> None:
        """Search the interval before a new beat for a missed one if it is too long.

        A beat just found at ``peak`` (its QRS ending at ``at``) closes the interval from the
        previous one; if that is over SEARCH_RR times the recent median, the strongest
        complex near the middle of it (``smoothgrad`` at least SEARCH_WEIGHT times the median
        beat strength, under the regular threshold) is taken as the missed beat and put
        before ``peak``. Only an interval within the history every cut of the input keeps
        (from ``at + 1 - _history``) is searched, so batch and streaming search the same ones.
        """
        previous = self._previous
        if previous is not None and peak - previous <= self.min_delay:
            # ``peak`` replaced a tentative beat (a P wave, see :meth:`_peak_in`): the interval
            # ends here instead, and starts where the replaced beat's did.
            previous = self._prior
            if self._counted:
                self.intervals.pop()
        self._prior, self._previous, self._counted = previous, peak, False
        if previous is None:
            return
        interval = peak - previous
        recent = sorted(self.intervals)
        self.intervals.append(interval)
        self._counted = True
        if not self.search_back or len(recent) < 3 or not self.strengths:
            return
        median = statistics.median(recent)
        # ``at`` is at most one before this call's first position, and the last call trimmed
        # to before that position minus the history: kept whatever the cuts of the input.
        kept = at + 1 - self._history
        if interval <= SEARCH_RR * median or previous - self.template[0] < kept - sum(
            self.template
        ):
            return
        middle, reach = (previous + peak) / 2.0, SEARCH_CENTRE * interval
        lo = max(previous + self.min_delay + 1, int(np.ceil(middle - reach)))
        hi = min(peak - self.min_delay, int(np.floor(middle + reach)) + 1)
        if hi <= lo or lo < kept:
            return
        grad = self.grad.view(lo, hi)[:, 0]
        top = int(np.argmax(grad))
        if grad[top] < SEARCH_WEIGHT * statistics.median(self.strengths):
            return
        # The complex: where smoothgrad stays above half its top, within the search range.
        half = grad >= 0.5 * grad[top]
        start = top - int(np.argmin(half[top::-1])) if not half[: top + 1].all() else 0
        stop = top + int(np.argmin(half[top:])) if not half[top:].all() else grad.size
        found = most_prominent(self.x.view(lo + start, lo + stop)[:, 0])
        if found is None:
            return
        missed = lo + start + found
        if missed in self._pending:
            return
        self.inserted[missed] = peak
        self._prior = missed  # should ``peak`` be replaced, its interval starts here
        self._pending.insert(len(self._pending) - 1, missed)
        self.intervals.pop()
        self.intervals.extend((missed - previous, peak - missed))
        logger.debug("missed beat at sample %d inserted (interval %d samples)", missed, interval)
