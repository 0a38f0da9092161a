"""Every route × every role, including another study's ids (SERVICE.md's security table).

The expected codes are written out here from the design's table, not read from the code:
admin everything; researcher all of their studies incl. raw; operator sessions, markers,
self-reports, estimates and features but no raw; viewer estimates only; device ingest for
its own participant only. Another study's id is 404 for everyone but admin.
"""

from __future__ import annotations

import time

import httpx
import pytest

from tests.api.conftest import Server, World, eda_block, start_ingest_session

ROLES = ("admin", "researcher", "operator", "viewer", "device")
RULE = {"name": "lost", "kind": "signal_lost"}
EST = {"format": "estimates"}
RAW = {"format": "csv"}


def _export(admin: httpx.Client, participant: int) -> int:
    """A finished ``estimates`` export of a stored (stopped) session of ``participant``."""
    session = start_ingest_session(admin, participant)
    admin.post(f"/sessions/{session}/ingest", json={"blocks": [eda_block(0, 40)]})
    admin.post(f"/sessions/{session}/stop")
    job = admin.post(f"/sessions/{session}/exports", json=EST).json()
    deadline = time.monotonic() + 60
    while admin.get(f"/exports/{job['id']}").json()["status"] != "done":
        assert time.monotonic() < deadline, admin.get(f"/exports/{job['id']}").text
        time.sleep(0.2)
    return int(job["id"])


def _matrix(
    w: World, sa: str, sb: str, ra: int = 1, rb: int = 1, ea: int = 1, eb: int = 1
) -> list[tuple[str, str, str, dict | None, tuple[int, ...]]]:
    """(method, route template, concrete path, body, codes for ROLES in order)."""
    a, b, pa, pb = w.study_a, w.study_b, w.participant_a, w.participant_b
    block = {"blocks": [eda_block(0, 8)]}
    s = "/sessions/{session_id}"
    return [
        ("GET", "/studies", "/studies", None, (200, 200, 200, 200, 403)),
        ("POST", "/studies", "/studies", {"name": "n"}, (201, 201, 403, 403, 403)),
        ("GET", "/studies/{study_id}", f"/studies/{a}", None, (200, 200, 200, 200, 403)),
        ("GET", "/studies/{study_id}", f"/studies/{b}", None, (200, 404, 404, 404, 403)),
        (
            "GET",
            "/studies/{study_id}/participants",
            f"/studies/{a}/participants",
            None,
            (200, 200, 200, 200, 403),
        ),
        (
            "GET",
            "/studies/{study_id}/participants",
            f"/studies/{b}/participants",
            None,
            (200, 404, 404, 404, 403),
        ),
        (
            "POST",
            "/studies/{study_id}/participants",
            f"/studies/{a}/participants",
            "unique",
            (201, 201, 403, 403, 403),
        ),
        (
            "POST",
            "/studies/{study_id}/participants",
            f"/studies/{b}/participants",
            "unique",
            (201, 404, 403, 403, 403),
        ),
        (
            "GET",
            "/participants/{participant_id}",
            f"/participants/{pa}",
            None,
            (200, 200, 200, 200, 403),
        ),
        (
            "GET",
            "/participants/{participant_id}",
            f"/participants/{pb}",
            None,
            (200, 404, 404, 404, 403),
        ),
        # Valence calibration: fit and delete as participant:write, the card as
        # selfreport:read (it lists the person's ratings). A session of another participant
        # is a conflict for those who may see both, not found for the others.
        (
            "POST",
            "/participants/{participant_id}/valence-calibration",
            f"/participants/{pa}/valence-calibration",
            {"sessions": [sb]},
            (409, 404, 403, 403, 403),
        ),
        (
            "POST",
            "/participants/{participant_id}/valence-calibration",
            f"/participants/{pb}/valence-calibration",
            {"sessions": [sa]},
            (409, 404, 403, 403, 403),
        ),
        (
            "GET",
            "/participants/{participant_id}/valence-calibration",
            f"/participants/{pa}/valence-calibration",
            None,
            (404, 404, 404, 403, 403),
        ),
        (
            "DELETE",
            "/participants/{participant_id}/valence-calibration",
            f"/participants/{pa}/valence-calibration",
            None,
            (200, 200, 403, 403, 403),
        ),
        (
            "DELETE",
            "/participants/{participant_id}/valence-calibration",
            f"/participants/{pb}/valence-calibration",
            None,
            (200, 404, 403, 403, 403),
        ),
        (
            "GET",
            "/studies/{study_id}/sessions",
            f"/studies/{a}/sessions",
            None,
            (200, 200, 200, 200, 403),
        ),
        (
            "GET",
            "/studies/{study_id}/sessions",
            f"/studies/{b}/sessions",
            None,
            (200, 404, 404, 404, 403),
        ),
        (
            "POST",
            "/sessions",
            "/sessions",
            {"participant_id": pa, "kind": "ingest"},
            (201, 201, 201, 403, 403),
        ),
        (
            "POST",
            "/sessions",
            "/sessions",
            {"participant_id": pb, "kind": "ingest"},
            (201, 404, 404, 403, 403),
        ),
        ("GET", s, f"/sessions/{sa}", None, (200, 200, 200, 200, 403)),
        ("GET", s, f"/sessions/{sb}", None, (200, 404, 404, 404, 403)),
        (
            "POST",
            s + "/markers",
            f"/sessions/{sa}/markers",
            {"label": "m"},
            (201, 201, 201, 403, 403),
        ),
        (
            "POST",
            s + "/markers",
            f"/sessions/{sb}/markers",
            {"label": "m"},
            (201, 404, 404, 403, 403),
        ),
        ("GET", s + "/markers", f"/sessions/{sa}/markers", None, (200, 200, 200, 200, 403)),
        ("GET", s + "/markers", f"/sessions/{sb}/markers", None, (200, 404, 404, 404, 403)),
        (
            "POST",
            s + "/self-reports",
            f"/sessions/{sa}/self-reports",
            {"arousal": 7, "valence": 3},
            (201, 201, 201, 403, 403),
        ),
        (
            "POST",
            s + "/self-reports",
            f"/sessions/{sb}/self-reports",
            {"arousal": 7, "valence": 3},
            (201, 404, 404, 403, 403),
        ),
        (
            "GET",
            s + "/self-reports",
            f"/sessions/{sa}/self-reports",
            None,
            (200, 200, 200, 403, 403),
        ),
        (
            "GET",
            s + "/self-reports",
            f"/sessions/{sb}/self-reports",
            None,
            (200, 404, 404, 403, 403),
        ),
        ("GET", s + "/estimates", f"/sessions/{sa}/estimates", None, (200, 200, 200, 200, 403)),
        ("GET", s + "/estimates", f"/sessions/{sb}/estimates", None, (200, 404, 404, 404, 403)),
        ("GET", s + "/features", f"/sessions/{sa}/features", None, (200, 200, 200, 403, 403)),
        ("GET", s + "/features", f"/sessions/{sb}/features", None, (200, 404, 404, 403, 403)),
        ("GET", s + "/raw/{modality}", f"/sessions/{sa}/raw/eda", None, (200, 200, 403, 403, 403)),
        ("GET", s + "/raw/{modality}", f"/sessions/{sb}/raw/eda", None, (200, 404, 403, 403, 403)),
        ("POST", s + "/ingest", f"/sessions/{sa}/ingest", block, (200, 200, 200, 403, 200)),
        ("POST", s + "/ingest", f"/sessions/{sb}/ingest", block, (200, 404, 404, 403, 404)),
        ("GET", "/models", "/models", None, (200, 200, 200, 200, 403)),
        ("GET", "/models/{name}", "/models/stress-wrist", None, (200, 200, 200, 200, 403)),
        ("GET", "/audit", "/audit", None, (200, 403, 403, 403, 403)),
        # A fresh participant per role (erasure is for good), in study A or B.
        (
            "POST",
            "/participants/{participant_id}/erase",
            "ERASE_A",
            None,
            (200, 200, 403, 403, 403),
        ),
        (
            "POST",
            "/participants/{participant_id}/erase",
            "ERASE_B",
            None,
            (200, 404, 403, 403, 403),
        ),
        # Sessions A and B are running: whoever may export them is told to stop them first.
        ("POST", s + "/exports", f"/sessions/{sa}/exports", EST, (409, 409, 409, 403, 403)),
        ("POST", s + "/exports", f"/sessions/{sa}/exports", RAW, (409, 409, 403, 403, 403)),
        ("POST", s + "/exports", f"/sessions/{sb}/exports", EST, (409, 404, 404, 403, 403)),
        ("GET", "/exports/{export_id}", f"/exports/{ea}", None, (200, 200, 200, 403, 403)),
        ("GET", "/exports/{export_id}", f"/exports/{eb}", None, (200, 404, 404, 403, 403)),
        (
            "GET",
            "/exports/{export_id}/download",
            f"/exports/{ea}/download",
            None,
            (200, 200, 200, 403, 403),
        ),
        (
            "GET",
            "/exports/{export_id}/download",
            f"/exports/{eb}/download",
            None,
            (200, 404, 404, 403, 403),
        ),
        (
            "POST",
            "/studies/{study_id}/alert-rules",
            f"/studies/{a}/alert-rules",
            RULE,
            (201, 201, 403, 403, 403),
        ),
        (
            "POST",
            "/studies/{study_id}/alert-rules",
            f"/studies/{b}/alert-rules",
            RULE,
            (201, 404, 403, 403, 403),
        ),
        (
            "GET",
            "/studies/{study_id}/alert-rules",
            f"/studies/{a}/alert-rules",
            None,
            (200, 200, 200, 403, 403),
        ),
        (
            "GET",
            "/studies/{study_id}/alert-rules",
            f"/studies/{b}/alert-rules",
            None,
            (200, 404, 404, 403, 403),
        ),
        (
            "GET",
            "/alert-rules/{rule_id}/deliveries",
            f"/alert-rules/{ra}/deliveries",
            None,
            (200, 200, 200, 403, 403),
        ),
        (
            "GET",
            "/alert-rules/{rule_id}/deliveries",
            f"/alert-rules/{rb}/deliveries",
            None,
            (200, 404, 404, 403, 403),
        ),
        # Deleting a rule of study B: only admin may (the others see 404 or 403 before it
        # is gone, since their check comes first); study A's deletion is per role, below.
        ("DELETE", "/alert-rules/{rule_id}", f"/alert-rules/{rb}", None, (204, 404, 403, 403, 403)),
        ("DELETE", "/alert-rules/{rule_id}", f"/alert-rules/{ra}", None, (204, 204, 403, 403, 403)),
        ("POST", "/users", "/users", "user", (201, 403, 403, 403, 403)),
        ("POST", "/users/{user_id}/keys", "/users/1/keys", None, (201, 403, 403, 403, 403)),
        ("DELETE", "/keys/{prefix}", "/keys/000000000000", None, (404, 403, 403, 403, 403)),
        # Stopping is last: it ends the sessions the rows above use.
        ("POST", s + "/stop", f"/sessions/{sb}/stop", None, (200, 404, 404, 403, 403)),
        ("POST", s + "/stop", f"/sessions/{sa}/stop", None, (403, 403, 200, 403, 403)),
    ]


def _body(body: object, role: str, n: int) -> object:
    if body == "unique":
        return {"pseudonym": f"X{n}-{role}"}
    if body == "user":
        return {"name": f"matrix-{n}-{role}", "role": "viewer"}
    return body


def test_every_route_for_every_role(server: Server, world: World, admin: httpx.Client) -> None:
    sa = start_ingest_session(admin, world.participant_a)
    sb = start_ingest_session(admin, world.participant_b)
    ra = admin.post(f"/studies/{world.study_a}/alert-rules", json=RULE).json()["id"]
    rb = admin.post(f"/studies/{world.study_b}/alert-rules", json=RULE).json()["id"]
    ea, eb = _export(admin, world.participant_a), _export(admin, world.participant_b)
    matrix = _matrix(world, sa, sb, ra, rb, ea, eb)
    failures = []
    for n, (method, _, path, body, codes) in enumerate(matrix):
        # The stop of session A: the operator stops it first; then it is no longer running (409
        # for the others would hide the role check), so each role gets its own running session.
        for role, expected in zip(ROLES, codes, strict=True):
            target = path
            if path == f"/sessions/{sa}/stop":
                target = f"/sessions/{start_ingest_session(admin, world.participant_a)}/stop"
                expected = 200 if role in ("admin", "researcher", "operator") else 403
            if path in ("ERASE_A", "ERASE_B"):
                study = world.study_a if path == "ERASE_A" else world.study_b
                fresh = admin.post(
                    f"/studies/{study}/participants", json={"pseudonym": f"E{n}{role}"}
                )
                target = f"/participants/{fresh.json()['id']}/erase"
            if method == "DELETE" and path == f"/alert-rules/{ra}":
                fresh = admin.post(f"/studies/{world.study_a}/alert-rules", json=RULE)
                target = f"/alert-rules/{fresh.json()['id']}"
            with server.client(world.keys[role]) as client:
                response = client.request(method, target, json=_body(body, role, n))
            if response.status_code != expected:
                failures.append(
                    f"{role:10s} {method} {target}: {response.status_code} != {expected}"
                )
    assert not failures, "\n".join(failures)


def test_the_matrix_covers_every_route(server: Server, world: World) -> None:
    schema = httpx.get(server.url + "/openapi.json").json()
    routes = {
        (method.upper(), path)
        for path, item in schema["paths"].items()
        for method in item
        if path not in ("/health", "/sessions/{session_id}/events")
        and not path.startswith("/dashboard/")  # tests/dashboard/test_dashboard_api.py
    }
    covered = {(m, template) for m, template, *_ in _matrix(world, "s", "s")}
    assert routes - covered == set()


@pytest.mark.parametrize("role", ["researcher", "operator", "viewer"])
def test_lists_show_only_own_studies(server: Server, world: World, role: str) -> None:
    with server.client(world.keys[role]) as client:
        ids = {s["id"] for s in client.get("/studies", params={"limit": 1000}).json()["items"]}
    assert world.study_a in ids
    assert world.study_b not in ids
