"""Real time-series servers for the store tests, started and stopped by the suite.

- InfluxDB 1.6.7 (``influxd``, Debian package ``influxdb``): the real storage engine, on a
  free loopback port with its files in a temporary directory, configured and fronted by the
  product's own dev-server parts (:func:`~affectstream.store.influx_devserver.influxd_config`
  and the v2-write :class:`~affectstream.store.influx_devserver.V2WriteShim`, URL mapping only).
- VictoriaMetrics (``victoria-metrics``): its genuine ``/api/v2/write``.
- An external InfluxDB 2.x/3.x when ``AFFECTSTREAM_TEST_INFLUX_URL`` (with ``_TOKEN``,
  ``_ORG``, ``_BUCKET``) is set; its parametrisations skip otherwise.

Every server answers ``/ping`` before a test uses it (bounded wait) and is stopped at the
end of the session, also when tests fail. Tests skip with the reason when a binary is
missing (``scripts/test.sh`` installs both as root).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from affectstream.store.influx_devserver import V2WriteShim, influxd_config

READY_TIMEOUT = 20.0


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_request(
    url: str, *, method: str = "GET", data: bytes | None = None, timeout: float = 5.0
) -> tuple[int, bytes]:
    """Send one HTTP request; return (status, body) also for error statuses."""
    request = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class ServerProcess:
    """A server binary run as a child process on a fixed loopback port.

    Parameters
    ----------
    name : str
        Name for messages.
    argv : list of str
        Command line.
    port : int
        HTTP port it listens on.
    log_path : Path
        File receiving its output.
    """

    def __init__(self, name: str, argv: list[str], port: int, log_path: Path) -> None:
        self.name = name
        self.argv = argv
        self.port = port
        self.log_path = log_path
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the process and wait (bounded) until it answers /ping."""
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            with contextlib.suppress(OSError):
                if http_request(self.url + "/ping", timeout=1.0)[0] in (200, 204):
                    return
            time.sleep(0.05)
        self.stop()
        tail = self.log_path.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{self.name} did not answer /ping on {self.url}:\n{tail}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
        """Stop the process (``sig`` first, SIGKILL if it does not exit within ``timeout``)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def _require(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.skip(
            f"{binary} is not installed: run scripts/test.sh as root (apt-get install "
            "influxdb victoria-metrics) to run the real-server store tests"
        )
    return path


def influxd_server(directory: Path, port: int | None = None) -> ServerProcess:
    """Build (not start) an InfluxDB 1.x server with its files under ``directory``."""
    binary = _require("influxd")
    port = port or free_port()
    config = influxd_config(directory, port)
    return ServerProcess("influxd", [binary, "-config", str(config)], port, directory / "log")


def victoria_server(
    directory: Path, port: int | None = None, *, dedup: bool = True
) -> ServerProcess:
    """Build (not start) a VictoriaMetrics server with its files under ``directory``.

    With ``dedup``, ``-dedup.minScrapeInterval=1ms`` keeps one sample per series and
    millisecond, so a replayed point lands once (its timestamps are whole ms anyway).
    """
    binary = _require("victoria-metrics")
    port = port or free_port()
    directory.mkdir(parents=True, exist_ok=True)
    argv = [
        binary,
        f"-httpListenAddr=127.0.0.1:{port}",
        f"-storageDataPath={directory / 'data'}",
        "-retentionPeriod=100y",
        "-loggerLevel=ERROR",
    ]
    if dedup:
        argv.append("-dedup.minScrapeInterval=1ms")
    return ServerProcess("victoria-metrics", argv, port, directory / "log")


def create_database(server_url: str, name: str) -> None:
    """Create an InfluxDB 1.x database (idempotent)."""
    query = urllib.parse.urlencode({"q": f'CREATE DATABASE "{name}"'})
    status, body = http_request(f"{server_url}/query?{query}", method="POST")
    assert status == 200, body


@dataclass(frozen=True)
class InfluxTarget:
    """Where an InfluxStore under test writes: URL, credentials and bucket."""

    name: str
    url: str
    bucket: str
    token: str | None = None
    org: str | None = None


@pytest.fixture(scope="session")
def influx_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A running InfluxDB 1.6.7 for the whole session."""
    server = influxd_server(tmp_path_factory.mktemp("influxd"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def influx_proxy(influx_server: ServerProcess) -> Iterator[V2WriteShim]:
    """The v2-write shim in front of the session's InfluxDB 1.6.7."""
    proxy = V2WriteShim(influx_server.port).start()
    try:
        yield proxy
    finally:
        proxy.close()


@pytest.fixture(scope="session")
def victoria(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A running VictoriaMetrics for the whole session."""
    server = victoria_server(tmp_path_factory.mktemp("victoria"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["influxdb-1.6.7", "external"])
def influx_target(request: pytest.FixtureRequest) -> InfluxTarget:
    """An InfluxDB to test against: the local 1.6.7 (fresh database per test) or an
    external 2.x/3.x from AFFECTSTREAM_TEST_INFLUX_URL (+ _TOKEN, _ORG, _BUCKET)."""
    if request.param == "external":
        url = os.environ.get("AFFECTSTREAM_TEST_INFLUX_URL")
        if not url:
            pytest.skip(
                "no external InfluxDB 2.x/3.x: set AFFECTSTREAM_TEST_INFLUX_URL (and _TOKEN, "
                "_ORG, _BUCKET) to run this suite against one"
            )
        return InfluxTarget(
            name="external",
            url=url,
            bucket=os.environ.get("AFFECTSTREAM_TEST_INFLUX_BUCKET", "affectstream"),
            token=os.environ.get("AFFECTSTREAM_TEST_INFLUX_TOKEN"),
            org=os.environ.get("AFFECTSTREAM_TEST_INFLUX_ORG"),
        )
    server: ServerProcess = request.getfixturevalue("influx_server")
    proxy: V2WriteShim = request.getfixturevalue("influx_proxy")
    database = f"test_{uuid.uuid4().hex[:12]}"
    create_database(server.url, database)
    return InfluxTarget(name=request.param, url=proxy.url, bucket=database)


@pytest.fixture
def unique_session() -> str:
    """A session id no other test uses (external servers keep data between runs)."""
    return f"s-{uuid.uuid4().hex[:10]}"
