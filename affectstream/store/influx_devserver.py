"""A throwaway local InfluxDB 1.x for benchmarks, demos and tests (not for production).

:class:`LocalInfluxDB` runs ``influxd`` (the Debian ``influxdb`` package, 1.6.7 here) on a
free loopback port with its files in a temporary directory, creates a database, and, since
releases before 1.8 have no ``/api/v2/write``, runs a small HTTP shim process in front
(:class:`V2WriteShim`) that maps ``/api/v2/write?bucket=B&precision=P`` onto
``/write?db=B&precision=P'`` (ns→n, us→u) and passes ``/query`` and ``/ping`` through.
The store tests use the same config (:func:`influxd_config`) and shim, so what they test
is what benchmarks and demos run. Point an :class:`~affectstream.store.influx.InfluxStore`
at :attr:`LocalInfluxDB.url`. InfluxDB 1.8+, 2.x and 3.x need none of this.
"""

from __future__ import annotations

import contextlib
import gzip
import http.client
import logging
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Self

from affectstream.errors import ConfigError, StoreUnavailableError

logger = logging.getLogger(__name__)

#: InfluxDB 2.x write precisions and their 1.x ``/write`` spelling.
PRECISIONS = {"ns": "n", "us": "u", "ms": "ms", "s": "s"}
_SKIP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "host", "content-length"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def influxd_config(directory: Path, port: int, max_body_size: int | None = None) -> Path:
    """Write an ``influxd`` 1.x config that keeps everything under ``directory``.

    Loopback only, no usage reporting, no internal monitor database and no continuous
    queries (nothing runs in the background that a test or benchmark did not ask for).

    Parameters
    ----------
    directory : Path
        Where the config, meta, data and WAL directories go (created if missing).
    port : int
        HTTP port on 127.0.0.1.
    max_body_size : int, optional
        The server's request size limit in bytes (influxd's own default, 25 MB, when
        None); larger writes get HTTP 413.

    Returns
    -------
    Path
        The config file, for ``influxd -config``.
    """
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "influxdb.conf"
    config.write_text(
        f'reporting-disabled = true\nbind-address = "127.0.0.1:{_free_port()}"\n'
        f'[meta]\n  dir = "{directory / "meta"}"\n'
        f'[data]\n  dir = "{directory / "data"}"\n  wal-dir = "{directory / "wal"}"\n'
        "  query-log-enabled = false\n"
        "[monitor]\n  store-enabled = false\n"
        "[continuous_queries]\n  enabled = false\n"
        f'[http]\n  bind-address = "127.0.0.1:{port}"\n  log-enabled = false\n'
        + (f"  max-body-size = {int(max_body_size)}\n" if max_body_size else "")
    )
    return config


def rewrite_v2_write(path: str) -> str:
    """Map a ``/api/v2/write`` URL onto the 1.x ``/write`` URL; other paths unchanged.

    An unknown precision is passed on as given, so that influxd answers it (400) as a
    server would, rather than the shim failing.

    Parameters
    ----------
    path : str
        Request path with query string.

    Returns
    -------
    str
        The path to send to influxd 1.x.
    """
    parts = urllib.parse.urlsplit(path)
    if parts.path != "/api/v2/write":
        return path
    query = dict(urllib.parse.parse_qsl(parts.query))
    params = {"db": query.get("bucket", "")}
    if "precision" in query:
        params["precision"] = PRECISIONS.get(query["precision"], query["precision"])
    return "/write?" + urllib.parse.urlencode(params)


class V2WriteShim:
    """HTTP shim that lets influxdb-client's v2 write API reach an InfluxDB 1.x before 1.8.

    Rewrites ``POST /api/v2/write`` with :func:`rewrite_v2_write` and passes every other
    request (``/query``, ``/ping``) through, headers and (gzip) bodies unchanged. It answers
    what influxd answers (a 413 sent before influxd closes an oversized upload included);
    only when influxd cannot be reached does it answer 503, like a server restarting.

    Parameters
    ----------
    upstream_port : int
        Port of the InfluxDB 1.x server on 127.0.0.1.
    port : int
        Port to listen on (0: a free one; see :attr:`port`).
    record_writes : bool
        Keep the (decompressed) bodies of acknowledged writes in :attr:`accepted_writes`.
    """

    def __init__(self, upstream_port: int, port: int = 0, *, record_writes: bool = False) -> None:
        self.upstream_port = upstream_port
        #: Seconds to hold each write before forwarding it (simulates a slow server).
        self.write_delay = 0.0
        #: Writes received (acknowledged or not).
        self.n_writes = 0
        #: Bodies (decompressed) of the writes the server acknowledged, in arrival order.
        self.accepted_writes: list[bytes] = []
        self._record_writes = record_writes
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        shim = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                logger.debug(format, *args)

            def do_GET(self) -> None:
                shim._forward(self)

            def do_POST(self) -> None:
                shim._forward(self)

        return Handler

    def _forward(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else None
        path = rewrite_v2_write(request.path)
        is_write = path != request.path
        if is_write:
            self.n_writes += 1
            if self.write_delay:
                time.sleep(self.write_delay)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _SKIP_HEADERS}
        connection = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=60)
        try:
            # influxd answers an oversized body with 413 and closes the connection before
            # reading it all: the answer is there, pass it on as it is (a 503 here would
            # make clients retry the same batch forever).
            with contextlib.suppress(OSError):
                connection.request(request.command, path, body=body, headers=headers)
            answer = connection.getresponse()
            data, status, reason = answer.read(), answer.status, answer.reason
            answer_headers = answer.getheaders()
        except (OSError, http.client.HTTPException) as exc:
            data = f'{{"error": "shim: upstream unavailable: {exc}"}}'.encode()
            status, reason = 503, "Service Unavailable"
            answer_headers = [("Content-Type", "application/json")]
        finally:
            connection.close()
        if self._record_writes and is_write and status == 204 and body is not None:
            gzipped = (request.headers.get("Content-Encoding") or "").lower() == "gzip"
            with self._lock:
                self.accepted_writes.append(gzip.decompress(body) if gzipped else body)
        request.send_response(status, reason)
        for key, value in answer_headers:
            if key.lower() not in _SKIP_HEADERS:
                request.send_header(key, value)
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

    def start(self) -> Self:
        """Serve in a background thread; return self."""
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until the process ends."""
        self._server.serve_forever()

    def close(self) -> None:
        """Stop serving."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(5)
            self._thread = None
        self._server.server_close()


class LocalInfluxDB:
    """Start ``influxd`` 1.x in a temporary directory, plus the v2-write shim.

    Parameters
    ----------
    database : str
        Database to create (the ``bucket`` for InfluxStore).
    binary : str
        The ``influxd`` executable.
    max_body_size : int, optional
        The server's request size limit in bytes (influxd's own default, 25 MB, when
        None); larger writes get HTTP 413.
    """

    def __init__(
        self,
        database: str = "affectstream",
        binary: str = "influxd",
        max_body_size: int | None = None,
    ) -> None:
        self.database = database
        self.binary = binary
        self.max_body_size = max_body_size
        self.url = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._shim_process: subprocess.Popen[bytes] | None = None
        self._directory: tempfile.TemporaryDirectory[str] | None = None

    def start(self, timeout: float = 20.0) -> None:
        """Start the server, wait until it answers /ping, create the database.

        Parameters
        ----------
        timeout : float
            Seconds to wait for the server.
        """
        executable = shutil.which(self.binary)
        if executable is None:
            raise ConfigError(
                f"{self.binary!r} is not installed: apt-get install influxdb (Debian), or "
                "give --influx-url of a running InfluxDB instead of --start-server."
            )
        self._directory = tempfile.TemporaryDirectory(prefix="affectstream-influxd-")
        root = Path(self._directory.name)
        port = _free_port()
        config = influxd_config(root, port, self.max_body_size)
        log = open(root / "influxd.log", "wb")  # noqa: SIM115 - owned by the child process
        self._process = subprocess.Popen(
            [executable, "-config", str(config)], stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        server_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        self._wait_for_ping(server_url, self._process, deadline, root)
        query = urllib.parse.urlencode({"q": f'CREATE DATABASE "{self.database}"'})
        request = urllib.request.Request(f"{server_url}/query?{query}", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass
        # The shim runs in its own process so that it does not compete with the caller
        # for the GIL (which would understate the caller's throughput).
        shim_port = _free_port()
        self._shim_process = subprocess.Popen(
            [sys.executable, "-m", __name__, str(port), str(shim_port)],
            stdout=subprocess.DEVNULL,
        )
        self.url = f"http://127.0.0.1:{shim_port}"
        self._wait_for_ping(self.url, self._shim_process, deadline, root)

    def _wait_for_ping(
        self, url: str, process: subprocess.Popen[bytes], deadline: float, root: Path
    ) -> None:
        while True:
            try:
                with urllib.request.urlopen(url + "/ping", timeout=1) as answer:
                    if answer.status == 204:
                        return
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise StoreUnavailableError(
                    f"The local InfluxDB did not answer on {url} in time; see "
                    f"{root / 'influxd.log'}."
                )
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the shim and the server and delete the files."""
        for process in (self._shim_process, self._process):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(5)
        self._shim_process = None
        self._process = None
        if self._directory is not None:
            self._directory.cleanup()
            self._directory = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    """Serve the v2-write shim: ``python -m affectstream.store.influx_devserver UPSTREAM PORT``.

    Parameters
    ----------
    argv : list of str, optional
        Upstream InfluxDB port and the port to listen on (default ``sys.argv[1:]``).
    """
    upstream, listen = (int(v) for v in (argv if argv is not None else sys.argv[1:]))
    V2WriteShim(upstream, listen).serve_forever()


if __name__ == "__main__":
    main()
