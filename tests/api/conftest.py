"""A real ``affectstream serve`` process on a loopback port, and clients with each role.

The server runs as a subprocess (uvicorn, the CLI entry point), with its own
AFFECTSTREAM_HOME (metadata SQLite and embedded store) and a bootstrap admin key; every test
talks HTTP or WebSocket to it. Nothing in between is faked.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

READY_TIMEOUT = 90.0


def free_port() -> int:
    """A free loopback TCP port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def new_key() -> str:
    """A bootstrap key in the service's format."""
    return f"ask_{secrets.token_hex(6)}_{secrets.token_urlsafe(24)}"


@dataclass
class Server:
    """A running service: its URL, admin key, home folder, log and process."""

    url: str
    admin_key: str
    home: Path
    log: Path
    process: subprocess.Popen[bytes]

    def client(self, key: str | None) -> httpx.Client:
        """An HTTP client sending ``key`` as the bearer token (none if ``None``)."""
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60.0)

    def log_tail(self) -> str:
        """The end of the server's output (for failure messages)."""
        return self.log.read_text(errors="replace")[-3000:]


def start_server(home: Path, *extra: str, env: dict[str, str] | None = None) -> Server:
    """Start ``affectstream serve`` and wait (bounded) until /health answers."""
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    key = new_key()
    environ = {
        **os.environ,
        "AFFECTSTREAM_HOME": str(home),
        "AFFECTSTREAM_API_BOOTSTRAP_ADMIN_KEY": key,
        "AFFECTSTREAM_API_MAX_RUNNING_SESSIONS": "100",
        **(env or {}),
    }
    log = home / "serve.log"
    argv = [sys.executable, "-m", "affectstream", "serve", "--port", str(port), *extra]
    with open(log, "ab") as out:
        process = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env=environ, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline and process.poll() is None:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url + "/health", timeout=1.0).status_code == 200:
                return Server(url, key, home, log, process)
        time.sleep(0.1)
    stop_server(process)
    raise RuntimeError(f"affectstream serve did not come up on {url}:\n{log.read_text()[-3000:]}")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (uvicorn's graceful stop), SIGKILL after 30 s."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One service for the API tests (each test makes its own studies, so they do not mix)."""
    srv = start_server(tmp_path_factory.mktemp("serve-home"))
    try:
        yield srv
    finally:
        stop_server(srv.process)


@pytest.fixture
def admin(server: Server) -> Iterator[httpx.Client]:
    """A client with the bootstrap admin key."""
    with server.client(server.admin_key) as client:
        yield client


@dataclass
class World:
    """Two studies, a participant in each, and a user of every role in study A."""

    study_a: int
    study_b: int
    participant_a: int
    participant_b: int
    keys: dict[str, str]


def make_user(
    admin: httpx.Client, role: str, studies: list[int], participant: int | None = None
) -> str:
    """Create a user with ``role`` and return a fresh API key for it."""
    body = {
        "name": f"{role}-{secrets.token_hex(4)}",
        "role": role,
        "studies": studies,
        "participant_id": participant,
    }
    user = admin.post("/users", json=body)
    assert user.status_code == 201, user.text
    key = admin.post(f"/users/{user.json()['id']}/keys")
    assert key.status_code == 201, key.text
    return str(key.json()["key"])


@pytest.fixture
def world(admin: httpx.Client) -> World:
    """Fresh studies A and B with one participant each; users of every role in A."""
    ids = []
    participants = []
    for name in ("A", "B"):
        study = admin.post("/studies", json={"name": f"study {name}"})
        assert study.status_code == 201, study.text
        ids.append(study.json()["id"])
        p = admin.post(f"/studies/{ids[-1]}/participants", json={"pseudonym": f"P-{name}"})
        assert p.status_code == 201, p.text
        participants.append(p.json()["id"])
    keys = {"admin": str(admin.headers["authorization"]).removeprefix("Bearer ")}
    for role in ("researcher", "operator", "viewer"):
        keys[role] = make_user(admin, role, [ids[0]])
    keys["device"] = make_user(admin, "device", [], participant=participants[0])
    return World(ids[0], ids[1], participants[0], participants[1], keys)


def eda_block(first_seq: int, n: int, *, t0: float = 1.8e9, stream: str = "band/eda") -> dict:
    """An ingest block of ``n`` EDA samples at 4 Hz whose values encode their sequence number."""
    return {
        "stream": stream,
        "modality": "eda",
        "channels": ["eda"],
        "sfreq": 4.0,
        "first_seq": first_seq,
        "t": [t0 + (first_seq + i) / 4.0 for i in range(n)],
        "values": [[1.0 + (first_seq + i) / 1000.0] for i in range(n)],
        "device": "band",
    }


def start_ingest_session(client: httpx.Client, participant: int) -> str:
    """Start an ingest session for ``participant`` and return its id."""
    response = client.post("/sessions", json={"participant_id": participant, "kind": "ingest"})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])
