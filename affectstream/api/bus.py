"""Between API replicas: live messages and ingest hand-offs over PostgreSQL LISTEN/NOTIFY.

A session runs in one replica (its owner; the runtime keeps feature windows in memory), but
clients and gateways may reach any replica. When the metadata database is PostgreSQL, which
every replica already shares when the service is scaled out, each replica:

- relays every message its :class:`~affectstream.api.live.LiveHub` publishes on channel
  ``affectstream_live`` and delivers those of the other replicas to its own subscribers;
- accepts ingest for a session another replica owns: the shared cursor is advanced and the
  accepted blocks are written to ``ingest_handoff`` in one transaction, whose commit
  notifies channel ``affectstream_ingest``; the owner takes the rows and feeds its session;
- forwards ``stop`` and "this study's alert rules changed" on channel
  ``affectstream_control``.

Publishing never waits: messages are queued (bounded; the oldest are dropped and counted)
and a sender task issues ``pg_notify``. NOTIFY payloads are limited to 8000 bytes: a longer
live message is written to table ``bus_messages`` and its id notified, in one statement;
the other replicas read it by id. Such rows are deleted once older than :data:`KEEP_S`
seconds (checked with each large message and every ``KEEP_S / 2`` seconds while any may be
left; a replica that has not read one by then has lost its LISTEN connection, and with it
the messages of that moment anyway).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import math
import secrets
import time
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
#: Seconds a large live message stays in ``bus_messages`` for the other replicas to read.
KEEP_S = 60.0
#: Queue entries whose payload goes through ``bus_messages`` (channel LIVE, by id).
_LARGE = "large"


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
    on_rules : callable, optional
        Called on the event loop with a study id whose alert rules another replica changed.
    """

    def __init__(
        self,
        dsn: str,
        hub: LiveHub,
        on_ingest: Callable[[str], None],
        on_stop: Callable[[str], None],
        on_rules: Callable[[int], None] | None = None,
    ) -> None:
        self.dsn = dsn
        self.hub = hub
        self.on_ingest = on_ingest
        self.on_stop = on_stop
        self.on_rules = on_rules
        self.origin = secrets.token_hex(8)
        self._queue: deque[tuple[str, str]] = deque()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.dropped = 0
        #: Live messages relayed through ``bus_messages`` (too large for a payload).
        self.large = 0
        self._pruned = 0.0
        self._last_large = -math.inf  # when a large message was last written

    async def start(self) -> None:
        """Connect, LISTEN, and start the reader and sender tasks."""
        self._listen = await self._connect(listen=True)
        self._send = await self._connect(listen=False)
        self._fetch = await self._connect(listen=False)  # the reader's reads of large ones
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
        for connection in (self._listen, self._send, self._fetch):
            with contextlib.suppress(Exception):
                await connection.close()

    def _relay(self, message: dict[str, Any]) -> None:
        """Hub hook (event loop): queue a local message for the other replicas."""
        payload = json.dumps({"o": self.origin, "m": message}, separators=(",", ":"))
        if len(payload.encode()) > MAX_PAYLOAD:
            self.large += 1
            self.notify(_LARGE, payload)
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

    def rules_changed(self, study_id: int) -> None:
        """Tell the other replicas that ``study_id``'s alert rules changed.

        Parameters
        ----------
        study_id : int
        """
        self.notify(CONTROL, json.dumps({"o": self.origin, "rules": study_id}))

    async def _send_one(self, channel: str, payload: str) -> None:
        if channel != _LARGE:
            await self._send.execute("SELECT pg_notify(%s, %s)", (channel, payload))
            return
        # One statement: the row and the notification of its id commit together. Stamped
        # and pruned by the database's clock: replicas' clocks may differ by more than KEEP_S.
        await self._send.execute(
            "WITH m AS (INSERT INTO bus_messages (payload, created_at) VALUES (%s::text, "
            "extract(epoch from clock_timestamp())) RETURNING id) SELECT pg_notify(%s::text, "
            "json_build_object('o', %s::text, 'ref', m.id)::text) FROM m",
            (payload, LIVE, self.origin),
        )
        self._last_large = time.time()

    async def _prune(self, now: float) -> None:
        """Delete large messages older than KEEP_S (every reader has had them by then)."""
        self._pruned = now
        await self._send.execute(
            "DELETE FROM bus_messages "
            "WHERE created_at < extract(epoch from clock_timestamp()) - %s",
            (KEEP_S,),
        )

    async def _sender(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):  # wakes now and then to prune
                await asyncio.wait_for(self._wake.wait(), KEEP_S / 2)
            self._wake.clear()
            now = time.time()
            # Rows may be left while the last prune was less than KEEP_S after the last write.
            if self._last_large >= self._pruned - KEEP_S and now - self._pruned > KEEP_S / 2:
                with contextlib.suppress(Exception):  # the next wake-up tries again
                    await self._prune(now)
            while self._queue:
                channel, payload = self._queue[0]
                try:
                    await self._send_one(channel, payload)
                except Exception as exc:  # the bus must outlive a bad moment
                    logger.warning("replica bus: NOTIFY failed (%s); reconnecting in 1 s", exc)
                    self._send = await self._reopen(self._send, listen=False)
                    continue
                self._queue.popleft()

    async def _reader(self) -> None:
        while True:
            try:
                async for note in self._listen.notifies():
                    await self._handle(note.channel, note.payload)
            except (
                Exception
            ) as exc:  # a lost connection: LISTEN again (messages meanwhile are lost)
                logger.warning("replica bus: LISTEN connection lost (%s); reconnecting in 1 s", exc)
            self._listen = await self._reopen(self._listen, listen=True)

    async def _reopen(self, old: Any, *, listen: bool) -> Any:
        """A new connection for ``old`` after a second's pause; ``old`` if none can be made.

        ``old`` is closed either way, so its next use fails and its loop comes back here.
        """
        await asyncio.sleep(1.0)
        with contextlib.suppress(Exception):
            await old.close()
        try:
            return await self._connect(listen=listen)
        except Exception:  # the server is still away: the loop retries
            return old

    async def _large(self, ref: int) -> dict[str, Any] | None:
        """The live message stored as ``bus_messages`` row ``ref`` (None if pruned)."""
        query = "SELECT payload FROM bus_messages WHERE id = %s"
        try:
            row = await (await self._fetch.execute(query, (ref,))).fetchone()
        except Exception as exc:  # its connection was lost: once more on a new one
            logger.warning("replica bus: reading a large message failed (%s); reconnecting", exc)
            with contextlib.suppress(Exception):
                await self._fetch.close()
            self._fetch = await self._connect(listen=False)
            row = await (await self._fetch.execute(query, (ref,))).fetchone()
        if row is None:
            logger.warning("replica bus: large live message %d was pruned before it was read", ref)
            return None
        message: dict[str, Any] = json.loads(row[0])["m"]
        return message

    async def _handle(self, channel: str, payload: str) -> None:
        try:
            if channel == INGEST:
                self.on_ingest(payload)
                return
            data = json.loads(payload)
            if data.get("o") == self.origin:
                return
            if channel == CONTROL:
                if "rules" in data:
                    if self.on_rules is not None:
                        self.on_rules(int(data["rules"]))
                else:
                    self.on_stop(str(data["stop"]))
                return
            message = data["m"] if "ref" not in data else await self._large(int(data["ref"]))
            if message is not None:
                self.hub.deliver(str(message["session"]), json_safe(message))
        except Exception:  # one bad notification must not stop the bus
            logger.exception("replica bus: cannot handle a %s notification", channel)
