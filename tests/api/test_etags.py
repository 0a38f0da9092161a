"""ETags on the reads clients poll: same answer, same tag; If-None-Match gives 304."""

from __future__ import annotations

import httpx

from tests.api.conftest import Server, World, eda_block, start_ingest_session


def _revalidate(client: httpx.Client, path: str) -> httpx.Response:
    first = client.get(path)
    assert first.status_code == 200, first.text
    tag = first.headers["etag"]
    assert first.headers["cache-control"] == "private, no-cache"
    again = client.get(path, headers={"If-None-Match": tag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == tag
    stale = client.get(path, headers={"If-None-Match": '"not-the-tag"'})
    assert stale.status_code == 200
    assert stale.json() == first.json()
    return first


def test_unchanged_reads_are_304(server: Server, world: World, admin: httpx.Client) -> None:
    models = _revalidate(admin, "/models").json()
    if models:
        _revalidate(admin, f"/models/{models[0]['name']}")
    _revalidate(admin, f"/studies/{world.study_a}")
    _revalidate(admin, "/studies")
    with server.client(world.keys["viewer"]) as viewer:  # the tag is the body's, not the role's
        _revalidate(viewer, f"/studies/{world.study_a}")


def test_tag_changes_with_the_resource(server: Server, world: World, admin: httpx.Client) -> None:
    listing = f"/studies/{world.study_a}/sessions"
    before = admin.get(listing).headers["etag"]
    session = start_ingest_session(admin, world.participant_a)
    after = admin.get(listing, headers={"If-None-Match": before})
    assert after.status_code == 200  # a new session: a new list, a new tag
    assert after.headers["etag"] != before
    admin.post(f"/sessions/{session}/ingest", json={"blocks": [eda_block(0, 8)]})
    admin.post(f"/sessions/{session}/stop")
    stopped = _revalidate(admin, f"/sessions/{session}")  # a stopped session keeps its tag
    assert stopped.json()["status"] == "stopped"


def test_no_304_for_another_studys_id(server: Server, world: World, admin: httpx.Client) -> None:
    tag = admin.get(f"/studies/{world.study_b}").headers["etag"]
    with server.client(world.keys["researcher"]) as researcher:  # member of study A only
        answer = researcher.get(f"/studies/{world.study_b}", headers={"If-None-Match": tag})
    assert answer.status_code == 404  # access is checked before the tag
