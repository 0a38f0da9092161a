"""The feature and model side of a live session: which streams feed features, and the worker.

A :class:`FeatureWorker` keeps the compute backlog (blocks waiting for the extractor) and
turns a batch of it, in a worker thread, into feature rows, estimates and the store batches
of both (:class:`ComputeResult`). It never touches the event loop's state: the session takes
the result on the loop. When the extractor is more than ``compute_backlog_samples`` behind,
blocks skip it (they are still stored) and the stream's ``feature_skipped`` counts them.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from affectstream.errors import AffectstreamError, SignalError
from affectstream.runtime.accounting import StreamLedger
from affectstream.runtime.estimator import LiveEstimator
from affectstream.runtime.multiwindow import MultiWindowExtractor
from affectstream.runtime.session_config import SessionConfig
from affectstream.runtime.session_writer import Derived
from affectstream.signal import StreamingExtractor
from affectstream.signal.columns import feature_columns
from affectstream.signal.extractor import FAMILY
from affectstream.store import SeriesBatch, seconds_to_ns
from affectstream.types import FloatArray, SampleBlock

logger = logging.getLogger(__name__)


@dataclass
class ComputeResult:
    """What one worker run produced.

    Parameters
    ----------
    rows : pandas.DataFrame
        New feature rows (``t_end``, features, ``quality_``/``usable_`` columns).
    records : list of dict
        Affect records of those rows (empty without an estimator).
    errors : dict of str to str
        Stream (or ``"flush"``, ``"model"``) → error message.
    batches : list of (SeriesBatch, latency pairs)
        Features, quality and affect batches for the store.
    quality : dict of str to float
        Latest ``quality_<family>`` values.
    """

    rows: pd.DataFrame
    records: list[dict[str, Any]]
    errors: dict[str, str]
    batches: list[Derived]
    quality: dict[str, float]


class FeatureWorker:
    """Feature-source choice, compute backlog and the worker-thread computation.

    Parameters
    ----------
    config : SessionConfig
        Windows, preferred sources and the compute backlog bound.
    estimator : LiveEstimator or None
        Models; without one only features and quality are computed.
    tags : mapping of str to str
        ``participant`` and ``session`` tags of the derived batches.
    """

    def __init__(
        self, config: SessionConfig, estimator: LiveEstimator | None, tags: Mapping[str, str]
    ) -> None:
        self.config = config
        self.estimator = estimator
        self.tags = dict(tags)
        # Models trained on other window lengths get their own windows (multiwindow.py);
        # each window's EDA at the rate its models were trained at (WindowConfig.common_rate).
        window, extra = (
            estimator.bind_session(config.window) if estimator is not None else (config.window, [])
        )
        self.extractor: StreamingExtractor | MultiWindowExtractor = (
            MultiWindowExtractor(window, extra) if extra else StreamingExtractor(window)
        )
        self.feature_streams: dict[str, str] = {}  # family -> stream
        # stream -> its sample times and device indices, when the source holds the whole
        # recording (replay); not the samples, which the session need not keep
        self._recording: dict[str, tuple[FloatArray, np.ndarray[Any, Any]]] = {}
        self._starts: dict[str, float] = {}  # said to the extractor at the next compute
        self._queue: deque[tuple[SampleBlock, float]] = deque()
        self._queued_samples = 0
        self.compute_seconds = 0.0  # worker time in features and models

    def declare_streams(
        self,
        streams: Mapping[str, str],
        first_blocks: Mapping[str, SampleBlock] | None = None,
        whole: bool = False,
    ) -> None:
        """Pick each family's preferred source among ``streams`` (see LiveSession)."""
        ranked: dict[str, tuple[int, str]] = {}
        for stream, modality in streams.items():
            family = FAMILY.get(modality)
            if family is None or family in self.feature_streams:
                continue
            order = self.config.sources.get(family, ())
            rank = order.index(modality) if modality in order else len(order)
            if family not in ranked or rank < ranked[family][0]:
                ranked[family] = (rank, stream)
        for family, (_, stream) in ranked.items():
            self.feature_streams[family] = stream
        for stream in self.feature_streams.values():
            if first_blocks is not None and stream in first_blocks:
                self.extractor.register(first_blocks[stream])
                if whole and len(first_blocks[stream]):
                    block = first_blocks[stream]
                    self._recording[stream] = (block.t, block.index)
                    self._starts[stream] = float(first_blocks[stream].t[0])

    def _expect_next(self, stream: str, last: float) -> list[dict[str, object]]:
        """Tell the extractor where ``stream``'s next sample after ``last`` is, if known."""
        recording = self._recording.get(stream)
        if recording is None:
            return []
        t, index = recording
        i = int(np.searchsorted(t, last, side="right"))
        if i == len(t):
            return self.extractor.expect(stream, math.inf)
        return self.extractor.expect(stream, float(t[i]), int(index[i]))

    def _feeds_features(self, block: SampleBlock) -> bool:
        family = FAMILY.get(block.modality)
        if family is None:
            return False
        owner = self.feature_streams.get(family)
        if owner is None:
            self.feature_streams[family] = block.stream
            return True
        return owner == block.stream

    def offer(self, block: SampleBlock, ledger: StreamLedger, n_data: int) -> None:
        """Queue ``block`` for the extractor if its stream feeds features and there is room.

        Parameters
        ----------
        block : SampleBlock
            A delivered block.
        ledger : StreamLedger
            Its stream's ledger (``feature_skipped`` counts blocks past the bound).
        n_data : int
            Its data rows.
        """
        if not self._feeds_features(block):
            return
        if self._queued_samples + len(block) > self.config.compute_backlog_samples:
            ledger.feature_skipped += n_data
        else:
            self._queue.append((block, time.time()))
            self._queued_samples += len(block)

    def take(self) -> list[tuple[SampleBlock, float]]:
        """Everything queued, in order (the queue is then empty).

        Returns
        -------
        list of (SampleBlock, submit time)
        """
        items = list(self._queue)
        self._queue.clear()
        self._queued_samples = 0
        return items

    def compute(self, items: list[tuple[SampleBlock, float]], final: bool) -> ComputeResult:
        """Worker thread: push ``items`` through the extractor and the models.

        Parameters
        ----------
        items : list of (SampleBlock, submit time)
            From :meth:`take`.
        final : bool
            Also flush the extractor's last windows (session end).

        Returns
        -------
        ComputeResult
        """
        started = time.perf_counter()
        try:
            return self._compute(items, final)
        finally:
            self.compute_seconds += time.perf_counter() - started

    def _compute(self, items: list[tuple[SampleBlock, float]], final: bool) -> ComputeResult:
        by_stream: dict[str, list[SampleBlock]] = {}
        newest = 0.0
        for block, submitted in items:
            by_stream.setdefault(block.stream, []).append(block)
            newest = max(newest, submitted)
        # push_rows: most pushes complete no window, and a DataFrame per push costs ms.
        rows: list[dict[str, object]] = []
        errors: dict[str, str] = {}
        joined: dict[str, SampleBlock] = {}
        # A stream whose first sample comes late has none before it (known to a replay).
        for stream, first in self._starts.items():
            rows.extend(self.extractor.expect(stream, first))
        self._starts.clear()
        for stream, blocks in by_stream.items():
            try:
                block = blocks[0] if len(blocks) == 1 else SampleBlock.concat(blocks)
                # Announced before any push: no stream of this batch counts as silent
                # (> max_lag behind) because another, pushed first, runs ahead.
                self.extractor.announce(block)
                joined[stream] = block
            except SignalError as exc:
                errors[stream] = str(exc)
                logger.warning("features of %s skipped a block: %s", stream, exc)
        for stream, block in joined.items():
            try:
                rows.extend(self.extractor.push_rows(block))
                # In data time, so the same rows at any speed: after a stream's last block
                # rows stop waiting for it, and an event stream's gap lets rows through.
                rows.extend(self._expect_next(stream, float(block.t[-1])))
            except SignalError as exc:
                errors[stream] = str(exc)
                logger.warning("features of %s skipped a block: %s", stream, exc)
        frames: list[pd.DataFrame] = []
        if rows:
            frames.append(pd.DataFrame(rows, columns=self.extractor.columns))
        if final:
            try:
                last_rows = self.extractor.flush()
            except SignalError as exc:
                errors["flush"] = str(exc)
                logger.warning("final feature flush failed: %s", exc)
            else:
                if len(last_rows):
                    frames.append(last_rows)
        frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        records: list[dict[str, Any]] = []
        if self.estimator is not None and len(frame):
            try:
                records = self.estimator.estimate(frame)
            except AffectstreamError as exc:  # e.g. a bundle that does not fit: keep features
                errors["model"] = str(exc)
                logger.warning("estimates skipped for %d windows: %s", len(frame), exc)
        batches, quality = self._row_batches(frame, records, newest)
        return ComputeResult(frame, records, errors, batches, quality)

    def _row_batches(
        self, frame: pd.DataFrame, records: list[dict[str, Any]], newest: float
    ) -> tuple[list[Derived], dict[str, float]]:
        """Worker thread: features, quality and affect batches of new rows."""
        batches: list[Derived] = []
        quality: dict[str, float] = {}
        if not len(frame):
            return batches, quality
        t_ns = seconds_to_ns(frame["t_end"].to_numpy(dtype=np.float64))
        columns = [str(c) for c in frame.columns]
        feature_cols = feature_columns(frame)
        quality_cols = [c for c in columns if c.startswith(("quality_", "usable_"))]
        if feature_cols:
            fields = {c: frame[c].to_numpy(dtype=np.float64) for c in feature_cols}
            batches.append((SeriesBatch("features", self.tags, t_ns, fields), []))
        if quality_cols:
            fields_q: dict[str, Any] = {}
            for c in quality_cols:
                dtype = bool if c.startswith("usable_") else np.float64
                fields_q[c] = frame[c].to_numpy(dtype=dtype)
            batches.append((SeriesBatch("quality", self.tags, t_ns, fields_q), []))
            last = frame.iloc[-1]
            quality = {
                c.removeprefix("quality_"): float(last[c])
                for c in quality_cols
                if c.startswith("quality_")
            }
        if records and self.estimator is not None:
            tags = {**self.tags, "model": self.estimator.model_id}
            for group in bool_complete_groups(records):
                batch = records_batch(group, tags)
                batches.append((batch, [(float(r["t_end"]), newest) for r in group]))
        return batches, quality


def bool_complete_groups(records: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Split consecutive records where the set of present bool fields changes.

    A bool field missing from some records of a batch would make the whole column float
    (:func:`records_batch`), and a store that holds it as bool refuses those points (a
    combined estimate before its first bundle has a window has no ``arousal_high``). Each
    group has every one of its bool fields in every record, so they stay bool.

    Parameters
    ----------
    records : list of dict
        Affect records in time order.

    Returns
    -------
    list of list of dict
        The records, in order, in groups.
    """
    flags = {k for r in records for k, v in r.items() if isinstance(v, bool | np.bool_)}
    groups: list[list[dict[str, Any]]] = []
    last: tuple[bool, ...] | None = None
    for record in records:
        key = tuple(record.get(k) is not None for k in sorted(flags))
        if key != last:
            groups.append([])
            last = key
        groups[-1].append(record)
    return groups


def records_batch(records: list[dict[str, Any]], tags: Mapping[str, str]) -> SeriesBatch:
    """Affect records (dicts with ``t_end``) as one ``affect`` batch.

    Parameters
    ----------
    records : list of dict
        Affect records.
    tags : mapping of str to str
        Series tags (participant, session, model).

    Returns
    -------
    SeriesBatch
    """
    names: list[str] = []
    for record in records:
        names += [k for k in record if k != "t_end" and k not in names]
    fields: dict[str, Any] = {}
    for name in names:
        values = [record.get(name) for record in records]
        sample = next((v for v in values if v is not None), None)
        if isinstance(sample, bool | np.bool_):
            if any(v is None for v in values):  # missing: a float column with NaN
                fields[name] = np.array(
                    [math.nan if v is None else float(v) for v in values], dtype=np.float64
                )
            else:
                fields[name] = np.array(values, dtype=bool)
        elif isinstance(sample, str) or sample is None:
            fields[name] = np.array(values, dtype=object)
        else:
            fields[name] = np.array(
                [math.nan if v is None else float(v) for v in values], dtype=np.float64
            )
    t_ns = seconds_to_ns(np.array([float(r["t_end"]) for r in records]))
    return SeriesBatch("affect", tags, t_ns, fields)
