"""EDA and skin temperature at a common rate: block means of ``k`` samples, as they arrive.

A model trained on wrist EDA averaged down to 4 Hz (the Empatica E4's rate, the common
rate of ``stress-wrist``) must see live EDA averaged the same way: SCR detection, the
phasic spread and the tonic level all depend on the rate (a 32-Hz band gives SCR rates
10-15 % off). :class:`RateReducer` is the one definition of that averaging: sample ``i``
of a stream belongs to group ``(index[i] - index0) // k`` (``index0``: the first device
index seen, ``k = sfreq / rate``), and a group's value is the mean of its ``k`` samples,
NaN when any of them is NaN or never arrived. Grouping by device index makes the result
independent of how the samples are cut into blocks; the batch form (:func:`reduce_block`,
used by :func:`~affectstream.models.crossprotocol.to_common_rate` for training) and the
streaming extractor (``WindowConfig.common_rate``) run the same code.

A stream is averaged only when its rate is an integer multiple ``k >= 2`` of the common
rate (:func:`rate_factor`); any other regular stream keeps its own rate (a warning says so
live, see :class:`~affectstream.signal.StreamingExtractor`).
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from affectstream.errors import SignalError
from affectstream.types import FloatArray, Gap, IntArray, SampleBlock

logger = logging.getLogger(__name__)

#: Modalities averaged down to the common rate (the others keep their own rate).
COMMON_RATE_MODALITIES = ("eda", "temp")
#: Relative tolerance of "an integer multiple" (rates are nominal numbers such as 32.0).
RATE_MULTIPLE_TOLERANCE = 1e-6


def rate_factor(sfreq: float | None, rate: float) -> int | None:
    """How many samples of a ``sfreq`` stream make one sample at ``rate``.

    Parameters
    ----------
    sfreq : float or None
        The stream's rate (None: an event stream).
    rate : float
        The common rate (Hz).

    Returns
    -------
    int or None
        ``k >= 2`` when ``sfreq == k * rate``; None when the stream stays as it is (an event
        stream, already at ``rate``, slower, or not an integer multiple).
    """
    if sfreq is None or not rate > 0:
        return None
    k = round(sfreq / rate)
    if k < 2 or abs(k * rate - sfreq) > RATE_MULTIPLE_TOLERANCE * sfreq:
        return None
    return int(k)


def is_off_rate(sfreq: float | None, rate: float) -> bool:
    """Whether a regular stream can be neither kept nor averaged to ``rate`` as trained.

    Parameters
    ----------
    sfreq : float or None
        The stream's rate.
    rate : float
        The common rate.

    Returns
    -------
    bool
        True for a regular stream not at ``rate`` and not an integer multiple of it.
    """
    if sfreq is None:
        return False
    at_rate = abs(sfreq - rate) <= RATE_MULTIPLE_TOLERANCE * rate
    return not at_rate and rate_factor(sfreq, rate) is None


class RateReducer:
    """Averages one stream down by ``k`` as its blocks arrive (see the module docstring).

    Parameters
    ----------
    k : int
        Samples per group (``sfreq / rate``, at least 2).
    sfreq : float
        The stream's own rate (Hz).
    """

    def __init__(self, k: int, sfreq: float) -> None:
        self.k = int(k)
        self.sfreq = float(sfreq)
        self.rate = self.sfreq / self.k
        self.index0: int | None = None  # first device index seen: group 0 starts there
        self._held: SampleBlock | None = None  # samples of the group not yet complete
        self._last: int | None = None  # device index of the last sample pushed

    def group(self, index: int) -> int:
        """Group (device index at the common rate) of raw device index ``index``."""
        if self.index0 is None:
            return 0
        return (int(index) - self.index0) // self.k

    def empty(self, block: SampleBlock) -> SampleBlock:
        """A block of no samples of ``block``'s stream at the common rate."""
        return dataclasses.replace(
            block,
            sfreq=self.rate,
            t=np.empty(0),
            values=np.empty((0, len(block.channels))),
            index=np.empty(0, dtype=np.int64),
            gaps=(),
        )

    def first(self, block: SampleBlock) -> SampleBlock:
        """What a processor is built from: the stream's rate, first time and group 0.

        Parameters
        ----------
        block : SampleBlock
            The stream's first samples.

        Returns
        -------
        SampleBlock
            One sample (its values are not used) at the common rate.
        """
        return dataclasses.replace(
            block,
            sfreq=self.rate,
            t=block.t[:1],
            values=block.values[:1],
            index=np.zeros(1, dtype=np.int64),
            gaps=(),
        )

    def push(self, block: SampleBlock) -> SampleBlock:
        """Add the next samples; return the groups they completed, at the common rate.

        Parameters
        ----------
        block : SampleBlock
            The stream's next samples (device indices increasing).

        Returns
        -------
        SampleBlock
            One sample per completed group that has at least one sample (a group wholly
            inside a device gap is left out: the extractor fills it with NaN, as it fills
            any index jump). Samples of the last, incomplete group wait for the next block.
        """
        if len(block) == 0:
            return self.empty(block)
        if self.index0 is None:
            self.index0 = int(block.index[0])
        last = self._last if self._last is not None else self.index0 - 1
        if np.any(np.diff(block.index, prepend=last) <= 0):
            # As the processor would say of the raw stream (averaging would hide it).
            raise SignalError(
                f"Stream {block.stream!r}: device sample indices must increase without overlap "
                f"(got index {int(block.index[0])} after {self._last}). Feed blocks once "
                f"each, in time order."
            )
        self._last = int(block.index[-1])
        joined = block if self._held is None else SampleBlock.concat([self._held, block])
        complete = (int(joined.index[-1]) - self.index0 + 1) // self.k
        cut = int(np.searchsorted(self.group_of(joined.index), complete, side="left"))
        self._held = joined.rows(cut, len(joined)) if cut < len(joined) else None
        return self._means(joined.rows(0, cut), joined)

    def skip(self, index: int) -> SampleBlock | None:
        """The stream's next sample has device index ``index``: close the group held before it.

        Parameters
        ----------
        index : int
            Device index of the next sample.

        Returns
        -------
        SampleBlock or None
            The held group (NaN: some of its samples never came) when ``index`` lies past
            it; None when nothing closes.
        """
        held = self._held
        if held is None or self.group(index) <= self.group(int(held.index[-1])):
            return None
        self._held = None
        return self._means(held, held)

    def finish(self) -> None:
        """End of the stream: the incomplete last group is dropped (its mean would be short)."""
        self._held = None

    def group_of(self, index: IntArray) -> IntArray:
        """Groups of an array of raw device indices."""
        start = self.index0 if self.index0 is not None else int(index[0])
        groups: IntArray = (index.astype(np.int64) - start) // self.k
        return groups

    def _means(self, rows: SampleBlock, like: SampleBlock) -> SampleBlock:
        if len(rows) == 0:
            return self.empty(like)
        groups = self.group_of(rows.index)
        index0 = self.index0 if self.index0 is not None else int(rows.index[0])
        offsets = (rows.index.astype(np.int64) - index0) % self.k
        ids, first = np.unique(groups, return_index=True)
        # (groups, k, channels), NaN where a sample never arrived: the mean is then NaN, as
        # the mean of the same stream with its gaps filled by NaN rows.
        grid = np.full((ids.size, self.k, len(rows.channels)), np.nan)
        grid[np.searchsorted(ids, groups), offsets] = rows.values
        values: FloatArray = grid.mean(axis=1)
        # Timed at the group's first sample (from its first sample that arrived).
        t = rows.t[first] - offsets[first] / self.sfreq
        return dataclasses.replace(
            like,
            sfreq=self.rate,
            t=np.asarray(t, dtype=np.float64),
            values=values,
            index=ids.astype(np.int64),
            gaps=tuple(self._gap(g) for g in rows.gaps),
        )

    def _gap(self, gap: Gap) -> Gap:
        first = self.group(gap.first_index)
        last = self.group(gap.first_index + gap.n_samples - 1)
        return dataclasses.replace(gap, first_index=first, n_samples=last - first + 1)


def stream_reducer(block: SampleBlock, rate: float) -> RateReducer | None:
    """The averaging of a stream whose first block is ``block`` down to ``rate``, if any.

    Parameters
    ----------
    block : SampleBlock
        The stream's first samples (fix its modality, rate and group 0).
    rate : float
        The common rate (Hz).

    Returns
    -------
    RateReducer or None
        None when the stream keeps its own rate: not EDA/temperature, an event stream,
        already at ``rate``, or not an integer multiple ``k >= 2`` of it (logged as a
        warning: its features are then not computed as a model trained at ``rate`` expects).
    """
    if block.modality not in COMMON_RATE_MODALITIES or len(block) == 0:
        return None
    k = rate_factor(block.sfreq, rate)
    if k is None:
        if is_off_rate(block.sfreq, rate):
            logger.warning(
                "%s at %g Hz is not an integer multiple of the common rate %g Hz: its %s "
                "features are computed at %g Hz, not as a model trained at %g Hz expects "
                "(resample the stream to a multiple of %g Hz to fix this)",
                block.stream,
                block.sfreq,
                rate,
                block.modality,
                block.sfreq,
                rate,
                rate,
            )
        return None
    reducer = RateReducer(k, float(block.sfreq))  # type: ignore[arg-type]
    reducer.index0 = int(block.index[0])  # group 0 starts at the stream's first sample
    return reducer


def reduce_block(block: SampleBlock, rate: float) -> SampleBlock:
    """A whole recording of one stream at ``rate``: :class:`RateReducer` fed it at once.

    Parameters
    ----------
    block : SampleBlock
        Samples of one stream.
    rate : float
        The common rate (Hz).

    Returns
    -------
    SampleBlock
        ``block`` itself when it keeps its own rate (:func:`stream_reducer`); else its
        complete groups of ``k`` (the incomplete tail is dropped), device indices counted
        from 0 at ``rate``.
    """
    reducer = stream_reducer(block, rate)
    return block if reducer is None else reducer.push(block)
