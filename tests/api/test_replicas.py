"""Scale-out on loopback: two API replicas and two gateways on one PostgreSQL and one influxd.

Both replicas are real ``affectstream serve`` processes sharing a real PostgreSQL (the
metadata and the replica bus, LISTEN/NOTIFY) and a real influxd (time series); the gateways
are HTTP ingest clients. Skipped when PostgreSQL or influxd is not installed (scripts/test.sh
installs both as root).
"""

from __future__ import annotations

import io
import json
import shutil
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
from websockets.sync.client import connect

from affectstream.api.loadgen import DEVICES, json_batches, participant_blocks
from affectstream.api.security import new_key_text
from affectstream.api.serve_process import ServeProcess
from tests.api.conftest import Server, eda_block, make_user
from tests.api.test_postgres import postgres_url

__all__ = ["postgres_url"]


#: Requests a minute per key (the tests' own admin traffic stays far below it).
RATE_LIMIT = 60


@dataclass
class Replicas:
    """Replica A and B and the admin key both accept."""

    a: Server
    b: Server
    key: str

    def client(self, server: Server) -> httpx.Client:
        """An admin client of ``server``."""
        return server.client(self.key)


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory, postgres_url: str) -> Iterator[Replicas]:
    """Two replicas on one PostgreSQL and one influxd (started here, loopback only)."""
    if shutil.which("influxd") is None:
        pytest.skip("influxd is not installed: run scripts/test.sh as root (apt-get influxdb)")
    from affectstream.store.influx_devserver import LocalInfluxDB

    influx = LocalInfluxDB(database="replicas")
    influx.start()
    key = new_key_text()
    env = {"AFFECTSTREAM_API_RATE_LIMIT_PER_MINUTE": str(RATE_LIMIT)}
    servers: list[Server] = []
    try:
        for name in ("replica-a", "replica-b"):
            replica = ServeProcess(
                f"{influx.url}?bucket=replicas",
                postgres_url,
                home=tmp_path_factory.mktemp(name),
                admin_key=key,
                env=env,
            )
            servers.append(replica.start())
        yield Replicas(servers[0], servers[1], key)
    finally:
        for server in servers:
            server.stop()
        influx.stop()


def _participant(client: httpx.Client, name: str) -> int:
    study = client.post("/studies", json={"name": name})
    assert study.status_code == 201, study.text
    p = client.post(f"/studies/{study.json()['id']}/participants", json={"pseudonym": name})
    assert p.status_code == 201, p.text
    return int(p.json()["id"])


def _ws_messages(
    url: str, key: str, out: list[dict], ready: threading.Event, stop: threading.Event
) -> None:
    ws_url = url.replace("http", "ws", 1)
    with connect(ws_url, additional_headers={"Authorization": f"Bearer {key}"}) as ws:
        out.append(json.loads(ws.recv()))  # the hello status
        ready.set()
        while not stop.is_set():
            try:
                out.append(json.loads(ws.recv(timeout=0.5)))
            except TimeoutError:
                continue


def test_estimate_from_gateway_a_reaches_a_websocket_client_on_replica_b(
    replicas: Replicas,
) -> None:
    with replicas.client(replicas.a) as on_a, replicas.client(replicas.b) as on_b:
        participant = _participant(on_a, "GW-A")
        body = {"participant_id": participant, "kind": "ingest", "devices": DEVICES}
        started = on_a.post("/sessions", json=body)
        assert started.status_code == 201, started.text
        session = started.json()["id"]
        messages: list[dict] = []
        ready, stop = threading.Event(), threading.Event()
        listener = threading.Thread(
            target=_ws_messages,
            args=(f"{replicas.b.url}/sessions/{session}/live", replicas.key, messages, ready, stop),
        )
        listener.start()
        try:
            assert ready.wait(30)
            hello = messages[0]  # replica B does not run the session; replica A does
            assert (hello["running"], hello["here"]) == (True, False)
            t0 = time.time() - 90
            blocks = participant_blocks(0, 90.0, t0)
            for _t, batch in json_batches(blocks, t0, [float(x) for x in range(0, 91, 10)]):
                response = on_a.post(f"/sessions/{session}/ingest", json=batch)  # gateway A
                assert response.status_code == 200, response.text
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not any(
                m["type"] == "estimate" for m in messages
            ):
                time.sleep(0.2)
        finally:
            stop.set()
            listener.join(10)
        relayed = [m for m in messages if m["type"] == "estimate"]
        assert relayed, f"no estimate reached replica B: {[m['type'] for m in messages]}"
        assert all(m["session"] == session for m in relayed)
        stopped = on_b.post(f"/sessions/{session}/stop")  # stopped through replica B
        assert stopped.status_code == 200, stopped.text
        assert stopped.json()["status"] == "stopped"
        stored = on_b.get(f"/sessions/{session}/estimates", params={"limit": 1000}).json()
        by_end = {round(row["time_ns"] / 1e6): row for row in stored["rows"]}  # at t_end, ms
        for message in relayed:  # what B pushed is what A computed and stored
            row = by_end[round(message["t_end"] * 1e3)]
            assert row["arousal"] == pytest.approx(message["arousal"])


def test_batch_resent_to_replica_b_lands_once(replicas: Replicas) -> None:
    with replicas.client(replicas.a) as on_a, replicas.client(replicas.b) as on_b:
        participant = _participant(on_a, "GW-B")
        body = {"participant_id": participant, "kind": "ingest", "model": "none"}
        session = on_a.post("/sessions", json=body).json()["id"]  # runs on replica A
        url = f"/sessions/{session}/ingest"
        first = on_a.post(url, json={"blocks": [eda_block(0, 40)]}).json()["results"][0]
        assert (first["accepted"], first["duplicates"]) == (40, 0)
        resent = on_b.post(url, json={"blocks": [eda_block(0, 40)]})  # A's answer was lost
        assert resent.status_code == 200, resent.text
        assert (
            resent.json()["results"][0]["accepted"],
            resent.json()["results"][0]["duplicates"],
        ) == (0, 40)
        # Gateway B moves to replica B: the next batch is accepted there and handed to A...
        moved = on_b.post(url, json={"blocks": [eda_block(40, 40)]}).json()["results"][0]
        assert (moved["accepted"], moved["duplicates"]) == (40, 0)
        # ... and resent to A it is a duplicate there too.
        again = on_a.post(url, json={"blocks": [eda_block(40, 40)]}).json()["results"][0]
        assert (again["accepted"], again["duplicates"]) == (0, 40)
        stopped = on_b.post(f"/sessions/{session}/stop")
        assert stopped.status_code == 200, stopped.text
        status = stopped.json()
        assert status["ingest"]["band/eda"]["received"] == 80
        assert status["ingest"]["band/eda"]["duplicates"] == 80
        # The session on replica A got the handed-off block: its ledger delivered all 80.
        assert status["summary"]["streams"]["band/eda"]["delivered"] == 80
        raw = on_b.get(f"/sessions/{session}/raw/eda", params={"limit": 1000}).json()
        values = [round((row["eda"] - 1.0) * 1000) for row in raw["rows"]]
        assert values == list(range(80))  # each sample once, in order


def test_rate_limit_is_shared_by_the_replicas(replicas: Replicas) -> None:
    with replicas.client(replicas.a) as on_a:
        key = make_user(on_a, "researcher", [])
    codes = []
    for i in range(RATE_LIMIT + 20):  # alternately on A and B, with one key
        server = replicas.a if i % 2 == 0 else replicas.b
        with server.client(key) as client:
            answer = client.get("/studies")
        codes.append(answer.status_code)
        if answer.status_code == 429:
            assert answer.headers["retry-after"] == "60"
    # Per-process limits would let 2 * RATE_LIMIT through; shared, the limit holds in total
    # (the sliding estimate may only let a few more through when a minute boundary passes).
    assert codes[:RATE_LIMIT] == [200] * RATE_LIMIT
    assert 429 in codes
    assert codes.count(200) < RATE_LIMIT + 20
    refused_on = {("a" if i % 2 == 0 else "b") for i, c in enumerate(codes) if c == 429}
    assert refused_on == {"a", "b"}


class _Listener:
    """A WebSocket client of one session's live channel on one replica (a thread)."""

    def __init__(self, server: Server, session: str, key: str) -> None:
        self.messages: list[dict] = []
        self._ready, self._stop = threading.Event(), threading.Event()
        url = f"{server.url}/sessions/{session}/live"
        args = (url, key, self.messages, self._ready, self._stop)
        self._thread = threading.Thread(target=_ws_messages, args=args)

    def __enter__(self) -> _Listener:
        self._thread.start()
        assert self._ready.wait(30), "the live WebSocket did not open"
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def wait_for(self, predicate: Callable[[dict], bool], timeout: float = 30.0) -> dict:
        """The first message ``predicate`` accepts (bounded wait)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in list(self.messages):
                if predicate(message):
                    return message
            time.sleep(0.1)
        raise AssertionError(f"no such message; got types {[m['type'] for m in self.messages]}")


def test_a_live_message_over_the_notify_limit_reaches_replica_b(
    replicas: Replicas, postgres_url: str
) -> None:
    with replicas.client(replicas.a) as on_a:
        participant = _participant(on_a, "GW-LARGE")
        body = {"participant_id": participant, "kind": "ingest", "model": "none"}
        session = on_a.post("/sessions", json=body).json()["id"]  # runs on replica A
        # 2,000 snowmen: 12,000 bytes as JSON (\u2603 each), over PostgreSQL's 8,000.
        detail = "\u2603" * 2000
        assert len(json.dumps(detail)) > 8000
        with _Listener(replicas.b, session, replicas.key) as b:
            large = on_a.post(
                f"/sessions/{session}/markers", json={"label": "large", "detail": detail}
            )
            assert large.status_code == 201, large.text
            small = on_a.post(f"/sessions/{session}/markers", json={"label": "small"})
            assert small.status_code == 201, small.text
            b.wait_for(lambda m: m.get("label") == "small")
            labels = [m.get("label") for m in b.messages if m["type"] == "event"]
        assert labels.index("large") < labels.index("small")  # in the order they were made
        relayed = next(m for m in b.messages if m.get("label") == "large")
        assert relayed["detail"] == detail
        import psycopg

        from affectstream.api.bus import conninfo

        with psycopg.connect(conninfo(postgres_url) or "") as pg:  # it went through the table
            stored = pg.execute(
                "SELECT count(*) FROM bus_messages WHERE payload LIKE %s", (f"%{session}%",)
            ).fetchone()
        assert stored is not None and stored[0] == 1
        assert on_a.post(f"/sessions/{session}/stop").status_code == 200


def test_alert_rule_made_on_b_acts_on_a_session_running_on_a(replicas: Replicas) -> None:
    from tests.api.test_alerts import _Receiver

    receiver = _Receiver(fail_first=0)
    try:
        with replicas.client(replicas.a) as on_a, replicas.client(replicas.b) as on_b:
            participant = _participant(on_a, "GW-ALERT")
            study = on_a.get(f"/participants/{participant}").json()["study_id"]
            body = {"participant_id": participant, "kind": "ingest", "model": "none"}
            session = on_a.post("/sessions", json=body).json()["id"]  # runs on replica A
            ingest = f"/sessions/{session}/ingest"
            with _Listener(replicas.b, session, replicas.key) as b:
                assert on_a.post(ingest, json={"blocks": [eda_block(0, 8)]}).status_code == 200
                # Made on B after the session started on A: A evaluates it from now on.
                rule = on_b.post(
                    f"/studies/{study}/alert-rules",
                    json={
                        "name": "lost across replicas",
                        "kind": "signal_lost",
                        "lost_after_s": 1.0,
                        "webhook_url": receiver.url,
                    },
                )
                assert rule.status_code == 201, rule.text
                rule_id = rule.json()["id"]
                fired = b.wait_for(lambda m: m["type"] == "alert" and m["state"] == "fired")
                assert (fired["rule_id"], fired["session"]) == (rule_id, session)
                deadline = time.monotonic() + 30  # and A sent the signed webhook
                while not receiver.requests and time.monotonic() < deadline:
                    time.sleep(0.1)
                assert json.loads(receiver.requests[0][1])["rule_id"] == rule_id
                # Data again clears it; then the rule is deleted on B: no new alert on A.
                assert on_b.post(ingest, json={"blocks": [eda_block(8, 8)]}).status_code == 200
                b.wait_for(lambda m: m["type"] == "alert" and m["state"] == "cleared")
                assert on_b.delete(f"/alert-rules/{rule_id}").status_code == 204
                time.sleep(3.0)  # three times lost_after_s without data
                alerts = [m["state"] for m in b.messages if m["type"] == "alert"]
            assert alerts == ["fired", "cleared"]
            assert on_a.post(f"/sessions/{session}/stop").status_code == 200
    finally:
        receiver.close()


def test_an_export_made_on_a_downloads_through_b(replicas: Replicas) -> None:
    with replicas.client(replicas.a) as on_a, replicas.client(replicas.b) as on_b:
        participant = _participant(on_a, "GW-EXPORT")
        body = {"participant_id": participant, "kind": "ingest", "model": "none"}
        session = on_a.post("/sessions", json=body).json()["id"]
        blocks = {"blocks": [eda_block(0, 40)]}
        assert on_a.post(f"/sessions/{session}/ingest", json=blocks).status_code == 200
        assert on_a.post(f"/sessions/{session}/stop").status_code == 200
        job = on_a.post(f"/sessions/{session}/exports", json={"format": "csv"})
        assert job.status_code == 202, job.text
        job_id = job.json()["id"]
        deadline = time.monotonic() + 120
        while (status := on_b.get(f"/exports/{job_id}").json())["status"] not in ("done", "failed"):
            assert time.monotonic() < deadline, status
            time.sleep(0.3)
        assert status["status"] == "done", status
        through_b = on_b.get(f"/exports/{job_id}/download")
        assert through_b.status_code == 200, through_b.text
        assert through_b.headers["content-type"] == "application/zip"
        # The rows are the only copy: no file on either replica that an erasure could miss.
        for replica in (replicas.a, replicas.b):
            assert not list((replica.home / "exports").glob(f"{job_id}-*.zip"))
        through_a = on_a.get(f"/exports/{job_id}/download")
        assert through_a.status_code == 200
        assert through_b.content == through_a.content
        with zipfile.ZipFile(io.BytesIO(through_b.content)) as zf:
            names = zf.namelist()
            assert any("eda" in name for name in names), names
