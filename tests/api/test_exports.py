"""Exports over the API (create -> progress -> download, every format, roles, audit) and
sessions whose server died, marked interrupted at the next start — on real servers."""

from __future__ import annotations

import io
import os
import signal
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest

from affectstream.api.exports import EXPORT_FORMATS
from affectstream.api.serve_process import ServeProcess
from tests.api.conftest import (
    Server,
    World,
    eda_block,
    start_ingest_session,
)
from tests.watchdog import run_watched

N_SAMPLES = 240  # 60 s of EDA at 4 Hz


def _stored_session(admin: httpx.Client, participant: int) -> str:
    session = start_ingest_session(admin, participant)
    blocks = [eda_block(seq, 40) for seq in range(0, N_SAMPLES, 40)]
    sent = admin.post(f"/sessions/{session}/ingest", json={"blocks": blocks})
    assert sent.status_code == 200, sent.text
    assert admin.post(f"/sessions/{session}/stop").status_code == 200
    return session


def _finished(client: httpx.Client, job: dict[str, Any], timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state: dict[str, Any] = client.get(f"/exports/{job['id']}").json()
        assert 0.0 <= state["progress"] <= 1.0
        if state["status"] in ("done", "failed"):
            return state
        time.sleep(0.2)
    raise AssertionError(f"export {job['id']} did not finish")


def _stored_ids(server: Server) -> str:
    """What ``affectstream store ls`` lists in the server's embedded store (another process)."""
    env = {**os.environ, "AFFECTSTREAM_HOME": str(server.home)}
    argv = [sys.executable, "-m", "affectstream", "store", "ls", "--json"]
    done = run_watched(argv, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def stored(admin: httpx.Client, world: World) -> str:
    return _stored_session(admin, world.participant_a)


@pytest.mark.parametrize("fmt", EXPORT_FORMATS)
def test_every_format_is_created_polled_and_downloaded(
    server: Server, world: World, stored: str, fmt: str
) -> None:
    with server.client(world.keys["researcher"]) as client:
        created = client.post(f"/sessions/{stored}/exports", json={"format": fmt})
        assert created.status_code == 202, created.text
        job = _finished(client, created.json())
        assert job["status"] == "done", job["error"]
        assert job["progress"] == 1.0
        download = client.get(f"/exports/{job['id']}/download")
    assert download.status_code == 200
    assert int(download.headers["content-length"]) == job["size"]
    names = zipfile.ZipFile(io.BytesIO(download.content)).namelist()
    assert names
    raw = [n for n in names if "raw" in n.lower() or n.lower().endswith((".edf", ".bdf"))]
    if fmt == "estimates":
        assert raw == [], "the estimates export carries no raw samples"
    if fmt == "csv":
        eda = [n for n in names if "raw" in n and "eda" in n and n.endswith(".csv")]
        assert eda, names
        text = zipfile.ZipFile(io.BytesIO(download.content)).read(eda[0]).decode()
        assert len(text.strip().splitlines()) - 1 == N_SAMPLES  # header + one row a sample


def test_roles_audit_and_running_sessions(
    server: Server, world: World, admin: httpx.Client, stored: str
) -> None:
    path = f"/sessions/{stored}/exports"
    with server.client(world.keys["operator"]) as operator:
        assert operator.post(path, json={"format": "csv"}).status_code == 403  # no raw
        job = operator.post(path, json={"format": "estimates"})
        assert job.status_code == 202, job.text
        assert _finished(operator, job.json())["status"] == "done"
    with server.client(world.keys["viewer"]) as viewer:
        assert viewer.post(path, json={"format": "estimates"}).status_code == 403
        assert viewer.get(f"/exports/{job.json()['id']}").status_code == 403
    # Another study's researcher sees nothing of it.
    other = admin.post("/studies", json={"name": "other"}).json()["id"]
    from tests.api.conftest import make_user

    stranger = make_user(admin, "researcher", [other])
    with server.client(stranger) as client:
        assert client.get(f"/exports/{job.json()['id']}").status_code == 404
        assert client.post(path, json={"format": "estimates"}).status_code == 404
    running = start_ingest_session(admin, world.participant_a)
    refused = admin.post(f"/sessions/{running}/exports", json={"format": "estimates"})
    assert refused.status_code == 409 and "stop it" in refused.json()["detail"]
    admin.post(f"/sessions/{running}/stop")
    audit = admin.get("/audit", params={"action": "export", "limit": 1000}).json()["items"]
    assert any(
        a["resource"] == f"session/{stored}" and a["detail"] == "format=estimates" for a in audit
    )


def test_a_session_of_a_killed_server_is_interrupted_at_the_next_start(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = ServeProcess(home=home).start()
    try:
        with first.client(first.admin_key) as admin:
            study = admin.post("/studies", json={"name": "s"}).json()["id"]
            p = admin.post(f"/studies/{study}/participants", json={"pseudonym": "P1"}).json()
            session = start_ingest_session(admin, p["id"])
            done = _stored_session(admin, p["id"])
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # no graceful stop: the process dies
        first.stop()  # only reaps it
    second = ServeProcess(home=home, admin_key=first.admin_key).start()
    try:
        with second.client(first.admin_key) as admin:
            row = admin.get(f"/sessions/{session}").json()
            assert row["status"] == "interrupted"
            assert "ended without stopping it" in row["summary"]["error"]
            assert admin.get(f"/sessions/{done}").json()["status"] == "stopped"
            audit = admin.get("/audit", params={"action": "interrupted"}).json()["items"]
            assert [a["resource"] for a in audit] == [f"session/{session}"]
    finally:
        second.stop()


def test_erasure_removes_a_participant_everywhere(
    server: Server, world: World, admin: httpx.Client
) -> None:
    p = admin.post(f"/studies/{world.study_a}/participants", json={"pseudonym": "ERASE-ME"})
    participant = p.json()["id"]
    session = _stored_session(admin, participant)
    assert admin.get(f"/sessions/{session}/raw/eda").json()["total"] == N_SAMPLES
    assert session in _stored_ids(server)
    job = _finished(
        admin, admin.post(f"/sessions/{session}/exports", json={"format": "csv"}).json()
    )
    zips = list((server.home / "exports").glob(f"{job['id']}-*.zip"))
    assert len(zips) == 1
    with server.client(world.keys["operator"]) as operator:
        assert operator.post(f"/participants/{participant}/erase").status_code == 403
    running = start_ingest_session(admin, participant)
    refused = admin.post(f"/participants/{participant}/erase")
    assert refused.status_code == 409 and running in refused.json()["detail"]
    admin.post(f"/sessions/{running}/stop")
    # A personal valence model of the participant (as calibration writes it) goes too.
    valence = server.home / "valence" / "ERASE-ME"
    valence.mkdir(parents=True)
    (valence / "model.json").write_text("{}")
    with server.client(world.keys["researcher"]) as researcher:
        erased = researcher.post(f"/participants/{participant}/erase")
    assert erased.status_code == 200, erased.text
    assert erased.json() == {"participant_id": participant, "sessions": 2, "export_files": 1}
    assert admin.get(f"/participants/{participant}").status_code == 404
    assert admin.get(f"/sessions/{session}").status_code == 404
    assert admin.get(f"/exports/{job['id']}").status_code == 404
    assert not zips[0].exists()
    assert not valence.exists()
    assert session not in _stored_ids(server)  # the embedded store has none of it left
    audit = admin.get("/audit", params={"action": "erase"}).json()["items"]
    assert any(a["resource"] == f"participant/{participant}" for a in audit)
