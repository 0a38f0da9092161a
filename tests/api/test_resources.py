"""Studies, participants, sessions, markers, self-reports and time-range reads."""

from __future__ import annotations

import time

import httpx

from affectstream.store import open_store
from tests.api.conftest import Server, World, eda_block, start_ingest_session


def test_pagination_counts_and_pages(world: World, admin: httpx.Client) -> None:
    for i in range(5):
        admin.post(f"/studies/{world.study_a}/participants", json={"pseudonym": f"page-{i}"})
    url = f"/studies/{world.study_a}/participants"
    everyone = admin.get(url, params={"limit": 1000}).json()
    assert everyone["total"] == 6  # P-A from the fixture and five more
    pages = [admin.get(url, params={"limit": 4, "offset": o}).json() for o in (0, 4)]
    ids = [p["id"] for page in pages for p in page["items"]]
    assert ids == [p["id"] for p in everyone["items"]]
    assert [len(p["items"]) for p in pages] == [4, 2]


def test_duplicate_pseudonym_is_a_conflict(world: World, admin: httpx.Client) -> None:
    again = admin.post(f"/studies/{world.study_a}/participants", json={"pseudonym": "P-A"})
    assert again.status_code == 409
    assert "already has participant" in again.json()["detail"]


def test_raw_reads_are_decimated_ranged_and_audited(
    server: Server, world: World, admin: httpx.Client
) -> None:
    session = start_ingest_session(admin, world.participant_a)
    admin.post(f"/sessions/{session}/ingest", json={"blocks": [eda_block(0, 100)]})
    admin.post(f"/sessions/{session}/stop")
    with server.client(world.keys["researcher"]) as researcher:
        url = f"/sessions/{session}/raw/eda"
        full = researcher.get(url, params={"limit": 1000}).json()
        assert full["total"] == 100
        every5 = researcher.get(url, params={"every": 5, "limit": 1000}).json()
        assert every5["total"] == 20
        assert [r["time_ns"] for r in every5["rows"]] == [r["time_ns"] for r in full["rows"]][::5]
        t = [r["time_ns"] for r in full["rows"]]
        ranged = researcher.get(url, params={"start_ns": t[10], "stop_ns": t[20]}).json()
        assert [r["time_ns"] for r in ranged["rows"]] == t[10:20]
        assert researcher.get(f"/sessions/{session}/raw/mood").status_code == 404
    audit = admin.get("/audit", params={"action": "read_raw", "limit": 50}).json()["items"]
    mine = [e for e in audit if e["resource"] == f"session/{session}/raw_eda"]
    assert len(mine) == 3
    assert any("every=5" in e["detail"] for e in mine)


def test_markers_and_self_reports_are_kept_and_stored(
    server: Server, world: World, admin: httpx.Client
) -> None:
    session = start_ingest_session(admin, world.participant_a)
    now = time.time()
    with server.client(world.keys["operator"]) as operator:
        m = operator.post(f"/sessions/{session}/markers", json={"label": "cue", "t": now})
        assert m.status_code == 201
        r = operator.post(
            f"/sessions/{session}/self-reports", json={"arousal": 8, "valence": 2, "t": now + 1}
        )
        assert r.status_code == 201
        bad = operator.post(f"/sessions/{session}/self-reports", json={"arousal": 10, "valence": 2})
        assert bad.status_code == 422
        assert [x["label"] for x in operator.get(f"/sessions/{session}/markers").json()] == ["cue"]
        reports = operator.get(f"/sessions/{session}/self-reports").json()
        assert [(x["arousal"], x["valence"]) for x in reports] == [(8, 2)]
    admin.post(f"/sessions/{session}/stop")
    with open_store(server.home / "store") as store:
        events = store.read("events", tags={"session": session})
    kinds = dict(zip(events["label"], events["kind"], strict=True))
    assert kinds["cue"] == "marker"
    assert kinds["arousal=8 valence=2"] == "self_report"


def test_models_list_and_card(admin: httpx.Client) -> None:
    models = admin.get("/models").json()
    names = {m["name"] for m in models}
    assert "stress-wrist" in names
    card = admin.get("/models/stress-wrist").json()
    assert card["target"] == "arousal"
    assert card["features"]
    assert len(card["card"]) > 100
    assert admin.get("/models/nope").status_code == 404
