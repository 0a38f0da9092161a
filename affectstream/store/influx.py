"""InfluxDB backend: writes through influxdb-client via a durable spool, reads with InfluxQL.

Writing: :meth:`InfluxStore.write` formats each :class:`SeriesBatch` as line protocol
(vectorised, see :mod:`affectstream.store.influx_lineprotocol`), appends it to the local
:class:`~affectstream.store.spool.Spool` and returns; a background thread sends the spool
in order through influxdb-client's write API (``/api/v2/write``, ns precision; gzip unless
the server is on this machine) in batches of about ``batch_size`` lines and advances the
spool's cursor after each acknowledged batch. A slow or absent server therefore never
blocks the caller (until the spool's size bound is reached) and loses nothing: failed
sends are retried with exponential backoff and jitter (``retry_interval`` doubling up to
``max_retry_delay``); after ``max_retries`` consecutive failures a warning says the server
is unavailable, and the data keeps waiting on disk, retried every ``max_retry_delay``
seconds until it is accepted.
A batch the server refuses for good (HTTP 400: malformed line, field-type conflict; 413)
is moved to ``<spool>/rejected/`` with the server's message and an error log, never
silently dropped. :meth:`InfluxStore.close` waits at most ``close_timeout`` seconds; what
is still unsent stays in the spool and is sent by the next store opened on it.

Reading: InfluxQL over ``GET /query`` (``epoch=ns``), with an ``Authorization: Token``
header when a token is given, so one code path serves InfluxDB 1.8+, 2.x (through its DBRP
mapping of the bucket) and 3.x. InfluxDB 1.6/1.7 serve reads natively; their writes need
``/api/v2/write`` (1.8+), which the tests provide for 1.6.7 through a small proxy.

VictoriaMetrics accepts the same writes (``/api/v2/write``) but answers no InfluxQL, so
with it this store is a write-only target; read it back with its own ``/api/v1/export``.
Note two server properties there: timestamps are floored to milliseconds, and a point sent
twice is kept twice unless the server runs with ``-dedup.minScrapeInterval=1ms`` (the test
fixture does), so a spool replay may duplicate samples on a VictoriaMetrics without it.

Configuration: arguments, else the environment variables ``AFFECTSTREAM_INFLUX_URL``,
``AFFECTSTREAM_INFLUX_TOKEN``, ``AFFECTSTREAM_INFLUX_ORG``, ``AFFECTSTREAM_INFLUX_BUCKET``
and ``AFFECTSTREAM_SPOOL_DIR``. On InfluxDB 1.x the bucket is the database (optionally
``database/retention_policy``) and a token may be ``username:password``.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.client
import ipaddress
import itertools
import json
import logging
import os
import re
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

import httpx
import numpy as np
import pandas as pd

from affectstream.backoff import backoff_delay
from affectstream.errors import ConfigError, StoreError, StoreUnavailableError
from affectstream.ids import check_id
from affectstream.redact import redact_url
from affectstream.store.base import (
    TAG_KEYS,
    DeliveryReport,
    SeriesBatch,
    SessionInfo,
    TimeSeriesStore,
    check_measurement,
    check_tags,
)
from affectstream.store.influx_lineprotocol import batch_to_line_protocol
from affectstream.store.spool import FsyncPolicy, FullPolicy, Spool, SpoolBatch, SpoolFullError

logger = logging.getLogger(__name__)

ENV_URL = "AFFECTSTREAM_INFLUX_URL"
ENV_TOKEN = "AFFECTSTREAM_INFLUX_TOKEN"
ENV_ORG = "AFFECTSTREAM_INFLUX_ORG"
ENV_BUCKET = "AFFECTSTREAM_INFLUX_BUCKET"
ENV_SPOOL_DIR = "AFFECTSTREAM_SPOOL_DIR"

_URL_SCHEMES = {"influx": "http", "influxdb": "http", "influx+http": "http"}
_URL_SCHEMES.update({"influx+https": "https", "influxdb+https": "https"})
_PERMANENT_STATUSES = {400, 413, 422}
_CONFIG_STATUSES = {401, 403, 404}


def normalise_url(url: str) -> tuple[str, dict[str, str]]:
    """Return the HTTP base URL and the query options (bucket, org, token) of a store URL.

    Accepts ``http(s)://host:port`` and ``influx://``, ``influxdb://``, ``influx+http(s)://``
    forms; a query string may carry ``bucket``, ``org`` and ``token``.

    Parameters
    ----------
    url : str
        Store URL.

    Returns
    -------
    base_url : str
    options : dict of str to str
    """
    parts = urlsplit(url)
    scheme = _URL_SCHEMES.get(parts.scheme, parts.scheme)
    if scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"InfluxDB URL {redact_url(url)!r} is not usable: expected http://host:port (or "
            f"https://, influx://) as the url argument or {ENV_URL}."
        )
    options = {
        k: v[-1] for k, v in parse_qs(parts.query).items() if k in ("bucket", "org", "token")
    }
    netloc = parts.netloc
    if "@" in netloc:
        # user:password@host becomes the 1.x token "user:password"; the base URL kept (and
        # shown in messages) never holds a credential.
        userinfo, _, netloc = netloc.rpartition("@")
        options.setdefault("token", unquote(userinfo))
    base = urlunsplit((scheme, netloc, parts.path.rstrip("/"), "", ""))
    return base, options


def is_loopback(url: str) -> bool:
    """Return True if ``url`` names a server on this machine (a loopback host).

    Parameters
    ----------
    url : str
        HTTP base URL.

    Returns
    -------
    bool
    """
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def default_spool_dir(url: str, bucket: str) -> Path:
    """Return the default spool directory for a server URL and bucket.

    ``$AFFECTSTREAM_SPOOL_DIR/<key>`` if that is set, else ``spool/<key>`` next to the
    embedded store (``$AFFECTSTREAM_HOME``, default ``~/.affectstream``); one ``<key>``
    per URL and bucket, so two servers never share a spool.

    Parameters
    ----------
    url : str
        Server base URL.
    bucket : str
        Bucket (database) name.

    Returns
    -------
    Path
    """
    override = os.environ.get(ENV_SPOOL_DIR)
    if override:
        root = Path(override).expanduser()
    else:
        home = os.environ.get("AFFECTSTREAM_HOME")
        root = (Path(home).expanduser() if home else Path.home() / ".affectstream") / "spool"
    key = hashlib.sha256(f"{url}\n{bucket}".encode()).hexdigest()[:16]
    return root / f"influx-{key}"


def influxql_identifier(name: str) -> str:
    """Quote an InfluxQL identifier (measurement, field or tag key).

    Parameters
    ----------
    name : str
        Identifier.

    Returns
    -------
    str
    """
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def influxql_string(value: str) -> str:
    """Quote an InfluxQL string literal (a tag value).

    Parameters
    ----------
    value : str
        Literal.

    Returns
    -------
    str
    """
    # InfluxQL's scanner reads \\, \' and \n escapes; a raw line break ends the statement.
    escaped = value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
    return "'" + escaped + "'"


def delete_predicate(session: str) -> str:
    """The InfluxDB 2.x ``/api/v2/delete`` predicate selecting one session.

    The id is validated (:func:`affectstream.ids.check_id`) and quoted, never pasted in.

    Parameters
    ----------
    session : str
        Session id.

    Returns
    -------
    str
    """
    value = check_id(session, "session")
    return 'session="' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


_UNESCAPED_COMMA = re.compile(r"(?<!\\),")
_UNESCAPED_EQUALS = re.compile(r"(?<!\\)=")


def _unescape_key(text: str) -> str:
    """Undo line-protocol escaping of a key or tag value (other backslashes are literal)."""
    return text.replace("\\,", ",").replace("\\=", "=").replace("\\ ", " ")


def parse_series_key(key: str) -> tuple[str, dict[str, str]]:
    """Parse a series key as ``SHOW SERIES`` prints it: ``measurement,tag=value,...``.

    Parameters
    ----------
    key : str
        Escaped series key.

    Returns
    -------
    measurement : str
    tags : dict of str to str
    """
    measurement, *pairs = _UNESCAPED_COMMA.split(key)
    tags: dict[str, str] = {}
    for pair in pairs:
        name, value = _UNESCAPED_EQUALS.split(pair, maxsplit=1)
        tags[_unescape_key(name)] = _unescape_key(value)
    return _unescape_key(measurement), tags


class InfluxStore(TimeSeriesStore):
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
        Seconds :meth:`close` waits for the spool to drain.
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
        gzip: bool | None = None,
    ) -> None:
        raw_url = url or os.environ.get(ENV_URL)
        if not raw_url:
            raise ConfigError(
                f"No InfluxDB URL: pass url= (or --influx-url) or set {ENV_URL}, "
                "e.g. http://localhost:8086."
            )
        self.url, options = normalise_url(raw_url)
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
        self.last_error: str | None = None
        self.n_sent_lines = 0
        self.rejected_points = 0  # refused for good, each set aside alone
        self._closed_pending = 0
        self._last_rejection = ""
        self._consecutive_failures = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        headers = {"Authorization": f"Token {self.token}"} if self.token else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=self.timeout)
        self._client: Any = None
        self._write_api: Any = None
        self._sender = threading.Thread(
            target=self._send_loop, name=f"influx-spool-sender {self.url}", daemon=True
        )
        self._sender.start()

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
                self._reject_points(n, f"{batch.measurement} point{when}: {exc}")
                return b""
            # Halving finds the bad rows in O(bad * log n) formatting calls (a rare path).
            half = n // 2
            return self._format(_rows(batch, slice(0, half))) + self._format(
                _rows(batch, slice(half, n))
            )

    def _reject_points(self, n_points: int, message: str) -> None:
        with self._lock:
            self.rejected_points += n_points
            self._last_rejection = message
        logger.error("%s; not stored, the other points go on.", message)

    def delivery(self) -> DeliveryReport:
        """Points refused for good and bytes still only in the spool.

        Returns
        -------
        DeliveryReport
        """
        with self._lock:
            rejected, last = self.rejected_points, self._last_rejection
        pending = self._closed_pending if self.spool.closed else self.spool.pending_bytes
        where = f"in {self.spool_dir} for InfluxDB at {self.url}, sent when a store reopens it"
        return DeliveryReport(rejected, pending, last, where)

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

    def _send_isolating(self, payload: bytes, refused: list[tuple[bytes, str]]) -> None:
        """Send ``payload``; on a permanent refusal split it until the bad lines stand alone.

        A 400 (one malformed line, a field-type conflict) or a 413 (too large) refuses a
        whole request; halving it isolates the lines at fault in log2(lines) extra requests,
        so one bad point never costs its batch. Resending an accepted half after a
        transient failure is harmless: points overwrite.
        """
        try:
            self._send(payload)
        except _server_errors() as exc:
            status = int(getattr(exc, "status", 0) or 0)
            if status not in _PERMANENT_STATUSES:
                raise
            lines = payload.splitlines(keepends=True)
            if len(lines) <= 1:
                refused.append((payload, f"HTTP {status}: {_describe(exc)}"))
                return
            half = len(lines) // 2
            logger.info(
                "InfluxDB at %s refused %d lines (HTTP %d); splitting the request.",
                self.url,
                len(lines),
                status,
            )
            self._send_isolating(b"".join(lines[:half]), refused)
            self._send_isolating(b"".join(lines[half:]), refused)

    def _send_loop(self) -> None:
        max_payload = self.batch_size * 200  # bytes: about batch_size typical lines
        while not self._stop.is_set():
            try:
                batch = self.spool.read_batch(max_payload)
                if batch is None:
                    self.spool.wait_for_data(0.5)
                    continue
                self._deliver(batch)
            except (OSError, StoreError) as exc:  # e.g. a full disk: keep the sender alive
                self.last_error = str(exc)
                logger.error("Spool sender for %s: %s; retrying.", self.url, exc, exc_info=True)
                self._stop.wait(self.max_retry_delay)
            except BaseException as exc:
                # A bug, not the server or the disk: retrying it would loop forever. Stop
                # sending (the data stays in the spool), say so, and let the traceback show.
                self.last_error = f"spool sender stopped by an unexpected error: {exc!r}"
                raise

    def _deliver(self, batch: SpoolBatch) -> None:
        """Send one batch until it is acknowledged (bad lines set aside) or the store stops."""
        while not self._stop.is_set():
            refused: list[tuple[bytes, str]] = []
            try:
                self._send_isolating(batch.payload, refused)
            except _transient_errors() as exc:  # the batch is never lost
                self._record_failure(int(getattr(exc, "status", 0) or 0), _describe(exc))
                continue
            if refused:
                lines = b"".join(line for line, _ in refused)
                reasons = "\n".join(f"{line!r}: {reason}" for line, reason in refused)
                path = self.spool.reject(batch, reasons, payload=lines)
                self.last_error = refused[-1][1]
                self._reject_points(
                    len(refused),
                    f"InfluxDB at {self.url} refused {len(refused)} point(s) ({refused[0][1]}); "
                    f"saved to {path}",
                )
            else:
                self.spool.ack(batch)
            self.n_sent_lines += batch.payload.count(b"\n") - len(refused)
            if self._consecutive_failures:
                logger.warning(
                    "InfluxDB at %s accepts writes again after %d failed attempts; "
                    "sending the spooled backlog (%d bytes).",
                    self.url,
                    self._consecutive_failures,
                    self.spool.pending_bytes,
                )
            self._consecutive_failures = 0
            if not refused:
                self.last_error = None
            return

    def _record_failure(self, status: int, message: str) -> None:
        self._consecutive_failures += 1
        failures = self._consecutive_failures
        self.last_error = f"HTTP {status}: {message}" if status else message
        hint = {
            401: "check the token (AFFECTSTREAM_INFLUX_TOKEN)",
            403: "the token lacks write permission on the bucket",
            404: f"create the bucket/database {self.bucket!r} or fix {ENV_BUCKET} / {ENV_ORG}",
        }.get(status, "is the server running and reachable?")
        delay = backoff_delay(failures - 1, self.retry_interval, self.max_retry_delay)
        if failures == 1 or failures == self.max_retries or status in _CONFIG_STATUSES:
            log = logger.error if status in _CONFIG_STATUSES else logger.warning
            log(
                "Write to InfluxDB at %s failed (%s; %s); %d bytes wait in the spool %s "
                "and are retried%s.",
                self.url,
                self.last_error,
                hint,
                self.spool.pending_bytes,
                self.spool_dir,
                f" every {self.max_retry_delay:.0f} s from now on (server unavailable)"
                if failures >= self.max_retries
                else f" in {delay:.2f} s",
            )
        self._stop.wait(delay)

    def flush(self, timeout: float | None = None) -> None:
        """Wait until everything written so far is acknowledged by the server.

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait (default ``close_timeout``).

        Raises
        ------
        StoreUnavailableError
            The server did not take the data in time; it stays in the spool.
        """
        wait = self.close_timeout if timeout is None else float(timeout)
        if not self.spool.wait_until_empty(wait):
            raise StoreUnavailableError(
                f"InfluxDB at {self.url} (bucket {self.bucket!r}) did not take the spooled "
                f"data within {wait:g} s (last error: {self.last_error or 'none, still sending'}); "
                f"{self.spool.pending_bytes} bytes stay safe in {self.spool_dir} and are sent "
                "when the server answers. Check that it runs and the URL/token/bucket are right."
            )

    @property
    def pending_bytes(self) -> int:
        """Bytes waiting in the spool for the server."""
        return self.spool.pending_bytes

    def close(self) -> None:
        """Flush for at most ``close_timeout`` seconds, then stop; unsent data stays spooled.

        Never blocks for long against a dead or slow server: at most ``close_timeout``
        plus one request ``timeout`` (+1 s). What was not acknowledged stays in the spool
        and is sent first by the next store opened on it.
        """
        if self._stop.is_set():
            return
        try:
            self.flush()
        except StoreUnavailableError as exc:
            logger.warning("%s", exc)
        self._stop.set()
        # A request in flight ends within `timeout`; the thread is a daemon either way.
        self._sender.join(self.timeout + 1.0)
        self._closed_pending = self.spool.pending_bytes
        self.spool.close()
        self._http.close()
        if self._client is not None:
            self._client.close()

    # -- reading -------------------------------------------------------------------

    def ping(self) -> bool:
        """Return True if the server answers ``/ping`` (``health()`` fails on 1.x).

        Returns
        -------
        bool
        """
        try:
            return self._http.get("/ping").status_code in (200, 204)
        except httpx.HTTPError:
            return False

    def query(self, influxql: str) -> list[dict[str, Any]]:
        """Run InfluxQL on the bucket and return its series (``name``, ``tags``, ``columns``,
        ``values``), with nanosecond integer times.

        Parameters
        ----------
        influxql : str
            One InfluxQL statement.

        Returns
        -------
        list of dict
        """
        database, _, policy = self.bucket.partition("/")
        params = {"db": database, "q": influxql, "epoch": "ns"}
        if policy:
            params["rp"] = policy
        try:
            response = self._http.get("/query", params=params)
        except httpx.HTTPError as exc:
            raise StoreUnavailableError(
                f"InfluxDB at {self.url} cannot be reached for a query ({_describe(exc)}); "
                f"check that it runs and that {ENV_URL} is right."
            ) from exc
        return self._parse_query_response(response, influxql)

    def _parse_query_response(
        self, response: httpx.Response, influxql: str
    ) -> list[dict[str, Any]]:
        if response.status_code in (401, 403):
            raise StoreError(
                f"InfluxDB at {self.url} refused the query (HTTP {response.status_code}): "
                f"check the token ({ENV_TOKEN}) and its read permission on {self.bucket!r}."
            )
        try:
            body = response.json()
        except json.JSONDecodeError:
            body = None
        if response.status_code >= 400 or not isinstance(body, dict):
            detail = body.get("error") if isinstance(body, dict) else response.text[:200]
            raise StoreError(
                f"InfluxDB at {self.url} answered HTTP {response.status_code} to {influxql!r}: "
                f"{detail}. Check the bucket/database {self.bucket!r} (on 2.x it needs a DBRP "
                "mapping for InfluxQL)."
            )
        series: list[dict[str, Any]] = []
        for result in body.get("results", []):
            if "error" in result:
                raise StoreError(
                    f"InfluxDB at {self.url} rejected {influxql!r}: {result['error']}."
                )
            series.extend(result.get("series", []))
        if any(s.get("name") == "databases" for s in series) and "DATABASES" not in influxql:
            # VictoriaMetrics answers every /query with a fixed database list (for Telegraf).
            raise StoreError(
                f"The server at {self.url} answered {influxql!r} with a database list: it "
                "does not speak InfluxQL (VictoriaMetrics does this). It can take writes; "
                "read from it with its own API (/api/v1/export), or use InfluxDB."
            )
        return series

    def _execute(self, influxql: str) -> None:
        """Run a statement that changes data (POST /query)."""
        database, _, _policy = self.bucket.partition("/")
        try:
            response = self._http.post("/query", params={"db": database, "q": influxql})
        except httpx.HTTPError as exc:
            raise StoreUnavailableError(
                f"InfluxDB at {self.url} cannot be reached ({_describe(exc)})."
            ) from exc
        self._parse_query_response(response, influxql)

    def read(
        self,
        measurement: str,
        *,
        tags: Mapping[str, str] | None = None,
        start_ns: int | None = None,
        stop_ns: int | None = None,
        fields: Iterable[str] | None = None,
    ) -> pd.DataFrame:
        """Read points of one measurement with InfluxQL (see TimeSeriesStore.read).

        Points still in the spool are not visible yet: call :meth:`flush` first to read
        your own writes.

        Parameters
        ----------
        measurement : str
            Measurement name.
        tags : mapping, optional
            Tag values that must match exactly.
        start_ns, stop_ns : int, optional
            Keep points with ``start_ns <= time_ns < stop_ns``.
        fields : iterable of str, optional
            Fields to return (all by default).

        Returns
        -------
        pandas.DataFrame
        """
        check_measurement(measurement)
        wanted = check_tags(dict(tags or {}), repr(measurement))
        field_list = list(fields) if fields is not None else None
        select = ", ".join(influxql_identifier(f) for f in field_list) if field_list else "*"
        conditions = [f"{influxql_identifier(k)} = {influxql_string(v)}" for k, v in wanted.items()]
        if start_ns is not None:
            conditions.append(f"time >= {int(start_ns)}")
        if stop_ns is not None:
            conditions.append(f"time < {int(stop_ns)}")
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        statement = f"SELECT {select} FROM {influxql_identifier(measurement)}{where} GROUP BY *"
        return _series_to_frame(self.query(statement), field_list, self.field_types(measurement))

    def field_types(self, measurement: str) -> dict[str, str]:
        """Return the stored type of each field of a measurement (``SHOW FIELD KEYS``).

        Parameters
        ----------
        measurement : str
            Measurement name.

        Returns
        -------
        dict of str to str
            Field name to ``"float"``, ``"integer"``, ``"string"`` or ``"boolean"``.
        """
        found: dict[str, str] = {}
        for block in self.query(f"SHOW FIELD KEYS FROM {influxql_identifier(measurement)}"):
            for name, kind in block.get("values", []):
                found[name] = kind
        return found

    def count(self, measurement: str, field: str, tags: Mapping[str, str] | None = None) -> int:
        """Count stored values of one field (server-side), e.g. to account for every point.

        Parameters
        ----------
        measurement : str
            Measurement name.
        field : str
            Field to count.
        tags : mapping, optional
            Tag values that must match.

        Returns
        -------
        int
        """
        where = _where(check_tags(dict(tags or {}), repr(measurement)))
        target = f"COUNT({influxql_identifier(field)}) FROM {influxql_identifier(measurement)}"
        series = self.query(f"SELECT {target}{where}")
        return int(sum(row[1] for s in series for row in s.get("values", [])))

    def series(self, session: str | None = None) -> list[tuple[str, dict[str, str]]]:
        """List stored series as (measurement, tags), optionally for one session.

        Parameters
        ----------
        session : str, optional
            Restrict to this session.

        Returns
        -------
        list of (str, dict)
        """
        where = _where({"session": session} if session else {})
        found = []
        for block in self.query(f"SHOW SERIES{where}"):
            for row in block.get("values", []):
                found.append(parse_series_key(row[0]))
        return sorted(found, key=lambda item: (item[0], sorted(item[1].items())))

    def sessions(self) -> list[SessionInfo]:
        """List stored sessions with their participant, time span and number of points.

        Returns
        -------
        list of SessionInfo
        """
        grouped = f"GROUP BY {influxql_identifier('session')}, {influxql_identifier('participant')}"
        start: dict[tuple[str, str], int] = {}
        stop: dict[tuple[str, str], int] = {}
        for order, target in (("ASC", start), ("DESC", stop)):
            for block in self.query(f"SELECT * FROM /.*/ {grouped} ORDER BY time {order} LIMIT 1"):
                tags = block.get("tags") or {}
                key = (tags.get("session", ""), tags.get("participant", ""))
                for row in block.get("values", []):
                    pick = min if order == "ASC" else max
                    target[key] = pick(target.get(key, row[0]), int(row[0]))
        points: dict[tuple[str, str], int] = {}
        for block in self.query(f"SELECT COUNT(*) FROM /.*/ {grouped}"):
            tags = block.get("tags") or {}
            key = (tags.get("session", ""), tags.get("participant", ""))
            for row in block.get("values", []):
                # Fields of one point are counted separately: the largest count is a lower
                # bound of the points of that measurement, exact when no field is missing.
                points[key] = points.get(key, 0) + max((int(v) for v in row[1:] if v), default=0)
        infos = [
            SessionInfo(
                session=session,
                participant=participant,
                start_ns=start[(session, participant)],
                stop_ns=stop[(session, participant)] + 1,
                n_points=points.get((session, participant), 0),
            )
            for session, participant in start
            if session
        ]
        return sorted(infos, key=lambda info: (info.start_ns, info.session))

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
        statement = f"DROP SERIES{_where({'session': session})}"
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
        except _transient_errors() as exc:  # reported with what to do
            raise StoreError(
                f"Could not delete session {session!r} on {self.url}: {_describe(exc)}; "
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


def _where(tags: Mapping[str, str]) -> str:
    """Return `` WHERE "tag" = 'value' AND ...`` for exact tag matches (or nothing)."""
    conditions = [f"{influxql_identifier(k)} = {influxql_string(v)}" for k, v in tags.items()]
    return f" WHERE {' AND '.join(conditions)}" if conditions else ""


@functools.cache
def _server_errors() -> tuple[type[Exception], ...]:
    """Errors that are an InfluxDB answer (an HTTP status from the server)."""
    from influxdb_client.client.exceptions import InfluxDBError

    return (InfluxDBError,)


@functools.cache
def _transient_errors() -> tuple[type[Exception], ...]:
    """Errors worth retrying: a server answer, a connection or protocol error, a timeout.

    Anything else (a TypeError from a bug, say) is not caught, so it surfaces with its
    traceback instead of being retried forever.
    """
    from urllib3.exceptions import HTTPError as Urllib3Error

    return (*_server_errors(), Urllib3Error, http.client.HTTPException, OSError)


def _describe(exc: BaseException) -> str:
    """One-line description of a client or HTTP error."""
    body = getattr(exc, "body", None)
    if body:
        try:
            text = str(json.loads(body).get("error") or json.loads(body).get("message") or body)
        except (ValueError, AttributeError):
            text = str(body)
        return redact_url(text[:300])
    reason = getattr(exc, "reason", None)
    text = str(reason or exc) or type(exc).__name__
    return redact_url(text[:300])


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


def _series_to_frame(
    series: list[dict[str, Any]], fields: list[str] | None, field_types: Mapping[str, str]
) -> pd.DataFrame:
    """Turn InfluxQL ``GROUP BY *`` series into the read() frame of the base interface."""
    tag_keys = [k for k in TAG_KEYS if any((s.get("tags") or {}).get(k) for s in series)]
    if fields is None:
        seen: dict[str, None] = {}
        for block in series:
            seen.update((column, None) for column in block["columns"] if column != "time")
        field_names = list(seen)
    else:
        field_names = list(fields)
    frames = []
    for block in series:
        columns = ["time_ns" if c == "time" else c for c in block["columns"]]
        # object dtype: keep JSON ints exact (a float64 detour would round big ints)
        frame = pd.DataFrame(block.get("values", []), columns=columns, dtype=object)
        for key in tag_keys:
            frame[key] = (block.get("tags") or {}).get(key, "")
        frames.append(frame)
    ordered = ["time_ns", *tag_keys, *field_names]
    if frames:
        frame = pd.concat(frames, ignore_index=True)
    else:
        frame = pd.DataFrame({name: pd.Series(dtype=object) for name in ordered})
    for name in ordered:
        if name not in frame:
            frame[name] = None
    frame = frame[ordered]
    if field_names:
        frame = frame.dropna(subset=field_names, how="all")
    frame = frame.astype({"time_ns": np.int64})
    frame = frame.sort_values("time_ns", kind="stable").reset_index(drop=True)
    for name in tag_keys:
        frame[name] = frame[name].astype(str)
    for name in field_names:
        frame[name] = _typed_column(frame[name], field_types.get(name, "float"))
    return frame


def _typed_column(column: pd.Series, kind: str) -> pd.Series:
    """Give a field column the dtype the base interface promises for its stored type."""
    gaps = bool(column.isna().any())
    if kind == "integer":
        return column.astype("Int64") if gaps else column.astype(np.int64)
    if kind == "boolean":
        return column.astype("boolean") if gaps else column.astype(bool)
    if kind == "string":
        return column.astype(object).where(column.notna(), None)
    # JSON writes whole floats without a decimal point; float64 holds every float exactly.
    return pd.to_numeric(column, errors="coerce").astype(np.float64)
