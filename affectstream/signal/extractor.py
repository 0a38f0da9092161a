"""Windowing engine: one row per window, aligned across modalities, batch or streaming.

``extract_features`` is the streaming extractor fed each whole recording at once, so both
entry points run the same incremental code and give the same numbers.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from affectstream._validate import check_positive
from affectstream.errors import SignalError
from affectstream.signal._base import Processor
from affectstream.signal.config import WindowConfig
from affectstream.signal.eda import EdaProcessor
from affectstream.signal.eeg import EegProcessor
from affectstream.signal.hrv import HrvProcessor
from affectstream.signal.level import LevelProcessor
from affectstream.signal.rate import RateReducer, stream_reducer
from affectstream.types import SampleBlock

logger = logging.getLogger(__name__)

#: Feature family of each input modality; families are the prefixes of the feature names.
FAMILY = {
    "rr": "hrv",
    "ecg": "hrv",
    "ppg": "hrv",
    "eda": "eda",
    "eeg": "eeg",
    "temp": "temp",
    "acc": "acc",
    "hr": "hr",
}
#: Which stream feeds a family when several could (lower first): ECG, then PPG, then RR.
PRIORITY = {"ecg": -3, "ppg": -2, "rr": -1}
#: Column order of the families.
FAMILY_ORDER = ("hrv", "eda", "eeg", "temp", "acc", "hr")
#: Streaming: an event stream (no rate, e.g. heart rate once a second) counts as complete up
#: to the newest data of the other streams minus the most its recent blocks lagged them, minus
#: this margin (s); its recent blocks are the last EVENT_DELAY_BLOCKS.
EVENT_MARGIN, EVENT_DELAY_BLOCKS = 0.25, 8


def _make_processor(block: SampleBlock, config: WindowConfig) -> Processor:
    family = FAMILY[block.modality]
    if family == "hrv":
        return HrvProcessor(block, config)
    if family == "eda":
        return EdaProcessor(block, config)
    if family == "eeg":
        return EegProcessor(block, config)
    return LevelProcessor(block, config)


@dataclasses.dataclass
class _FrameLayout:
    """What building a DataFrame from row dicts needs, computed once per column set."""

    columns: list[str]
    index: pd.Index
    flags: list[int]  # positions of the bool usable_<family> columns
    has_text: bool  # reason_<family> columns present: let pandas infer the dtypes
    empty: pd.DataFrame


class StreamingExtractor:
    """Incremental window features: push sample blocks as they arrive, get completed rows.

    Parameters
    ----------
    config : WindowConfig, optional
        Window settings; defaults to 60-s windows every 5 s.
    origin : float, optional
        Time the window grid is aligned to (overrides ``config.origin``). Default: the first
        sample time of the first block pushed.
    min_chunk : float, optional
        Blocks of a stream are gathered until they span this many seconds (default: the
        step) before they are processed: BLE delivers a few samples per notification and
        the fixed cost per processed block would dominate. Data reaching the end of the next
        window is processed at once, so rows are not delayed by it; results do not depend on
        it. 0 processes every block at once.

    Notes
    -----
    A row for the window ending at ``t_end`` is emitted once every stream seen so far has
    processed data past ``t_end`` (ECG about 0.15 s after an R peak to confirm it, EDA at
    most 0.5 s to confirm SCR peaks, PPG about 0.5 s after a pulse peak for its template).
    Call :meth:`flush` at the end of a recording for the remaining rows. A source that
    holds the recording (a replay) says where each stream ends or pauses with
    :meth:`expect`, so rows go on in data time after a stream stops early.

    A stream that has delivered nothing while the data of the others advanced more than
    ``config.max_lag`` seconds is *paused*: rows stop waiting for it. It is drained as at the
    end of a recording and its windows computed from what it sent, so windows it does not
    cover have NaN features, quality 0 and ``usable_<family>`` False (as
    :func:`extract_features` gives for a stream that stops early). When it resumes, samples
    inside its last drained detection segment are left out and the rest continues after a
    gap; rows already emitted are never revised (see docs/features.md).

    Streams whose modality has no features (``gyro``, ``battery``) are ignored. Each
    feature family takes one stream: the first one pushed; a later stream of the same family
    (say IBI next to BVP) is ignored with a warning.

    With ``config.common_rate`` set, EDA and temperature streams at an integer multiple of
    it are averaged down to it (:class:`~affectstream.signal.rate.RateReducer`) before
    their processor sees them; the rows do not depend on how the blocks are cut. A stream
    at another rate keeps its own, with a warning: its features are not computed as the
    model was trained.
    """

    def __init__(
        self,
        config: WindowConfig | None = None,
        *,
        origin: float | None = None,
        min_chunk: float | None = None,
    ) -> None:
        self.config = config if config is not None else WindowConfig()
        self.origin = origin if origin is not None else self.config.origin
        self.min_chunk = (
            self.config.step
            if min_chunk is None
            else check_positive("min_chunk", min_chunk, allow_zero=True)
        )
        self._pending: dict[str, list[SampleBlock]] = {}
        self._processors: dict[str, Processor] = {}
        # stream -> its averaging down to config.common_rate (EDA/temperature only)
        self._reducers: dict[str, RateReducer] = {}
        self._families: dict[str, str] = {}
        self._ignored: set[str] = set()
        self._next_k: int | None = None
        # stream -> newest sample time (of any stream) when it last delivered data
        self._heard: dict[str, float] = {}
        # event stream -> how far its recent blocks started behind the newest data seen
        self._event_delay: dict[str, collections.deque[float]] = {}
        self._announced: dict[str, tuple[float, float]] = {}  # first, last time
        # event stream -> time of its next event, when the source knows it (expect)
        self._quiet: dict[str, float] = {}
        self.columns: list[str] = ["t_end"]
        self._layout: _FrameLayout | None = None

    # -- input --------------------------------------------------------------------------
    def _processor(self, block: SampleBlock) -> Processor | None:
        known = self._processors.get(block.stream)
        if known is not None:
            return known
        family = FAMILY.get(block.modality)
        if family is None:
            logger.info("no features for modality %r (stream %s)", block.modality, block.stream)
            return None
        if len(block) == 0:
            return None
        if family in self._families:
            if block.stream not in self._ignored:
                self._ignored.add(block.stream)
                logger.warning(
                    "stream %s (%s) ignored: stream %s already gives the %s features",
                    block.stream,
                    block.modality,
                    self._families[family],
                    family,
                )
            return None
        if self.origin is None:
            self.origin = float(block.t[0])
        config = dataclasses.replace(self.config, origin=self.origin)
        processor = _make_processor(self._at_common_rate(block), config)
        self._processors[block.stream] = processor
        self._families[family] = block.stream
        self.columns = self._columns()
        return processor

    def _at_common_rate(self, block: SampleBlock) -> SampleBlock:
        """The first block of a new stream as its processor will see it (see the class)."""
        if self.config.common_rate is None:
            return block
        reducer = stream_reducer(block, self.config.common_rate)
        if reducer is None:
            return block
        self._reducers[block.stream] = reducer
        return reducer.first(block)

    def _columns(self) -> list[str]:
        cols = ["t_end"]
        for proc in self._ordered():
            cols += proc.columns()
            cols += [f"quality_{proc.family}", f"usable_{proc.family}"]
            if self.config.reasons:
                cols.append(f"reason_{proc.family}")
        return cols

    def _ordered(self) -> list[Processor]:
        return sorted(self._processors.values(), key=lambda p: FAMILY_ORDER.index(p.family))

    def register(self, block: SampleBlock) -> None:
        """Declare a stream before its data, so rows wait for it (batch use)."""
        self._processor(block)

    def announce(self, block: SampleBlock) -> None:
        """Say that ``block`` has arrived and is about to be pushed.

        Call it for every stream's new data before pushing a batch of several streams one
        after another (as the live runtime does), so that a stream pushed later in the
        batch is not taken as silent while another one, pushed first, runs ahead.

        Parameters
        ----------
        block : SampleBlock
            The block that will be pushed.
        """
        if len(block) and self._processor(block) is not None:
            self._announced[block.stream] = (float(block.t[0]), float(block.t[-1]))
            self._see(block.stream, float(block.t[-1]), float(block.t[0]))

    def _see(self, stream: str, t: float, first: float | None = None) -> None:
        if first is not None and self._processors[stream].sfreq is None and self._heard:
            delays = self._event_delay.setdefault(
                stream, collections.deque(maxlen=EVENT_DELAY_BLOCKS)
            )
            delays.append(max(0.0, max(self._heard.values()) - first))
        # A stream that delivers is current, even if its data lag (a burst catching up).
        self._heard[stream] = max(t, *self._heard.values(), -math.inf)

    def push(self, block: SampleBlock) -> pd.DataFrame:
        """Add one block of one stream and return the rows it completed as a frame.

        Parameters
        ----------
        block : SampleBlock
            As for :meth:`push_rows`.

        Returns
        -------
        pandas.DataFrame
            Zero or more rows (same columns as :func:`extract_features`).
        """
        return self._frame(self.push_rows(block))

    def push_rows(self, block: SampleBlock) -> list[dict[str, object]]:
        """Add one block of one stream and return the rows it completed as dicts.

        :meth:`push` returns the same rows as a frame; dicts spare the runtime pandas'
        overhead.

        Parameters
        ----------
        block : SampleBlock
            The next samples of a stream, in time order.

        Returns
        -------
        list of dict
            One dict per completed window, keys as :attr:`columns`.
        """
        processor = self._processor(block)
        if processor is None or len(block) == 0:
            return []
        times = (float(block.t[0]), float(block.t[-1]))
        announced = self._announced.pop(block.stream, None) == times
        self._see(block.stream, times[1], None if announced else times[0])
        reducer = self._reducers.get(block.stream)
        if reducer is not None:
            block = reducer.push(block)
            if len(block) == 0:  # the samples wait for the rest of their group
                return self._emit(final=False) if self._event_delay else []
        pending = self._pending.setdefault(block.stream, [])
        pending.append(block)
        first, last = pending[0], pending[-1]
        if processor.sfreq is not None:
            span = (int(last.index[-1]) - int(first.index[0]) + 1) / processor.sfreq
        else:
            span = float(last.t[-1] - first.t[0])
        # A paused stream is fed at once: rows wait for it again as soon as it is back. Data
        # reaching the next window end is fed at once too, while this stream is not yet
        # processed past it: gathering must not delay a row.
        reach = float(last.t[-1]) + (1.0 / processor.sfreq if processor.sfreq else 0.0)
        end = self._next_end()
        holds = reach >= end and processor.ready_until() < end
        if span < self.min_chunk and not processor.paused and not holds:
            # Live, an event stream's row can be let through by the newest data of the
            # others (see _ready) while nothing is fed: check now rather than at the next
            # feed, which may be the next event (up to a second later for heart rate).
            return self._emit(final=False) if self._event_delay else []
        self._feed_pending(block.stream)
        return self._emit(final=False)

    def _feed_pending(self, stream: str) -> None:
        pending = self._pending.pop(stream, [])
        if pending:
            joined = pending[0] if len(pending) == 1 else SampleBlock.concat(pending)
            self._processors[stream].feed(joined)

    def expect(
        self, stream: str, t_next: float, index: int | None = None
    ) -> list[dict[str, object]]:
        """Say that ``stream`` has no samples before ``t_next``; the rows that completed.

        For a source that holds the whole recording (a replay): rows then stop waiting for
        a stream past what its data say, in data time, so they are the same at any speed.
        ``t_next = math.inf`` ends the stream: it is drained as at the end of a recording
        (see :meth:`flush`), its windows after its last sample get NaN features and rows
        go on with the other streams. A finite ``t_next`` lets rows through a gap of an
        event stream (heart beats, heart rate events) up to ``t_next``; for a regularly
        sampled stream, ``index`` (the next sample's device index) fills its gap with NaN
        rows now rather than when that sample arrives (:meth:`Processor.skip_to`). Say
        nothing that is not so: a sample pushed later before ``t_next`` may be left out of
        windows already emitted.

        Parameters
        ----------
        stream : str
            A stream pushed or registered before; others are ignored.
        t_next : float
            Time of the stream's next sample (s), ``math.inf`` when it has no more.
        index : int, optional
            Device index of that sample (regularly sampled streams; without it their gaps
            wait for the next block).

        Returns
        -------
        list of dict
            Rows completed now, as :meth:`push_rows`.
        """
        processor = self._processors.get(stream)
        if processor is None or processor.finished:
            return []
        reducer = self._reducers.get(stream)
        if math.isinf(t_next):
            if reducer is not None:
                reducer.finish()
            self._feed_pending(stream)
            processor.finish()
        elif processor.sfreq is None:
            # Every event before t_next is fed now, so windows ending by then are final.
            self._feed_pending(stream)
            self._quiet[stream] = max(t_next, self._quiet.get(stream, -math.inf))
        elif index is not None and reducer is not None:
            # A group the gap cuts short is complete (NaN) now; the gap skips whole groups.
            closed = reducer.skip(index)
            if closed is not None:
                self._pending.setdefault(stream, []).append(closed)
            group = reducer.group(index)
            if closed is None and group <= self._last_index(stream, processor) + 1:
                return []
            self._feed_pending(stream)
            processor.skip_to(group)
        elif index is not None and index > self._last_index(stream, processor) + 1:
            self._feed_pending(stream)
            processor.skip_to(index)
        else:
            return []
        return self._emit(final=False)

    def _last_index(self, stream: str, processor: Processor) -> int:
        """Device index of the last sample pushed (fed or still gathered) of ``stream``."""
        pending = self._pending.get(stream)
        if pending:
            return int(pending[-1].index[-1])
        return processor.index0 + processor.n - 1

    def flush(self) -> pd.DataFrame:
        """End of the recording: return every remaining row up to the end of the data.

        Returns
        -------
        pandas.DataFrame
        """
        for reducer in self._reducers.values():
            reducer.finish()
        for stream in list(self._pending):
            self._feed_pending(stream)
        for processor in self._processors.values():
            processor.finish()
        return self._frame(self._emit(final=True))

    # -- output -------------------------------------------------------------------------
    def _first_k(self) -> int:
        if self._next_k is None:
            self._next_k = math.ceil(self.config.window / self.config.step - 1e-9)
        return self._next_k

    def _next_end(self) -> float:
        """End of the next window to emit (+inf before the time origin is known)."""
        return self._t_end(self._first_k()) if self.origin is not None else math.inf

    def _t_end(self, k: int) -> float:
        if self.origin is None:
            raise RuntimeError("window end asked before the first block fixed the time origin.")
        return self.origin + k * self.config.step

    def _frame(self, rows: list[dict[str, object]]) -> pd.DataFrame:
        """Rows as a DataFrame; built from one float array because pandas is slow per cell."""
        layout = self._frame_layout()
        if not rows:
            # Most pushes complete no row. A shallow copy of the cached 0-row frame shares no
            # values a caller could change and costs a tenth of a deep one.
            return layout.empty.copy(deep=False)
        return self._build_frame(rows, layout)

    def _frame_layout(self) -> _FrameLayout:
        """Column index, flag positions and empty frame, cached until the columns change."""
        layout = self._layout
        if layout is None or layout.columns != self.columns:
            columns = list(self.columns)
            layout = _FrameLayout(
                columns=columns,
                index=pd.Index(columns),
                flags=[i for i, c in enumerate(columns) if c.startswith("usable_")],
                has_text=any(c.startswith("reason_") for c in columns),
                empty=pd.DataFrame(),
            )
            nan_row: dict[str, object] = dict.fromkeys(columns, math.nan)
            layout.empty = self._build_frame([nan_row], layout).iloc[:0]
            self._layout = layout
        return layout

    @staticmethod
    def _build_frame(rows: list[dict[str, object]], layout: _FrameLayout) -> pd.DataFrame:
        if layout.has_text:
            frame = pd.DataFrame(rows, columns=layout.index)
            for i in layout.flags:
                frame.isetitem(i, frame.iloc[:, i].to_numpy(dtype=bool))
            return frame
        columns = layout.columns
        values = np.array([[row[c] for c in columns] for row in rows], dtype=np.float64)
        frame = pd.DataFrame(values, columns=layout.index, copy=False)
        for i in layout.flags:
            # A plain array, not frame.iloc[:, i]: the indexing costs as much as the rest.
            frame.isetitem(i, values[:, i].astype(bool))
        return frame

    def _emit(self, *, final: bool) -> list[dict[str, object]]:
        if not self._processors or self.origin is None:
            return []
        self._next_k = self._first_k()
        if final:
            ready = max(p.data_end() for p in self._processors.values())
        else:
            self._pause_silent()
            ready = min(
                (self._ready(s, p) for s, p in self._processors.items() if not p.paused),
                default=-math.inf,
            )
            if math.isinf(ready) and ready > 0:  # every stream ended (expect): as flush
                ready = max(p.data_end() for p in self._processors.values())
        rows = []
        while self._t_end(self._next_k) <= ready + 1e-9:
            rows.append(self._row(self._t_end(self._next_k)))
            self._next_k += 1
        if rows:
            before = self._t_end(self._next_k) - self.config.window
            for processor in self._processors.values():
                processor.trim(before)
        return rows

    def _ready(self, stream: str, processor: Processor) -> float:
        """Latest window end ``processor`` lets through now.

        An event stream has no rate that says when its next event is due, so it would hold a
        row until an event after the window's end arrives (up to a second for heart rate).
        Live (``max_lag`` set), it counts as complete up to the newest data of the other
        streams minus the most its recent blocks lagged them, minus :data:`EVENT_MARGIN`;
        and up to its next event's time when the source said it (:meth:`expect`).
        """
        # The source said when the next event is (expect): every one before it is fed.
        ready = max(processor.ready_until(), self._quiet.get(stream, -math.inf))
        delays = self._event_delay.get(stream)
        if self.config.max_lag is None or processor.sfreq is not None or not delays:
            return ready
        self._feed_pending(stream)  # the rule speaks for the events received, not only fed
        ready = max(ready, processor.ready_until())
        others = [t for s, t in self._heard.items() if s != stream]
        if not others:
            return ready
        return max(ready, max(others) - max(delays) - EVENT_MARGIN)

    def _pause_silent(self) -> None:
        """Pause the streams silent while the others' data advanced more than ``max_lag``."""
        max_lag = self.config.max_lag
        if max_lag is None or len(self._processors) < 2:
            return
        if not self._heard:
            return
        # A stream registered up front (register) but not heard yet counts from its first
        # sample; it never sets `newest`: data it has not delivered cannot make the others
        # look silent (an E4's IBI events starting 600 s in paused EDA and HR).
        seen = {s: self._heard.get(s, p.t_first) for s, p in self._processors.items()}
        newest = max(self._heard.values())
        for stream, processor in self._processors.items():
            if processor.paused or not newest - seen[stream] > max_lag:
                continue
            self._feed_pending(stream)
            processor.pause()
            logger.warning(
                "%s silent while the other streams advanced %.1f s (max_lag %g s): rows go "
                "on with its %s features NaN where it sent nothing, until it resumes",
                stream,
                newest - seen[stream],
                max_lag,
                processor.family,
            )

    def _row(self, t_end: float) -> dict[str, object]:
        row: dict[str, object] = {"t_end": t_end}
        for proc in self._ordered():
            features, quality, reason = proc.window(t_end)
            usable = (
                quality >= self.config.min_quality and np.isfinite(list(features.values())).any()
            )
            if not usable and not reason:
                reason = f"quality {quality:.2f} below min_quality {self.config.min_quality}"
            if not usable and self.config.mask_unusable:
                features = proc.nan_features()
            row.update(features)
            row[f"quality_{proc.family}"] = quality
            row[f"usable_{proc.family}"] = bool(usable)
            if self.config.reasons:
                row[f"reason_{proc.family}"] = reason
        return row


def extract_features(
    blocks: Sequence[SampleBlock], config: WindowConfig | None = None
) -> pd.DataFrame:
    """Window features of whole recordings, one row per window, aligned across modalities.

    Parameters
    ----------
    blocks : sequence of SampleBlock
        The recordings; several blocks of one stream are joined in order. When several
        streams could give one family, ECG is used before PPG before RR; the others are
        ignored with a warning.
    config : WindowConfig, optional
        Window settings (default 60-s windows every 5 s). Without ``config.origin`` the grid
        starts at the earliest first-sample time.

    Returns
    -------
    pandas.DataFrame
        Column ``t_end`` (window end, s since the epoch), the features of every modality
        given (see docs/features.md), ``quality_<family>`` (0..1) and ``usable_<family>``.

    Raises
    ------
    SignalError
        If the recordings are shorter than one window or a block cannot be processed.
    """
    config = config if config is not None else WindowConfig()
    by_stream: dict[str, list[SampleBlock]] = {}
    for block in blocks:
        if len(block):
            by_stream.setdefault(block.stream, []).append(block)
    if not by_stream:
        raise SignalError("extract_features got no samples; pass at least one non-empty block.")
    streams = [p[0] if len(p) == 1 else SampleBlock.concat(p) for p in by_stream.values()]
    # One stream per family: prefer the raw signal we detect beats in (ECG, then PPG) to RR.
    streams.sort(key=lambda s: PRIORITY.get(s.modality, 0))
    origin = config.origin if config.origin is not None else min(float(s.t[0]) for s in streams)
    # Whole recordings are pushed one stream after the other: never give up waiting.
    extractor = StreamingExtractor(dataclasses.replace(config, max_lag=None), origin=origin)
    for stream in streams:
        extractor.register(stream)
    parts = [extractor.push(stream) for stream in streams]
    parts.append(extractor.flush())
    frames = [p for p in parts if len(p)]
    if not frames:
        longest = max(float(s.t[-1] - s.t[0]) for s in streams)
        raise SignalError(
            f"The recordings last {longest:.1f} s, shorter than one window of "
            f"{config.window:g} s; use a shorter WindowConfig.window."
        )
    return pd.concat(frames, ignore_index=True)
