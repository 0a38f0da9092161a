"""The embedded default store: one SQLite file of compressed columnar chunks, no server.

Design, and why:

- **SQLite** ships with Python, is one file, and its transactions are atomic and durable
  across crashes. Each :meth:`EmbeddedStore.write` call is one transaction, so a kill -9
  (or power cut) during a write leaves every earlier acknowledged write intact and the
  interrupted one wholly applied or wholly absent.
- **WAL journal** so that readers (the API, an export) never block the writer and the
  writer never blocks them; a write appends to the log instead of rewriting pages twice.
- **synchronous=FULL** by default: the log is fsynced at every commit, so a write that
  returned survives a power loss too, which is what :meth:`TimeSeriesStore.write`
  promises. The cost is one fsync per write *call*, and a call carries thousands of
  points. ``synchronous="normal"`` skips that fsync: still safe against a process crash
  (kill -9), but the last writes may be lost on power loss or an OS crash.
- **Columnar chunks**: a row holds up to ``chunk_points`` consecutive points of one series
  (timestamps as compressed int64 deltas, each field as its own compressed segment;
  format in :mod:`affectstream.store._chunks`), indexed by
  ``(series_id, start_ns, stop_ns)``. A 3-hour 256 Hz EEG session is ~700 rows instead
  of 2.8 million, and reading a time range decodes only the overlapping chunks and the
  requested fields.
- **Overwrite on write**: a write merges with the stored chunks its time span overlaps,
  so chunks of a series never overlap and hold each timestamp once: reads need no
  deduplication and point counts are exact. Merging is field by field with the latest
  present value winning, as in InfluxDB; a missing value (NaN float, ``None`` str) never
  overwrites a stored one.
- **Small live writes** (a second of samples, one feature row) first land as small chunks
  that are merged like a binary counter (see ``_compact_tail``), so a series keeps only
  O(log chunk_points) small chunks at its tail and each point is rewritten
  O(log chunk_points) times on its way into a full chunk.
- **Field types** are fixed per measurement and field on first write (as InfluxDB does);
  a point giving another type is refused alone and counted in :meth:`EmbeddedStore.delivery`
  (InfluxDB refuses that line and stores the rest).

Reads decode chunks into one frame in :mod:`affectstream.store.embedded_frames`. At ~760
lines this module is still one job (the SQLite layout: open, write/merge/compact, read,
list, delete, all on one connection and one lock); splitting it further would spread
that one transaction discipline over several files.

Layout: ``path`` is a directory (created if needed) holding ``store.sqlite`` (plus
``store.sqlite-wal``/``-shm`` while open); a path ending in ``.sqlite`` or ``.db``, or an
existing file, is taken as the database file itself.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from affectstream._validate import check_option, check_positive
from affectstream.errors import ConfigError, StoreError
from affectstream.store import _chunks
from affectstream.store._chunks import Columns
from affectstream.store.base import (
    TAG_KEYS,
    DeliveryReport,
    FieldKind,
    ReadQuery,
    Rejections,
    SeriesBatch,
    SessionInfo,
    TimeSeriesStore,
)
from affectstream.store.embedded_frames import decode_range, frame_of

logger = logging.getLogger(__name__)

#: ``PRAGMA application_id`` of an affectstream store ("AFST").
APPLICATION_ID = 0x41465354
#: Version of the table layout and chunk format written by this module.
FORMAT_VERSION = 1
#: File name of the database inside a store directory.
DATABASE_NAME = "store.sqlite"

_MIN_NS = -(2**63)
_MAX_NS = 2**63 - 1
_TAG_COLUMNS = ", ".join(TAG_KEYS)

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    f"""CREATE TABLE IF NOT EXISTS series (
        id INTEGER PRIMARY KEY,
        measurement TEXT NOT NULL,
        {", ".join(f"{key} TEXT NOT NULL DEFAULT ''" for key in TAG_KEYS)},
        UNIQUE (measurement, {_TAG_COLUMNS}))""",
    "CREATE INDEX IF NOT EXISTS series_session ON series (session)",
    """CREATE TABLE IF NOT EXISTS field_types (
        measurement TEXT NOT NULL, name TEXT NOT NULL, kind TEXT NOT NULL,
        PRIMARY KEY (measurement, name))""",
    # stop_ns is the chunk's last timestamp (inclusive).
    """CREATE TABLE IF NOT EXISTS chunks (
        id INTEGER PRIMARY KEY,
        series_id INTEGER NOT NULL,
        start_ns INTEGER NOT NULL,
        stop_ns INTEGER NOT NULL,
        n_points INTEGER NOT NULL,
        data BLOB NOT NULL)""",
    # n_points makes it a covering index for listing sessions without touching the blobs.
    "CREATE INDEX IF NOT EXISTS chunks_range ON chunks (series_id, start_ns, stop_ns, n_points)",
)


def _database_path(path: Path) -> Path:
    """Return the database file for a store ``path`` (see the module docstring)."""
    if path.suffix in (".sqlite", ".db") or path.is_file():
        return path
    return path / DATABASE_NAME


def _rollback(connection: sqlite3.Connection) -> None:
    """Roll back an open transaction (e.g. after a failed COMMIT) so the next can begin."""
    if connection.in_transaction:
        try:
            connection.execute("ROLLBACK")
        except sqlite3.Error:
            logger.exception("rollback failed")


class EmbeddedStore(TimeSeriesStore):
    """Time-series store in one local SQLite file; needs no server.

    Parameters
    ----------
    path : str or path-like
        Store directory (created if needed), or the database file itself if it ends in
        ``.sqlite``/``.db`` or already exists as a file.
    synchronous : {"full", "normal"}
        ``"full"`` (default) makes every returned write survive a power loss;
        ``"normal"`` only a process crash, but writes faster on slow disks.
    chunk_points : int
        Points per stored chunk (at most). Larger chunks compress better; smaller ones
        make small range reads cheaper.
    timeout_s : float
        How long to wait for another process that holds the write lock.
    read_only : bool
        Open an existing store for reading only: nothing is created or written (an
        archived study on a read-only disk opens too), and a path that holds no store is
        refused instead of becoming a new, empty one.

    Examples
    --------
    >>> with EmbeddedStore(tmp_path) as store:  # doctest: +SKIP
    ...     store.write([SeriesBatch("raw_eeg", {"session": "s1"}, t_ns, {"af7": x})])
    ...     frame = store.read("raw_eeg", tags={"session": "s1"})
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: str = "full",
        chunk_points: int = 4096,
        timeout_s: float = 30.0,
        read_only: bool = False,
    ) -> None:
        self.path = Path(path).expanduser()
        self.read_only = bool(read_only)
        self.synchronous = check_option("synchronous", synchronous, ("full", "normal"))
        if isinstance(chunk_points, bool) or not isinstance(chunk_points, int) or chunk_points < 1:
            raise ConfigError(f"chunk_points must be a positive int, got {chunk_points!r}.")
        self.chunk_points = chunk_points
        self.timeout_s = check_positive("timeout_s", timeout_s)
        self.database_path = _database_path(self.path)
        self._lock = threading.RLock()
        self._kinds: dict[tuple[str, str], FieldKind] = {}
        #: Points refused for good (a field-type conflict) since opening; see delivery().
        self.rejections = Rejections()
        self._connection: sqlite3.Connection | None = None
        self._connection = self._open()

    def __repr__(self) -> str:
        state = "open" if self._connection is not None else "closed"
        return f"EmbeddedStore({str(self.path)!r}, {state})"

    # -- connection -----------------------------------------------------------------

    @contextmanager
    def _sqlite_errors(self, action: str) -> Iterator[None]:
        """Turn SQLite errors into :class:`StoreError` messages that say what to do."""
        database = self.database_path
        try:
            yield
        except sqlite3.OperationalError as exc:
            message = str(exc)
            if "locked" in message or "busy" in message:
                raise StoreError(
                    f"The store at {database} stayed locked by another writer for more than "
                    f"{self.timeout_s:g} s while {action} it; stop the other writer or open "
                    "the store with a longer timeout_s."
                ) from exc
            raise StoreError(
                f"SQLite failed while {action} the store at {database}: {message}. Check "
                "that the disk is not full and the folder is writable."
            ) from exc
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"The store at {database} is damaged or is not an SQLite database ({exc}), "
                f"found while {action} it. Move {database.name} (and any -wal/-shm files "
                f"next to it) out of {database.parent} to start a new store; "
                f"`sqlite3 {database} .recover` may salvage its data."
            ) from exc

    def _open(self) -> sqlite3.Connection:
        if self.read_only:
            return self._open_read_only()
        try:
            self.database_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"Cannot create the store folder {self.database_path.parent}: {exc}. "
                "Choose a writable path (or set AFFECTSTREAM_HOME)."
            ) from exc
        with self._sqlite_errors("opening"):
            connection = sqlite3.connect(
                self.database_path,
                timeout=self.timeout_s,
                isolation_level=None,  # transactions are explicit (BEGIN IMMEDIATE)
                check_same_thread=False,  # guarded by self._lock
            )
            try:
                self._initialise(connection)
            except BaseException:
                connection.close()
                raise
        logger.debug("opened embedded store %s", self.database_path)
        return connection

    def _open_read_only(self) -> sqlite3.Connection:
        database = self.database_path
        if not database.is_file():
            raise StoreError(
                f"No affectstream store at {self.path} (no {database.name} there); check "
                "--store (read commands never create a store)."
            )
        uri = database.resolve().as_uri()
        # mode=ro writes nothing; a WAL database in a folder nobody may write (an archive)
        # cannot get its -shm file, so it is opened as immutable: nobody can change it.
        for query in ("?mode=ro", "?mode=ro&immutable=1"):
            with self._sqlite_errors("opening"):
                connection = sqlite3.connect(
                    uri + query,
                    uri=True,
                    timeout=self.timeout_s,
                    isolation_level=None,
                    check_same_thread=False,
                )
            try:
                with self._sqlite_errors("opening"):
                    self._check_read_only(connection)
                return connection
            except StoreError as exc:
                connection.close()
                if "unable to open" not in str(exc) or query.endswith("immutable=1"):
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _check_read_only(self, connection: sqlite3.Connection) -> None:
        database = self.database_path
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        (application_id,) = connection.execute("PRAGMA application_id").fetchone()
        if application_id != APPLICATION_ID or "meta" not in tables:
            raise StoreError(f"{database} is not an affectstream store; check --store.")
        (version,) = connection.execute(
            "SELECT value FROM meta WHERE key = 'format_version'"
        ).fetchone()
        if int(version) > FORMAT_VERSION:
            raise StoreError(
                f"The store at {database} has format version {version}, newer than the "
                f"{FORMAT_VERSION} this affectstream reads; upgrade affectstream."
            )

    def _initialise(self, connection: sqlite3.Connection) -> None:
        database = self.database_path
        # Reading the schema is what reveals a file that is not a database.
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        (application_id,) = connection.execute("PRAGMA application_id").fetchone()
        if tables and application_id != APPLICATION_ID:
            raise StoreError(
                f"{database} is an SQLite database but not an affectstream store "
                f"(application_id {application_id:#x}); give the store another path."
            )
        if not tables:
            # Only takes effect before the first table exists; lets deletes shrink the file.
            connection.execute("PRAGMA auto_vacuum = INCREMENTAL")
            connection.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        (mode,) = connection.execute("PRAGMA journal_mode = WAL").fetchone()
        if str(mode).lower() != "wal":
            logger.warning(
                "store %s runs in journal mode %r, not WAL (network file system?): "
                "readers will block writes",
                database,
                mode,
            )
        connection.execute(f"PRAGMA synchronous = {self.synchronous.upper()}")
        connection.execute("PRAGMA journal_size_limit = 67108864")
        connection.execute("BEGIN IMMEDIATE")
        try:
            for statement in _SCHEMA:
                connection.execute(statement)
            connection.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('format_version', ?)",
                (str(FORMAT_VERSION),),
            )
            (version,) = connection.execute(
                "SELECT value FROM meta WHERE key = 'format_version'"
            ).fetchone()
            connection.execute("COMMIT")
        except BaseException:
            _rollback(connection)
            raise
        if int(version) > FORMAT_VERSION:
            raise StoreError(
                f"The store at {database} has format version {version}, newer than the "
                f"{FORMAT_VERSION} this affectstream reads; upgrade affectstream."
            )

    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            raise StoreError(
                f"The store at {self.path} is closed; open it again with "
                "EmbeddedStore(path) or open_store()."
            )
        return self._connection

    @contextmanager
    def _transaction(self, action: str) -> Iterator[sqlite3.Connection]:
        """Hold the lock and one write transaction; roll back on any error."""
        if self.read_only:
            raise StoreError(
                f"The store at {self.path} was opened read-only; {action} it needs a "
                "writable store."
            )
        with self._lock, self._sqlite_errors(action):
            connection = self._db()
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
                connection.execute("COMMIT")
            except BaseException:
                _rollback(connection)
                raise

    def close(self) -> None:
        """Close the database; later calls raise :class:`StoreError`. Idempotent."""
        with self._lock:
            if self._connection is not None:
                with self._sqlite_errors("closing"):
                    self._connection.close()
                self._connection = None

    def check(self) -> None:
        """Run SQLite's full integrity check; raise :class:`StoreError` if damaged.

        Slow on large stores (it reads every page); opening and reading already detect
        damage in what they touch.
        """
        with self._lock, self._sqlite_errors("checking"):
            problems = [row[0] for row in self._db().execute("PRAGMA integrity_check")]
        if problems != ["ok"]:
            raise StoreError(
                f"The store at {self.database_path} is damaged: {'; '.join(problems[:5])}. "
                f"Move it aside to start a new store; `sqlite3 {self.database_path} .recover` "
                "may salvage its data."
            )

    # -- writing --------------------------------------------------------------------

    def write(self, batches: Iterable[SeriesBatch]) -> None:
        """Write batches in one transaction; durable when this returns.

        Parameters
        ----------
        batches : iterable of SeriesBatch
            Points to write. A point already stored (same series and timestamp) is
            overwritten field by field; missing values (NaN, None) are not written. A
            point giving a field another type than the stored one is refused alone
            (logged and counted in :meth:`delivery`); the other points are written.
        """
        groups: dict[tuple[str, tuple[tuple[str, str], ...]], list[Columns]] = {}
        for batch in batches:
            if not isinstance(batch, SeriesBatch):
                raise StoreError(
                    f"write() takes SeriesBatch objects, got {type(batch).__name__}; build "
                    "them with SeriesBatch(...) or affectstream.store.blocks_to_batches()."
                )
            if len(batch):
                key = (batch.measurement, tuple(sorted(batch.tags.items())))
                groups.setdefault(key, []).append(_chunks.from_batch(batch))
        prepared: list[tuple[str, dict[str, str], Columns]] = []
        for (measurement, tag_items), parts in groups.items():
            parts = self._refuse_type_conflicts(measurement, dict(tag_items), parts)
            if not parts:
                continue
            columns = _chunks.merge(parts) if len(parts) > 1 else parts[0]
            if len(columns):
                prepared.append((measurement, dict(tag_items), columns))
        if not prepared:
            return
        with self._transaction("writing to") as connection:
            for measurement, tags, columns in prepared:
                self._check_kinds(connection, measurement, columns.kinds)
                series_id = self._series_id(connection, measurement, tags)
                self._write_series(connection, series_id, columns)

    def _refuse_type_conflicts(
        self, measurement: str, tags: Mapping[str, str], parts: list[Columns]
    ) -> list[Columns]:
        """Set aside the points whose field type conflicts with the stored (or first) type.

        InfluxDB refuses such a point (one line) and stores the rest; so does this store:
        the points are counted in :meth:`delivery` and logged, the other points of the
        write go on. The type that counts is the stored one, else the first in the call.
        """
        kinds = self._stored_kinds(measurement)
        kept: list[Columns] = []
        for part in parts:
            conflicts = {
                name: kind
                for name, kind in part.kinds.items()
                if kinds.setdefault(name, kind) != kind
            }
            if conflicts:
                part, n_refused = _chunks.without_points_of(part, conflicts)
                name, given = next(iter(conflicts.items()))
                self.rejections.add(
                    n_refused,
                    f"{measurement} {dict(tags)}: field {name!r} holds {kinds[name]} values, "
                    f"{n_refused} point(s) give {given}: keep one type per field (InfluxDB "
                    "refuses the same)",
                )
            if len(part):
                kept.append(part)
        return kept

    def _stored_kinds(self, measurement: str) -> dict[str, FieldKind]:
        """Field types stored for ``measurement`` (one indexed query; the transaction
        checks them again in case another process wrote in between)."""
        with self._lock, self._sqlite_errors("reading"):
            rows = (
                self._db()
                .execute("SELECT name, kind FROM field_types WHERE measurement = ?", (measurement,))
                .fetchall()
            )
        return {str(name): kind for name, kind in rows}

    def delivery(self) -> DeliveryReport:
        """Points refused for good since the store was opened (nothing waits: writes are
        synchronous).

        Returns
        -------
        DeliveryReport
        """
        return self.rejections.report()

    @staticmethod
    def _kind_error(measurement: str, name: str, stored: str, given: str) -> StoreError:
        return StoreError(
            f"Field {name!r} of {measurement!r} holds {stored} values, this write gives "
            f"{given}: keep one type per field (InfluxDB refuses the same); nothing of "
            "this write was stored."
        )

    def _check_kinds(
        self, connection: sqlite3.Connection, measurement: str, kinds: Mapping[str, FieldKind]
    ) -> None:
        for name, kind in kinds.items():
            stored = self._kinds.get((measurement, name))
            if stored is None:
                row = connection.execute(
                    "SELECT kind FROM field_types WHERE measurement = ? AND name = ?",
                    (measurement, name),
                ).fetchone()
                if row is None:
                    connection.execute(
                        "INSERT INTO field_types (measurement, name, kind) VALUES (?, ?, ?)",
                        (measurement, name, kind),
                    )
                    # Not cached yet: the transaction may still roll back.
                    continue
                stored = row[0]
                self._kinds[(measurement, name)] = row[0]
            if stored != kind:
                raise self._kind_error(measurement, name, str(stored), kind)

    @staticmethod
    def _series_id(
        connection: sqlite3.Connection, measurement: str, tags: Mapping[str, str]
    ) -> int:
        values = (measurement, *(tags.get(key, "") for key in TAG_KEYS))
        where = " AND ".join(f"{key} = ?" for key in ("measurement", *TAG_KEYS))
        row = connection.execute(f"SELECT id FROM series WHERE {where}", values).fetchone()
        if row is not None:
            return int(row[0])
        placeholders = ", ".join("?" * len(values))
        cursor = connection.execute(
            f"INSERT INTO series (measurement, {_TAG_COLUMNS}) VALUES ({placeholders})", values
        )
        if cursor.lastrowid is None:
            raise StoreError("SQLite gave no row id for the new series.")
        return int(cursor.lastrowid)

    def _write_series(
        self, connection: sqlite3.Connection, series_id: int, columns: Columns
    ) -> None:
        first, last = int(columns.time_ns[0]), int(columns.time_ns[-1])
        # Stored chunks the new points overlap: the one starting before them if it reaches
        # into their span, and every chunk starting inside it. Merging with them keeps
        # one value per timestamp at rest.
        ids: list[int] = []
        previous = connection.execute(
            "SELECT id, stop_ns FROM chunks WHERE series_id = ? "
            "AND start_ns < ? ORDER BY start_ns DESC LIMIT 1",
            (series_id, first),
        ).fetchone()
        if previous is not None and previous[1] >= first:
            ids.append(previous[0])
        ids.extend(
            row[0]
            for row in connection.execute(
                "SELECT id FROM chunks WHERE series_id = ? "
                "AND start_ns >= ? AND start_ns <= ? ORDER BY start_ns",
                (series_id, first, last),
            )
        )
        if ids:
            rows = self._fetch(connection, ids)
            stored = [_chunks.decode(data, where=f"chunk {chunk_id}") for chunk_id, data in rows]
            columns = _chunks.merge([*stored, columns])
            connection.executemany("DELETE FROM chunks WHERE id = ?", [(r[0],) for r in rows])
        self._insert(connection, series_id, columns)
        self._compact_tail(connection, series_id)

    def _insert(self, connection: sqlite3.Connection, series_id: int, columns: Columns) -> None:
        connection.executemany(
            "INSERT INTO chunks (series_id, start_ns, stop_ns, n_points, data) "
            "VALUES (?, ?, ?, ?, ?)",
            [
                (
                    series_id,
                    int(piece.time_ns[0]),
                    int(piece.time_ns[-1]),
                    len(piece),
                    _chunks.encode(piece),
                )
                for piece in _chunks.split(columns, self.chunk_points)
            ],
        )

    def _compact_tail(self, connection: sqlite3.Connection, series_id: int) -> None:
        """Merge small chunks at the end of a series, like a binary counter.

        Live writes are small (a second of samples, one feature row). The newest chunks are
        merged while each older one is no larger than the newer ones together, so a series
        keeps O(log chunk_points) small chunks at its tail and each point is rewritten
        O(log chunk_points) times before it sits in a full chunk (rewriting one growing
        tail chunk on every write would cost O(chunk_points / write size) instead). Once
        the merged points would fill a chunk, every small chunk at the tail is merged and
        cut into full chunks plus one remainder, so no small chunk is left behind.
        """
        run: list[tuple[int, int]] = []
        for row in connection.execute(
            "SELECT id, n_points FROM chunks WHERE series_id = ? ORDER BY start_ns DESC LIMIT 64",
            (series_id,),
        ):
            if row[1] >= self.chunk_points:
                break
            run.append(row)  # newest first
        merged_points = run[0][1] if run else 0
        n_merge = 1
        while n_merge < len(run) and run[n_merge][1] <= merged_points:
            merged_points += run[n_merge][1]
            n_merge += 1
        if merged_points >= self.chunk_points:
            n_merge = len(run)
        if n_merge < 2:
            return
        chosen = [chunk_id for chunk_id, _ in run[:n_merge][::-1]]  # oldest first
        merged = _chunks.merge(
            [
                _chunks.decode(data, where=f"chunk {chunk_id}")
                for chunk_id, data in self._fetch(connection, chosen)
            ]
        )
        connection.executemany("DELETE FROM chunks WHERE id = ?", [(i,) for i in chosen])
        self._insert(connection, series_id, merged)

    @staticmethod
    def _fetch(connection: sqlite3.Connection, ids: Sequence[int]) -> list[tuple[int, bytes]]:
        """Return (id, data) of the given chunks, in the order given."""
        rows = [
            connection.execute("SELECT id, data FROM chunks WHERE id = ?", (i,)).fetchone()
            for i in ids
        ]
        return [(int(row[0]), row[1]) for row in rows]

    # -- reading --------------------------------------------------------------------

    def _read(self, query: ReadQuery) -> pd.DataFrame:
        """Read the points :meth:`TimeSeriesStore.read` asks for from the chunks."""
        measurement, tag_filter, wanted = query.measurement, query.tags, query.fields
        start = _MIN_NS if query.start_ns is None else query.start_ns
        stop = _MAX_NS if query.stop_ns is None else query.stop_ns
        where = " AND ".join(["measurement = ?", *(f"{key} = ?" for key in tag_filter)])
        stored: list[tuple[dict[str, str], list[tuple[int, bytes]]]] = []
        # One read transaction: a consistent snapshot across series while a writer commits.
        # Only fetching holds the lock; decoding happens outside it.
        with self._lock, self._sqlite_errors("reading"):
            connection = self._db()
            connection.execute("BEGIN")
            try:
                known: dict[str, FieldKind] = dict(
                    connection.execute(
                        "SELECT name, kind FROM field_types WHERE measurement = ? ORDER BY rowid",
                        (measurement,),
                    ).fetchall()
                )
                series_rows = connection.execute(
                    f"SELECT id, {_TAG_COLUMNS} FROM series WHERE {where} ORDER BY id",
                    (measurement, *tag_filter.values()),
                ).fetchall()
                for row in series_rows if start < stop else []:
                    chunks = connection.execute(
                        "SELECT id, data FROM chunks WHERE series_id = ? AND start_ns < ? "
                        "AND stop_ns >= ? ORDER BY start_ns",
                        (row[0], stop, start),
                    ).fetchall()
                    if chunks:
                        tags = {k: v for k, v in zip(TAG_KEYS, row[1:], strict=True) if v}
                        stored.append((tags, chunks))
            finally:
                _rollback(connection)  # ends the read transaction; nothing to keep
        parts: list[tuple[dict[str, str], Columns]] = []
        for series_tags, chunks in stored:
            columns = decode_range(chunks, start, stop, wanted)
            if columns is not None:
                parts.append((series_tags, columns))
        return frame_of(parts, wanted, known)

    def sessions(self) -> list[SessionInfo]:
        """List stored sessions, oldest first.

        Returns
        -------
        list of SessionInfo
            ``participant`` is the session's participant tag (the greatest one if its
            series disagree); series without a session tag are not listed.
        """
        with self._lock, self._sqlite_errors("listing sessions of"):
            rows = (
                self._db()
                .execute(
                    "SELECT s.session, MAX(s.participant), MIN(c.start_ns), MAX(c.stop_ns), "
                    "SUM(c.n_points) FROM series AS s JOIN chunks AS c ON c.series_id = s.id "
                    "WHERE s.session != '' GROUP BY s.session ORDER BY MIN(c.start_ns), s.session"
                )
                .fetchall()
            )
        return [
            SessionInfo(
                session=row[0],
                participant=row[1],
                start_ns=int(row[2]),
                stop_ns=int(row[3]) + 1,
                n_points=int(row[4]),
            )
            for row in rows
        ]

    def series(self, session: str | None = None) -> list[tuple[str, dict[str, str]]]:
        """:meth:`TimeSeriesStore.series`, sorted by measurement then tags (no empty tags)."""
        query = (
            f"SELECT measurement, {_TAG_COLUMNS} FROM series WHERE EXISTS "
            "(SELECT 1 FROM chunks WHERE chunks.series_id = series.id)"
        )
        parameters: tuple[str, ...] = ()
        if session is not None:
            query += " AND session = ?"
            parameters = (session,)
        query += f" ORDER BY measurement, {_TAG_COLUMNS}"
        with self._lock, self._sqlite_errors("listing series of"):
            rows = self._db().execute(query, parameters).fetchall()
        return [
            (row[0], {key: value for key, value in zip(TAG_KEYS, row[1:], strict=True) if value})
            for row in rows
        ]

    def delete_session(self, session: str) -> None:
        """Delete every point of a session (a no-op for an unknown session).

        Parameters
        ----------
        session : str
            Session id.
        """
        if not isinstance(session, str) or not session:
            raise StoreError(f"delete_session needs a session id, got {session!r}.")
        with self._transaction("deleting from") as connection:
            deleted = connection.execute(
                "DELETE FROM chunks WHERE series_id IN (SELECT id FROM series WHERE session = ?)",
                (session,),
            ).rowcount
            connection.execute("DELETE FROM series WHERE session = ?", (session,))
        with self._lock, self._sqlite_errors("compacting"):
            # Give the freed pages back to the file system.
            # executescript steps the pragma to completion; execute() frees one page only.
            self._db().executescript("PRAGMA incremental_vacuum;")
        logger.info("deleted session %r (%d chunks) from %s", session, deleted, self.path)
