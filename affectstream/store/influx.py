"""InfluxDB backend: writes through influxdb-client via a durable spool, reads with InfluxQL.

Writing: :meth:`InfluxStore.write` formats each :class:`SeriesBatch` as line protocol
(vectorised, see :mod:`affectstream.store.influx_lineprotocol`), appends it to the local
:class:`~affectstream.store.spool.Spool` and returns; a background thread sends the spool
in order through influxdb-client's write API (``/api/v2/write``, ns precision; gzip unless
the server is on this machine) in batches of about ``batch_size`` lines and advances the
spool's cursor after each acknowledged batch (:mod:`affectstream.store.influx_sender`,
which says which failures are retried and which stop it). A slow or absent server
therefore never blocks the caller (until the spool's size bound is reached) and loses
nothing: failed sends are retried with exponential backoff and jitter (``retry_interval``
doubling up to ``max_retry_delay``); after ``max_retries`` consecutive failures a warning
says the server is unavailable, and the data keeps waiting on disk, retried every
``max_retry_delay`` seconds until it is accepted.
A batch the server refuses for good (HTTP 400: malformed line, field-type conflict; 413)
is moved to ``<spool>/rejected/`` with the server's message and an error log, never
silently dropped. :meth:`InfluxStore.flush` and :meth:`InfluxStore.close` wait while the
server acknowledges batches, however long a slow server takes, and give up once nothing was
acknowledged for ``close_timeout`` seconds (or the flush's ``timeout``); what is still
unsent stays in the spool and is sent by the next store opened on it.

Reading (:mod:`affectstream.store.influx_reader`, InfluxQL text in
:mod:`affectstream.store.influxql`): InfluxQL over ``GET /query`` (``epoch=ns``), with an
``Authorization: Token`` header when a token is given, so one code path serves InfluxDB
1.8+, 2.x (through its DBRP mapping of the bucket) and 3.x. InfluxDB 1.6/1.7 serve reads
natively; their writes need ``/api/v2/write`` (1.8+), which the tests provide for 1.6.7
through a small proxy.

VictoriaMetrics accepts the same writes (``/api/v2/write``) but answers no InfluxQL, so
with it this store is a write-only target; read it back with its own ``/api/v1/export``.
Note two server properties there: timestamps are floored to milliseconds, and a point sent
twice is kept twice unless the server runs with ``-dedup.minScrapeInterval=1ms`` (the test
fixture does), so a spool replay may duplicate samples on a VictoriaMetrics without it.

Configuration (:mod:`affectstream.store.influx_config`): arguments, else the environment
variables ``AFFECTSTREAM_INFLUX_URL``, ``AFFECTSTREAM_INFLUX_TOKEN``,
``AFFECTSTREAM_INFLUX_ORG``, ``AFFECTSTREAM_INFLUX_BUCKET`` and ``AFFECTSTREAM_SPOOL_DIR``.
On InfluxDB 1.x the bucket is the database (optionally ``database/retention_policy``) and a
token may be ``username:password``."""

from __future__ import annotations

import gzip
import itertools
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from affectstream.errors import ConfigError, StoreError, StoreUnavailableError
from affectstream.store.base import DeliveryReport, Rejections, SeriesBatch, TimeSeriesStore
from affectstream.store.influx_config import (
    ENV_BUCKET,
    ENV_ORG,
    ENV_SPOOL_DIR,
    ENV_TOKEN,
    ENV_URL,
    default_spool_dir,
    is_loopback,
    normalize_url,
)
from affectstream.store.influx_lineprotocol import batch_to_line_protocol
from affectstream.store.influx_reader import InfluxReader
from affectstream.store.influx_sender import (
    SpoolSender,
    connection_errors,
    describe_error,
    server_errors,
)
from affectstream.store.influxql import (
    delete_predicate,
    influxql_identifier,
    influxql_string,
    parse_series_key,
    where_clause,
)
from affectstream.store.spool import FsyncPolicy, FullPolicy, Spool, SpoolFullError

# Names this module has always offered; they now live in the modules above.
__all__ = [
    "ENV_BUCKET",
    "ENV_ORG",
    "ENV_SPOOL_DIR",
    "ENV_TOKEN",
    "ENV_URL",
    "InfluxStore",
    "default_spool_dir",
    "delete_predicate",
    "influxql_identifier",
    "influxql_string",
    "is_loopback",
    "normalize_url",
    "parse_series_key",
]

logger = logging.getLogger(__name__)


class InfluxStore(InfluxReader, TimeSeriesStore):
    """Store points in InfluxDB (1.8+, 2.x, 3.x) through a durable local spool.

    Parameters
    ----------
    url : str, optional
        Server URL, e.g. ``http://localhost:8086``; default ``$AFFECTSTREAM_INFLUX_URL``.
    token : str, optional
        API token (2.x/3.x) or ``user:password`` (1.x with auth); default
        ``$AFFECTSTREAM_INFLUX_TOKEN``; none for an open 1.x server.
    org : str, optional
        Organisation (2.x); default ``$AFFECTSTREAM_INFLUX_ORG``.
    bucket : str
        Bucket (2.x), database (3.x) or ``database[/retention_policy]`` (1.x); default
        ``$AFFECTSTREAM_INFLUX_BUCKET`` or ``"affectstream"``.
    spool_dir : str or Path, optional
        Spool directory; default :func:`default_spool_dir`.
    batch_size : int
        Lines per write request (InfluxData recommends about 5,000).
    spool_max_bytes : int
        Bound on the spool's disk use.
    fsync : {"always", "os"}
        Spool durability (see :mod:`affectstream.store.spool`).
    on_full : {"block", "raise"}
        What a write does when the spool is full.
    full_timeout : float
        Seconds a write waits for spool space when ``on_full="block"``.
    timeout : float
        Seconds per HTTP request (connect and read).
    retry_interval : float
        First retry delay in seconds; it doubles after each failure.
    max_retry_delay : float
        Largest retry delay in seconds.
    max_retries : int
        Consecutive failures after which the server is reported unavailable (the data
        stays spooled and retries continue every ``max_retry_delay``).
    close_timeout : float
        Seconds without any acknowledged batch after which :meth:`flush` and :meth:`close`
        stop waiting for the spool to drain (a server that keeps acknowledging is waited
        for, up to ``flush_limit``).
    flush_limit : float
        Seconds after which :meth:`flush` and :meth:`close` stop waiting even while the
        server acknowledges (a large backlog after an outage): what is left stays safe in
        the spool, is reported as not yet stored, and is sent first by the next store
        opened on it.
    gzip : bool, optional
        Compress write requests. Default: on, except for a server on this machine
        (``localhost``, ``127.0.0.0/8``, ``::1``), where compressing costs both ends CPU
        and saves no network: measured here, 1M points through influxd 1.6.7 went from
        ~50k to ~60k points/s end to end without it.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        token: str | None = None,
        org: str | None = None,
        bucket: str | None = None,
        spool_dir: str | os.PathLike[str] | None = None,
        batch_size: int = 5000,
        spool_max_bytes: int = 1 << 30,
        fsync: FsyncPolicy = "always",
        on_full: FullPolicy = "block",
        full_timeout: float = 30.0,
        timeout: float = 10.0,
        retry_interval: float = 0.5,
        max_retry_delay: float = 30.0,
        max_retries: int = 5,
        close_timeout: float = 10.0,
        flush_limit: float = 120.0,
        gzip: bool | None = None,
    ) -> None:
        raw_url = url or os.environ.get(ENV_URL)
        if not raw_url:
            raise ConfigError(
                f"No InfluxDB URL: pass url= (or --influx-url) or set {ENV_URL}, "
                "e.g. http://localhost:8086."
            )
        self.url, options = normalize_url(raw_url)
        self.token = token or options.get("token") or os.environ.get(ENV_TOKEN) or None
        self.org = org or options.get("org") or os.environ.get(ENV_ORG) or None
        self.bucket = (
            bucket or options.get("bucket") or os.environ.get(ENV_BUCKET) or "affectstream"
        )
        self.batch_size = int(batch_size)
        self.timeout = float(timeout)
        self.retry_interval = float(retry_interval)
        self.max_retry_delay = float(max_retry_delay)
        self.max_retries = int(max_retries)
        self.close_timeout = float(close_timeout)
        self.flush_limit = float(flush_limit)
        self.gzip = not is_loopback(self.url) if gzip is None else bool(gzip)
        if self.batch_size <= 0:
            raise ConfigError(f"batch_size must be > 0, got {batch_size!r}.")
        self.spool_dir = Path(spool_dir) if spool_dir else default_spool_dir(self.url, self.bucket)
        self.spool = Spool(
            self.spool_dir,
            max_bytes=spool_max_bytes,
            fsync=fsync,
            on_full=on_full,
            full_timeout=full_timeout,
        )
        self.rejections = Rejections()  # points refused for good, each set aside alone
        self._closed_pending = 0
        self._closed = False
        headers = {"Authorization": f"Token {self.token}"} if self.token else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=self.timeout)
        self._client: Any = None
        self._write_api: Any = None
        self.sender = SpoolSender(
            self.spool,
            self._send,
            url=self.url,
            bucket=self.bucket,
            spool_dir=self.spool_dir,
            batch_size=self.batch_size,
            retry_interval=self.retry_interval,
            max_retry_delay=self.max_retry_delay,
            max_retries=self.max_retries,
            on_refused=self.rejections.add,
        )
        self.sender.start()

    @property
    def last_error(self) -> str | None:
        """The sender's last failure (None while sends succeed)."""
        return self.sender.last_error

    @property
    def rejected_points(self) -> int:
        """Points refused for good since this store opened (see :meth:`delivery`)."""
        return self.rejections.count

    @property
    def n_sent_lines(self) -> int:
        """Lines the server acknowledged since this store opened."""
        return self.sender.n_sent_lines

    def __repr__(self) -> str:
        return (
            f"InfluxStore(url={self.url!r}, bucket={self.bucket!r}, spool_dir='{self.spool_dir}')"
        )

    # -- writing -------------------------------------------------------------------

    def write(self, batches: Iterable[SeriesBatch]) -> None:
        """Format batches as line protocol and spool them (the fast path).

        Returns once the points are in the spool (on disk per its fsync policy); sending
        happens in the background.

        Parameters
        ----------
        batches : iterable of SeriesBatch
            Points to write; a point written again (same series and timestamp) overwrites.
        """
        if isinstance(batches, SeriesBatch):
            batches = [batches]
        # Format everything first; a point that cannot be written (an infinite float, a
        # tag line protocol cannot carry) is set aside alone and counted, never its batch.
        payloads = [self._format(batch) for batch in batches]
        self._append_lines(b"".join(payloads))

    def _format(self, batch: SeriesBatch) -> bytes:
        """Line protocol of ``batch``; rows that cannot be formatted are rejected alone."""
        try:
            return batch_to_line_protocol(batch)[0]
        except StoreError as exc:
            n = len(batch)
            if n <= 1:
                when = f" at time_ns {int(batch.time_ns[0])}" if n else ""
                self.rejections.add(n, f"{batch.measurement} point{when}: {exc}")
                return b""
            # Halving finds the bad rows in O(bad * log n) formatting calls (a rare path).
            half = n // 2
            return self._format(_rows(batch, slice(0, half))) + self._format(
                _rows(batch, slice(half, n))
            )

    def delivery(self) -> DeliveryReport:
        """Points refused for good and bytes still only in the spool.

        Returns
        -------
        DeliveryReport
        """
        pending = self._closed_pending if self.spool.closed else self.spool.pending_bytes
        where = f"in {self.spool_dir} for InfluxDB at {self.url}, sent when a store reopens it"
        return self.rejections.report(pending, where)

    def write_line_protocol(self, lines: bytes | str | Iterable[str]) -> None:
        """Spool pre-formatted line protocol with nanosecond timestamps.

        Parameters
        ----------
        lines : bytes, str or iterable of str
            Lines (newline-separated when given as one ``bytes``/``str``).
        """
        if isinstance(lines, str):
            payload = lines.encode()
        elif isinstance(lines, bytes):
            payload = lines
        else:
            payload = "\n".join(lines).encode()
        if payload and not payload.endswith(b"\n"):
            payload += b"\n"
        self._append_lines(payload)

    def write_points(self, points: Iterable[Any]) -> None:
        """Spool influxdb-client ``Point`` objects (the slower, object-per-point path).

        Parameters
        ----------
        points : iterable of influxdb_client.Point
            Points with nanosecond precision (the ``Point`` default).
        """
        from influxdb_client.domain.write_precision import WritePrecision

        lines = []
        for point in points:
            if point._write_precision != WritePrecision.NS:
                raise StoreError(
                    f"Point {point!r} has write precision {point._write_precision!r}; this "
                    "store sends nanoseconds: build points with WritePrecision.NS (default)."
                )
            lines.append(point.to_line_protocol())
        self.write_line_protocol(lines)

    def _append_lines(self, payload: bytes) -> None:
        if not payload:
            return
        try:
            # All chunks or none: a retried write never spools its first chunks twice.
            self.spool.append_many(_split_lines(payload, self.batch_size))
        except SpoolFullError as exc:
            raise SpoolFullError(
                f"{exc} (InfluxDB at {self.url}, bucket {self.bucket!r}; last error: "
                f"{self.last_error or 'none'}.)"
            ) from exc

    # -- sending -------------------------------------------------------------------

    def _ensure_write_api(self) -> Any:
        if self._write_api is None:
            from influxdb_client.client.influxdb_client import InfluxDBClient
            from influxdb_client.client.write_api import SYNCHRONOUS

            self._client = InfluxDBClient(
                url=self.url,
                token=self.token or "",
                org=self.org or "-",
                timeout=int(self.timeout * 1000),
                enable_gzip=self.gzip,
                retries=False,  # retries and backoff happen in _send_loop, interruptibly
            )
            if self.gzip:
                _use_fast_gzip(self._client)
            self._write_api = self._client.write_api(write_options=SYNCHRONOUS)
        return self._write_api

    def _send(self, payload: bytes) -> None:
        from influxdb_client.domain.write_precision import WritePrecision

        self._ensure_write_api().write(
            bucket=self.bucket,
            org=self.org or "-",
            record=payload,
            write_precision=WritePrecision.NS,
        )

    def flush(self, timeout: float | None = None, limit: float | None = None) -> None:
        """Wait until everything written so far is acknowledged by the server.

        Waits as long as the server keeps acknowledging batches (a slow or loaded server
        is not a failure), up to ``limit`` seconds; gives up once nothing moved for
        ``timeout`` seconds.

        Parameters
        ----------
        timeout : float, optional
            Seconds without any acknowledged batch after which the flush gives up
            (default ``close_timeout``).
        limit : float, optional
            Seconds in all after which it gives up (default ``flush_limit``;
            ``math.inf``: wait while the server acknowledges).

        Raises
        ------
        StoreUnavailableError
            Not everything was acknowledged in time (or the sender stopped); says how
            many bytes stay in the spool, which the next store opened on it sends.
        """
        self.sender.flush(
            self.close_timeout if timeout is None else float(timeout),
            self.flush_limit if limit is None else float(limit),
        )

    @property
    def pending_bytes(self) -> int:
        """Bytes waiting in the spool for the server."""
        return self.spool.pending_bytes

    def close(self) -> None:
        """Flush (see :meth:`flush`, ``close_timeout``), then stop; unsent data stays spooled.

        Against a server that takes nothing (dead, refusing, hung) it blocks at most
        ``close_timeout`` plus one request ``timeout`` (+1 s); one that keeps acknowledging
        is waited for until the spool is drained, at most ``flush_limit``. What was not
        acknowledged stays in the spool and is sent first by the next store opened on it.
        """
        if self._closed:
            return
        self._closed = True
        try:
            self.flush()
        except StoreUnavailableError as exc:
            logger.warning("%s", exc)
        finally:  # whatever the flush raised, the thread stops and the spool is unlocked
            # A request in flight ends within `timeout`; the thread is a daemon either way.
            self.sender.stop(self.timeout + 1.0)
            self._closed_pending = self.spool.pending_bytes
            self.spool.close()
            self._http.close()
            if self._client is not None:
                self._client.close()

    def delete_session(self, session: str) -> None:
        """Delete every point of a session (after sending what is spooled).

        Uses InfluxQL ``DROP SERIES`` (1.x); on 2.x, where ``/query`` is read-only, the
        ``/api/v2/delete`` API through influxdb-client.

        Parameters
        ----------
        session : str
            Session id.
        """
        self.flush()
        statement = f"DROP SERIES{where_clause({'session': session})}"
        try:
            self._execute(statement)
            return
        except StoreUnavailableError:
            raise
        except StoreError as influxql_error:
            if not self.org:
                raise
            logger.debug("DROP SERIES refused (%s); trying /api/v2/delete", influxql_error)
        self._ensure_write_api()
        try:
            self._client.delete_api().delete(
                start="1970-01-01T00:00:00Z",
                stop="2262-04-11T00:00:00Z",
                predicate=delete_predicate(session),
                bucket=self.bucket,
                org=self.org,
            )
        except (*server_errors(), *connection_errors()) as exc:  # reported with what to do
            raise StoreError(
                f"Could not delete session {session!r} on {self.url}: {describe_error(exc)}; "
                "the token needs write permission on the bucket."
            ) from exc


def _use_fast_gzip(client: Any) -> None:
    """Make influxdb-client gzip write bodies at level 1 instead of 9.

    Level 9 costs several times the CPU of level 1 for a few percent smaller line
    protocol, and on a small machine it, not the server, limits throughput. Uses the
    client's request-body hook; if a future client lacks it, its own gzip stays in use.
    """
    conf = getattr(client, "conf", None)
    original = getattr(conf, "update_request_body", None)
    if conf is None or original is None:
        return

    def update_request_body(path: str, body: Any) -> Any:
        if path != "/api/v2/write":
            return original(path, body)
        data = body if isinstance(body, bytes) else str(body).encode()
        return gzip.compress(data, compresslevel=1)

    conf.update_request_body = update_request_body


def _rows(batch: SeriesBatch, rows: slice) -> SeriesBatch:
    """Rows ``rows`` of ``batch`` as a batch of their own."""
    return SeriesBatch(
        batch.measurement,
        batch.tags,
        batch.time_ns[rows],
        {name: values[rows] for name, values in batch.fields.items()},
    )


def _split_lines(payload: bytes, max_lines: int) -> list[bytes]:
    """Split newline-terminated lines into chunks of at most ``max_lines`` lines."""
    ends = np.flatnonzero(np.frombuffer(payload, dtype=np.uint8) == 10)
    if len(ends) <= max_lines:
        return [payload]
    cuts = [0, *(int(ends[i]) + 1 for i in range(max_lines - 1, len(ends), max_lines))]
    if cuts[-1] != len(payload):
        cuts.append(len(payload))
    return [payload[a:b] for a, b in itertools.pairwise(cuts)]
