"""Ingest over HTTP and WebSocket: a resent batch lands once, a lost one becomes a gap."""

from __future__ import annotations

import json
import sqlite3
import time

import httpx
from websockets.sync.client import ClientConnection, connect

from affectstream.store import open_store
from tests.api.conftest import Server, World, eda_block, start_ingest_session


def _wait_rows(client: httpx.Client, session: str, n: int, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        raw = client.get(f"/sessions/{session}/raw/eda", params={"limit": 100_000}).json()
        if raw["total"] >= n or time.monotonic() > deadline:
            return raw
        time.sleep(0.2)


def _device_ingest_ws(server: Server, world: World, session: str) -> ClientConnection:
    """The device user's ingest WebSocket to ``session``."""
    ws_url = server.url.replace("http", "ws") + f"/sessions/{session}/ingest"
    headers = {"Authorization": f"Bearer {world.keys['device']}"}
    return connect(ws_url, additional_headers=headers)


def test_resent_batch_lands_once_and_lost_batch_is_a_gap(
    server: Server, world: World, admin: httpx.Client
) -> None:
    session = start_ingest_session(admin, world.participant_a)
    with server.client(world.keys["device"]) as device:
        url = f"/sessions/{session}/ingest"
        first = device.post(url, json={"blocks": [eda_block(0, 40)]}).json()["results"][0]
        assert (first["accepted"], first["duplicates"], first["gap_samples"]) == (40, 0, 0)
        again = device.post(url, json={"blocks": [eda_block(0, 40)]}).json()["results"][0]
        assert (again["accepted"], again["duplicates"]) == (0, 40)
        # 40..59 is lost on the way; 60..99 arrives, then an overlapping resend of 80..119.
        after = device.post(url, json={"blocks": [eda_block(60, 40)]}).json()["results"][0]
        assert (after["accepted"], after["gap_samples"]) == (40, 20)
        overlap = device.post(url, json={"blocks": [eda_block(80, 40)]}).json()["results"][0]
        assert (overlap["accepted"], overlap["duplicates"]) == (20, 20)
    expected_seqs = [*range(0, 40), *range(60, 120)]
    raw = _wait_rows(admin, session, len(expected_seqs))
    values = [round((row["eda"] - 1.0) * 1000) for row in raw["rows"]]
    assert values == expected_seqs  # each sample once, in order, none of the lost ones
    stopped = admin.post(f"/sessions/{session}/stop").json()
    assert stopped["ingest"]["band/eda"] == {
        "next_seq": 120,
        "received": 100,
        "duplicates": 60,
        "gap_samples": 20,
    }
    ledger = stopped["summary"]["streams"]["band/eda"]
    assert ledger["delivered"] == 100
    assert ledger["stored"] == 100
    assert ledger["device_gap_samples"] == 20  # the runtime's own accounting of the hole


def test_one_batch_with_several_blocks_of_a_new_stream_advances_its_cursor_in_order(
    server: Server, world: World, admin: httpx.Client
) -> None:
    """The batch's cursors are locked once; blocks of one stream still apply in order."""
    session = start_ingest_session(admin, world.participant_a)
    blocks = [eda_block(0, 40), eda_block(20, 40), eda_block(70, 10), eda_block(0, 10)]
    with server.client(world.keys["device"]) as device:
        answer = device.post(f"/sessions/{session}/ingest", json={"blocks": blocks})
    assert answer.status_code == 200, answer.text
    got = [(r["accepted"], r["duplicates"], r["gap_samples"]) for r in answer.json()["results"]]
    # new stream from 0; 20..39 resent, 40..59 new; 60..69 skipped; all of 0..9 resent
    assert got == [(40, 0, 0), (20, 20, 0), (10, 0, 10), (0, 10, 0)]
    expected_seqs = [*range(0, 60), *range(70, 80)]
    raw = _wait_rows(admin, session, len(expected_seqs))
    assert [round((row["eda"] - 1.0) * 1000) for row in raw["rows"]] == expected_seqs
    stopped = admin.post(f"/sessions/{session}/stop").json()
    assert stopped["ingest"]["band/eda"] == {
        "next_seq": 80,
        "received": len(expected_seqs),
        "duplicates": 30,
        "gap_samples": 10,
    }


def test_gap_event_is_stored_with_the_usual_accounting(
    server: Server, world: World, admin: httpx.Client
) -> None:
    session = start_ingest_session(admin, world.participant_a)
    url = f"/sessions/{session}/ingest"
    admin.post(url, json={"blocks": [eda_block(100, 8)]})
    admin.post(url, json={"blocks": [eda_block(120, 8)]})
    admin.post(f"/sessions/{session}/stop")
    with open_store(server.home / "store") as store:
        events = store.read("events", tags={"session": session})
    gaps = events[events["kind"] == "gap"]
    assert list(gaps["label"]) == ["ingest_lost"]
    assert list(gaps["n_samples"]) == [12]
    assert list(gaps["first_index"]) == [108]


def test_bad_blocks_get_a_one_line_error(server: Server, world: World, admin: httpx.Client) -> None:
    session = start_ingest_session(admin, world.participant_a)
    url = f"/sessions/{session}/ingest"
    block = eda_block(0, 4)
    block["values"] = block["values"][:3]
    response = admin.post(url, json={"blocks": [block]})
    assert response.status_code == 422
    assert "one row per timestamp" in response.json()["detail"]
    block = eda_block(0, 4)
    block["modality"] = "mood"
    assert "unknown modality" in admin.post(url, json={"blocks": [block]}).json()["detail"]
    admin.post(f"/sessions/{session}/stop")
    late = admin.post(url, json={"blocks": [eda_block(0, 4)]})
    assert late.status_code == 409
    assert "kind 'ingest'" in late.json()["detail"]


def test_websocket_ingest_dedupes_like_http(
    server: Server, world: World, admin: httpx.Client
) -> None:
    session = start_ingest_session(admin, world.participant_a)
    replies = []
    with _device_ingest_ws(server, world, session) as ws:
        for first in (0, 0, 16):
            ws.send(json.dumps({"blocks": [eda_block(first, 8)]}))
            replies.append(json.loads(ws.recv(timeout=30))["results"][0])
    assert [(r["accepted"], r["duplicates"], r["gap_samples"]) for r in replies] == [
        (8, 0, 0),
        (0, 8, 0),
        (8, 0, 8),
    ]
    assert _wait_rows(admin, session, 16)["total"] == 16
    admin.post(f"/sessions/{session}/stop")


def test_device_cannot_ingest_for_another_participant(
    server: Server, world: World, admin: httpx.Client
) -> None:
    other = admin.post(f"/studies/{world.study_a}/participants", json={"pseudonym": "other"})
    session = start_ingest_session(admin, other.json()["id"])
    with server.client(world.keys["device"]) as device:
        response = device.post(f"/sessions/{session}/ingest", json={"blocks": [eda_block(0, 4)]})
    assert response.status_code == 404
    admin.post(f"/sessions/{session}/stop")


def test_ingest_model_must_be_shipped(server: Server, world: World, admin: httpx.Client) -> None:
    body = {"participant_id": world.participant_a, "kind": "ingest", "model": "not-a-bundle"}
    before = admin.get(f"/studies/{world.study_a}/sessions").json()["total"]
    response = admin.post("/sessions", json=body)
    assert response.status_code == 422
    assert "not a shipped bundle" in response.json()["detail"]
    assert admin.get(f"/studies/{world.study_a}/sessions").json()["total"] == before
    body["model"] = "none"  # features only: accepted
    assert admin.post("/sessions", json=body).status_code == 201


def test_to_block_turns_missing_values_into_nan_and_keeps_the_sequence_numbers() -> None:
    import math

    from affectstream.api.ingest import BlockIn, to_block

    raw = BlockIn("band/acc", "acc", ("x", "y"), 32.0, 7, [1.0, 2.0], [[0.5, None], [None, 1.5]])
    block = to_block(raw)
    assert block.values.shape == (2, 2)
    assert [[None if math.isnan(v) else v for v in row] for row in block.values.tolist()] == (
        raw.values
    )
    assert block.index.tolist() == [7, 8]


def test_cursors_reach_the_database_while_the_session_runs(
    server: Server, world: World, admin: httpx.Client
) -> None:
    """One process per session (no replica bus): cursors live in memory, written behind."""
    from affectstream.api.ingest_cursors import FLUSH_S

    session = start_ingest_session(admin, world.participant_a)
    url = f"/sessions/{session}/ingest"
    assert admin.post(url, json={"blocks": [eda_block(0, 40)]}).status_code == 200
    assert admin.post(url, json={"blocks": [eda_block(50, 10)]}).status_code == 200
    expected = (60, 50, 0, 10)  # next_seq, received, duplicates, gap_samples

    def stored() -> tuple[int, ...] | None:
        with sqlite3.connect(server.home / "service.sqlite") as db:
            row = db.execute(
                "SELECT next_seq, received, duplicates, gap_samples FROM ingest_cursors "
                "WHERE session_id = ? AND stream = 'band/eda'",
                (session,),
            ).fetchone()
        return None if row is None else tuple(row)

    deadline = time.monotonic() + FLUSH_S + 10
    while stored() != expected and time.monotonic() < deadline:
        time.sleep(0.2)
    assert stored() == expected
    status = admin.get(f"/sessions/{session}").json()  # the running session: from memory
    assert status["ingest"]["band/eda"]["received"] == 50
    admin.post(f"/sessions/{session}/stop")


def test_a_websocket_is_checked_again_once_its_session_stops(
    server: Server, world: World, admin: httpx.Client
) -> None:
    """The connection's access check holds for one run of the session, not after it."""
    session = start_ingest_session(admin, world.participant_a)
    with _device_ingest_ws(server, world, session) as ws:
        ws.send(json.dumps({"blocks": [eda_block(0, 8)]}))
        assert json.loads(ws.recv(timeout=30))["results"][0]["accepted"] == 8
        assert admin.post(f"/sessions/{session}/stop").status_code == 200
        ws.send(json.dumps({"blocks": [eda_block(8, 8)]}))
        reply = json.loads(ws.recv(timeout=30))
    assert "does not take ingest" in reply["error"]
    stopped = admin.get(f"/sessions/{session}").json()
    assert stopped["ingest"]["band/eda"]["received"] == 8  # the refused batch left no trace
