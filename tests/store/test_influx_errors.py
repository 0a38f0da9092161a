"""A bug in the send path surfaces; it is not retried forever as if the server were down.

Also which server answers are retried (429, 5xx) and which stop the sender (an HTTP status
retrying cannot change, from a real loopback HTTP server that is not InfluxDB).

The store under test is real except for ``_send``, which a test-only subclass
(``BuggySendStore``, a fake) replaces with code that raises TypeError, standing in for a
programming error. No server is needed: the bug happens before any request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from affectstream.errors import StoreUnavailableError
from affectstream.store.base import SeriesBatch
from affectstream.store.influx import InfluxStore

T0 = 1_700_000_000_000_000_000


class BuggySendStore(InfluxStore):
    """Fake: an InfluxStore whose send path has a bug."""

    calls = 0

    def _send(self, payload: bytes) -> None:
        type(self).calls += 1
        raise TypeError("unsupported operand type(s) for +: 'int' and 'str'")


def test_a_bug_in_the_sender_stops_it_with_its_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[threading.ExceptHookArgs] = []
    monkeypatch.setattr(threading, "excepthook", seen.append)
    batch = SeriesBatch("raw_eda", {"session": "bug"}, T0 + np.arange(3), {"eda": np.ones(3)})
    store = BuggySendStore(
        "http://127.0.0.1:9", bucket="b", spool_dir=tmp_path / "spool",
        retry_interval=0.01, max_retry_delay=0.05, close_timeout=1,
    )  # fmt: skip
    try:
        store.write([batch])
        with pytest.raises(StoreUnavailableError, match=r"unexpected error.*TypeError"):
            store.flush(timeout=2)
    finally:
        store.close()
    assert BuggySendStore.calls == 1  # tried once, not retried as if transient
    assert [type(args.exc_value) for args in seen] == [TypeError]
    assert store.pending_bytes > 0  # the data stays in the spool for a fixed version


class _ScriptedHandler(BaseHTTPRequestHandler):
    """Answers each write with the next status of the server's script (then 204)."""

    server: _ScriptedServer

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with self.server.lock:
            status = self.server.script.pop(0) if self.server.script else 204
            self.server.answers.append(status)
        self.send_response(status)
        body = b'{"code":"x","message":"scripted"}' if status != 204 else b""
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _ScriptedServer(ThreadingHTTPServer):
    def __init__(self, script: list[int]) -> None:
        super().__init__(("127.0.0.1", 0), _ScriptedHandler)
        self.script = list(script)
        self.answers: list[int] = []
        self.lock = threading.Lock()


@pytest.fixture
def scripted() -> Iterator[Callable[[list[int]], _ScriptedServer]]:
    """A real HTTP server on loopback answering writes with given statuses (not InfluxDB)."""
    servers: list[_ScriptedServer] = []

    def start(script: list[int]) -> _ScriptedServer:
        server = _ScriptedServer(script)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _store(server: _ScriptedServer, spool: Path) -> InfluxStore:
    host, port = server.server_address[:2]
    return InfluxStore(
        f"http://{host!s}:{port}", bucket="b", spool_dir=spool,
        retry_interval=0.01, max_retry_delay=0.05, close_timeout=1,
    )  # fmt: skip


@pytest.mark.parametrize("status", [429, 503, 500])
def test_busy_or_failing_server_is_retried_until_it_takes_the_batch(
    status: int, tmp_path: Path, scripted: Callable[[list[int]], _ScriptedServer]
) -> None:
    server = scripted([status, status, status])
    store = _store(server, tmp_path / "spool")
    try:
        store.write(
            [SeriesBatch("raw_eda", {"session": "s"}, T0 + np.arange(5), {"eda": np.ones(5)})]
        )
        store.flush(timeout=10)
    finally:
        store.close()
    assert server.answers == [status, status, status, 204]
    assert store.n_sent_lines == 5 and store.pending_bytes == 0


def test_an_answer_retrying_cannot_change_stops_the_sender_and_keeps_the_data(
    tmp_path: Path, scripted: Callable[[list[int]], _ScriptedServer]
) -> None:
    server = scripted([405] * 10)  # a web server that is not InfluxDB's write endpoint
    store = _store(server, tmp_path / "spool")
    try:
        store.write(
            [SeriesBatch("raw_eda", {"session": "s"}, T0 + np.arange(5), {"eda": np.ones(5)})]
        )
        deadline = time.monotonic() + 10
        # last_error is set a moment before the sender thread ends: wait for the end, which is
        # what flush() checks (a flush in between waits its timeout, as for a live sender).
        while store.sender._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert store.sender.last_error is not None
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError, match=r"sender stopped.*HTTP 405"):
            store.flush(timeout=30)
        assert time.monotonic() - started < 5  # fails at once, not after the 30 s wait
        assert store.pending_bytes > 0
    finally:
        store.close()
    assert server.answers == [405]  # asked once, not retried
    reopened = InfluxStore(
        "http://127.0.0.1:9", bucket="b", spool_dir=tmp_path / "spool", close_timeout=0.1
    )
    try:
        assert reopened.pending_bytes > 0  # still there for a store pointed at a real server
    finally:
        reopened.close()
