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


def _first_ws(server: Server, session: str, key: str) -> dict:
    """The first message (the ``status``) a new live WebSocket client gets from ``server``."""
    url = f"{server.url}/sessions/{session}/live".replace("http", "ws", 1)
    with connect(url, additional_headers={"Authorization": f"Bearer {key}"}) as ws:
        message: dict = json.loads(ws.recv(timeout=30))
    return message


def _first_sse(server: Server, session: str, key: str) -> dict:
    """The first message a new SSE client of ``server`` gets."""
    headers = {"Authorization": f"Bearer {key}"}
    url = f"{server.url}/sessions/{session}/events"
    with httpx.stream("GET", url, headers=headers, timeout=30) as response:
        assert response.status_code == 200, response.read()
        for line in response.iter_lines():
            if line.startswith("data: "):
                message: dict = json.loads(line.removeprefix("data: "))
                return message
    raise AssertionError("the event stream ended before its first message")


#: The signal-lost rule of the test below: silence this long fires it. Long against the
#: feeder's period (1 s), so it cannot fire while data flows even on a loaded machine.
LOST_AFTER_S = 5.0


def test_a_client_joining_on_b_gets_the_alerts_firing_on_a(replicas: Replicas) -> None:
    with replicas.client(replicas.a) as on_a:  # a key of its own: the rate limit is per key
        key = make_user(on_a, "admin", [])
    with replicas.a.client(key) as on_a, replicas.b.client(key) as on_b:
        participant = _participant(on_a, "GW-FIRING")
        study = on_a.get(f"/participants/{participant}").json()["study_id"]
        body = {"name": "band silent", "kind": "signal_lost", "lost_after_s": LOST_AFTER_S}
        rule = on_a.post(f"/studies/{study}/alert-rules", json=body)
        assert rule.status_code == 201, rule.text
        rule_id = rule.json()["id"]
        started = on_a.post(
            "/sessions", json={"participant_id": participant, "kind": "ingest", "model": "none"}
        )
        assert started.status_code == 201, started.text
        session = started.json()["id"]  # runs on A, and gets no data: the rule will fire
        ingest = f"/sessions/{session}/ingest"

        def joining() -> list[dict]:
            """First messages of new clients: WebSocket and SSE on B, WebSocket on A."""
            return [
                _first_ws(replicas.b, session, key),
                _first_sse(replicas.b, session, key),
                _first_ws(replicas.a, session, key),
            ]

        def is_alert(state: str) -> Callable[[dict], bool]:
            return lambda m: m["type"] == "alert" and m["state"] == state

        with _Listener(replicas.b, session, key) as watcher:
            fired = watcher.wait_for(is_alert("fired"), timeout=LOST_AFTER_S + 30)
            assert (fired["rule_id"], fired["name"], fired["kind"]) == (
                rule_id,
                body["name"],
                body["kind"],
            )
            assert fired["value"] >= LOST_AFTER_S
            as_pushed = {k: v for k, v in fired.items() if k not in ("type", "seq")}
            b_ws, b_sse, a_ws = joining()
            assert [m["here"] for m in (b_ws, b_sse, a_ws)] == [False, False, True]
            assert b_ws["running"] and b_sse["running"]
            # B's first status lists the alert as A pushed it, and as A's own does.
            assert b_ws["alerts"] == b_sse["alerts"] == a_ws["alerts"] == [as_pushed]

            # Data clears it, and keeps coming (once a second) while new clients join.
            stop_feeding = threading.Event()
            refused: list[str] = []

            def feed() -> None:
                seq = 0
                while not stop_feeding.is_set():
                    answer = on_a.post(ingest, json={"blocks": [eda_block(seq, 4)]})
                    if answer.status_code != 200:
                        refused.append(answer.text)
                    seq += 4
                    stop_feeding.wait(1.0)

            feeder = threading.Thread(target=feed)
            feeder.start()
            try:
                watcher.wait_for(is_alert("cleared"))
                after_clear = joining()
                states = [m["state"] for m in watcher.messages if m["type"] == "alert"]
            finally:
                stop_feeding.set()
                feeder.join(30)
            assert not refused, refused
            assert states == ["fired", "cleared"]  # still clear when they joined
            assert [m["alerts"] for m in after_clear] == [[], [], []]

            # Silent again: it fires a second time, and the session stops while it fires.
            fired_again = watcher.wait_for(
                lambda m: is_alert("fired")(m) and m["seq"] > fired["seq"],
                timeout=LOST_AFTER_S + 30,
            )
            assert [m["alerts"] for m in joining()] == [
                [{k: v for k, v in fired_again.items() if k not in ("type", "seq")}]
            ] * 3
        assert on_b.post(f"/sessions/{session}/stop").status_code == 200
        log = on_b.get(f"/alert-rules/{rule_id}/deliveries").json()["items"]  # newest first
        assert [d["state"] for d in log] == ["fired", "cleared", "fired"]
        # The log still ends "fired", but the session ended: nothing evaluates or clears the
        # rule any more, so no replica reports it as firing.
        ended = [_first_ws(replicas.b, session, key), _first_ws(replicas.a, session, key)]
        assert [(m["running"], m["alerts"]) for m in ended] == [(False, [])] * 2


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
