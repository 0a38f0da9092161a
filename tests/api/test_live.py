"""Live push: an emulated session started through the API; every estimate reaches the
WebSocket and SSE clients; a slow client is decimated, never the session."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from affectstream.api.live import LiveHub
from tests.api.conftest import Server, World, start_ingest_session

DURATION = 40.0


def _collect_ws(url: str, key: str, out: list[dict[str, Any]]) -> None:
    with connect(url, additional_headers={"Authorization": f"Bearer {key}"}) as ws:
        while True:
            message = json.loads(ws.recv(timeout=DURATION + 90))
            out.append(message)
            if message["type"] == "event" and message.get("label") == "ended":
                return


def _collect_sse(server: Server, path: str, key: str, out: list[dict[str, Any]]) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.stream("GET", server.url + path, headers=headers, timeout=DURATION + 90) as r:
        for line in r.iter_lines():
            if line.startswith("data: "):
                message = json.loads(line.removeprefix("data: "))
                out.append(message)
                if message["type"] == "event" and message.get("label") == "ended":
                    return


@pytest.mark.slow
def test_every_estimate_marker_and_phase_is_pushed(
    server: Server, world: World, admin: httpx.Client
) -> None:
    body = {"participant_id": world.participant_a, "kind": "emulated", "duration": DURATION}
    created = admin.post("/sessions", json=body)
    assert created.status_code == 201, created.text
    session = created.json()["id"]
    ws_messages: list[dict[str, Any]] = []
    sse_messages: list[dict[str, Any]] = []
    ws_url = server.url.replace("http", "ws") + f"/sessions/{session}/live"
    threads = [
        threading.Thread(target=_collect_ws, args=(ws_url, world.keys["viewer"], ws_messages)),
        threading.Thread(
            target=_collect_sse,
            args=(server, f"/sessions/{session}/events", world.keys["operator"], sse_messages),
        ),
    ]
    for thread in threads:
        thread.start()
    # Each client's first message (its status) is sent once it is subscribed: the marker
    # goes after both have one, so neither can miss it (a fixed sleep raced this under load).
    deadline = time.monotonic() + 120  # a hang detector
    while not (ws_messages and sse_messages):
        assert time.monotonic() < deadline, "a live client was not subscribed in 120 s"
        assert all(t.is_alive() for t in threads), "a live client ended before subscribing"
        time.sleep(0.05)
    with server.client(world.keys["operator"]) as operator:
        assert (
            operator.post(f"/sessions/{session}/markers", json={"label": "door"}).status_code == 201
        )
        # Per-stream counts appear once the emulated devices stream.
        while (live := operator.get(f"/sessions/{session}").json())["status"] == "running":
            if live["live"]["streams"] or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    assert live["status"] == "running"
    assert live["live"]["streams"], "per-stream counts while running"
    for thread in threads:
        thread.join(DURATION + 120)
    stored = admin.get(f"/sessions/{session}/estimates", params={"limit": 100_000}).json()
    assert stored["total"] > 0, server.log_tail()
    stored_ends = [row["time_ns"] for row in stored["rows"]]  # an estimate is stored at t_end
    for messages in (ws_messages, sse_messages):
        pushed = [round(m["t_end"] * 1e9) for m in messages if m["type"] == "estimate"]
        assert pushed == stored_ends  # every estimate, in order, none sampled away
        labels = [m.get("label") for m in messages if m["type"] == "event"]
        assert "door" in labels
        # The first (status) message gives the phase by the protocol clock at connection
        # (None before the session runs; it may name the baseline before the baseline's event
        # is written); every later phase change is pushed as it happens.
        assert messages[0]["type"] == "status"
        pushed_phases = [x for x in labels if x in ("baseline", "stress", "recovery")]
        first = messages[0]["phase"]
        if first is not None and pushed_phases[:1] != [first]:
            pushed_phases.insert(0, first)
        assert pushed_phases == ["baseline", "stress", "recovery"]
        assert not [m for m in messages if m["type"] == "dropped"]
        # Device/stream status is pushed while the session runs, with growing counts.
        statuses = [m for m in messages[1:] if m["type"] == "status"]
        delivered = [sum(x["delivered"] for x in m["streams"].values()) for m in statuses]
        assert len(statuses) >= 5
        assert delivered == sorted(delivered)
        assert delivered[-1] > 0
    final = admin.get(f"/sessions/{session}").json()
    assert final["status"] == "stopped"
    assert final["summary"]["n_estimates"] == stored["total"]


def test_live_refuses_other_studies_and_missing_tokens(
    server: Server, world: World, admin: httpx.Client
) -> None:
    other = start_ingest_session(admin, world.participant_b)
    url = server.url.replace("http", "ws") + f"/sessions/{other}/live"
    for headers in ({"Authorization": f"Bearer {world.keys['viewer']}"}, {}):
        with pytest.raises(InvalidStatus) as info, connect(url, additional_headers=headers):
            pass
        assert info.value.response.status_code == 403
    with server.client(world.keys["viewer"]) as viewer:
        assert viewer.get(f"/sessions/{other}/events").status_code == 404
    with server.client(world.keys["device"]) as device:
        assert device.get(f"/sessions/{other}/events").status_code == 403
    admin.post(f"/sessions/{other}/stop")


def test_a_slow_subscriber_is_decimated_then_dropped_without_blocking() -> None:
    async def scenario() -> None:
        hub = LiveHub(maxlen=10, max_drops=500)
        slow = hub.subscribe("S")
        fast = hub.subscribe("S")
        started = time.perf_counter()
        for i in range(100):
            hub.publish("S", "estimate", {"i": i})
        publish_s = time.perf_counter() - started
        fast_seen = [(await fast.get()) for _ in range(11)]
        assert fast_seen[0] == {"type": "dropped", "n": 90, "total": 90}
        assert [m["i"] for m in fast_seen[1:]] == list(range(90, 100))
        # The slow one never reads: publishing more drops its oldest, then disconnects it.
        for i in range(100, 1000):
            hub.publish("S", "estimate", {"i": i})
        assert slow.closed
        assert hub.n_subscribers("S") == 0 or slow not in hub._subs.get("S", set())
        assert await slow.get() is None
        assert publish_s < 1.0  # publishing is appends only (a generous bound, not a benchmark)

    asyncio.run(scenario())
