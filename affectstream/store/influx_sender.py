"""The InfluxDB backend's sender: drains the spool to the server in order, never losing data.

:class:`SpoolSender` runs one background thread. It reads a batch from the
:class:`~affectstream.store.spool.Spool`, sends it with the store's ``send`` callable and
advances the spool's cursor once the server acknowledged it. What happens on failure
depends on what failed:

- **Retried** (the batch stays at the head of the spool; exponential backoff with jitter,
  :func:`affectstream.backoff.backoff_delay`): connection and protocol errors, timeouts,
  HTTP 408, 429 and 5xx, and the answers that an operator fixes on the server without
  restarting this process — 401/403 (token) and 404 (bucket/database missing), logged
  as errors with what to do. A full disk under the spool (``ENOSPC``, ``EDQUOT``,
  ``EFBIG``) is retried too: space comes back.
- **Refused for good** (HTTP 400, 413, 422: a malformed line, a field-type conflict, too
  large): the request is halved until the lines at fault stand alone; they are moved to
  ``<spool>/rejected/`` and counted, the rest is sent.
- **Anything else stops the sender** with the data still in the spool: another HTTP
  status (the URL does not name an InfluxDB), another spool error, or a bug (a
  ``TypeError``...). Retrying those would loop forever; instead the error is logged (a bug
  with its traceback, through :func:`threading.excepthook`), ``last_error`` says what
  happened and :meth:`SpoolSender.flush` fails at once. The next store opened on the
  spool sends the data.
"""

from __future__ import annotations

import functools
import http.client
import json
import logging
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path

from affectstream.backoff import backoff_delay
from affectstream.errors import StoreUnavailableError
from affectstream.redact import redact_url
from affectstream.store.influx_config import ENV_BUCKET, ENV_ORG, ENV_TOKEN
from affectstream.store.spool import Spool, SpoolBatch
from affectstream.store.spool_segments import is_disk_full

logger = logging.getLogger(__name__)

#: A request refused for good: the lines at fault are isolated and set aside.
PERMANENT_STATUSES = frozenset({400, 413, 422})
#: Fixed on the server (token, bucket) while this process keeps retrying.
CONFIG_STATUSES = frozenset({401, 403, 404})
#: The server is busy or failing for now.
BUSY_STATUSES = frozenset({408, 429})


class SenderStoppedError(StoreUnavailableError):
    """The sender met an error retrying cannot fix; the data stays in the spool."""


def is_retryable_status(status: int) -> bool:
    """True if a request answered with HTTP ``status`` is worth sending again unchanged.

    Parameters
    ----------
    status : int
        HTTP status of the answer; 0 for an InfluxDB client error without an answer (an
        organisation the client could not look up, which the server's owner fixes).

    Returns
    -------
    bool
    """
    return status == 0 or status in CONFIG_STATUSES or status in BUSY_STATUSES or status >= 500


@functools.cache
def server_errors() -> tuple[type[Exception], ...]:
    """Errors that are an InfluxDB answer (an HTTP status from the server).

    Returns
    -------
    tuple of exception types
    """
    from influxdb_client.client.exceptions import InfluxDBError

    return (InfluxDBError,)


@functools.cache
def connection_errors() -> tuple[type[Exception], ...]:
    """Errors of reaching the server: connection, protocol, timeout (no answer at all).

    Returns
    -------
    tuple of exception types
    """
    from urllib3.exceptions import HTTPError as Urllib3Error

    return (Urllib3Error, http.client.HTTPException, ConnectionError, TimeoutError)


def status_of(exc: BaseException) -> int:
    """The HTTP status an influxdb-client error carries (0 when there was no answer).

    Parameters
    ----------
    exc : BaseException
        An error of the client.

    Returns
    -------
    int
    """
    return int(getattr(exc, "status", 0) or 0)


def describe_error(exc: BaseException) -> str:
    """One-line description of a client or HTTP error, credentials redacted.

    Parameters
    ----------
    exc : BaseException
        An error of influxdb-client, urllib3 or httpx.

    Returns
    -------
    str
    """
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


class SpoolSender:
    """Send a spool's records to InfluxDB in order, in a background thread.

    Parameters
    ----------
    spool : Spool
        The spool to drain (this sender is its only reader).
    send : callable
        Sends one line-protocol payload; raises an influxdb-client error on an HTTP error.
    url, bucket : str
        Where the data goes (for messages).
    spool_dir : Path
        The spool's directory (for messages).
    batch_size : int
        Lines per request, about.
    retry_interval, max_retry_delay : float
        First and largest retry delay, in seconds.
    max_retries : int
        Consecutive failures after which the server is reported unavailable.
    on_refused : callable
        Called with ``(n_points, message)`` for points the server refused for good.
    """

    def __init__(
        self,
        spool: Spool,
        send: Callable[[bytes], None],
        *,
        url: str,
        bucket: str,
        spool_dir: Path,
        batch_size: int,
        retry_interval: float,
        max_retry_delay: float,
        max_retries: int,
        on_refused: Callable[[int, str], None],
    ) -> None:
        self.spool = spool
        self._send = send
        self.url = url
        self.bucket = bucket
        self.spool_dir = spool_dir
        self.batch_size = batch_size
        self.retry_interval = retry_interval
        self.max_retry_delay = max_retry_delay
        self.max_retries = max_retries
        self._on_refused = on_refused
        self.last_error: str | None = None
        self.n_sent_lines = 0
        self.consecutive_failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"influx-spool-sender {url}", daemon=True
        )

    def start(self) -> None:
        """Start the sending thread."""
        self._thread.start()

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` was called."""
        return self._stop.is_set()

    def stop(self, join_timeout: float) -> None:
        """Ask the thread to stop and wait up to ``join_timeout`` s (a request may be in flight).

        Parameters
        ----------
        join_timeout : float
            Seconds to wait for the thread.
        """
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(join_timeout)

    def flush(self, stall: float, limit: float = math.inf) -> None:
        """Wait until everything spooled so far is acknowledged, as long as sending progresses.

        A slow server that keeps acknowledging batches (a backlog after an outage, a loaded
        machine) is waited for, up to ``limit`` seconds in all. The wait ends without the
        data when the spool's cursor did not move for ``stall`` seconds (a batch being
        split after a refusal does not move it until a part is acknowledged), at ``limit``,
        or at once when the sender stopped.

        Parameters
        ----------
        stall : float
            Seconds without any acknowledged batch after which the flush gives up.
        limit : float
            Seconds after which it gives up even while the server acknowledges.

        Raises
        ------
        StoreUnavailableError
            The data was not all acknowledged in time, or the sender stopped; says how many
            bytes stay in the spool (sent when the server answers).
        """
        target = self.spool.end  # what was written before this call
        started = cursor_moved = time.monotonic()
        cursor = self.spool.cursor
        # Waited in slices: progress restarts the stall clock, and a sender that stops
        # meanwhile leaves nothing to drain the spool, so the wait ends then.
        while True:
            stopped = not self._thread.is_alive()
            left = max(0.0, min(cursor_moved + stall, started + limit) - time.monotonic())
            if self.spool.wait_until_acknowledged(target, 0.0 if stopped else min(0.1, left)):
                return
            now = time.monotonic()
            if self.spool.cursor != cursor:
                cursor, cursor_moved = self.spool.cursor, now
            if stopped or now - cursor_moved >= stall or now - started >= limit:
                break
        if stopped:
            when = "(its sender stopped)"
        elif now - cursor_moved >= stall:
            when = f"(nothing acknowledged for {stall:g} s)"
        else:
            when = f"within {limit:g} s (still sending)"
        raise StoreUnavailableError(
            f"InfluxDB at {self.url} (bucket {self.bucket!r}) did not take the spooled data "
            f"{when} (last error: {self.last_error or 'none, still sending'}); "
            f"{self.spool.pending_bytes} bytes stay safe in {self.spool_dir} and are sent "
            "when the server answers. Check that it runs and the URL/token/bucket are right."
        )

    # -- the thread ----------------------------------------------------------------

    def _run(self) -> None:
        max_payload = self.batch_size * 200  # bytes: about batch_size typical lines
        while not self._stop.is_set():
            try:
                batch = self.spool.read_batch(max_payload)
                if batch is None:
                    self.spool.wait_for_data(0.5)
                    continue
                self._deliver(batch)
            except OSError as exc:
                if self._stop.is_set():
                    return
                if not is_disk_full(exc):
                    self._halt(f"the spool {self.spool_dir} failed: {exc}")
                    raise
                # A full disk under the spool: space comes back (the spool says how).
                self.last_error = str(exc)
                logger.error("Spool sender for %s: %s; retrying.", self.url, exc)
                self._stop.wait(self.max_retry_delay)
            except SenderStoppedError as exc:
                logger.error("%s", exc)
                return
            except BaseException as exc:
                if self._stop.is_set() and self.spool.closed:
                    return  # closed under a request that outlived close(): nothing lost
                # A bug or a broken spool, not the server: retrying would loop forever.
                # Stop (the data stays in the spool), say so, let the traceback show.
                self._halt(f"spool sender stopped by an unexpected error: {exc!r}")
                raise

    def _halt(self, message: str) -> None:
        self.last_error = message
        logger.error(
            "Sending to InfluxDB at %s stopped: %s. %d bytes stay in %s; a store opened on "
            "it later sends them.",
            self.url,
            message,
            self.spool.pending_bytes,
            self.spool_dir,
        )

    def _deliver(self, batch: SpoolBatch) -> None:
        """Send one batch until it is acknowledged (bad lines set aside) or the store stops."""
        while not self._stop.is_set():
            refused: list[tuple[bytes, str]] = []
            try:
                self._send_isolating(batch.payload, refused)
            except server_errors() as exc:
                status = status_of(exc)
                if not is_retryable_status(status):
                    message = (
                        f"InfluxDB at {self.url} answered HTTP {status} ({describe_error(exc)}), "
                        "which retrying cannot change: check that the URL names an InfluxDB "
                        "1.8+/2.x/3.x write endpoint"
                    )
                    self._halt(message)
                    raise SenderStoppedError(message) from exc
                self._record_failure(status, describe_error(exc))
                continue
            except connection_errors() as exc:  # the batch is never lost
                self._record_failure(0, describe_error(exc))
                continue
            self._acknowledge(batch, refused)
            return

    def _acknowledge(self, batch: SpoolBatch, refused: list[tuple[bytes, str]]) -> None:
        if refused:
            lines = b"".join(line for line, _ in refused)
            reasons = "\n".join(f"{line!r}: {reason}" for line, reason in refused)
            path = self.spool.reject(batch, reasons, payload=lines)
            self.last_error = refused[-1][1]
            self._on_refused(
                len(refused),
                f"InfluxDB at {self.url} refused {len(refused)} point(s) ({refused[0][1]}); "
                f"saved to {path}",
            )
        else:
            self.spool.ack(batch)
        self.n_sent_lines += batch.payload.count(b"\n") - len(refused)
        if self.consecutive_failures:
            logger.warning(
                "InfluxDB at %s accepts writes again after %d failed attempts; "
                "sending the spooled backlog (%d bytes).",
                self.url,
                self.consecutive_failures,
                self.spool.pending_bytes,
            )
        self.consecutive_failures = 0
        if not refused:
            self.last_error = None

    def _send_isolating(self, payload: bytes, refused: list[tuple[bytes, str]]) -> None:
        """Send ``payload``; on a permanent refusal split it until the bad lines stand alone.

        A 400 (one malformed line, a field-type conflict) or a 413 (too large) refuses a
        whole request; halving it isolates the lines at fault in log2(lines) extra requests,
        so one bad point never costs its batch. Resending an accepted half after a
        transient failure is harmless: points overwrite.
        """
        try:
            self._send(payload)
        except server_errors() as exc:
            status = status_of(exc)
            if status not in PERMANENT_STATUSES:
                raise
            lines = payload.splitlines(keepends=True)
            if len(lines) <= 1:
                refused.append((payload, f"HTTP {status}: {describe_error(exc)}"))
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

    def _record_failure(self, status: int, message: str) -> None:
        self.consecutive_failures += 1
        failures = self.consecutive_failures
        self.last_error = f"HTTP {status}: {message}" if status else message
        hint = {
            401: f"check the token ({ENV_TOKEN})",
            403: "the token lacks write permission on the bucket",
            404: f"create the bucket/database {self.bucket!r} or fix {ENV_BUCKET} / {ENV_ORG}",
        }.get(status, "is the server running and reachable?")
        delay = backoff_delay(failures - 1, self.retry_interval, self.max_retry_delay)
        if failures == 1 or failures == self.max_retries or status in CONFIG_STATUSES:
            log = logger.error if status in CONFIG_STATUSES else logger.warning
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
