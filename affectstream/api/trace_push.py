"""Live trace frames for a session's event stream: computed once per tick, sent to every viewer.

A live page asks for ``traces`` on the session's event stream (``routers/live.py``). Ten
frames a second per chart would cost far too much as whole 10-s envelopes (measured:
~11 ms of envelope, JSON conversion and encoding per frame of four traces, per viewer), so:

- a viewer's first frame is the whole window (``"full": true``); after that each frame
  holds only the bins from about a second before the previous frame's newest sample on
  (:data:`OVERLAP`), on the fixed grid of :meth:`RecentTraces.bins`, and the page replaces
  its bins from ``t0`` on;
- a frame is computed and JSON-encoded once per session and tick, and the same text goes to
  every viewer of that session (:class:`TraceFeeds`).

A session not running in this process (stopped, or running in another replica) is read
from the store off the event loop, as a whole-window frame at most once a second.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from affectstream.api import dashboard

if TYPE_CHECKING:
    from affectstream.api.deps import ServiceState
    from affectstream.runtime.recent import RecentTraces

#: Seconds between pushed ``traces`` frames, and the window (s) and most bins they draw.
TRACE_PUSH = 0.1
TRACE_SECONDS = 10.0
TRACE_POINTS = 300
#: A frame re-sends the bins from this many seconds before the previous frame's newest
#: sample: a viewer that skipped a frame or two (its stream was busy) still gets every bin.
OVERLAP = 1.0
#: Seconds between frames of a session read from the store (it no longer changes quickly).
STORED_PUSH = 1.0
#: A session's feed nobody asked for in this many seconds is forgotten.
IDLE_SECONDS = 30.0


def encode(message: dict[str, Any]) -> str:
    """One server-sent event of ``message`` (``event: <type>``, ``data: <json>``)."""
    return f"event: {message['type']}\ndata: {json.dumps(message)}\n\n"


@dataclass
class _Feed:
    at: float = -math.inf  # monotonic time of the last frame
    text: str | None = None
    newest: dict[str, float] = field(default_factory=dict)  # modality -> newest sample sent


class TraceFeeds:
    """The latest ``traces`` frame of each (session, modalities) watched, shared by viewers."""

    def __init__(self) -> None:
        self._feeds: dict[tuple[str, str], _Feed] = {}

    async def frame(
        self, state: ServiceState, session_id: str, modalities: str, *, full: bool = False
    ) -> str | None:
        """The encoded ``traces`` frame due now, or None when there is nothing new to send.

        Parameters
        ----------
        state : ServiceState
        session_id : str
        modalities : str
            Comma-separated, as in ``?traces=ecg,eda``.
        full : bool
            The whole window (a viewer's first frame) rather than the bins since the
            previous frame.
        """
        now = time.monotonic()
        key = (session_id, modalities)
        feed = self._feeds.get(key)
        if feed is None:
            self._forget_idle(now)
            feed = self._feeds[key] = _Feed()
        live = state.runner.live(session_id)
        if live is None:
            if not full and now - feed.at < STORED_PUSH:
                return None
            body = await asyncio.to_thread(
                dashboard.trace_envelopes,
                state,
                session_id,
                modalities,
                TRACE_SECONDS,
                TRACE_POINTS,
            )
            feed.at = now
            return encode({"type": "traces", "full": True, **_as_bins(body)})
        if full:
            traces = _bins(live.recent, modalities, {})
            for modality, tr in traces.items():  # the first viewer: the feed goes on from here
                feed.newest.setdefault(modality, tr["newest"])
            return encode({"type": "traces", "session": session_id, "full": True, "traces": traces})
        if feed.text is None or now - feed.at >= TRACE_PUSH / 2:
            traces = _bins(live.recent, modalities, feed.newest)
            for modality, tr in traces.items():
                feed.newest[modality] = tr["newest"]
            feed.at = now
            feed.text = encode(
                {"type": "traces", "session": session_id, "full": False, "traces": traces}
            )
        return feed.text

    def _forget_idle(self, now: float) -> None:
        for key in [k for k, f in self._feeds.items() if now - f.at > IDLE_SECONDS]:
            del self._feeds[key]


def _bins(recent: RecentTraces, modalities: str, newest: dict[str, float]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for modality in dict.fromkeys(modalities.split(",")):
        since = newest.get(modality)
        tr = recent.bins(
            modality,
            TRACE_SECONDS,
            TRACE_POINTS,
            since=None if since is None else since - OVERLAP,
        )
        if tr is not None:
            out[modality] = tr
    return out


def _as_bins(body: dict[str, Any]) -> dict[str, Any]:
    """Envelopes read from the store (bin centres ``t``) in the frame's ``t0``/``w`` form."""
    traces = {}
    for modality, env in body["traces"].items():
        t = env.pop("t")
        width = t[1] - t[0] if len(t) > 1 else body["seconds"]
        traces[modality] = {**env, "t0": t[0] - width / 2, "w": width}
    return {**body, "traces": traces}


#: The service's one set of feeds (one process, one event loop).
FEEDS = TraceFeeds()
