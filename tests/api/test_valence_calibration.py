"""Valence calibration through the service: self-reports rating each block of two emulated
sessions (runtime over the emulated BLE stack, in a real ``affectstream serve``), the fit,
the card, the role checks, deletion."""

from __future__ import annotations

import time

import httpx
import pytest

from affectstream.store import open_store

from .conftest import Server, World

#: Block -> (valence, arousal) per session: two unpleasant blocks, one of them calm.
RATINGS = [
    {"stress": (2, 8), "recovery": (8, 2)},
    {"stress": (3, 4), "recovery": (7, 3)},
]


def _wait_stopped(client: httpx.Client, session: str, timeout: float = 150.0) -> None:
    deadline = time.monotonic() + timeout
    while (row := client.get(f"/sessions/{session}").json())["status"] == "running":
        assert time.monotonic() < deadline, row
        time.sleep(1.0)
    assert row["status"] == "stopped", row


@pytest.mark.slow
def test_service_calibrates_reads_and_deletes(
    server: Server, world: World, admin: httpx.Client
) -> None:
    participant = world.participant_a
    sessions = []
    for seed in (1, 2):  # both at once; 90 s: stress and recovery hold 20-s windows
        r = admin.post("/sessions", json={"participant_id": participant, "duration": 90,
                                          "devices": "hr,eda,muse", "seed": seed})  # fmt: skip
        assert r.status_code == 201, r.text
        sessions.append(r.json()["id"])
    for session in sessions:
        _wait_stopped(admin, session)
    with server.client(world.keys["operator"]) as operator:
        for session, ratings in zip(sessions, RATINGS, strict=True):
            for block, (valence, arousal) in ratings.items():
                body = {"valence": valence, "arousal": arousal, "block": block}
                r = operator.post(f"/sessions/{session}/self-reports", json=body)
                assert r.status_code == 201, r.text
    with open_store(server.home / "store") as store:
        events = store.read("events", tags={"session": sessions[1]})
    reports = events[events["kind"] == "self_report"].sort_values("time_ns")
    assert reports[["detail", "valence", "arousal"]].values.tolist() == [
        ["stress", 3.0, 4.0], ["recovery", 7.0, 3.0],
    ]  # fmt: skip

    url = f"/participants/{participant}/valence-calibration"
    assert admin.get(url).status_code == 404
    with server.client(world.keys["viewer"]) as viewer:
        assert viewer.post(url, json={"sessions": sessions}).status_code == 403
    fitted = admin.post(url, json={"sessions": sessions})
    assert fitted.status_code == 201, fitted.text
    result = fitted.json()
    assert result["status"] in {"calibrated", "uncalibrated"}
    acc = result["accuracy"]
    assert acc["n_episodes"] == 4 and acc["method"] == "leave one episode out"
    assert sorted(e["rating"] for e in result["episodes"]) == [2.0, 3.0, 7.0, 8.0]
    assert [e["stressful"] for e in result["episodes"] if e["rating"] == 2.0] == [True]
    card = admin.get(url).json()
    assert card["calibrated"] == (result["status"] == "calibrated") and "linear" not in card
    with server.client(world.keys["viewer"]) as viewer:
        assert viewer.get(url).status_code == 403  # the card lists the person's ratings
    other = f"/participants/{world.participant_b}/valence-calibration"
    assert admin.post(other, json={"sessions": sessions}).status_code == 409
    assert admin.delete(url).json()["deleted"] is True
    assert admin.get(url).status_code == 404


def test_too_few_rated_blocks_is_a_one_line_error(world: World, admin: httpx.Client) -> None:
    from .conftest import start_ingest_session

    session = start_ingest_session(admin, world.participant_a)
    admin.post(f"/sessions/{session}/stop")
    r = admin.post(
        f"/participants/{world.participant_a}/valence-calibration", json={"sessions": [session]}
    )
    assert r.status_code == 400, r.text
    assert "\n" not in r.json()["detail"]
