"""Streaming PPG pulse-peak detection with a bounded look-ahead.

NeuroKit2's "elgendi" detector as the samples arrive (:class:`PpgBeatDetector`), on the
streaming skeleton it shares with the R-peak detector (:mod:`affectstream.signal.beat_stream`:
running-sum boxcars, runs ended by gaps, beats released once their template waveform has
arrived). Agreement
with NeuroKit2 instead of equality: ``python benchmarks/bench_beats.py --data
../shared/data`` (key ``ppg``; docs/features.md, "Latency").
"""

from __future__ import annotations

import numpy as np

from affectstream.signal.beat_stream import BeatDetector, Boxcar, most_prominent
from affectstream.types import FloatArray, IntArray

#: NeuroKit2's "elgendi" PPG detector settings (``_ppg_findpeaks_elgendi``), seconds or weights.
PEAK_WINDOW, BEAT_WINDOW, BEAT_OFFSET, PPG_MIN_DELAY = 0.111, 0.667, 0.02, 0.3
#: Seconds after a sample inside its beat average (NeuroKit2: centred, 0.333 s).
BEAT_AHEAD = 0.2
#: Seconds of squared signal whose trailing mean scales the offset (NeuroKit2: the whole
#: recording, which a stream cannot know).
OFFSET_WINDOW = 10.0


class PpgBeatDetector(BeatDetector):
    """Systolic peaks of a cleaned PPG stream, found as the samples arrive.

    NeuroKit2's "elgendi" detector (``nk.ppg_findpeaks(method="elgendi")``, Elgendi et al.
    2013) run as the samples arrive: the cleaned signal's positive part is squared; a wave
    is where its centred 0.111-s average (``ma_peak``) exceeds its 0.667-s average
    (``ma_beat``) plus 0.02 times its mean; a wave shorter than 0.111 s is ignored; its peak is
    the most prominent local maximum inside it; a peak within 0.3 s of the previous beat is
    dropped. Two departures so that a beat is known soon after its wave ends:

    - ``ma_beat`` reaches :data:`BEAT_AHEAD` s after the sample (NeuroKit2's is centred and
      needs 0.333 s of later data);
    - the offset's mean is over the last :data:`OFFSET_WINDOW` s, not the whole recording.

    All three averages are running sums, so the beats do not depend on how the input is cut.
    The look-ahead is :data:`BEAT_AHEAD` (:attr:`lookahead`); a beat is final when its wave
    ends and, as for ECG, once its quality template has arrived. Missing samples end a run
    (see :class:`~affectstream.signal.beat_stream.BeatDetector`).

    Parameters
    ----------
    sfreq, template
        As for :class:`~affectstream.signal.beat_stream.BeatDetector`.
    beat_ahead : float, optional
        Seconds after a sample inside its beat average: :data:`BEAT_AHEAD` by default,
        ``BEAT_WINDOW / 2`` NeuroKit2's centred average (for comparisons).
    offset_window : float, optional
        :data:`OFFSET_WINDOW`.
    """

    def __init__(
        self,
        sfreq: float,
        template: tuple[int, int],
        beat_ahead: float = BEAT_AHEAD,
        offset_window: float = OFFSET_WINDOW,
    ) -> None:
        self.peak_size = max(int(np.rint(PEAK_WINDOW * sfreq)), 1)
        self.beat_size = max(int(np.rint(BEAT_WINDOW * sfreq)), 1)
        self.beat_ahead = int(np.rint(beat_ahead * sfreq))
        self.offset_size = max(int(np.rint(offset_window * sfreq)), 1)
        # Last: the base starts the first run, and _reset_run needs the sizes above.
        super().__init__(sfreq, template, PPG_MIN_DELAY)

    @property
    def lookahead(self) -> int:
        """Samples after a position needed before its wave membership is final."""
        return max(self._box_p.ahead, self._box_b.ahead)

    def _reset_run(self, start: int) -> None:
        super()._reset_run(start)
        self._box_p = Boxcar(self.peak_size)
        self._box_b = Boxcar(self.beat_size, self.beat_ahead)
        self._box_o = Boxcar(self.offset_size, 0)
        # Averages computed for positions whose wave flag is not decided yet.
        self._averages: list[FloatArray] = [np.empty(0), np.empty(0), np.empty(0)]

    def _extend(self, pos: int, x: FloatArray) -> list[tuple[int, float]]:
        self._append(pos, x)
        squared = np.maximum(x, 0.0) ** 2
        self._waves(self._box_p.push(squared), self._box_b.push(squared), self._box_o.push(squared))
        return self._release()

    def _close_run(self) -> list[tuple[int, float]]:
        self._waves(self._box_p.close(), self._box_b.close(), self._box_o.close())
        return self._release(everything=True)

    def _waves(self, *new: FloatArray) -> None:
        """Decide the positions whose three averages are all known."""
        averages = [
            np.concatenate((old, more)) for old, more in zip(self._averages, new, strict=True)
        ]
        n = min(a.size for a in averages)
        self._averages = [a[n:] for a in averages]
        if n == 0:
            return
        ma_peak, ma_beat, mean = (a[:n] for a in averages)
        self._edges(ma_peak > ma_beat + BEAT_OFFSET * mean)

    def _peak_in(self, beg: int, end: int) -> int | None:
        if end - beg < self.peak_size:
            return None
        top = most_prominent(self.x.view(beg, end)[:, 0])
        if top is None:
            return None
        peak = beg + top
        if peak - self.last_peak <= self.min_delay:
            return None
        self.last_peak = peak
        return peak


def regular_stretches(reference: IntArray, sfreq: float, n: int, span: float = 10.0) -> np.ndarray:
    """Samples in ``span``-s stretches where the reference beats are plausible and steady.

    For judging a detector on a wrist recording that is mostly motion artefact, where no
    reference beat can be trusted: a stretch counts when it holds at least 5 beats whose
    intervals lie within 0.33-1.5 s and vary less than 30 %.

    Parameters
    ----------
    reference : ndarray of int
        Reference beat positions (samples).
    sfreq : float
        Sampling rate in Hz.
    n : int
        Samples in the recording.
    span : float, optional
        Stretch length in seconds.

    Returns
    -------
    ndarray of bool, shape (n,)
        True inside the regular stretches.
    """
    mask = np.zeros(n, dtype=bool)
    size = int(span * sfreq)
    for lo in range(0, n - size + 1, size):
        beats = reference[(reference >= lo) & (reference < lo + size)]
        rr = np.diff(beats) / sfreq
        if rr.size >= 4 and rr.min() >= 0.33 and rr.max() <= 1.5 and rr.max() < 1.3 * rr.min():
            mask[lo : lo + size] = True
    return mask
