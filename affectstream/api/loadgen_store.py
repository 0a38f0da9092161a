"""The throughput phase of ``bench api``: InfluxDB writes through the service vs directly.

The same synthetic samples of :func:`~affectstream.api.loadgen.participant_blocks`, in the
same batches, from the same number of concurrent senders, unpaced, go (a) through the
service's ingest (HTTP or the ingest WebSocket) into the InfluxDB it stores to, and (b) as
the same line protocol POSTed straight to that server. The fraction (a)/(b) is the share of
the server's own ceiling the service reaches.

On a machine shared with other jobs one pair of measurements swings widely (the direct
side's rate follows the others' load), so :func:`store_ceiling` runs ``rounds`` pairs, the
two sides back to back and their order alternating from round to round, and reports the
fraction of every round with their median and spread.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import tempfile
import time
from typing import Any

import httpx
import numpy as np

from affectstream.api.loadgen import (
    DEVICES,
    cut_blocks,
    json_batches,
    new_session,
    participant_blocks,
)
from affectstream.store import blocks_to_batches
from affectstream.store.influx_lineprotocol import batch_to_line_protocol
from affectstream.types import SampleBlock

#: The field counted in InfluxDB per raw measurement (one per point).
_FIELDS = {"raw_rr": "rr", "raw_eda": "eda", "raw_temp": "temp", "raw_acc": "x"}


def _head(block: SampleBlock, end: float) -> SampleBlock:
    """The samples of ``block`` before ``end`` (epoch seconds)."""
    z = int(np.searchsorted(block.t, end))
    return dataclasses.replace(block, t=block.t[:z], values=block.values[:z], index=block.index[:z])


def _count(influx_url: str, bucket: str, sessions: list[str]) -> int:
    """Raw points InfluxDB holds for ``sessions`` (a fresh reader; its spool is throwaway)."""
    from affectstream.store.influx import InfluxStore

    with (
        tempfile.TemporaryDirectory(prefix="affectstream-bench-api-") as spool,
        InfluxStore(url=influx_url, bucket=bucket, spool_dir=spool) as store,
    ):
        return sum(
            store.count(m, _FIELDS[m], tags={"session": s})
            for m in sorted(_FIELDS)
            for s in sessions
        )


async def _through_service(
    url: str,
    key: str,
    influx_url: str,
    bucket: str,
    all_blocks: list[list[SampleBlock]],
    t0: float,
    edges: list[float],
    transport: str,
) -> dict[str, Any]:
    """One service-side round: new sessions, every batch sent, sessions stopped, counted."""
    n_points = sum(len(b) for blocks in all_blocks for b in blocks)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=300) as client:
        study = (await client.post("/studies", json={"name": "bench api store"})).json()["id"]
        body = {"kind": "ingest", "devices": DEVICES, "model": "none"}
        sessions = [
            await new_session(client, study, 1000 + i, body) for i in range(len(all_blocks))
        ]

        # Every request body is made before the clock starts, as the direct side's are.
        bodies = [
            [json.dumps(body) for _t, body in json_batches(blocks, t0, edges)]
            for blocks in all_blocks
        ]

        async def send(session: str, texts: list[str]) -> None:
            if transport == "http":
                for text in texts:
                    answer = await client.post(
                        f"/sessions/{session}/ingest",
                        content=text,
                        headers={"Content-Type": "application/json"},
                    )
                    answer.raise_for_status()
                return
            from websockets.asyncio.client import connect

            ws_url = url.replace("http", "ws", 1) + f"/sessions/{session}/ingest"
            # No permessage-deflate: the direct side's requests are not compressed either.
            async with connect(
                ws_url, additional_headers=headers, max_size=None, compression=None
            ) as ws:
                for text in texts:  # one in flight: each answer before the next batch
                    await ws.send(text)
                    reply = json.loads(await ws.recv())
                    if "error" in reply:
                        raise RuntimeError(f"ingest over WebSocket: {reply['error']}")

        started = time.perf_counter()
        await asyncio.gather(*(send(s, b) for s, b in zip(sessions, bodies, strict=True)))
        posted_s = time.perf_counter() - started
        # The final flush: every point handed to the store.
        await asyncio.gather(*(client.post(f"/sessions/{s}/stop") for s in sessions))
        stopped_s = time.perf_counter() - started
    deadline = time.monotonic() + 300
    counted = await asyncio.to_thread(_count, influx_url, bucket, sessions)
    while counted < n_points and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        counted = await asyncio.to_thread(_count, influx_url, bucket, sessions)
    landed_s = time.perf_counter() - started
    return {
        "points": counted,
        "seconds": landed_s,
        "ingest_posts_answered": round(posted_s, 2),
        "sessions_stopped": round(stopped_s, 2),
    }


async def _direct(
    influx_url: str,
    bucket: str,
    all_blocks: list[list[SampleBlock]],
    t0: float,
    edges: list[float],
) -> dict[str, Any]:
    """One direct round: the same batches as line protocol, POSTed to the server."""
    payloads = []
    for i, blocks in enumerate(all_blocks):
        session = f"bench-direct-{time.time_ns()}-{i}"
        per = [
            b"".join(
                batch_to_line_protocol(x)[0]
                for x in blocks_to_batches(cut, participant=f"LOAD{i}", session=session)
            )
            for _t_last, cut in cut_blocks(blocks, t0, edges)
        ]
        payloads.append((session, per))
    write = f"{influx_url}/api/v2/write"
    params = {"bucket": bucket, "precision": "ns"}
    async with httpx.AsyncClient(timeout=300) as direct:

        async def post_all(per: list[bytes]) -> None:
            for lines in per:
                (await direct.post(write, params=params, content=lines)).raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(post_all(per) for _s, per in payloads))
        direct_s = time.perf_counter() - started
    counted = await asyncio.to_thread(_count, influx_url, bucket, [s for s, _ in payloads])
    return {"points": counted, "seconds": direct_s}


def _spread(values: list[float]) -> dict[str, float]:
    array = np.asarray(values, dtype=np.float64)
    return {
        "median": round(float(np.median(array)), 3),
        "min": round(float(array.min()), 3),
        "max": round(float(array.max()), 3),
        "iqr": round(float(np.percentile(array, 75) - np.percentile(array, 25)), 3),
    }


async def store_ceiling(
    url: str,
    key: str,
    influx_url: str,
    bucket: str,
    *,
    participants: int,
    seconds: float,
    batch_seconds: float = 10.0,
    transport: str = "http",
    rounds: int = 5,
) -> dict[str, Any]:
    """Raw points/s the service gets into InfluxDB vs the same lines POSTed there directly.

    Both sides send the same samples, in the same batches of ``batch_seconds``, from
    ``participants`` concurrent senders, unpaced; the service side ends when InfluxDB counts
    every raw point of its sessions, the direct side when the last POST is answered. Each of
    ``rounds`` rounds runs both sides back to back (service first in even rounds, direct
    first in odd ones) and gives one fraction; the result has every round's and their
    median and spread.

    Parameters
    ----------
    url, key : str
        The service.
    influx_url, bucket : str
        The InfluxDB the service writes to (``/api/v2/write``).
    participants : int
    seconds : float
        Seconds of data per participant.
    batch_seconds : float
        Seconds of data per request (a gateway sending what it buffered).
    transport : str
        ``"http"`` (``POST /sessions/{id}/ingest``) or ``"ws"`` (the ingest WebSocket, one
        connection per gateway, authenticated once).
    rounds : int
        Service/direct pairs measured.

    Returns
    -------
    dict
        ``fraction_of_ceiling`` is the median of ``fractions`` (one per round).
    """
    t0 = 1.9e9
    edges = [float(x) for x in np.arange(0.0, seconds + 1e-9, batch_seconds)]
    end = t0 + edges[-1]
    all_blocks = [
        [_head(b, end) for b in participant_blocks(i, seconds, t0)] for i in range(participants)
    ]
    n_points = sum(len(b) for blocks in all_blocks for b in blocks)
    per_round: list[dict[str, Any]] = []
    for r in range(rounds):
        sides: dict[str, dict[str, Any]] = {}
        for side in ("service", "direct") if r % 2 == 0 else ("direct", "service"):
            if side == "service":
                sides[side] = await _through_service(
                    url, key, influx_url, bucket, all_blocks, t0, edges, transport
                )
            else:
                sides[side] = await _direct(influx_url, bucket, all_blocks, t0, edges)
        service_rate = sides["service"]["points"] / sides["service"]["seconds"]
        direct_rate = sides["direct"]["points"] / sides["direct"]["seconds"]
        per_round.append(
            {
                "first": "service" if r % 2 == 0 else "direct",
                "service_points_landed": sides["service"]["points"],
                "service_points_per_s": round(service_rate, 1),
                "direct_points_landed": sides["direct"]["points"],
                "direct_points_per_s": round(direct_rate, 1),
                "fraction": round(service_rate / direct_rate, 3),
                "service_seconds": {
                    "ingest_posts_answered": sides["service"]["ingest_posts_answered"],
                    "sessions_stopped": sides["service"]["sessions_stopped"],
                    "all_counted_in_influxdb": round(sides["service"]["seconds"], 2),
                },
                "direct_seconds": round(sides["direct"]["seconds"], 2),
            }
        )
    fractions = [x["fraction"] for x in per_round]
    return {
        "raw_points": n_points,
        "rounds": len(per_round),
        "fraction_of_ceiling": _spread(fractions)["median"],
        "fraction_spread": _spread(fractions),
        "fractions": fractions,
        "service_points_per_s": _spread([x["service_points_per_s"] for x in per_round]),
        "direct_points_per_s": _spread([x["direct_points_per_s"] for x in per_round]),
        "all_landed": all(
            x["service_points_landed"] == n_points and x["direct_points_landed"] == n_points
            for x in per_round
        ),
        "per_round": per_round,
        "batch_seconds": batch_seconds,
        "transport": transport,
        "requests_per_round": participants * (len(edges) - 1),
        "target_fraction": 0.9,
    }
