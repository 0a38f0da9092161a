"""The store side of a live session: raw and derived backlogs, writes, retries, losses.

A :class:`StoreWriter` owns everything waiting for the store. The event loop appends
(:meth:`StoreWriter.add_raw`, :meth:`StoreWriter.add_derived`) and never waits; a writer
task hands what is waiting to a store thread every ``flush_interval``. Back-pressure is
explicit and counted per stream (:class:`~affectstream.runtime.accounting.StreamLedger`):
when more than ``max_pending_samples`` raw samples wait, the oldest blocks are dropped and
written as ``"store_backlog"`` gap events instead, so they stay accounted for. A failed
write puts everything back in front, in order, and is retried with backoff; nothing is lost
while the backlog bound holds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Mapping
from concurrent.futures import Executor
from dataclasses import replace

import numpy as np

from affectstream.backoff import backoff_delay
from affectstream.errors import StoreError
from affectstream.redact import redact_url
from affectstream.runtime.accounting import BACKLOG_REASON, StreamLedger
from affectstream.runtime.session_config import SessionConfig
from affectstream.store import DeliveryReport, SeriesBatch, TimeSeriesStore, blocks_to_batches
from affectstream.types import Gap, SampleBlock

logger = logging.getLogger(__name__)

#: Latest windows whose latencies the summary percentiles cover.
LATENCY_KEPT = 20_000

#: A derived batch and the ``(window end, newest block arrival)`` pairs of its estimates.
Derived = tuple[SeriesBatch, list[tuple[float, float]]]


class StoreWriter:
    """Everything of one session that waits for the store, and the writes that drain it.

    Parameters
    ----------
    store : TimeSeriesStore
        Where everything goes (not closed here).
    config : SessionConfig
        Flush interval, backlog bounds and the final flush timeout.
    ledgers : dict of str to StreamLedger
        The session's per-stream ledgers (shared: the writer counts stored/dropped rows).
    session_id : str
        The ``session`` tag of raw batches.
    executor : concurrent.futures.Executor
        The store thread.
    """

    def __init__(
        self,
        store: TimeSeriesStore,
        config: SessionConfig,
        ledgers: dict[str, StreamLedger],
        session_id: str,
        executor: Executor,
    ) -> None:
        self.store = store
        self.config = config
        self.ledgers = ledgers
        self.session_id = session_id
        self._executor = executor
        self.raw: deque[tuple[SampleBlock, int]] = deque()
        self.raw_samples = 0  # waiting or in flight
        self._gap_blocks: deque[SampleBlock] = deque()
        self._derived: deque[Derived] = deque()
        self._derived_points = 0
        self.store_failures = 0
        self.store_ok = True
        self.store_message = ""
        self.backlog_drops = 0
        self.derived_dropped_points = 0
        self.store_seconds = 0.0  # wall time of store writes
        # Latest windows only: an unbounded session must not grow with its length.
        self.latency_window_end: deque[float] = deque(maxlen=LATENCY_KEPT)
        self.latency_arrival: deque[float] = deque(maxlen=LATENCY_KEPT)
        self._backlog_warned = False
        self._wake = asyncio.Event()  # set when an estimate waits: write before the tick
        # Losses inside the store (points it refused, bytes only spooled) count from here.
        self._delivery_start = store.delivery()
        self.delivery = DeliveryReport()

    # -- event loop: enqueue, never wait ---------------------------------------------------

    def add_raw(self, block: SampleBlock, n_data: int) -> None:
        """Queue a delivered block (``n_data`` data rows) for the store."""
        self.raw.append((block, n_data))
        self.raw_samples += n_data
        if self.raw_samples > self.config.max_pending_samples:
            self._drop_oldest_raw()

    def add_derived(self, batch: SeriesBatch, latency: list[tuple[float, float]]) -> None:
        """Queue a features/quality/affect/events batch; the oldest go past the bound."""
        if len(batch) == 0:
            return
        self._derived.append((batch, latency))
        self._derived_points += len(batch)
        if latency:
            # An estimate is written now, not at the next flush tick: it is what live
            # feedback waits for (window end -> stored estimate, docs/runtime.md).
            self._wake.set()
        while self._derived_points > self.config.max_pending_points and len(self._derived) > 1:
            old, _ = self._derived.popleft()
            self._derived_points -= len(old)
            self.derived_dropped_points += len(old)
            logger.warning("derived backlog full: %d points dropped", len(old))

    def _drop_oldest_raw(self) -> None:
        """Back-pressure: turn the oldest waiting blocks into ``store_backlog`` gaps."""
        while self.raw_samples > self.config.max_pending_samples and self.raw:
            block, n_data = self.raw.popleft()
            self.raw_samples -= n_data
            ledger = self.ledgers[block.stream]
            ledger.pending -= n_data
            ledger.dropped += n_data
            self.backlog_drops += 1
            self._gap_blocks.append(gap_only(block, n_data))
        if not self._backlog_warned:  # once per outage, not once per block
            self._backlog_warned = True
            logger.warning(
                "store backlog above %d samples: the oldest samples become gap events",
                self.config.max_pending_samples,
            )

    @property
    def empty(self) -> bool:
        """Nothing waits for the store."""
        return not self.raw and not self._gap_blocks and not self._derived

    # -- writes ----------------------------------------------------------------------------

    async def write_once(self) -> bool:
        """Write what is waiting; False if the store refused (everything is kept).

        Returns
        -------
        bool
        """
        raw: list[tuple[SampleBlock, int]] = []
        budget = self.config.max_write_samples
        while self.raw and (not raw or budget > 0):
            item = self.raw.popleft()
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
            await loop.run_in_executor(self._executor, self._write_blocks, blocks, extra)
        except Exception as exc:  # any failure keeps the data for a retry (see below)
            # Retrying is safe for every error (the data is kept in order and the backlog
            # bound applies), but only a StoreError is expected: anything else is a bug,
            # logged with its traceback so it is not mistaken for an outage.
            if not isinstance(exc, StoreError):
                logger.exception("unexpected error while writing to the store")
            self.raw.extendleft(reversed(raw))
            self._gap_blocks.extendleft(reversed(gaps))
            self._derived.extendleft(reversed(derived))
            self._derived_points = sum(len(b) for b, _ in self._derived)
            self.store_failures += 1
            if self.store_ok:
                logger.warning("store write failed, retrying: %s", exc)
            self.store_ok = False
            self.store_message = str(exc)
            if self.raw_samples > self.config.max_pending_samples:
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
            self.raw_samples -= n_data
        for _, latency in derived:
            for t_end, newest in latency:
                self.latency_window_end.append(done - t_end)
                if newest > 0:  # rows of the final flush have no triggering block
                    self.latency_arrival.append(done - newest)
        return True

    def _write_blocks(self, blocks: list[SampleBlock], extra: list[SeriesBatch]) -> None:
        """Store thread: turn blocks into batches and write them with the derived ones."""
        participant = self.config.participant
        batches = blocks_to_batches(blocks, participant=participant, session=self.session_id)
        self.store.write([*batches, *extra])

    async def write_loop(self, stop: asyncio.Event) -> None:
        """Write every ``flush_interval`` (backing off while the store fails) until ``stop``.

        New estimates are written at once rather than at the next interval, unless the
        store is failing (then the backoff holds).
        """
        failures = 0
        while not stop.is_set():
            interval = self.config.flush_interval  # up to 16 intervals while the store fails
            delay = backoff_delay(failures, interval, 16 * interval, jitter=False)
            await self._sleep(stop, delay, wake=failures == 0)
            if stop.is_set():
                return
            ok = await self.write_once()
            # A backlog drains in several writes without waiting a whole interval each.
            while ok and self.raw_samples >= self.config.max_write_samples and not stop.is_set():
                ok = await self.write_once()
            failures = 0 if ok else failures + 1

    async def _sleep(self, stop: asyncio.Event, delay: float, *, wake: bool) -> None:
        """Wait ``delay`` s, or less when ``stop`` is set (or an estimate waits and ``wake``)."""
        waits = [asyncio.ensure_future(stop.wait())]
        if wake:
            waits.append(asyncio.ensure_future(self._wake.wait()))
        try:
            await asyncio.wait(waits, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()
        self._wake.clear()

    async def final_flush(self) -> None:
        """Write everything left, retrying an unavailable store up to ``flush_timeout``."""
        deadline = time.monotonic() + self.config.flush_timeout
        failures = 0
        while True:
            ok = await self.write_once()
            if ok and self.empty:
                return
            if time.monotonic() >= deadline:
                logger.error(
                    "store still failing after %.0f s; %d samples not stored: %s",
                    self.config.flush_timeout,
                    self.raw_samples,
                    self.store_message,
                )
                return
            if not ok:
                await asyncio.sleep(backoff_delay(failures, 0.1, 2.0, jitter=False))
                failures += 1

    async def settle(self) -> None:
        """Wait for the store to make the writes durable, then take its loss report."""
        loop = asyncio.get_running_loop()
        # Any failure here (a driver's own error type included) must end as a reported loss
        # in the summary, never as a session that ends without one; unexpected types are
        # logged with their traceback so a bug is still visible.
        try:
            await loop.run_in_executor(self._executor, self.store.flush)
        except Exception as exc:  # reported through delivery() below
            _log_store_failure(exc, "the final store flush failed", logging.WARNING)
        try:
            report = self.store.delivery()
        except Exception as exc:  # the summary says "unknown" rather than claiming success
            _log_store_failure(exc, "the store cannot say what it stored", logging.ERROR)
            report = DeliveryReport(pending_bytes=-1, pending_where=f"unknown ({redact_url(exc)})")
        self.delivery = report.since(self._delivery_start)

    def losses(self) -> list[str]:
        """One line per kind of data not stored (empty when all is stored).

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

    def counters(self) -> Mapping[str, int]:
        """The writer's counters for a session summary.

        Returns
        -------
        dict of str to int
        """
        return {
            "backlog_drops": self.backlog_drops,
            "derived_dropped_points": self.derived_dropped_points,
            "store_failures": self.store_failures,
            "unflushed_samples": sum(ledger.unflushed for ledger in self.ledgers.values()),
            "store_rejected_points": self.delivery.rejected_points,
            "store_pending_bytes": self.delivery.pending_bytes,
        }


def _log_store_failure(exc: Exception, what: str, level: int) -> None:
    """Log a store failure in one line; an unexpected type is named, so a bug stands out.

    No traceback: a driver's exception may carry the store URL with its credentials, and
    only the message passes through :func:`~affectstream.redact.redact_url`.
    """
    if isinstance(exc, StoreError | OSError):
        logger.log(level, "%s: %s", what, redact_url(exc))
    else:
        logger.log(level, "%s (unexpected %s): %s", what, type(exc).__name__, redact_url(exc))


def gap_only(block: SampleBlock, n_data: int) -> SampleBlock:
    """A zero-row block carrying ``block``'s gaps plus one for its dropped data rows.

    Parameters
    ----------
    block : SampleBlock
        A block dropped under back-pressure.
    n_data : int
        Its data rows.

    Returns
    -------
    SampleBlock
    """
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
