"""Load generator for the service: emulated participants through ingest to the live WebSocket.

Each emulated participant is a gateway with its own ingest session: it sends the synthetic
wrist streams of :func:`affectstream.models.synthetic.synthetic_labelled_recording` (RR intervals,
EDA, skin temperature, acceleration) as sequence-numbered JSON batches, and a WebSocket
client subscribed to the same session records when each estimate arrives. The first
``prefill`` seconds (one model window) go at once, so estimates start right away; then one
batch per second of wall-clock time, as a phone would send them. An estimate's latency is
its arrival time minus the time the batch holding its window's last sample was posted; it
includes the signal layer's look-ahead (beats and SCRs are confirmed a few seconds after the
window's end, and rows wait for every stream), which the runtime's own
``latency_arrival_s`` (triggering block submitted to row stored) separates out.

The throughput phase (:func:`affectstream.api.loadgen_store.store_ceiling`) sends the same
data unpaced and compares the raw points per second the service gets into InfluxDB with the
same line protocol POSTed directly to that server.
"""

from __future__ import annotations

import asyncio
import bisect
import dataclasses
import itertools
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np

from affectstream.models.synthetic import synthetic_labelled_recording
from affectstream.types import SampleBlock

#: Streams each emulated participant sends (the stress-wrist model's inputs).
MODALITIES = ("rr", "eda", "temp", "acc")
#: Paced batches of warm-up (sessions starting, the prefill's windows computed): a late
#: answer among them does not count against ``participants_sustained``.
WARMUP_BATCHES = 10
#: A paced gateway also posts a marker every this many batches.
MARKER_EVERY = 5
#: Device kinds announced to the service (they choose the default model).
DEVICES = "hr,eda"


def participant_blocks(index: int, seconds: float, t0: float) -> list[SampleBlock]:
    """The synthetic streams of participant ``index`` from ``t0`` for ``seconds``.

    Parameters
    ----------
    index : int
        Participant number (the seed).
    seconds : float
    t0 : float
        Epoch seconds of the first sample.

    Returns
    -------
    list of SampleBlock
    """
    recording = synthetic_labelled_recording(
        f"P{index}", seed=index, duration=seconds, baseline_seconds=seconds / 2,
        modalities=MODALITIES,
    )  # fmt: skip
    shift = t0 - min(float(b.t[0]) for b in recording.blocks)
    return [dataclasses.replace(b, t=b.t + shift) for b in recording.blocks]


def cut_blocks(
    blocks: Sequence[SampleBlock], t0: float, edges: Sequence[float]
) -> list[tuple[float, list[SampleBlock]]]:
    """Cut blocks into batches at ``t0 + edges`` (seconds): ``(t_last, slices)`` pairs.

    Parameters
    ----------
    blocks : sequence of SampleBlock
    t0 : float
    edges : sequence of float
        Increasing batch boundaries in seconds from ``t0`` (the first is 0).

    Returns
    -------
    list of (float, list of SampleBlock)
        Each batch's end time (epoch seconds) and the non-empty slices of the blocks in it.
    """
    out = []
    for lo, hi in itertools.pairwise(edges):
        cut = []
        for b in blocks:
            i, j = np.searchsorted(b.t, [t0 + lo, t0 + hi])
            if j > i:
                cut.append(
                    dataclasses.replace(b, t=b.t[i:j], values=b.values[i:j], index=b.index[i:j])
                )
        out.append((t0 + hi, cut))
    return out


def json_batches(blocks: Sequence[SampleBlock], t0: float, edges: Sequence[float]) -> list[Any]:
    """The batches of :func:`cut_blocks` as ingest bodies: ``(t_last, body)`` pairs.

    Parameters
    ----------
    blocks, t0, edges
        As for :func:`cut_blocks`.

    Returns
    -------
    list of (float, dict)
        Each batch's end time (epoch seconds) and its ``POST /sessions/{id}/ingest`` body.
    """
    return [
        (t_last, {"blocks": [_ingest_json(b) for b in cut]})
        for t_last, cut in cut_blocks(blocks, t0, edges)
    ]


def _ingest_json(block: SampleBlock) -> dict[str, Any]:
    return {
        "stream": block.stream,
        "modality": block.modality,
        "channels": list(block.channels),
        "sfreq": block.sfreq,
        "first_seq": int(block.index[0]),
        "t": block.t.tolist(),
        "values": block.values.tolist(),
        "device": block.device,
    }


@dataclass
class Gateway:
    """One emulated participant's run: what it sent when, what came back when."""

    session: str
    sent: list[tuple[float, float]] = field(default_factory=list)  # (batch t_last, wall)
    late: list[float] = field(default_factory=list)  # paced batches: answered after due (s)
    latencies: list[float] = field(default_factory=list)
    requests: list[float] = field(default_factory=list)  # paced ingest POST round trips
    markers_sent: dict[str, float] = field(default_factory=dict)  # label -> wall
    marker_latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def estimate_arrived(self, t_end: float, wall: float) -> None:
        """Record the latency of an estimate whose window ends at ``t_end``."""
        ends = [t for t, _ in self.sent]
        k = bisect.bisect_left(ends, t_end - 1e-6)
        if k < len(self.sent):
            self.latencies.append(wall - self.sent[k][1])


async def _listen(ws_url: str, key: str, gw: Gateway, paced_from: float) -> None:
    from websockets.asyncio.client import connect

    async with connect(ws_url, additional_headers={"Authorization": f"Bearer {key}"}) as ws:
        async for raw in ws:
            message = json.loads(raw)
            now = time.time()
            t_end = message.get("t_end") if message.get("type") == "estimate" else None
            if t_end is not None and float(t_end) > paced_from:
                gw.estimate_arrived(float(t_end), now)
            sent = gw.markers_sent.pop(str(message.get("label")), None)
            if message.get("type") == "event" and sent is not None:
                gw.marker_latencies.append(now - sent)


async def _gateway(
    client: httpx.AsyncClient, gw: Gateway, prefill: list[Any], paced: list[Any]
) -> None:
    url = f"/sessions/{gw.session}/ingest"
    for _t_last, body in prefill:
        (await client.post(url, json=body)).raise_for_status()
    start = time.time()
    for k, (t_last, body) in enumerate(paced):
        due = start + k
        await asyncio.sleep(max(0.0, due - time.time()))
        posted = time.time()
        gw.sent.append((t_last, posted))
        response = await client.post(url, json=body)
        gw.requests.append(time.time() - posted)
        if response.status_code != 200:
            gw.errors.append(f"{response.status_code} {response.text[:200]}")
        if k % MARKER_EVERY == MARKER_EVERY - 1:  # the service's own path: API -> hub -> WS
            label = f"{gw.session}-m{k}"
            gw.markers_sent[label] = time.time()
            marker = await client.post(f"/sessions/{gw.session}/markers", json={"label": label})
            if marker.status_code != 201:
                gw.errors.append(f"marker: {marker.status_code} {marker.text[:200]}")
        gw.late.append(max(0.0, time.time() - (due + 1.0)))


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (Linux ``/proc``).

    Parameters
    ----------
    pid : int

    Returns
    -------
    float
    """
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()  # noqa: SIM115
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentiles(values: Sequence[float]) -> dict[str, float | None]:
    """p50 and p99 in milliseconds (None when empty).

    Parameters
    ----------
    values : sequence of float
        Seconds.

    Returns
    -------
    dict
    """
    if not values:
        return {"p50_ms": None, "p99_ms": None, "n": 0}
    array = np.asarray(values) * 1000.0
    return {
        "p50_ms": round(float(np.percentile(array, 50)), 1),
        "p99_ms": round(float(np.percentile(array, 99)), 1),
        "n": len(values),
    }


async def new_session(client: httpx.AsyncClient, study: int, i: int, body: dict[str, Any]) -> str:
    """Participant ``LOAD<i>`` in ``study`` and a session of it started with ``body``; its id.

    Returns
    -------
    str
    """
    p = await client.post(f"/studies/{study}/participants", json={"pseudonym": f"LOAD{i}"})
    p.raise_for_status()
    s = await client.post("/sessions", json={"participant_id": p.json()["id"], **body})
    if s.status_code != 201:
        raise RuntimeError(f"POST /sessions: {s.status_code} {s.text[:300]}")
    return str(s.json()["id"])


async def live_load(
    url: str,
    key: str,
    *,
    participants: int,
    seconds: float,
    prefill: float,
    server_pid: int,
    max_latency: float,
    model: str | None = None,
) -> dict[str, Any]:
    """Drive ``participants`` paced gateways with a live client each; report latency and CPU.

    Parameters
    ----------
    url, key : str
        The service and an API key that may create studies and run sessions.
    participants : int
    seconds : float
        Paced seconds (one batch per second each).
    prefill : float
        Seconds sent at once first (a model window, so estimates start at once).
    server_pid : int
        The service's process (its CPU time is measured).
    max_latency : float
        A participant is sustained when every paced batch after :data:`WARMUP_BATCHES` was
        answered within its second, it got estimates, and their p99 latency is at most this
        many seconds.
    model : str, optional
        The ingest sessions' model (default: the service's choice for :data:`DEVICES`).

    Returns
    -------
    dict
    """
    t0 = time.time() - prefill
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120) as client:
        study = (await client.post("/studies", json={"name": "bench api"})).json()["id"]
        body: dict[str, Any] = {"kind": "ingest", "devices": DEVICES}
        if model is not None:
            body["model"] = model
        gateways = [Gateway(await new_session(client, study, i, body)) for i in range(participants)]
        edges_pre = [float(x) for x in np.arange(0.0, prefill + 1e-9, 10.0)]
        if edges_pre[-1] < prefill:
            edges_pre.append(prefill)
        edges_paced = [prefill + k for k in range(int(seconds) + 1)]
        plans = []
        for i in range(participants):
            blocks = participant_blocks(i, prefill + seconds, t0)
            plans.append(
                (json_batches(blocks, t0, edges_pre), json_batches(blocks, t0, edges_paced))
            )
        ws_base = url.replace("http", "ws", 1)
        listeners = [
            asyncio.create_task(
                _listen(f"{ws_base}/sessions/{g.session}/live", key, g, t0 + prefill)
            )
            for g in gateways
        ]
        await asyncio.sleep(0.5)  # subscribed before the first estimate can be made
        cpu0, wall0 = cpu_seconds(server_pid), time.perf_counter()
        await asyncio.gather(
            *(_gateway(client, g, *p) for g, p in zip(gateways, plans, strict=True))
        )
        await asyncio.sleep(min(max_latency, 5.0))  # the last windows' estimates
        cpu, wall = cpu_seconds(server_pid) - cpu0, time.perf_counter() - wall0
        for task in listeners:
            task.cancel()
        await asyncio.gather(*listeners, return_exceptions=True)
        arrival = []  # the runtime's own: triggering block submitted -> row stored
        for g in gateways:
            stopped = (await client.post(f"/sessions/{g.session}/stop")).json()
            arrival.append((stopped.get("summary") or {}).get("latency_arrival_s"))
    latencies = [x for g in gateways for x in g.latencies]
    sustained = sum(
        1
        for g in gateways
        if not g.errors
        and g.latencies
        and max(g.late[WARMUP_BATCHES:], default=0.0) == 0.0
        and float(np.percentile(g.latencies, 99)) <= max_latency
    )
    return {
        "participants": participants,
        "participants_sustained": sustained,
        "paced_seconds": seconds,
        "prefill_seconds": prefill,
        "ingest_to_websocket": percentiles(latencies),
        "ingest_request": percentiles([x for g in gateways for x in g.requests]),
        "marker_to_websocket": percentiles([x for g in gateways for x in g.marker_latencies]),
        "estimates_received": len(latencies),
        "late_batches": sum(1 for g in gateways for x in g.late if x > 0),
        "late_batches_after_warmup": sum(
            1 for g in gateways for x in g.late[WARMUP_BATCHES:] if x > 0
        ),
        "errors": [e for g in gateways for e in g.errors][:5],
        "server_cpu_s": round(cpu, 2),
        "cpu_per_participant": round(cpu / wall / participants, 4),
        "max_latency_s": max_latency,
        "runtime_latency_arrival_s": arrival,
    }
