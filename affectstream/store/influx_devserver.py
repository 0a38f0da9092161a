"""A throwaway local InfluxDB 1.x for benchmarks and demos (not for production).

:class:`LocalInfluxDB` runs ``influxd`` (the Debian ``influxdb`` package, 1.6.7 here) on a
free loopback port with its files in a temporary directory, creates a database, and, since
releases before 1.8 have no ``/api/v2/write``, runs a small HTTP shim process in front that maps
``/api/v2/write?bucket=B&precision=P`` onto ``/write?db=B&precision=P'`` (ns→n, us→u) and
passes ``/query`` and ``/ping`` through. Point an :class:`~affectstream.store.influx.InfluxStore`
at :attr:`LocalInfluxDB.url`. InfluxDB 1.8+, 2.x and 3.x need none of this.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Self

from affectstream.errors import ConfigError, StoreUnavailableError

logger = logging.getLogger(__name__)

_PRECISIONS = {"ns": "n", "us": "u", "ms": "ms", "s": "s"}
_SKIP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "host", "content-length"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _shim_handler(upstream_port: int) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            logger.debug(format, *args)

        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            parts = urllib.parse.urlsplit(self.path)
            path = self.path
            if parts.path == "/api/v2/write":
                query = dict(urllib.parse.parse_qsl(parts.query))
                params = {"db": query.get("bucket", "")}
                if "precision" in query:
                    params["precision"] = _PRECISIONS.get(query["precision"], query["precision"])
                path = "/write?" + urllib.parse.urlencode(params)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _SKIP_HEADERS}
            connection = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=60)
            try:
                # influxd answers an oversized body with 413 and closes the connection
                # before reading it all: the answer is there, pass it on as it is (a 503
                # here would make clients retry the same batch forever).
                with contextlib.suppress(OSError):
                    connection.request(self.command, path, body=body, headers=headers)
                answer = connection.getresponse()
                data, status = answer.read(), answer.status
                answer_headers = answer.getheaders()
            except (OSError, http.client.HTTPException) as exc:
                data, status = f'{{"error": "upstream unavailable: {exc}"}}'.encode(), 503
                answer_headers = [("Content-Type", "application/json")]
            finally:
                connection.close()
            self.send_response(status)
            for key, value in answer_headers:
                if key.lower() not in _SKIP_HEADERS:
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._forward()

        def do_POST(self) -> None:
            self._forward()

    return Handler


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
        config = root / "influxdb.conf"
        config.write_text(
            f'reporting-disabled = true\nbind-address = "127.0.0.1:{_free_port()}"\n'
            f'[meta]\n  dir = "{root / "meta"}"\n'
            f'[data]\n  dir = "{root / "data"}"\n  wal-dir = "{root / "wal"}"\n'
            "  query-log-enabled = false\n"
            "[monitor]\n  store-enabled = false\n"
            f'[http]\n  bind-address = "127.0.0.1:{port}"\n  log-enabled = false\n'
            + (f"  max-body-size = {int(self.max_body_size)}\n" if self.max_body_size else "")
        )
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
    server = ThreadingHTTPServer(("127.0.0.1", listen), _shim_handler(upstream))
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
