"""``affectstream serve --lsl-out``: a session the service runs is published over LSL.

A real service process (uvicorn) with an ingest session; a plain pylsl inlet in this process
reads the session's raw outlet and its event outlet: the samples are the ones ingested, at
their times, and a marker posted through the API arrives as an LSL marker.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import numpy as np
import pytest

from affectstream.api.serve_process import ServeProcess
from affectstream.device.lsl_meta import lsl_epoch_offset
from tests.api.conftest import (
    Server,
    World,
    eda_block,
    make_user,
    start_ingest_session,
)

pylsl = pytest.importorskip("pylsl", reason="pip install 'affectstream[lsl]'")


@pytest.fixture(scope="module")
def lsl_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {"LSLAPICFG": os.environ["LSLAPICFG"]}  # the suite's loopback-only discovery
    home = tmp_path_factory.mktemp("serve-lsl")
    with ServeProcess(home=home, env=env, extra=["--lsl-out"]) as server:
        yield server


@pytest.fixture
def lsl_world(lsl_server: Server) -> World:
    with lsl_server.client(lsl_server.admin_key) as admin:
        study = admin.post("/studies", json={"name": "lsl"}).json()["id"]
        participant = admin.post(f"/studies/{study}/participants", json={"pseudonym": "P-L"})
        pid = participant.json()["id"]
        keys = {
            "admin": lsl_server.admin_key,
            "device": make_user(admin, "device", [], participant=pid),
        }
    return World(study, study, pid, pid, keys)


def _inlet(predicate: str) -> pylsl.StreamInlet:
    (info,) = pylsl.resolve_bypred(predicate, 1, 20.0) or [None]
    assert info is not None, f"no LSL stream matches {predicate}"
    inlet = pylsl.StreamInlet(info, max_buflen=60)
    inlet.open_stream(10.0)
    return inlet


def _pull(inlet: pylsl.StreamInlet, n: int, timeout: float = 20.0) -> tuple[list, list]:
    samples: list = []
    stamps: list = []
    deadline = time.monotonic() + timeout
    while len(samples) < n and time.monotonic() < deadline:
        chunk, ts = inlet.pull_chunk(timeout=0.5)
        samples += chunk
        stamps += ts
    return samples, stamps


@pytest.mark.slow
def test_serve_publishes_an_ingest_session_over_lsl(lsl_server: Server, lsl_world: World) -> None:
    with lsl_server.client(lsl_server.admin_key) as admin:
        session = start_ingest_session(admin, lsl_world.participant_a)
    prefix = f"starts-with(source_id, 'affectstream/{session}/')"
    t0 = time.time() - 60.0
    with lsl_server.client(lsl_world.keys["device"]) as device:
        url = f"/sessions/{session}/ingest"
        # The first block makes the outlet; an inlet gets what is pushed after it connects.
        assert device.post(url, json={"blocks": [eda_block(0, 8, t0=t0)]}).status_code == 200
        raw = _inlet(f"{prefix} and type='EDA'")
        events = _inlet(f"{prefix} and type='Markers'")
        block = eda_block(8, 40, t0=t0)
        assert device.post(url, json={"blocks": [block]}).status_code == 200
    samples, stamps = _pull(raw, 40)
    expected = np.asarray(block["values"], dtype=np.float32)  # a float32 outlet
    assert np.array_equal(np.asarray(samples, dtype=np.float32), expected)
    assert np.allclose(np.asarray(stamps) + lsl_epoch_offset(), block["t"], atol=0.01)
    with lsl_server.client(lsl_server.admin_key) as admin:
        marker = admin.post(f"/sessions/{session}/markers", json={"label": "door"})
        assert marker.status_code == 201, marker.text
        labels: list[str] = []
        deadline = time.monotonic() + 20.0
        while "door" not in labels and time.monotonic() < deadline:
            chunk, _ = events.pull_chunk(timeout=0.5)
            labels += [sample[0] for sample in chunk]
        assert "door" in labels, lsl_server.log_tail()
        assert admin.post(f"/sessions/{session}/stop").status_code == 200
