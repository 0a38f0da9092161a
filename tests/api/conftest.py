"""A real ``affectstream serve`` process on a loopback port, and clients with each role.

The server runs as a subprocess (uvicorn, the CLI entry point), with its own
AFFECTSTREAM_HOME (metadata SQLite and embedded store) and a bootstrap admin key; every test
talks HTTP or WebSocket to it. Nothing in between is faked.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from affectstream.api.serve_process import ServeProcess

#: The tests' name for a running service (the one launcher, also used by ``bench api``).
Server = ServeProcess


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One service for the API tests (each test makes its own studies, so they do not mix)."""
    with ServeProcess(home=tmp_path_factory.mktemp("serve-home")) as srv:
        yield srv


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
