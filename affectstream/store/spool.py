"""A durable local spool: every point bound for a server is on disk before it is sent.

Layout of a spool directory::

    0000000000000001.seg  0000000000000002.seg ...   append-only segment files
    cursor                                            first unacknowledged record
    lock                                              flock: one process per spool
    rejected/                                         records the server refused (400)
    corrupt/                                          bytes that failed their checksum

Records (framing and checksum) and the files themselves are defined in
:mod:`affectstream.store.spool_segments`; this module is the queue on top: appends,
bounds, the cursor and replay. A record's payload is line protocol (newline-terminated
lines). The cursor file holds
``<segment id> <byte offset>`` of the first record the server has not acknowledged; it is
replaced atomically (write a temporary file, fsync, rename, fsync the directory) after every
acknowledged send, and segments wholly before it are deleted.

Durability (the ``fsync`` parameter):

- ``"always"`` (default): :meth:`Spool.append` fsyncs the segment before it returns, so a
  record it accepted survives a process kill *and* a power loss or kernel crash.
- ``"os"``: the record is written to the operating system (survives ``kill -9`` of the
  process, not a power loss); faster on slow disks.

Recovery on open: records after the cursor are checked. A record cut short at the very end
of the last segment (a crash in the middle of an append, which therefore never returned) is
truncated away with a warning. A record whose checksum fails anywhere else is moved to
``corrupt/`` with an error log and the following records are kept.

Bounds: the spool's segment files never exceed ``max_bytes`` (acknowledged records still in
the oldest segment count until it is deleted, which happens as soon as the sender passes
it). Warnings are logged when it passes 50 %, 80 % and 95 % full. When a record does not
fit, ``on_full="block"`` (default) makes :meth:`Spool.append` wait up to
``full_timeout`` seconds for the sender to free space (back-pressure), then raise
:class:`SpoolFullError`; ``on_full="raise"`` raises at once. Either way the record was not
taken and the caller still holds it: nothing is dropped silently.

Size: ~650 lines, one job (the queue's state under one lock and condition: appends
with their bounds and undo, the cursor, replay, reclaiming space); the file format and
the recovery scan are in :mod:`affectstream.store.spool_segments`.

A replayed record may reach the server twice (a crash between the server's
acknowledgement and the cursor update); stores with last-write-wins points (InfluxDB) keep
one copy.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
from pathlib import Path
from typing import BinaryIO, Literal

from affectstream._validate import check_option, check_positive
from affectstream.errors import StoreError, StoreUnavailableError
from affectstream.store.spool_segments import (
    HEADER,
    HEADER_SIZE,
    PUNCH_ALIGN,
    Position,
    SpoolBatch,
    check_segment,
    encode_record,
    fsync_directory,
    punch_hole,
    quarantine,
    read_cursor,
    read_record,
    segment_name,
    segment_size,
    segments_on_disk,
    space_hint,
    write_cursor,
)

__all__ = [
    "HEADER_SIZE",
    "FsyncPolicy",
    "FullPolicy",
    "Position",
    "Spool",
    "SpoolBatch",
    "SpoolFullError",
    "encode_record",
]

logger = logging.getLogger(__name__)

_WARN_FRACTIONS = (0.5, 0.8, 0.95)
_READ_WINDOW = 4 << 20
_PUNCH_MIN = 64 << 10  # reclaim in steps of at least this much

FsyncPolicy = Literal["always", "os"]
FullPolicy = Literal["block", "raise"]


class SpoolFullError(StoreUnavailableError):
    """The spool reached its size bound; the record was not taken (the caller still has it)."""


class Spool:
    """Append-only, checksummed, size-bounded on-disk queue with a persisted read cursor.

    One writer thread pool (any number of threads calling :meth:`append`) and one reader
    (the sender thread calling :meth:`read_batch` then :meth:`ack`). See the module
    docstring for the file format, the fsync policy and the behaviour when full.

    Parameters
    ----------
    directory : str or Path
        Spool directory (created if needed). Only one process may use it at a time.
    max_bytes : int
        Upper bound on the spool's files, in bytes.
    segment_bytes : int
        Size at which a new segment file is started.
    fsync : {"always", "os"}
        When appended records reach the disk (see module docstring).
    on_full : {"block", "raise"}
        What :meth:`append` does when a record does not fit.
    full_timeout : float
        Seconds :meth:`append` waits for space when ``on_full="block"``.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        max_bytes: int = 1 << 30,
        segment_bytes: int = 16 << 20,
        fsync: FsyncPolicy = "always",
        on_full: FullPolicy = "block",
        full_timeout: float = 30.0,
    ) -> None:
        check_positive("max_bytes", max_bytes)
        check_positive("segment_bytes", segment_bytes)
        check_option("fsync", fsync, ("always", "os"))
        check_option("on_full", on_full, ("block", "raise"))
        check_positive("full_timeout", full_timeout, allow_zero=True)
        self.directory = Path(directory)
        self.max_bytes = int(max_bytes)
        self.segment_bytes = int(segment_bytes)
        self.fsync = fsync
        self.on_full = on_full
        self.full_timeout = float(full_timeout)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._closed = False
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"Cannot create the spool directory {self.directory} ({exc}); "
                "choose a writable spool_dir (or AFFECTSTREAM_SPOOL_DIR)."
            ) from exc
        self._sizes: dict[int, int] = {}
        self._cursor = Position(1, 0)
        self._write_fd: int | None = None
        self._read_cache: tuple[int, int, bytes] | None = None
        self._warned_level = 0
        self._reclaimed = 0  # bytes at the start of the cursor's segment given back
        self._cursor_saved = True
        #: Damaged records (and cut-short tails) moved to ``corrupt/`` since opening.
        self.corrupt_records = 0
        self._lock_file = self._acquire_lock()
        try:
            self._recover()
        except OSError as exc:
            self._lock_file.close()
            raise StoreError(
                f"Cannot open the spool {self.directory} ({exc.strerror or exc}); "
                f"{space_hint(exc)} Unsent data already in it stays there."
            ) from None

    # -- opening -------------------------------------------------------------------

    def _acquire_lock(self) -> BinaryIO:
        try:
            # Unbuffered: a pid that could not be written (full disk) is not retried at close.
            handle = open(self.directory / "lock", "a+b", buffering=0)  # noqa: SIM115
        except OSError as exc:
            raise StoreError(
                f"Cannot open the spool {self.directory} ({exc.strerror or exc}); {space_hint(exc)}"
            ) from None
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            owner = handle.read().decode(errors="replace").strip() or "another process"
            handle.close()
            raise StoreError(
                f"The spool {self.directory} is in use by pid {owner}: one process per "
                "spool; give this store another spool_dir or stop the other writer."
            ) from None
        try:  # the owner's pid, for the message above; not needed to lock
            handle.seek(0)
            handle.truncate()
            handle.write(str(os.getpid()).encode())
            handle.flush()
        except OSError as exc:
            logger.debug("spool lock file: pid not written (%s)", exc)
        return handle

    def _recover(self) -> None:
        segments = segments_on_disk(self.directory)
        cursor = read_cursor(self.directory)
        if not segments:
            start = cursor.segment if cursor else 1
            self._cursor = Position(start, 0)
            self._sizes = {start: 0}
            self._open_for_append(start)
            return
        if cursor is None or cursor.segment < segments[0] or cursor.segment not in segments:
            later = [s for s in segments if cursor is None or s >= cursor.segment]
            cursor = Position(later[0] if later else segments[-1] + 1, 0)
        for segment in segments:
            if segment < cursor.segment:
                (self.directory / segment_name(segment)).unlink()
        size = segment_size(self.directory, cursor.segment)
        if cursor.offset > size:
            logger.error(
                "Spool cursor %s points past the end of its segment (%d bytes): the segment "
                "was truncated outside affectstream; continuing from its end.",
                cursor,
                size,
            )
            cursor = Position(cursor.segment, size)
        self._cursor = cursor
        kept = [s for s in segments if s >= cursor.segment]
        for segment in kept:
            self.corrupt_records += check_segment(
                self.directory,
                segment,
                cursor.offset if segment == cursor.segment else 0,
                last=segment == kept[-1],
            )
        if not kept:
            kept = [cursor.segment]
        self._sizes = {s: segment_size(self.directory, s) for s in kept}
        self._open_for_append(kept[-1])
        pending = self.pending_bytes
        if pending:
            logger.info(
                "Spool %s holds %d unsent bytes from an earlier run; they will be sent first.",
                self.directory,
                pending,
            )

    def _open_for_append(self, segment: int) -> None:
        if self._write_fd is not None:
            os.close(self._write_fd)
            self._write_fd = None
        path = self.directory / segment_name(segment)
        created = not path.exists()
        # Unbuffered: a failed write leaves nothing in a buffer to be written again later.
        self._write_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._sizes.setdefault(segment, os.fstat(self._write_fd).st_size)
        if created and self.fsync == "always":
            fsync_directory(self.directory)

    # -- state ---------------------------------------------------------------------

    @property
    def disk_bytes(self) -> int:
        """Bytes of the spool's segment files (what the ``max_bytes`` bound applies to)."""
        return sum(self._sizes.values()) - self._reclaimed

    @property
    def pending_bytes(self) -> int:
        """Bytes of records not yet acknowledged (headers included)."""
        return sum(self._sizes.values()) - self._cursor.offset

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    @property
    def end(self) -> Position:
        """Position just past the last appended record."""
        with self._lock:  # an ack on the sender's thread may drop a segment meanwhile
            return self._end()

    def _end(self) -> Position:
        """:attr:`end`, for callers that hold the lock."""
        last = max(self._sizes)
        return Position(last, self._sizes[last])

    @property
    def cursor(self) -> Position:
        """Position of the first unacknowledged record."""
        return self._cursor

    # -- writing -------------------------------------------------------------------

    def append(self, payload: bytes) -> None:
        """Append one record; on return it is on disk as the fsync policy promises.

        Parameters
        ----------
        payload : bytes
            Record content.

        Raises
        ------
        SpoolFullError
            The record does not fit in ``max_bytes`` (after waiting, when blocking), or
            the disk is full; the record was not taken.
        """
        self.append_many([payload])

    def append_many(self, payloads: list[bytes]) -> None:
        """Append records all or none: a failure leaves the spool as it was.

        A caller retrying a failed write therefore never spools its first part twice.

        Parameters
        ----------
        payloads : list of bytes
            Record contents, in order.

        Raises
        ------
        SpoolFullError
            They do not fit in ``max_bytes`` (after waiting, when blocking), or the disk
            is full; nothing was taken.
        """
        records = [encode_record(payload) for payload in payloads if payload]
        total = sum(len(r) for r in records)
        if not records:
            return
        if total > self.max_bytes:
            raise SpoolFullError(
                f"A write of {total} bytes can never fit the spool {self.directory} "
                f"(max_bytes={self.max_bytes}): write smaller batches or raise max_bytes."
            )
        with self._changed:
            self._check_open()
            self._wait_for_room(total)
            before = dict(self._sizes)
            segment_before = self._end().segment
            try:
                for record in records:
                    self._write_record(record)
                if self.fsync == "always":
                    if self._write_fd is None:
                        raise StoreError(
                            f"the spool {self.directory} is closed; open a new Spool to write."
                        )
                    os.fsync(self._write_fd)
            except OSError as exc:
                self._undo_appends(before, segment_before)
                raise SpoolFullError(
                    f"The spool {self.directory} could not store a write of {total} bytes "
                    f"({exc.strerror or exc}); it was NOT stored and the spool is unchanged. "
                    f"{space_hint(exc)}"
                ) from None
            self._warn_if_filling()
            self._changed.notify_all()

    def _wait_for_room(self, total: int) -> None:
        """Under the lock: wait (or raise) until ``total`` more bytes fit ``max_bytes``."""
        deadline = time.monotonic() + self.full_timeout
        while self.disk_bytes + total > self.max_bytes:
            if self._cursor.segment == self._end().segment and self._cursor.offset > 0:
                # The segment being filled is partly acknowledged: move on to a new
                # one, so the next acknowledgement can delete it and free its space.
                self._sizes[self._end().segment + 1] = 0
                self._open_for_append(self._end().segment + 1)
            remaining = deadline - time.monotonic()
            if self.on_full == "raise" or remaining <= 0:
                waited = f"waited {self.full_timeout:g} s" if self.on_full == "block" else ""
                raise SpoolFullError(
                    f"The spool {self.directory} is full ({self.disk_bytes} of "
                    f"{self.max_bytes} bytes) because the server has not accepted data"
                    f"{' (' + waited + ')' if waited else ''}; this write of "
                    f"{total} bytes was NOT stored. Bring the server back or raise "
                    "max_bytes, then write it again."
                )
            self._changed.wait(remaining)
            self._check_open()

    def _write_record(self, record: bytes) -> None:
        segment, size = self._end().segment, self._end().offset
        if size and size + len(record) > self.segment_bytes:
            segment += 1
            self._sizes[segment] = 0
            self._open_for_append(segment)
        if self._write_fd is None:
            raise StoreError(f"The spool {self.directory} is closed; open a new one.")
        view = memoryview(record)
        while view:
            written = os.write(self._write_fd, view)
            view = view[written:]
            self._sizes[segment] += written

    def _undo_appends(self, before: dict[int, int], segment_before: int) -> None:
        """Cut the segments back to ``before``: no partial record stays behind."""
        for segment in sorted(set(self._sizes) - set(before), reverse=True):
            del self._sizes[segment]
            with contextlib.suppress(OSError):
                (self.directory / segment_name(segment)).unlink()
        self._sizes = before
        path = self.directory / segment_name(segment_before)
        try:
            os.truncate(path, before[segment_before])
            self._open_for_append(segment_before)
        except OSError as exc:  # truncation frees space, so this is outside damage
            logger.error(
                "Spool %s: could not cut a failed append from %s (%s); the next open moves "
                "it to corrupt/.",
                self.directory,
                path,
                exc,
            )

    def _warn_if_filling(self) -> None:
        fraction = self.disk_bytes / self.max_bytes
        level = sum(fraction >= f for f in _WARN_FRACTIONS)
        if level > self._warned_level:
            logger.warning(
                "Spool %s is %.0f%% full (%d of %d bytes): the server is not keeping up or "
                "is unreachable. Data is safe on disk and will be sent in order when it "
                "returns; when full, writes %s.",
                self.directory,
                100 * fraction,
                self.disk_bytes,
                self.max_bytes,
                "wait for space" if self.on_full == "block" else "raise SpoolFullError",
            )
        self._warned_level = level

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"The spool {self.directory} is closed.")

    # -- reading -------------------------------------------------------------------

    def wait_for_data(self, timeout: float) -> bool:
        """Wait at most ``timeout`` s for an unacknowledged record; True if one is pending."""
        with self._changed:
            if self._closed:
                return False
            return self._changed.wait_for(lambda: self.pending_bytes > 0 or self._closed, timeout)

    def wait_until_acknowledged(self, position: Position, timeout: float) -> bool:
        """Wait up to ``timeout`` s until every record before ``position`` is acknowledged.

        Parameters
        ----------
        position : Position
            A past :attr:`end` (what was appended up to then).
        timeout : float
            Seconds to wait at most.

        Returns
        -------
        bool
            True once the cursor reached ``position``.
        """
        with self._changed:
            return self._changed.wait_for(lambda: self._cursor >= position, timeout)

    def _segment_bytes(self, segment: int, start: int, stop: int) -> tuple[bytes, int]:
        """Return bytes of ``segment`` covering ``[start, stop)`` and the offset they begin at."""
        cached = self._read_cache
        if cached is not None:
            cached_segment, base, data = cached
            if cached_segment == segment and base <= start and base + len(data) >= stop:
                return data, base
        with open(self.directory / segment_name(segment), "rb") as handle:
            handle.seek(start)
            data = handle.read(stop - start)
        self._read_cache = (segment, start, data)
        return data, start

    def read_batch(self, max_bytes: int) -> SpoolBatch | None:
        """Read the oldest unacknowledged records, up to about ``max_bytes`` of payload.

        At least one record is returned when any is pending, whatever its size.

        Parameters
        ----------
        max_bytes : int
            Payload size to stop at.

        Returns
        -------
        SpoolBatch or None
            None when nothing is pending.
        """
        with self._lock:
            self._check_open()
            start = self._cursor
            end = self._end()
        if start >= end:
            return None
        position = start
        chunks: list[bytes] = []
        total = 0
        while position < end and (not chunks or total < max_bytes):
            stop = end.offset if position.segment == end.segment else None
            if stop is None:
                stop = self._sizes.get(position.segment, 0)
            if position.offset >= stop:
                position = Position(position.segment + 1, 0)
                continue
            # Read a window, not the whole pending segment: appends keep moving its end.
            window = min(stop, position.offset + max(2 * max_bytes, _READ_WINDOW))
            data, base = self._segment_bytes(position.segment, position.offset, window)
            payload, next_offset = read_record(data, position.offset - base)
            if payload is None and next_offset == -1 and window < stop:
                _, length, _ = HEADER.unpack_from(data, position.offset - base)
                record_stop = min(stop, position.offset + HEADER_SIZE + length)
                data, base = self._segment_bytes(position.segment, position.offset, record_stop)
                payload, next_offset = read_record(data, position.offset - base)
            next_offset += base
            if payload is None:
                raise StoreError(
                    f"Spool segment {segment_name(position.segment)} in {self.directory} is "
                    f"damaged at offset {position.offset} while running; restart the store to "
                    "recover the records after it."
                )
            chunks.append(payload)
            total += len(payload)
            position = Position(position.segment, next_offset)
        if position.segment != end.segment and position.offset >= self._sizes.get(
            position.segment, 0
        ):
            position = Position(position.segment + 1, 0)
        return SpoolBatch(b"".join(chunks), len(chunks), start, position)

    def ack(self, batch: SpoolBatch) -> None:
        """Record that ``batch`` reached the server: persist the cursor, free old segments.

        Parameters
        ----------
        batch : SpoolBatch
            A batch returned by :meth:`read_batch`.
        """
        with self._changed:
            if self._closed:
                logger.debug("ack after close ignored; the batch will be replayed (idempotent)")
                return
            if batch.start != self._cursor:
                raise StoreError(
                    f"Spool {self.directory}: acknowledged batch starts at {batch.start}, "
                    f"expected the cursor {self._cursor} (two senders on one spool?)."
                )
            stop = batch.stop
            if stop == self._end() and stop.offset > 0:
                # Everything is acknowledged: start a fresh segment so the old one can go.
                with contextlib.suppress(OSError):  # a full disk: reclaim in place instead
                    self._open_for_append(stop.segment + 1)
                    self._sizes[stop.segment + 1] = 0
                    stop = Position(stop.segment + 1, 0)
            # Free acknowledged space before persisting the cursor: on a full disk the
            # cursor file can only be written once space is back. Freeing first is safe: a
            # crash in between replays from the old cursor, resending acknowledged points
            # (which overwrite), never losing any.
            if stop.segment != self._cursor.segment:
                self._reclaimed = 0
            self._cursor = stop
            for segment in [s for s in self._sizes if s < stop.segment]:
                del self._sizes[segment]
                (self.directory / segment_name(segment)).unlink(missing_ok=True)
            if stop.segment not in self._sizes:
                self._sizes[stop.segment] = 0
                self._open_for_append(stop.segment)
            self._reclaim_in_place()
            try:
                write_cursor(self.directory, stop)
                self._cursor_saved = True
            except OSError as exc:
                if self._cursor_saved:
                    logger.warning(
                        "Spool %s: the cursor cannot be saved (%s); acknowledged data is "
                        "freed anyway and the cursor is saved when space returns (until "
                        "then a restart resends some acknowledged points, harmlessly).",
                        self.directory,
                        exc.strerror or exc,
                    )
                self._cursor_saved = False
                with contextlib.suppress(OSError):
                    (self.directory / "cursor.tmp").unlink()
            if self.disk_bytes < self.max_bytes * _WARN_FRACTIONS[0]:
                self._warned_level = 0
            self._changed.notify_all()

    def reject(self, batch: SpoolBatch, reason: str, payload: bytes | None = None) -> Path:
        """Move what the server refused for good into ``rejected/``, then acknowledge the batch.

        Parameters
        ----------
        batch : SpoolBatch
            The batch holding the refused lines (the rest of it was accepted).
        reason : str
            The server's answer, saved next to the payload.
        payload : bytes, optional
            The refused lines (default: the whole batch).

        Returns
        -------
        Path
            Where the payload was saved.
        """
        name = f"{batch.start.segment:016d}-{batch.start.offset}.lp"
        refused = batch.payload if payload is None else payload
        path = quarantine(self.directory, "rejected", name, refused, note=reason)
        self.ack(batch)
        return path

    def _reclaim_in_place(self) -> None:
        """Give acknowledged blocks at the start of the cursor's segment back to the disk.

        Linux ``fallocate(PUNCH_HOLE)``: the file keeps its size (offsets stay valid) but
        the acknowledged blocks stop using space, without waiting for the segment to be
        passed (up to ``segment_bytes``). Elsewhere (or on a file system without holes)
        space is freed when the segment is deleted, as before.
        """
        aligned = self._cursor.offset // PUNCH_ALIGN * PUNCH_ALIGN
        if aligned - self._reclaimed < _PUNCH_MIN:
            return
        path = self.directory / segment_name(self._cursor.segment)
        if punch_hole(path, self._reclaimed, aligned - self._reclaimed):
            self._reclaimed = aligned
            self._read_cache = None

    def close(self) -> None:
        """Close the files and release the directory lock; pending records stay on disk."""
        with self._changed:
            if self._closed:
                return
            self._closed = True
            if self._write_fd is not None:
                with contextlib.suppress(OSError):  # appends were synced per policy
                    os.fsync(self._write_fd)
                os.close(self._write_fd)
                self._write_fd = None
            self._read_cache = None
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)
            with contextlib.suppress(OSError):
                self._lock_file.close()
            self._changed.notify_all()
