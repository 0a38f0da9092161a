"""The live session runtime: devices → features → estimates → store, on one asyncio loop.

Data path of a :class:`LiveSession`::

    BLE callback ──submit()──▶ raw backlog (bounded) ──writer task──▶ store thread ──▶ store
                     │                                      ▲
                     └──▶ compute backlog (bounded) ──compute task──▶ worker thread:
                          StreamingExtractor.push ▶ LiveEstimator ──▶ features, quality,
                                                                      affect (derived backlog)

- :meth:`LiveSession.submit` is what the connection supervisor calls for every
  :class:`~affectstream.types.SampleBlock`. It only appends to in-memory queues and never
  waits, so a slow store or a busy CPU never blocks a BLE callback.
- Back-pressure is explicit and counted per stream (:class:`StreamLedger`): when more than
  ``max_pending_samples`` raw samples wait for the store, the oldest waiting blocks are
  dropped and written as ``"store_backlog"`` gap events instead (so they stay accounted
  for); when the extractor is more than ``compute_backlog_samples`` behind, blocks skip the
  extractor (they are still stored) and ``feature_skipped`` counts them.
- Feature extraction and models run in a worker thread; store writes in another, so the
  event loop only moves references.
- A failed store write is retried with backoff; nothing is lost while the backlog bound
  holds. Stopping (duration, stop event, Ctrl-C or task cancellation) stops the devices,
  flushes the extractor and writes everything left, retrying for up to ``flush_timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np
import pandas as pd

from affectstream._validate import check_positive
from affectstream.backoff import backoff_delay
from affectstream.errors import AffectstreamError, ConfigError, SignalError, StoreError
from affectstream.ids import check_id
from affectstream.redact import redact_url
from affectstream.runtime.accounting import BACKLOG_REASON, StreamLedger, data_rows
from affectstream.runtime.estimator import NO_MODEL, LiveEstimator
from affectstream.runtime.multiwindow import MultiWindowExtractor
from affectstream.runtime.protocol import Protocol as SessionProtocol
from affectstream.runtime.protocol import ProtocolPhase
from affectstream.signal import StreamingExtractor, WindowConfig
from affectstream.signal.columns import feature_columns
from affectstream.signal.extractor import FAMILY
from affectstream.store import (
    DeliveryReport,
    SeriesBatch,
    TimeSeriesStore,
    blocks_to_batches,
    seconds_to_ns,
)
from affectstream.types import Gap, SampleBlock

logger = logging.getLogger(__name__)
#: Latest windows whose latencies the summary percentiles cover.
_LATENCY_KEPT = 20_000

#: Preferred source of each feature family when several streams could feed it.
DEFAULT_SOURCES: dict[str, tuple[str, ...]] = {"hrv": ("ecg", "ppg", "rr")}
#: Columns of an extractor row that describe the window rather than measure anything.


class BlockSource(Protocol):
    """What the runtime needs from a device layer (the connection supervisor fits)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def stats(self) -> Mapping[str, Any]: ...


@dataclass
class SessionConfig:
    """Settings of a live session.

    Parameters
    ----------
    participant : str
        Pseudonymous participant id (the ``participant`` tag).
    session_id : str, optional
        Session id (the ``session`` tag); generated from the participant and the UTC time.
    window : WindowConfig
        Feature windows.
    protocol : Protocol, optional
        Phases written as events; a ``baseline`` phase is the reference period.
    baseline_seconds : float, optional
        Reference period from the session start when the protocol has no baseline phase;
        defaults to the arousal bundle's ``baseline_seconds``.
    flush_interval : float
        Seconds between store writes.
    compute_interval : float
        Seconds between hand-overs of new blocks to the feature worker.
    max_pending_samples : int
        Raw samples allowed to wait for the store before the oldest become gap events.
    max_write_samples : int
        Raw samples per store write at most (a backlog drains in several writes).
    compute_backlog_samples : int
        Samples allowed to wait for the extractor before blocks skip it.
    max_pending_points : int
        Derived points (features, quality, affect, events) allowed to wait for the store
        before the oldest are dropped (counted in ``derived_dropped_points``).
    flush_timeout : float
        Seconds the final flush keeps retrying an unavailable store.
    sources : mapping of str to tuple of str
        Preferred modalities per feature family when several streams could feed it.
    """

    participant: str = ""
    session_id: str | None = None
    window: WindowConfig = field(default_factory=WindowConfig)
    protocol: SessionProtocol | None = None
    baseline_seconds: float | None = None
    flush_interval: float = 0.5
    compute_interval: float = 0.25
    max_pending_samples: int = 4_000_000
    max_write_samples: int = 250_000
    compute_backlog_samples: int = 2_000_000
    max_pending_points: int = 200_000
    flush_timeout: float = 15.0
    sources: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_SOURCES))

    def __post_init__(self) -> None:
        check_id(self.participant, "participant", allow_empty=True)
        if self.session_id is not None:
            check_id(self.session_id, "session")
        for name in ("flush_interval", "compute_interval", "flush_timeout"):
            check_positive(f"SessionConfig.{name}", getattr(self, name))
        for name in (
            "max_pending_samples",
            "max_write_samples",
            "compute_backlog_samples",
            "max_pending_points",
        ):
            check_positive(f"SessionConfig.{name}", getattr(self, name))


def new_session_id(participant: str = "") -> str:
    """A readable, unique session id: ``<participant>-<UTC time>-<4 hex>``.

    Parameters
    ----------
    participant : str
        Participant id (``"anon"`` when empty).

    Returns
    -------
    str
    """
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{participant or 'anon'}-{stamp}-{uuid.uuid4().hex[:4]}"


def _percentiles(values: Sequence[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "p50": None, "p99": None, "max": None}
    array = np.asarray(values, dtype=np.float64)
    return {
        "n": int(array.size),
        "p50": float(np.percentile(array, 50)),
        "p99": float(np.percentile(array, 99)),
        "max": float(array.max()),
    }


@dataclass
class StreamView:
    """One stream in a :class:`LiveSnapshot`."""

    stream: str
    modality: str
    rate: float
    delivered: int
    gap_samples: int
    stored: int
    pending: int
    features: bool


@dataclass
class LiveSnapshot:
    """What a live view shows; cheap to take several times a second.

    Parameters
    ----------
    session : str
        Session id.
    elapsed : float
        Seconds since the session started.
    duration : float or None
        Planned length.
    streams : list of StreamView
        Per-stream counters and rates.
    quality : dict
        Latest ``quality_<family>`` values.
    estimate : dict or None
        Latest affect record.
    phase : ProtocolPhase or None
        Current protocol phase.
    n_feature_rows, n_estimates : int
        Windows processed and estimates made.
    store_ok : bool
        False while store writes fail.
    store_message : str
        Last store error.
    backlog_samples : int
        Raw samples waiting for the store.
    window : WindowConfig
        Feature window settings.
    model : str
        Model id.
    """

    session: str
    elapsed: float
    duration: float | None
    streams: list[StreamView]
    quality: dict[str, float]
    estimate: dict[str, Any] | None
    phase: ProtocolPhase | None
    n_feature_rows: int
    n_estimates: int
    store_ok: bool
    store_message: str
    backlog_samples: int
    window: WindowConfig
    model: str


@dataclass
class _ComputeResult:
    rows: pd.DataFrame
    records: list[dict[str, Any]]
    errors: dict[str, str]
    batches: list[tuple[SeriesBatch, list[tuple[float, float]]]]
    quality: dict[str, float]


class LiveSession:
    """Wire a block source, the feature extractor, the models and a store into one session.

    Parameters
    ----------
    store : TimeSeriesStore
        Where everything goes (it is not closed by the session).
    config : SessionConfig, optional
        Settings.
    estimator : LiveEstimator, optional
        Models; without one only features and quality are stored.
    executor : concurrent.futures.Executor, optional
        Worker for features and models (a private one-thread pool by default). Share one
        between sessions to bound the threads of a process.
    store_executor : concurrent.futures.Executor, optional
        Worker for store writes (a private one-thread pool by default).
    on_estimate : callable, optional
        Called on the event loop with every affect record (``t_end`` plus the ``affect``
        fields), in time order, as soon as it is computed; an exception it raises is
        logged and the session goes on.

    Examples
    --------
    >>> session = LiveSession(store, SessionConfig(participant="P01"))  # doctest: +SKIP
    >>> sup = Supervisor(targets, on_block=session.submit)  # doctest: +SKIP
    >>> summary = await session.run(sup, duration=600)  # doctest: +SKIP
    """

    def __init__(
        self,
        store: TimeSeriesStore,
        config: SessionConfig | None = None,
        estimator: LiveEstimator | None = None,
        *,
        executor: Executor | None = None,
        store_executor: Executor | None = None,
        on_estimate: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.store = store
        self._last_mark_t = 0.0
        self.config = config if config is not None else SessionConfig()
        self.session_id = self.config.session_id or new_session_id(self.config.participant)
        self.estimator = estimator
        self._own_executors: list[ThreadPoolExecutor] = []
        self._executor = executor or self._private_executor("affectstream-compute")
        self._store_executor = store_executor or self._private_executor("affectstream-store")
        self.tags = {"participant": self.config.participant, "session": self.session_id}
        # Models trained on other window lengths get their own windows (multiwindow.py).
        extra = estimator.extra_windows() if estimator is not None else []
        self.extractor: StreamingExtractor | MultiWindowExtractor = (
            MultiWindowExtractor(self.config.window, extra)
            if extra
            else StreamingExtractor(self.config.window)
        )
        self.ledgers: dict[str, StreamLedger] = {}
        self._raw: deque[tuple[SampleBlock, int]] = deque()
        self._raw_samples = 0  # waiting or in flight
        self._gap_blocks: deque[SampleBlock] = deque()
        self._derived: deque[tuple[SeriesBatch, list[tuple[float, float]]]] = deque()
        self._derived_points = 0
        self._compute: deque[tuple[SampleBlock, float]] = deque()
        self._compute_samples = 0
        self._feature_streams: dict[str, str] = {}  # family -> stream
        self._stream_modality: dict[str, str] = {}
        self._last_t: dict[str, float] = {}  # stream -> time of its last sample
        self.started_at: float | None = None
        self._started_mono = 0.0
        self._duration: float | None = None
        self._span: tuple[float, float] | None = None
        self.stopped_at: float | None = None
        self.n_feature_rows = 0
        self.n_estimates = 0
        self.n_events = 0
        self.store_failures = 0
        self.store_ok = True
        self.store_message = ""
        self.backlog_drops = 0
        self.derived_dropped_points = 0
        # Latest windows only: an unbounded session must not grow with its length.
        self.latency_window_end: deque[float] = deque(maxlen=_LATENCY_KEPT)
        self.latency_arrival: deque[float] = deque(maxlen=_LATENCY_KEPT)
        self.latest_estimate: dict[str, Any] | None = None
        self.latest_quality: dict[str, float] = {}
        self.feature_errors: dict[str, str] = {}
        self.warnings: list[str] = []
        self._rate_marks: dict[str, tuple[float, int, float]] = {}
        self._closed = False
        self.late_blocks = 0
        self.unordered_blocks = 0  # blocks whose times did not strictly increase
        self._backlog_warned = False
        self.delivery_lag: deque[float] = deque(maxlen=20_000)
        self.compute_seconds = 0.0  # worker time in features and models
        self.store_seconds = 0.0  # wall time of store writes
        #: Called on the event loop with ``("estimate", record)`` for every estimate and
        #: ``("event", {...})`` for every marker/phase/session event, as they happen (the
        #: service's live push). A listener must not block; its errors are logged, not raised.
        self.listeners: list[Callable[[str, Mapping[str, Any]], None]] = []
        #: Called on the event loop with each new frame of feature rows (``t_end``, feature,
        #: ``quality_``/``usable_`` columns), e.g. the LSL features outlet. Kept apart from
        #: :attr:`listeners`, whose messages the service forwards to live clients.
        self.row_listeners: list[Callable[[pd.DataFrame], None]] = []
        if on_estimate is not None:
            self.listeners.append(
                lambda what, payload: on_estimate(dict(payload)) if what == "estimate" else None
            )
        # Losses inside the store (points it refused, bytes only spooled) count from here.
        self._delivery_start = store.delivery()
        self.delivery = DeliveryReport()

    def _private_executor(self, name: str) -> ThreadPoolExecutor:
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._own_executors.append(pool)
        return pool

    # -- input (event loop thread, never waits) -----------------------------------------

    def declare_streams(
        self,
        streams: Mapping[str, str],
        first_blocks: Mapping[str, SampleBlock] | None = None,
    ) -> None:
        """Tell the session which streams to expect, so each feature family takes its
        preferred source (e.g. ECG rather than RR for HRV) whatever arrives first.

        Parameters
        ----------
        streams : mapping of str to str
            Stream id → modality.
        first_blocks : mapping of str to SampleBlock, optional
            A first block per stream, when known before the session runs (replay): the
            feature streams are then registered with the extractor up front, as
            :func:`~affectstream.signal.extract_features` does, so rows wait for every
            feature stream even when data is pushed faster than real time.
        """
        ranked: dict[str, tuple[int, str]] = {}
        for stream, modality in streams.items():
            self._stream_modality[stream] = modality
            family = FAMILY.get(modality)
            if family is None or family in self._feature_streams:
                continue
            order = self.config.sources.get(family, ())
            rank = order.index(modality) if modality in order else len(order)
            if family not in ranked or rank < ranked[family][0]:
                ranked[family] = (rank, stream)
        for family, (_, stream) in ranked.items():
            self._feature_streams[family] = stream
        for stream in self._feature_streams.values():
            if first_blocks is not None and stream in first_blocks:
                self.extractor.register(first_blocks[stream])

    def _feeds_features(self, block: SampleBlock) -> bool:
        family = FAMILY.get(block.modality)
        if family is None:
            return False
        owner = self._feature_streams.get(family)
        if owner is None:
            self._feature_streams[family] = block.stream
            return True
        return owner == block.stream

    def submit(self, block: SampleBlock) -> None:
        """Take one block from the device layer; never blocks (safe in a BLE callback).

        Parameters
        ----------
        block : SampleBlock
            Clock-corrected samples of one stream, gaps as NaN rows plus annotations.
        """
        self._check_order(block)
        if len(block):
            # How late the block arrives after its last sample's (clock-model) time.
            self.delivery_lag.append(time.time() - float(block.t[-1]))
        ledger = self.ledgers.get(block.stream)
        if ledger is None:
            ledger = self.ledgers[block.stream] = StreamLedger(block.stream, block.modality)
        n_data = data_rows(block)
        ledger.on_block(block, n_data)
        if self._closed:
            # Arrived after the final flush: counted as unflushed, never silently lost.
            self.late_blocks += 1
            return
        self._raw.append((block, n_data))
        self._raw_samples += n_data
        if self._raw_samples > self.config.max_pending_samples:
            self._drop_oldest_raw()
        if self._feeds_features(block):
            if self._compute_samples + len(block) > self.config.compute_backlog_samples:
                ledger.feature_skipped += n_data
            else:
                self._compute.append((block, time.time()))
                self._compute_samples += len(block)

    def _drop_oldest_raw(self) -> None:
        """Back-pressure: turn the oldest waiting blocks into ``store_backlog`` gaps."""
        while self._raw_samples > self.config.max_pending_samples and self._raw:
            block, n_data = self._raw.popleft()
            self._raw_samples -= n_data
            ledger = self.ledgers[block.stream]
            ledger.pending -= n_data
            ledger.dropped += n_data
            self.backlog_drops += 1
            self._gap_blocks.append(_gap_only(block, n_data))
        if not self._backlog_warned:  # once per outage, not once per block
            self._backlog_warned = True
            logger.warning(
                "store backlog above %d samples: the oldest samples become gap events",
                self.config.max_pending_samples,
            )

    def mark(
        self,
        label: str,
        *,
        kind: str = "marker",
        detail: str = "",
        t: float | None = None,
        values: Mapping[str, float] | None = None,
    ) -> None:
        """Write an event (a marker, a phase, a note) at host time ``t`` (now by default).

        Parameters
        ----------
        label : str
            Event label.
        kind : str
            ``"marker"``, ``"phase"``, ``"session"``...
        detail : str
            Free text (e.g. a phase's instruction).
        t : float, optional
            Host time in seconds since the epoch; by default now, and at least 1 us after
            the previous event marked "now" (two events at one time would be one point).
        values : mapping of str to float, optional
            Numeric fields stored with the event (e.g. a self-report's ratings).
        """
        if t is None:
            when = max(time.time(), self._last_mark_t + 1e-6)
            self._last_mark_t = when
        else:
            when = float(t)
        fields: dict[str, Any] = {
            "kind": np.array([kind], dtype=object),
            "label": np.array([label], dtype=object),
            "detail": np.array([detail], dtype=object),
        }
        for name, value in (values or {}).items():
            fields[name] = np.array([value], dtype=np.float64)
        batch = SeriesBatch("events", self.tags, seconds_to_ns(np.array([when])), fields)
        self._add_derived(batch, [])
        self.n_events += 1
        self._notify("event", {"t": when, "kind": kind, "label": label, "detail": detail})

    def _notify(self, what: str, payload: Mapping[str, Any]) -> None:
        for listener in list(self.listeners):
            try:
                listener(what, payload)
            except Exception:  # a broken listener must not stop the session
                logger.exception("session listener failed on %s", what)

    def _add_derived(self, batch: SeriesBatch, latency: list[tuple[float, float]]) -> None:
        if len(batch) == 0:
            return
        self._derived.append((batch, latency))
        self._derived_points += len(batch)
        while self._derived_points > self.config.max_pending_points and len(self._derived) > 1:
            old, _ = self._derived.popleft()
            self._derived_points -= len(old)
            self.derived_dropped_points += len(old)
            logger.warning("derived backlog full: %d points dropped", len(old))

    # -- feature and model worker (runs in the executor thread) ---------------------------

    def _check_order(self, block: SampleBlock) -> None:
        """Count (and log the first) block whose times do not strictly increase.

        The device layer stamps every stream strictly increasing (RR values at their beat
        times, regular samples never before the previous delivery), so this should never
        happen. If it does, the store keeps one of two tied points and the extractor refuses
        the block (a feature error): the count says why.
        """
        if len(block) == 0:
            return
        last = self._last_t.get(block.stream)
        self._last_t[block.stream] = float(block.t[-1])
        if (last is None or block.t[0] > last) and bool(np.all(np.diff(block.t) > 0)):
            return
        self.unordered_blocks += 1
        if self.unordered_blocks == 1:
            logger.warning(
                "%s: a block's times do not strictly increase (first %.6f after %s); "
                "tied points overwrite each other in the store and features skip the block",
                block.stream,
                float(block.t[0]),
                "nothing" if last is None else f"{last:.6f}",
            )

    def _compute_rows(self, items: list[tuple[SampleBlock, float]], final: bool) -> _ComputeResult:
        started = time.perf_counter()
        try:
            return self._compute_rows_timed(items, final)
        finally:
            self.compute_seconds += time.perf_counter() - started

    def _compute_rows_timed(
        self, items: list[tuple[SampleBlock, float]], final: bool
    ) -> _ComputeResult:
        by_stream: dict[str, list[SampleBlock]] = {}
        newest = 0.0
        for block, submitted in items:
            by_stream.setdefault(block.stream, []).append(block)
            newest = max(newest, submitted)
        # push_rows: most pushes complete no window, and a DataFrame per push costs ms.
        rows: list[dict[str, object]] = []
        errors: dict[str, str] = {}
        joined: dict[str, SampleBlock] = {}
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
        return _ComputeResult(frame, records, errors, batches, quality)

    # -- tasks --------------------------------------------------------------------------

    async def _compute_once(self, final: bool = False) -> None:
        items = list(self._compute)
        self._compute.clear()
        self._compute_samples = 0
        if not items and not final:
            return
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(self._executor, self._compute_rows, items, final)
        except Exception as exc:  # a bug must not stop the session or its final flush
            if "compute" not in self.feature_errors:
                logger.exception("feature/model worker failed; the session goes on")
            self.feature_errors["compute"] = f"{type(exc).__name__}: {exc}"
            return
        for stream, message in result.errors.items():
            if stream in self.ledgers:
                self.ledgers[stream].feature_errors += 1
            self.feature_errors[stream] = message
        self._take_rows(result)

    async def _compute_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.config.compute_interval)
            await self._compute_once()

    def _row_batches(
        self, frame: pd.DataFrame, records: list[dict[str, Any]], newest: float
    ) -> tuple[list[tuple[SeriesBatch, list[tuple[float, float]]]], dict[str, float]]:
        """Worker thread: features, quality and affect batches of new rows."""
        batches: list[tuple[SeriesBatch, list[tuple[float, float]]]] = []
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
            batch = _records_batch(records, {**self.tags, "model": self.estimator.model_id})
            batches.append((batch, [(float(r["t_end"]), newest) for r in records]))
        return batches, quality

    def _take_rows(self, result: _ComputeResult) -> None:
        """Event loop: queue the worker's batches for the store and update the live state."""
        if not len(result.rows):
            return
        self.n_feature_rows += len(result.rows)
        for batch, latency in result.batches:
            self._add_derived(batch, latency)
        for row_listener in list(self.row_listeners):
            try:
                row_listener(result.rows)
            except Exception:  # a broken listener must not stop the session
                logger.exception("session row listener failed")
        if result.quality:
            self.latest_quality = result.quality
        if result.records:
            self.n_estimates += len(result.records)
            self.latest_estimate = result.records[-1]
            for record in result.records:
                self._notify("estimate", record)

    async def _write_once(self) -> bool:
        """Write what is waiting; False if the store refused (everything is kept)."""
        raw: list[tuple[SampleBlock, int]] = []
        budget = self.config.max_write_samples
        while self._raw and (not raw or budget > 0):
            item = self._raw.popleft()
            raw.append(item)
            budget -= item[1]
        gaps = list(self._gap_blocks)
        self._gap_blocks.clear()
        derived = list(self._derived)
        self._derived.clear()
        self._derived_points = 0
        if not raw and not gaps and not derived:
            return True
        blocks = [b for b, _ in raw] + gaps
        extra = [batch for batch, _ in derived]
        loop = asyncio.get_running_loop()
        write_started = time.perf_counter()
        try:
            # Building the batches concatenates arrays: done in the store thread too.
            await loop.run_in_executor(self._store_executor, self._write_blocks, blocks, extra)
        except Exception as exc:  # StoreError, or anything else: keep the data, retry
            if not isinstance(exc, StoreError):
                logger.exception("unexpected error while writing to the store")
            # Put everything back in front, in order; the backlog bound still applies.
            self._raw.extendleft(reversed(raw))
            self._gap_blocks.extendleft(reversed(gaps))
            self._derived.extendleft(reversed(derived))
            self._derived_points = sum(len(b) for b, _ in self._derived)
            self.store_failures += 1
            if self.store_ok:
                logger.warning("store write failed, retrying: %s", exc)
            self.store_ok = False
            self.store_message = str(exc)
            if self._raw_samples > self.config.max_pending_samples:
                self._drop_oldest_raw()
            return False
        finally:
            self.store_seconds += time.perf_counter() - write_started
        done = time.time()
        if not self.store_ok:
            logger.warning("store writes succeed again")
            self._backlog_warned = False
        self.store_ok = True
        self.store_message = ""
        for block, n_data in raw:
            ledger = self.ledgers[block.stream]
            ledger.stored += n_data
            ledger.pending -= n_data
            self._raw_samples -= n_data
        for _, latency in derived:
            for t_end, newest in latency:
                self.latency_window_end.append(done - t_end)
                if newest > 0:  # rows of the final flush have no triggering block
                    self.latency_arrival.append(done - newest)
        return True

    def _write_blocks(self, blocks: list[SampleBlock], extra: list[SeriesBatch]) -> None:
        """Store thread: turn blocks into batches and write them with the derived ones."""
        batches = blocks_to_batches(
            blocks, participant=self.config.participant, session=self.session_id
        )
        self.store.write([*batches, *extra])

    async def _write_loop(self, stop: asyncio.Event) -> None:
        failures = 0
        while not stop.is_set():
            interval = self.config.flush_interval  # up to 16 intervals while the store fails
            delay = backoff_delay(failures, interval, 16 * interval, jitter=False)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            if stop.is_set():
                return
            ok = await self._write_once()
            # A backlog drains in several writes without waiting a whole interval each.
            while ok and self._raw_samples >= self.config.max_write_samples and not stop.is_set():
                ok = await self._write_once()
            failures = 0 if ok else failures + 1

    async def _final_flush(self) -> None:
        deadline = time.monotonic() + self.config.flush_timeout
        failures = 0
        while True:
            ok = await self._write_once()
            if ok and not self._raw and not self._gap_blocks and not self._derived:
                return
            if time.monotonic() >= deadline:
                logger.error(
                    "store still failing after %.0f s; %d samples not stored: %s",
                    self.config.flush_timeout,
                    self._raw_samples,
                    self.store_message,
                )
                return
            if not ok:
                await asyncio.sleep(backoff_delay(failures, 0.1, 2.0, jitter=False))
                failures += 1

    async def _settle_store(self) -> None:
        """Wait for the store to make the writes durable, then take its loss report."""
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._store_executor, self.store.flush)
        except Exception as exc:  # reported through delivery() below, never raised here
            logger.warning("%s", redact_url(exc))
        try:
            report = self.store.delivery()
        except Exception as exc:
            logger.error("the store cannot say what it stored: %s", redact_url(exc))
            report = DeliveryReport(pending_bytes=-1, pending_where=f"unknown ({redact_url(exc)})")
        self.delivery = report.since(self._delivery_start)

    def losses(self) -> list[str]:
        """One line per kind of data the session did not store (empty when all is stored).

        Returns
        -------
        list of str
        """
        out = []
        unflushed = sum(ledger.unflushed for ledger in self.ledgers.values())
        if unflushed:
            reason = f" ({redact_url(self.store_message)})" if self.store_message else ""
            out.append(f"{unflushed} samples not stored{reason}")
        dropped = sum(ledger.dropped for ledger in self.ledgers.values())
        if dropped:
            out.append(f"{dropped} samples dropped under store back-pressure (kept as gaps)")
        derived = self.derived_dropped_points + sum(len(b) for b, _ in self._derived)
        if derived:
            out.append(f"{derived} feature/estimate/event points not stored")
        out.extend(self.delivery.messages)
        return out

    async def _phase_loop(self, protocol: SessionProtocol) -> None:
        if self.started_at is None:
            raise RuntimeError("the protocol phases run only after the session has started.")
        for start, phase in zip(protocol.starts(), protocol.phases, strict=True):
            wait = self._started_mono + start - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            flag = {"calibration": 1.0} if phase.calibration else None  # valence blocks
            self.mark(
                phase.name,
                kind="phase",
                detail=phase.instruction,
                t=self.started_at + start,
                values=flag,
            )
            logger.info("phase %s: %s", phase.name, phase.instruction)

    # -- run ----------------------------------------------------------------------------

    async def run(
        self,
        source: BlockSource,
        *,
        duration: float | None = None,
        stop: asyncio.Event | None = None,
        on_update: Callable[[LiveSnapshot], None] | None = None,
        update_interval: float = 0.25,
        declare: Mapping[str, str] | None = None,
        span: tuple[float, float] | None = None,
    ) -> dict[str, Any]:
        """Start the source, run until ``duration`` passes or ``stop`` is set, flush, summarise.

        Parameters
        ----------
        source : BlockSource
            Started and stopped here (a :class:`~affectstream.device.supervisor.Supervisor`
            built with ``on_block=session.submit``).
        duration : float, optional
            Seconds to run; forever (until ``stop`` or cancellation) by default.
        stop : asyncio.Event, optional
            Set it to end the session early (e.g. from a Ctrl-C handler).
        on_update : callable, optional
            Called with a :class:`LiveSnapshot` every ``update_interval`` seconds.
        update_interval : float
            Seconds between snapshots.
        declare : mapping, optional
            Stream id → modality expected (see :meth:`declare_streams`); read from the
            supervisor's stream ids when omitted.
        span : tuple of float, optional
            ``(start, stop)`` host times (s since the epoch) stamped on the session's start
            and stop events, ``started_at`` and ``stopped_at`` instead of the wall clock: a
            replay gives the recording's span, so a 2011 recording is not a session ending
            today. Durations, pacing and protocol phases still run on the monotonic clock.

        Returns
        -------
        dict
            The session summary (see :meth:`summary`).
        """
        if span is not None and not span[0] <= span[1]:
            raise ConfigError(f"span must be (start, stop) with start <= stop, got {span!r}.")
        if duration is not None:
            check_positive("duration", duration)
        stop = stop if stop is not None else asyncio.Event()
        self._duration = duration
        self._span = span
        self.started_at = time.time() if span is None else span[0]
        self._started_mono = time.monotonic()
        # The start event's detail holds what a replay needs to reproduce the session
        # (windows, mains, model) as JSON.
        self.mark(
            "start",
            kind="session",
            detail=json.dumps({"participant": self.config.participant, **self.settings()}),
            t=self.started_at,
        )
        estimator_baseline_unset = (
            self.estimator is not None and self.estimator.baseline_end is None
        )
        if self.estimator is not None and estimator_baseline_unset:
            self.estimator.baseline_end = self.started_at + self.baseline_seconds()
        stop_compute = asyncio.Event()
        stop_writer = asyncio.Event()
        writer = asyncio.create_task(self._write_loop(stop_writer), name="session-writer")
        tasks: list[asyncio.Task[None]] = []
        source_started = False
        try:
            await source.start()
            source_started = True
            # Duration and protocol phases count from when the devices stream (connecting
            # to several devices can take seconds).
            self.started_at = time.time() if span is None else span[0]
            self._started_mono = time.monotonic()
            if self.estimator is not None and estimator_baseline_unset:
                self.estimator.baseline_end = self.started_at + self.baseline_seconds()
            self.declare_streams(declare if declare is not None else _declared(source))
            tasks.append(asyncio.create_task(self._compute_loop(stop_compute), name="features"))
            if self.config.protocol is not None:
                tasks.append(asyncio.create_task(self._phase_loop(self.config.protocol)))
            await self._wait(stop, duration, on_update, update_interval)
        finally:
            await self._shutdown(source, source_started, tasks, stop_compute, stop_writer, writer)
        return self.summary(source)

    async def _wait(
        self,
        stop: asyncio.Event,
        duration: float | None,
        on_update: Callable[[LiveSnapshot], None] | None,
        interval: float,
    ) -> None:
        end = None if duration is None else self._started_mono + duration
        while not stop.is_set():
            remaining = math.inf if end is None else end - time.monotonic()
            if remaining <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), min(interval, remaining))
            if on_update is not None:
                on_update(self.snapshot())

    async def _shutdown(
        self,
        source: BlockSource,
        source_started: bool,
        tasks: list[asyncio.Task[None]],
        stop_compute: asyncio.Event,
        stop_writer: asyncio.Event,
        writer: asyncio.Task[None],
    ) -> None:
        """Stop the devices, drain the extractor, write everything; survives cancellation."""
        for task in tasks[1:]:
            task.cancel()
        if source_started:
            try:
                await source.stop()
            except Exception as exc:  # stopping must go on to the flush
                logger.warning("stopping the devices failed: %s", exc)
        self.stopped_at = time.time() if self._span is None else self._span[1]
        stop_compute.set()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if tasks:
            await self._compute_once(final=True)
        self.mark("stop", kind="session", detail=f"{self.n_estimates} estimates", t=self.stopped_at)
        stop_writer.set()
        with contextlib.suppress(asyncio.CancelledError):
            await writer
        await self._final_flush()
        await self._settle_store()
        self._closed = True
        for pool in self._own_executors:
            pool.shutdown(wait=True)

    def settings(self) -> dict[str, Any]:
        """The session's feature and model settings, stored in its ``start`` event's detail.

        Returns
        -------
        dict
            ``window_s``, ``step_s``, ``line_freq`` and ``model`` (the arousal bundle's
            folder or name, ``"none"`` for features only).
        """
        bundles = self.estimator.bundles if self.estimator is not None else []
        model = NO_MODEL
        if bundles:
            path = bundles[0].path
            model = str(path) if path is not None else str(bundles[0].meta.get("name"))
        window = self.config.window
        return {
            "window_s": window.window,
            "step_s": window.step,
            "line_freq": window.line_freq,
            "model": model,
        }

    def baseline_seconds(self) -> float:
        """Length of the reference period from the session start.

        The protocol's ``baseline`` phase, else ``SessionConfig.baseline_seconds``, else the
        arousal bundle's own ``baseline_seconds``, else one window.

        Returns
        -------
        float
        """
        protocol = self.config.protocol
        if protocol is not None and protocol.baseline_end() is not None:
            return float(protocol.baseline_end() or 0.0)
        if self.config.baseline_seconds is not None:
            return float(self.config.baseline_seconds)
        if self.estimator is not None:
            for bundle in self.estimator.bundles:
                seconds = bundle.meta.get("normalization", {}).get("baseline_seconds")
                if seconds:
                    return float(seconds)
        return float(self.config.window.window)

    # -- reporting ----------------------------------------------------------------------

    def snapshot(self) -> LiveSnapshot:
        """The live state for a view.

        Returns
        -------
        LiveSnapshot
        """
        now = time.monotonic()
        streams = []
        feature_streams = set(self._feature_streams.values())
        for stream, ledger in sorted(self.ledgers.items()):
            mark_t, mark_n, rate = self._rate_marks.get(stream, (now, ledger.delivered, 0.0))
            if now - mark_t >= 2.0:  # long enough to span several BLE deliveries
                rate = (ledger.delivered - mark_n) / (now - mark_t)
                self._rate_marks[stream] = (now, ledger.delivered, rate)
            elif stream not in self._rate_marks:
                self._rate_marks[stream] = (now, ledger.delivered, 0.0)
            streams.append(
                StreamView(
                    stream,
                    ledger.modality,
                    rate,
                    ledger.delivered,
                    ledger.gap_samples,
                    ledger.stored,
                    ledger.pending,
                    stream in feature_streams,
                )
            )
        phase = None
        if self.config.protocol is not None and self.started_at is not None:
            phase = self.config.protocol.phase_at(now - self._started_mono)
        return LiveSnapshot(
            session=self.session_id,
            elapsed=now - self._started_mono if self.started_at else 0.0,
            duration=self._duration,
            streams=streams,
            quality=dict(self.latest_quality),
            estimate=self.latest_estimate,
            phase=phase,
            n_feature_rows=self.n_feature_rows,
            n_estimates=self.n_estimates,
            store_ok=self.store_ok,
            store_message=self.store_message,
            backlog_samples=self._raw_samples,
            window=self.config.window,
            model=self.estimator.model_id if self.estimator is not None else "none",
        )

    def summary(self, source: BlockSource | None = None) -> dict[str, Any]:
        """Counts of the session, per stream, with the device layer's own counters.

        Parameters
        ----------
        source : BlockSource, optional
            Adds its per-stream statistics under ``device``.

        Returns
        -------
        dict
            ``session``, ``participant``, ``duration_s``, ``streams`` (ledger plus device
            counters), ``n_feature_rows``, ``n_estimates``, ``n_events``, latencies (p50,
            p99 in seconds), back-pressure counts, store failures and warnings; ``stored``
            is True only when everything reached durable storage, else ``not_stored``
            says what did not (see :meth:`losses`).
        """
        device_stats: Mapping[str, Any] = source.stats() if source is not None else {}
        streams: dict[str, Any] = {}
        for stream in sorted(set(self.ledgers) | set(device_stats)):
            ledger = self.ledgers.get(stream, StreamLedger(stream))
            entry: dict[str, Any] = dict(ledger.as_dict())
            stats = device_stats.get(stream)
            if stats is not None:
                entry["device"] = stats.as_dict() if hasattr(stats, "as_dict") else dict(stats)
            entry["features"] = stream in self._feature_streams.values()
            streams[stream] = entry
        started = self.started_at or time.time()
        stopped = self.stopped_at or time.time()
        window = self.config.window
        return {
            "session": self.session_id,
            "participant": self.config.participant,
            "started": datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds"),
            "duration_s": round(stopped - started, 3),
            "window_s": window.window,
            "step_s": window.step,
            "line_freq": window.line_freq,
            "model": self.estimator.model_id if self.estimator is not None else None,
            "streams": streams,
            "feature_streams": dict(self._feature_streams),
            "n_feature_rows": self.n_feature_rows,
            "n_estimates": self.n_estimates,
            "n_events": self.n_events,
            "latency_window_end_s": _percentiles(list(self.latency_window_end)),
            "latency_arrival_s": _percentiles(list(self.latency_arrival)),
            "delivery_lag_s": _percentiles(list(self.delivery_lag)),
            "backlog_drops": self.backlog_drops,
            "derived_dropped_points": self.derived_dropped_points,
            "store_failures": self.store_failures,
            "unflushed_samples": sum(ledger.unflushed for ledger in self.ledgers.values()),
            "store_rejected_points": self.delivery.rejected_points,
            "store_pending_bytes": self.delivery.pending_bytes,
            "not_stored": self.losses(),
            "stored": not self.losses(),
            "late_blocks": self.late_blocks,
            "unordered_blocks": self.unordered_blocks,
            "compute_s": round(self.compute_seconds, 3),
            "store_write_s": round(self.store_seconds, 3),
            "feature_errors": dict(self.feature_errors),
            "warnings": list(self.warnings),
        }


def _declared(source: BlockSource) -> dict[str, str]:
    """Stream id → modality of a supervisor's streams (known once it has started)."""
    from affectstream.device.profiles import PROFILES

    kinds = {spec.kind: spec.modality for p in PROFILES.values() for spec in p.streams}
    out = {}
    for stream in source.stats():
        kind = str(stream).rsplit("/", 1)[-1]
        if kind in kinds:
            out[str(stream)] = kinds[kind]
    return out


def _gap_only(block: SampleBlock, n_data: int) -> SampleBlock:
    """A zero-row block carrying ``block``'s gaps plus one for its dropped data rows."""
    rows = ~np.all(np.isnan(block.values), axis=1)
    first = int(block.index[rows][0]) if n_data else int(block.index[0])
    t_rows = block.t[rows] if n_data else block.t
    backlog = Gap(block.stream, first, n_data, float(t_rows[0]), float(t_rows[-1]), BACKLOG_REASON)
    return replace(
        block,
        t=np.zeros(0),
        values=np.zeros((0, len(block.channels))),
        index=np.zeros(0, dtype=np.int64),
        gaps=(*block.gaps, backlog),
    )


def _records_batch(records: list[dict[str, Any]], tags: Mapping[str, str]) -> SeriesBatch:
    """Affect records (dicts with ``t_end``) as one ``affect`` batch."""
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
