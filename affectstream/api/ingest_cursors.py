"""Ingest cursors held in memory by the one process that can take a session's ingest.

Without a replica bus (the metadata database is not a shared PostgreSQL) a session's ingest
is accepted only by the process that runs it, and the session ends with that process (a
restart marks it ``interrupted``): nothing else reads or advances its cursors. So they are
kept here and advanced on the event loop by :func:`affectstream.api.ingest.apply_cursor`,
with no database transaction per batch, and written to ``ingest_cursors`` (the durable
record, what ``GET /sessions/{id}`` shows after the session) at most every :data:`FLUSH_S`
seconds and when the session stops. The exactly-once rule is unchanged: every batch of a
session is applied to the same cursor objects, in order (under the session's ingest lock).

With a replica bus any replica may accept a batch, so there the cursors stay in the shared
database (locked per batch; :mod:`affectstream.api.session_ops`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from affectstream.api.db import IngestCursor
from affectstream.api.ingest import new_cursor
from affectstream.types import SampleBlock

logger = logging.getLogger(__name__)

#: Seconds between writes of changed cursors to the database.
FLUSH_S = 1.0

_FIELDS = ("next_seq", "received", "duplicates", "gap_samples")


class LocalCursors:
    """The in-memory cursors of the sessions this process runs (no replica bus).

    Parameters
    ----------
    sessions : sessionmaker
        The metadata database.
    is_live : callable
        Whether a session id still runs here (cursors of ended ones are dropped once
        written).
    """

    def __init__(self, sessions: sessionmaker[Session], is_live: Callable[[str], bool]) -> None:
        self._sessions = sessions
        self._is_live = is_live
        self._cursors: dict[str, dict[str, IngestCursor]] = {}
        self._dirty: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        # One write at a time: the copy and the store of a write happen under it, so an
        # older copy can never commit after a newer one.
        self._lock = asyncio.Lock()

    async def get(self, session_id: str, blocks: Sequence[SampleBlock]) -> dict[str, IngestCursor]:
        """The cursors of every stream in ``blocks``: loaded once, made if new.

        A stream seen for the first time starts at its first block's sequence number.
        Event loop only, under the session's ingest lock.

        Returns
        -------
        dict of str to IngestCursor
            Detached objects (not in a database session), updated in place.
        """
        known = self._cursors.setdefault(session_id, {})
        missing = sorted({b.stream for b in blocks} - known.keys())
        if missing:
            known.update(await asyncio.to_thread(self._load, session_id, missing))
            for block in blocks:
                if block.stream not in known:
                    known[block.stream] = new_cursor(session_id, block.stream)
        return known

    def _load(self, session_id: str, streams: list[str]) -> dict[str, IngestCursor]:
        """Worker thread: stored cursors of ``streams`` as detached copies."""
        with self._sessions() as db:
            rows = db.scalars(
                select(IngestCursor).where(
                    IngestCursor.session_id == session_id, IngestCursor.stream.in_(streams)
                )
            ).all()
            return {
                r.stream: IngestCursor(
                    session_id=session_id,
                    stream=r.stream,
                    **{name: getattr(r, name) for name in _FIELDS},
                )
                for r in rows
            }

    def state(self, session_id: str) -> dict[str, dict[str, int]] | None:
        """The cursors of ``session_id`` as ``GET /sessions/{id}`` shows them; None if none.

        Returns
        -------
        dict or None
        """
        cursors = self._cursors.get(session_id)
        if not cursors:
            return None
        return {s: {name: int(getattr(c, name)) for name in _FIELDS} for s, c in cursors.items()}

    def changed(self, session_id: str) -> None:
        """Note that a batch advanced ``session_id``'s cursors (written within FLUSH_S)."""
        self._dirty.add(session_id)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._later())

    async def _later(self) -> None:
        # Runs while anything is unwritten: a batch that arrives during a write, or a write
        # that failed, is written within the next FLUSH_S.
        while self._dirty:
            await asyncio.sleep(FLUSH_S)
            await self._write(set(self._dirty))

    async def flush(self, session_id: str) -> None:
        """Write ``session_id``'s cursors now (its session stopped) and forget them if ended.

        Parameters
        ----------
        session_id : str
        """
        await self._write({session_id})

    async def close(self) -> None:
        """Write every changed cursor (service shutdown)."""
        async with self._lock:  # cancelled while sleeping, never inside a write
            if self._task is not None:
                self._task.cancel()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._write(set(self._dirty))

    async def _write(self, session_ids: set[str]) -> None:
        async with self._lock:
            await self._write_locked(session_ids)

    async def _write_locked(self, session_ids: set[str]) -> None:
        due = self._dirty & session_ids
        # The values are copied on the event loop (where batches change them), then written.
        rows = [
            (sid, stream, tuple(int(getattr(c, name)) for name in _FIELDS))
            for sid in sorted(due)
            for stream, c in self._cursors.get(sid, {}).items()
        ]
        self._dirty -= due
        if rows:
            try:
                await asyncio.to_thread(self._store, rows)
            except Exception:  # kept dirty: written with the next flush
                logger.exception("ingest cursors of %s not written; retrying", sorted(due))
                self._dirty |= due
                return
        for sid in session_ids:
            if not self._is_live(sid) and sid not in self._dirty:
                self._cursors.pop(sid, None)

    def _store(self, rows: list[tuple[str, str, tuple[int, ...]]]) -> None:
        """Worker thread: upsert the cursors (one transaction)."""
        with self._sessions() as db:
            for sid, stream, values in rows:
                db.merge(
                    IngestCursor(
                        session_id=sid, stream=stream, **dict(zip(_FIELDS, values, strict=True))
                    )
                )
            db.commit()
