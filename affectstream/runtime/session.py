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

This module runs the session (input, events, lifecycle). The store side is
:mod:`~affectstream.runtime.session_writer`, the feature side
:mod:`~affectstream.runtime.session_compute`, reporting :mod:`~affectstream.runtime.snapshot`
and settings :mod:`~affectstream.runtime.session_config`. It is over 400 lines because
:class:`LiveSession` keeps read-only properties for the counters that moved to the writer
and the worker, so its public API did not change.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any, Protocol

import pandas as pd

from affectstream._validate import check_positive
from affectstream.errors import ConfigError
from affectstream.runtime.accounting import OrderCheck, StreamLedger, data_rows
from affectstream.runtime.devices import DeviceTracker, declared_streams
from affectstream.runtime.estimator import NO_MODEL, LiveEstimator
from affectstream.runtime.memory import MemoryKeeper
from affectstream.runtime.multiwindow import MultiWindowExtractor
from affectstream.runtime.protocol import StudyProtocol
from affectstream.runtime.recent import RecentTraces
from affectstream.runtime.reference import default_reference
from affectstream.runtime.session_compute import ComputeResult, FeatureWorker
from affectstream.runtime.session_compute import records_batch as _records_batch
from affectstream.runtime.session_config import DEFAULT_SOURCES, SessionConfig, new_session_id
from affectstream.runtime.session_writer import StoreWriter
from affectstream.runtime.snapshot import (
    LiveSnapshot,
    RateMeter,
    StreamView,
    build_summary,
    take_snapshot,
)
from affectstream.signal import StreamingExtractor
from affectstream.store import DeliveryReport, TimeSeriesStore, event_batch
from affectstream.types import SampleBlock

logger = logging.getLogger(__name__)

# Re-exported: these lived here before the session was split into modules.
__all__ = [
    "DEFAULT_SOURCES",
    "BlockSource",
    "LiveSession",
    "LiveSnapshot",
    "SessionConfig",
    "StreamView",
    "_records_batch",
    "new_session_id",
]


class BlockSource(Protocol):
    """What the runtime needs from a device layer (the connection supervisor fits)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def stats(self) -> Mapping[str, Any]: ...


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
        self.config = config if config is not None else SessionConfig()
        self.session_id = self.config.session_id or new_session_id(self.config.participant)
        self.estimator = estimator
        self._own_executors: list[ThreadPoolExecutor] = []
        self._executor = executor or self._private_executor("affectstream-compute")
        store_executor = store_executor or self._private_executor("affectstream-store")
        self.tags = {"participant": self.config.participant, "session": self.session_id}
        self.ledgers: dict[str, StreamLedger] = {}
        #: The store side: backlogs, writes, retries and what was not stored.
        self.writer = StoreWriter(store, self.config, self.ledgers, self.session_id, store_executor)
        #: The feature side: source choice, compute backlog, extractor and models.
        self.worker = FeatureWorker(self.config, estimator, self.tags)
        #: The block source of the running session (set by :meth:`run`), for device state.
        self.source: BlockSource | None = None
        #: What the runtime sees of each device (see :func:`~.devices.device_states`).
        self.devices = DeviceTracker()
        #: The last seconds of each modality's first channel, for live traces.
        self.recent = RecentTraces()
        #: Set once the devices stream (after ``source.start()``): fault schedules and
        #: anything timed from the session start wait for it.
        self.streaming = asyncio.Event()
        #: Blocks whose times did not strictly increase (counted and logged, see OrderCheck).
        self.order = OrderCheck()
        self._last_mark_t = 0.0
        self.started_at: float | None = None
        self._started_mono = 0.0
        self.duration: float | None = None
        self._span: tuple[float, float] | None = None
        self.stopped_at: float | None = None
        self.n_feature_rows = 0
        self.n_estimates = 0
        self.n_events = 0
        self.latest_estimate: dict[str, Any] | None = None
        self.latest_quality: dict[str, float] = {}
        self.feature_errors: dict[str, str] = {}
        self.warnings: list[str] = []
        # Why the reference period is what it is, when a caller set the estimator's
        # baseline_end itself (a replay of a session with a baseline phase).
        self.reference_basis: str | None = None
        self._rates = RateMeter()
        self._closed = False
        self.late_blocks = 0
        self.delivery_lag: deque[float] = deque(maxlen=20_000)
        #: Gives allocator retention back once a minute in the compute worker, so bursts do
        #: not raise RSS for good (see :mod:`~affectstream.runtime.memory`).
        self.memory = MemoryKeeper()
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

    def _private_executor(self, name: str) -> ThreadPoolExecutor:
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._own_executors.append(pool)
        return pool

    # -- what other parts read (kept from before the split into modules) ------------------

    @property
    def unordered_blocks(self) -> int:
        """Blocks whose times did not strictly increase (see :class:`OrderCheck`)."""
        return self.order.unordered_blocks

    @property
    def extractor(self) -> StreamingExtractor | MultiWindowExtractor:
        """The session's extractor (one per model window length, see multiwindow.py)."""
        return self.worker.extractor

    @property
    def feature_streams(self) -> dict[str, str]:
        """Feature family → the stream that feeds it."""
        return self.worker.feature_streams

    @property
    def store_ok(self) -> bool:
        """False while store writes fail."""
        return self.writer.store_ok

    @property
    def store_message(self) -> str:
        """The last store error ("" while writes succeed)."""
        return self.writer.store_message

    @property
    def store_failures(self) -> int:
        """Failed store writes so far."""
        return self.writer.store_failures

    @property
    def backlog_drops(self) -> int:
        """Blocks dropped under store back-pressure (kept as gap events)."""
        return self.writer.backlog_drops

    @property
    def derived_dropped_points(self) -> int:
        """Derived points dropped because their backlog was full."""
        return self.writer.derived_dropped_points

    @property
    def latency_window_end(self) -> deque[float]:
        """Seconds from window end to stored estimate, latest windows."""
        return self.writer.latency_window_end

    @property
    def latency_arrival(self) -> deque[float]:
        """Seconds from the triggering block's arrival to stored estimate, latest windows."""
        return self.writer.latency_arrival

    @property
    def delivery(self) -> DeliveryReport:
        """The store's own loss report for this session (after the session ends)."""
        return self.writer.delivery

    @property
    def compute_seconds(self) -> float:
        """Worker time in features and models."""
        return self.worker.compute_seconds

    @property
    def store_seconds(self) -> float:
        """Wall time of store writes."""
        return self.writer.store_seconds

    # -- input (event loop thread, never waits) -----------------------------------------

    def declare_streams(
        self,
        streams: Mapping[str, str],
        first_blocks: Mapping[str, SampleBlock] | None = None,
        whole: bool = False,
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
        whole : bool
            ``first_blocks`` hold each stream's whole recording (replay): after each block
            the extractor learns where the stream's next sample is, so rows go on in data
            time after a stream ends early and through its gaps
            (:meth:`~affectstream.signal.StreamingExtractor.expect`).
        """
        self.worker.declare_streams(streams, first_blocks, whole)

    def submit(self, block: SampleBlock) -> None:
        """Take one block from the device layer; never blocks (safe in a BLE callback).

        Parameters
        ----------
        block : SampleBlock
            Clock-corrected samples of one stream, gaps as NaN rows plus annotations.
        """
        self.order.check(block)
        if len(block):
            # How late the block arrives after its last sample's (clock-model) time.
            self.delivery_lag.append(time.time() - float(block.t[-1]))
        ledger = self.ledgers.get(block.stream)
        if ledger is None:
            ledger = self.ledgers[block.stream] = StreamLedger(block.stream, block.modality)
        n_data = data_rows(block)
        ledger.on_block(block, n_data)
        self.devices.on_block(block)
        self.recent.on_block(block)
        if self._closed:
            # Arrived after the final flush: counted as unflushed, never silently lost.
            self.late_blocks += 1
            return
        self.writer.add_raw(block, n_data)
        self.worker.offer(block, ledger, n_data)

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
        batch = event_batch(self.tags, when, kind, label, detail, values)
        self.writer.add_derived(batch, [])
        self.n_events += 1
        self._notify("event", {"t": when, "kind": kind, "label": label, "detail": detail})

    def _notify(self, what: str, payload: Mapping[str, Any]) -> None:
        for listener in list(self.listeners):
            try:
                listener(what, payload)
            except Exception:  # a listener is outside code: it must not stop the session
                logger.exception("session listener failed on %s", what)

    # -- features and models ------------------------------------------------------------

    async def _compute_once(self, final: bool = False) -> None:
        items = self.worker.take()
        if not items and not final:
            return
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(self._executor, self.worker.compute, items, final)
        except Exception as exc:  # a bug must not stop the session or its final flush
            # Expected failures (SignalError, model errors) come back in result.errors; this
            # is a bug, logged once with its traceback and reported in feature_errors.
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
            if self.memory.due():  # in the worker: its pyarrow pages are freed per thread
                await asyncio.get_running_loop().run_in_executor(
                    self._executor, self.memory.maybe_release
                )

    def _take_rows(self, result: ComputeResult) -> None:
        """Event loop: queue the worker's batches for the store and update the live state."""
        if not len(result.rows):
            return
        self.n_feature_rows += len(result.rows)
        for batch, latency in result.batches:
            self.writer.add_derived(batch, latency)
        for row_listener in list(self.row_listeners):
            try:
                row_listener(result.rows)
            except Exception:  # a listener is outside code: it must not stop the session
                logger.exception("session row listener failed")
        if result.quality:
            self.latest_quality = result.quality
        if result.records:
            self.n_estimates += len(result.records)
            self.latest_estimate = result.records[-1]
            for record in result.records:
                self._notify("estimate", record)

    async def _phase_loop(self, protocol: StudyProtocol) -> None:
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
        self.duration = duration
        self._span = span
        self.source = source
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
        writer = asyncio.create_task(self.writer.write_loop(stop_writer), name="session-writer")
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
            self.declare_streams(declare if declare is not None else declared_streams(source))
            self.streaming.set()
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
            except Exception as exc:  # any source's failure to stop must not skip the flush
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
        await self.writer.final_flush()
        await self.writer.settle()
        self._closed = True
        for pool in self._own_executors:
            pool.shutdown(wait=True)

    def settings(self) -> dict[str, Any]:
        """The session's feature and model settings, stored in its ``start`` event's detail.

        Returns
        -------
        dict
            ``window_s``, ``step_s``, ``line_freq``, ``model`` (the first arousal bundle's
            folder or name, ``"none"`` for features only) and ``models`` (every bundle's, so
            a replay runs the same set), ``own_windows`` (whether each read the windows it
            was trained on, :attr:`LiveEstimator.own_windows`; True without a model, as a
            session that asked for no window), so a replay reads the same windows.
        """
        bundles = self.estimator.bundles if self.estimator is not None else []
        models = [str(b.path) if b.path is not None else str(b.meta.get("name")) for b in bundles]
        model = models[0] if models else NO_MODEL
        window = self.config.window
        return {
            "models": models,
            "window_s": window.window,
            "step_s": window.step,
            "line_freq": window.line_freq,
            "model": model,
            "own_windows": self.estimator.own_windows if self.estimator is not None else True,
        }

    def reference_period(self) -> tuple[float, str]:
        """Length of the participant's reference period from the session start, and its source.

        The protocol's ``baseline`` phase, else ``SessionConfig.baseline_seconds``, else
        long enough for every model of the session
        (:func:`~affectstream.runtime.reference.default_reference`: each model's own
        setting or its reference's need, the longest), else one window.

        Returns
        -------
        seconds : float
        why : str
            In words, e.g. ``"the protocol's baseline phase"``.
        """
        protocol = self.config.protocol
        if protocol is not None and protocol.baseline_end() is not None:
            return float(protocol.baseline_end() or 0.0), "the protocol's baseline phase"
        if self.config.baseline_seconds is not None:
            return float(self.config.baseline_seconds), "set for this session"
        if self.estimator is not None:
            # Each bundle's need on the windows it reads: its own when the estimator gives
            # each model its own (it has a session window), else the session's.
            found = default_reference(
                self.estimator.bundles,
                self.config.window,
                own_windows=self.estimator.own_windows,
            )
            if found is not None:
                return found
        return float(self.config.window.window), "one window: no model asks for more"

    def baseline_seconds(self) -> float:
        """Length of the reference period from the session start (:meth:`reference_period`).

        Returns
        -------
        float
        """
        return self.reference_period()[0]

    def reference_in_use(self) -> tuple[float, str] | None:
        """The reference period the estimates use: seconds from the start, and why.

        The estimator's ``baseline_end`` as set (a replay passes a recorded session's
        baseline phase, :attr:`reference_basis` says so), else :meth:`reference_period`.

        Returns
        -------
        tuple of (float, str) or None
            None without arousal models (nothing is normalised; a personal valence model
            alone needs no reference).
        """
        if self.estimator is None or not self.estimator.bundles:
            return None
        seconds, why = self.reference_period()
        end = self.estimator.baseline_end
        if (
            end is not None
            and self.started_at is not None
            and abs(end - self.started_at - seconds) > 1e-6
        ):
            seconds, why = end - self.started_at, self.reference_basis or "set by the caller"
        return seconds, why

    # -- reporting ----------------------------------------------------------------------

    def elapsed(self) -> float:
        """Seconds since the devices started streaming (0 before the session runs).

        Returns
        -------
        float
        """
        return time.monotonic() - self._started_mono if self.started_at else 0.0

    def snapshot(self) -> LiveSnapshot:
        """The live state for a view.

        Returns
        -------
        LiveSnapshot
        """
        return take_snapshot(self, self._rates)

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
        return build_summary(self, source)

    def losses(self) -> list[str]:
        """One line per kind of data the session did not store (empty when all is stored).

        Returns
        -------
        list of str
        """
        return self.writer.losses()
