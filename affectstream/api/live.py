"""Live fan-out: every message of a session to every subscriber, never waiting on one.

:meth:`LiveHub.publish` runs on the event loop (from the runtime's session listeners and
the ingest path) and only appends to each subscriber's bounded queue. A subscriber that
reads too slowly loses its oldest messages (counted, and announced to it in a ``dropped``
message, so it knows its view is decimated) and is disconnected once it has lost
``max_drops``. Publishing is O(subscribers) appends, so ingestion never slows for a client.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)


def json_safe(value: Any) -> Any:
    """Turn numpy scalars into Python ones and non-finite floats into ``None``.

    Parameters
    ----------
    value : object

    Returns
    -------
    object
    """
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class Subscriber:
    """One live client's bounded queue.

    Parameters
    ----------
    maxlen : int
        Messages held before the oldest are dropped.
    max_drops : int
        Drops after which the client is disconnected.
    """

    def __init__(self, maxlen: int, max_drops: int) -> None:
        self._queue: deque[dict[str, Any]] = deque()
        self._first: dict[str, Any] | None = None  # out of the queue: never dropped
        self._maxlen = maxlen
        self._max_drops = max_drops
        self._ready = asyncio.Event()
        self.dropped = 0
        self._reported = 0
        self.closed = False

    def put(self, message: dict[str, Any]) -> None:
        """Queue a message; drop the oldest if full; never waits."""
        if self.closed:
            return
        self._queue.append(message)
        while len(self._queue) > self._maxlen:
            self._queue.popleft()
            self.dropped += 1
        if self.dropped >= self._max_drops:
            self.closed = True
        self._ready.set()

    def put_first(self, message: dict[str, Any]) -> None:
        """Put a message before every queued one (a client's first ``status``, made after it
        subscribed, ahead of what was published meanwhile); never waits. It is held apart
        from the bounded queue, so a queue that fills meanwhile never drops it.

        Parameters
        ----------
        message : dict
        """
        if self.closed:
            return
        self._first = message
        self._ready.set()

    async def get(self) -> dict[str, Any] | None:
        """Next message (a ``dropped`` notice first if messages were lost); ``None`` when closed.

        Returns
        -------
        dict or None
        """
        while not self._queue and self._first is None and not self.closed:
            self._ready.clear()
            await self._ready.wait()
        if self.closed:
            return None
        if self._first is not None:
            first, self._first = self._first, None
            return first
        if self.dropped > self._reported:
            lost = self.dropped - self._reported
            self._reported = self.dropped
            return {"type": "dropped", "n": lost, "total": self.dropped}
        return self._queue.popleft()

    def close(self) -> None:
        """Disconnect: wake the reader with ``None``."""
        self.closed = True
        self._ready.set()


class LiveHub:
    """Subscribers per session id.

    Parameters
    ----------
    maxlen : int
        Queue length per subscriber.
    max_drops : int
        Drops before a subscriber is disconnected.
    """

    def __init__(self, maxlen: int = 1000, max_drops: int = 10_000) -> None:
        self._subs: dict[str, set[Subscriber]] = {}
        self._seq = itertools.count(1)
        self.maxlen = maxlen
        self.max_drops = max_drops
        self.published = 0
        #: Set by the replica bus: every message published here also goes to the others.
        self.relay: Callable[[dict[str, Any]], None] | None = None

    def subscribe(self, session: str) -> Subscriber:
        """Add a subscriber to ``session``.

        Parameters
        ----------
        session : str

        Returns
        -------
        Subscriber
        """
        sub = Subscriber(self.maxlen, self.max_drops)
        self._subs.setdefault(session, set()).add(sub)
        return sub

    def unsubscribe(self, session: str, sub: Subscriber) -> None:
        """Remove a subscriber.

        Parameters
        ----------
        session : str
        sub : Subscriber
        """
        sub.close()
        subs = self._subs.get(session)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[session]

    def publish(self, session: str, kind: str, payload: Mapping[str, Any]) -> None:
        """Send a message to every subscriber of ``session`` (event loop thread only).

        Parameters
        ----------
        session : str
        kind : str
            ``estimate``, ``event`` (markers, phases, session start/stop, gaps), ``status``.
        payload : mapping
        """
        self.published += 1
        if self.relay is None and not self._subs.get(session):
            return
        message = {"type": kind, "seq": next(self._seq), "session": session}
        message.update(json_safe(payload))
        self.deliver(session, message)
        if self.relay is not None:
            self.relay(message)

    def deliver(self, session: str, message: dict[str, Any]) -> None:
        """Put a ready message in the queue of every local subscriber of ``session``.

        Parameters
        ----------
        session : str
        message : dict
            A JSON-safe live message (published here or relayed by another replica).
        """
        subs = self._subs.get(session)
        if not subs:
            return
        for sub in list(subs):
            sub.put(message)
            if sub.closed:
                logger.info(
                    "live client of %s dropped after %d lost messages", session, sub.dropped
                )
                self.unsubscribe(session, sub)

    def n_subscribers(self, session: str) -> int:
        """Subscribers of ``session``.

        Parameters
        ----------
        session : str

        Returns
        -------
        int
        """
        return len(self._subs.get(session, ()))
