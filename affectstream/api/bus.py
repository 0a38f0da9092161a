"""Between API replicas: live messages and ingest hand-offs over PostgreSQL LISTEN/NOTIFY.

A session runs in one replica (its owner; the runtime keeps feature windows in memory), but
clients and gateways may reach any replica. When the metadata database is PostgreSQL, which
every replica already shares when the service is scaled out, each replica:

- relays every message its :class:`~affectstream.api.live.LiveHub` publishes on channel
  ``affectstream_live`` and delivers those of the other replicas to its own subscribers;
- accepts ingest for a session another replica owns: the shared cursor is advanced and the
  accepted blocks are written to ``ingest_handoff`` in one transaction, whose commit
  notifies channel ``affectstream_ingest``; the owner takes the rows and feeds its session;
- forwards ``stop`` on channel ``affectstream_control``.

Publishing never waits: messages are queued (bounded; the oldest are dropped and counted)
and a sender task issues ``pg_notify``. NOTIFY payloads are limited to 8000 bytes; a longer
live message is not relayed (counted and logged).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import math
import secrets
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
from sqlalchemy import make_url

from affectstream.api.live import LiveHub, json_safe
from affectstream.types import Gap, SampleBlock

logger = logging.getLogger(__name__)

LIVE = "affectstream_live"
INGEST = "affectstream_ingest"
CONTROL = "affectstream_control"
#: PostgreSQL refuses NOTIFY payloads of 8000 bytes or more.
MAX_PAYLOAD = 7900
#: Live messages waiting for the sender before the oldest are dropped.
MAX_QUEUE = 10_000


def block_to_json(block: SampleBlock) -> dict[str, Any]:
    """A block, gaps and sequence numbers included, as JSON (the hand-off row).

    Parameters
    ----------
    block : SampleBlock

    Returns
    -------
    dict
    """
    return {
        "stream": block.stream,
        "modality": block.modality,
        "channels": list(block.channels),
        "unit": block.unit,
        "sfreq": block.sfreq,
        "t": block.t.tolist(),
        "values": [[None if math.isnan(v) else v for v in row] for row in block.values.tolist()],
        "index": block.index.tolist(),
        "device": block.device,
        "gaps": [dataclasses.asdict(g) for g in block.gaps],
    }


def block_from_json(data: dict[str, Any]) -> SampleBlock:
    """The inverse of :func:`block_to_json`.

    Parameters
    ----------
    data : dict

    Returns
    -------
    SampleBlock
    """
    n, width = len(data["t"]), len(data["channels"])
    values = np.array(
        [[math.nan if v is None else v for v in row] for row in data["values"]], dtype=np.float64
    ).reshape(n, width)
    return SampleBlock(
        stream=data["stream"],
        modality=data["modality"],
        channels=tuple(data["channels"]),
        unit=data["unit"],
        sfreq=data["sfreq"],
        t=np.asarray(data["t"], dtype=np.float64),
        values=values,
        index=np.asarray(data["index"], dtype=np.int64),
        gaps=tuple(Gap(**g) for g in data["gaps"]),
        device=data["device"],
    )


def conninfo(database_url: str) -> str | None:
    """The libpq URI of a SQLAlchemy PostgreSQL URL; None for other databases.

    Parameters
    ----------
    database_url : str

    Returns
    -------
    str or None
    """
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        return None
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class ReplicaBus:
    """This replica's end of the bus (started in the app's lifespan; PostgreSQL only).

    Parameters
    ----------
    dsn : str
        libpq URI of the shared PostgreSQL.
    hub : LiveHub
        Local fan-out: its published messages are relayed, the others' delivered to it.
    on_ingest : callable
        Called on the event loop with a session id whose hand-off rows are waiting.
    on_stop : callable
        Called on the event loop with a session id another replica was asked to stop.
    """

    def __init__(
        self,
        dsn: str,
        hub: LiveHub,
        on_ingest: Callable[[str], None],
        on_stop: Callable[[str], None],
    ) -> None:
        self.dsn = dsn
        self.hub = hub
        self.on_ingest = on_ingest
        self.on_stop = on_stop
        self.origin = secrets.token_hex(8)
        self._queue: deque[tuple[str, str]] = deque()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.dropped = 0
        self.oversize = 0

    async def start(self) -> None:
        """Connect, LISTEN, and start the reader and sender tasks."""
        self._listen = await self._connect(listen=True)
        self._send = await self._connect(listen=False)
        self.hub.relay = self._relay
        self._tasks = [
            asyncio.create_task(self._reader(), name="bus-reader"),
            asyncio.create_task(self._sender(), name="bus-sender"),
        ]

    async def _connect(self, *, listen: bool) -> Any:
        import psycopg

        connection = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
        if listen:
            for channel in (LIVE, INGEST, CONTROL):
                await connection.execute(f"LISTEN {channel}")
        return connection

    async def close(self) -> None:
        """Stop relaying, send what is queued (bounded), disconnect."""
        self.hub.relay = None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2.0):
                while self._queue:
                    await asyncio.sleep(0.05)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for connection in (self._listen, self._send):
            with contextlib.suppress(Exception):
                await connection.close()

    def _relay(self, message: dict[str, Any]) -> None:
        """Hub hook (event loop): queue a local message for the other replicas."""
        payload = json.dumps({"o": self.origin, "m": message}, separators=(",", ":"))
        if len(payload.encode()) > MAX_PAYLOAD:
            self.oversize += 1
            logger.warning(
                "live %s message of %s not relayed to other replicas (%d bytes > %d)",
                message.get("type"),
                message.get("session"),
                len(payload),
                MAX_PAYLOAD,
            )
            return
        self.notify(LIVE, payload)

    def notify(self, channel: str, payload: str) -> None:
        """Queue a notification (never waits; the oldest are dropped past the bound).

        Parameters
        ----------
        channel : str
        payload : str
        """
        self._queue.append((channel, payload))
        while len(self._queue) > MAX_QUEUE:
            self._queue.popleft()
            self.dropped += 1
        self._wake.set()

    def request_stop(self, session_id: str) -> None:
        """Ask the replica that runs ``session_id`` to stop it.

        Parameters
        ----------
        session_id : str
        """
        self.notify(CONTROL, json.dumps({"o": self.origin, "stop": session_id}))

    async def _sender(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                channel, payload = self._queue[0]
                try:
                    await self._send.execute("SELECT pg_notify(%s, %s)", (channel, payload))
                except Exception as exc:  # the bus must outlive a bad moment
                    logger.warning("replica bus: NOTIFY failed (%s); reconnecting in 1 s", exc)
                    await asyncio.sleep(1.0)
                    with contextlib.suppress(Exception):
                        await self._send.close()
                    with contextlib.suppress(Exception):
                        self._send = await self._connect(listen=False)
                    continue
                self._queue.popleft()

    async def _reader(self) -> None:
        while True:
            try:
                async for note in self._listen.notifies():
                    self._handle(note.channel, note.payload)
            except (
                Exception
            ) as exc:  # a lost connection: LISTEN again (messages meanwhile are lost)
                logger.warning("replica bus: LISTEN connection lost (%s); reconnecting in 1 s", exc)
            await asyncio.sleep(1.0)
            with contextlib.suppress(Exception):
                await self._listen.close()
            with contextlib.suppress(Exception):
                self._listen = await self._connect(listen=True)

    def _handle(self, channel: str, payload: str) -> None:
        try:
            if channel == INGEST:
                self.on_ingest(payload)
                return
            data = json.loads(payload)
            if data.get("o") == self.origin:
                return
            if channel == CONTROL:
                self.on_stop(str(data["stop"]))
            else:
                message = data["m"]
                self.hub.deliver(str(message["session"]), json_safe(message))
        except Exception:  # one bad notification must not stop the bus
            logger.exception("replica bus: cannot handle a %s notification", channel)
