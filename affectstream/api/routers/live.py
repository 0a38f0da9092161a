"""Live push per session: WebSocket and server-sent events of every message as it happens."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, WebSocket, WebSocketDisconnect, status
from fastapi.responses import StreamingResponse

from affectstream.api import dashboard, service, session_ops, trace_push
from affectstream.api.deps import DbDep, PrincipalDep, StateDep, websocket_principal
from affectstream.api.live import Subscriber
from affectstream.api.schemas import SessionId
from affectstream.api.trace_push import TRACE_PUSH

router = APIRouter(tags=["live"])

#: Seconds between keep-alive comments on an idle SSE stream.
SSE_KEEPALIVE = 15.0


@router.websocket("/sessions/{session_id}/live")
async def live_ws(websocket: WebSocket, session_id: str) -> None:
    """Every estimate, marker, phase change, gap and device status of a session, as JSON.

    The first message is a ``status`` (current phase, counts, the alerts firing now) so a
    client joining late knows where the session is, on whichever replica it joins.
    Authenticate with the handshake's ``Authorization: Bearer`` header. A client that reads
    too slowly gets a ``{"type": "dropped", "n": ...}`` message for what it lost, and is
    closed (code 1013) once it has lost too much.
    """
    state = websocket.app.state.service
    try:  # argon2 and the database run off the event loop (it carries the live sessions)
        await asyncio.to_thread(_authorise, websocket, session_id)
    except (HTTPException, service.NotFoundError, service.ForbiddenError):
        await websocket.close(code=status.WS_1008_POLICY_VIOLATION)
        return
    await websocket.accept()
    sub = state.hub.subscribe(session_id)
    reader = asyncio.create_task(_drain(websocket, sub))
    try:
        sub.put_first(await session_ops.hello(state, session_id))
        while (message := await sub.get()) is not None:
            await websocket.send_json(message)
        await websocket.close(code=status.WS_1013_TRY_AGAIN_LATER)
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        reader.cancel()
        state.hub.unsubscribe(session_id, sub)


def _authorise(websocket: WebSocket, session_id: str) -> None:
    """Worker thread: check the caller may watch the session."""
    state = websocket.app.state.service
    who = websocket_principal(websocket)
    with state.sessions() as db:
        service.check(who, "live")
        service.get_session(db, who, session_id)


async def _drain(websocket: WebSocket, sub: Subscriber) -> None:
    """Read (and ignore) client frames so a disconnect is noticed while idle."""
    try:
        while True:
            await websocket.receive_text()
    except (WebSocketDisconnect, RuntimeError):
        sub.close()


@router.get(
    "/sessions/{session_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def live_sse(
    session_id: SessionId,
    state: StateDep,
    db: DbDep,
    who: PrincipalDep,
    traces: Annotated[str | None, Query(pattern=dashboard.MODALITIES_PATTERN)] = None,
) -> StreamingResponse:
    """The live messages as server-sent events (``event: <type>``, ``data: <json>``).

    With ``traces=ecg,eda`` (roles that may read features), a ``traces`` message (the
    dashboard's min/max bins of the last 10 s: the whole window first, then the bins that
    changed, see :mod:`affectstream.api.trace_push`) follows every :data:`TRACE_PUSH` s: a
    live page gets its trace data pushed instead of polling ``/dashboard/.../traces``.
    """
    service.check(who, "live")
    service.get_session(db, who, session_id)
    if traces is not None:
        dashboard.allow_traces(db, who, session_id, traces)
    # A yield dependency ends after the response, and this response lasts the whole session:
    # give the database connection back now, or every open live page holds one of the
    # pool's few connections and the other requests queue for the rest.
    db.close()
    sub = state.hub.subscribe(session_id)
    try:
        sub.put_first(await session_ops.hello(state, session_id))
    except BaseException:
        state.hub.unsubscribe(session_id, sub)
        raise
    period = TRACE_PUSH if traces is not None else SSE_KEEPALIVE

    async def stream() -> AsyncIterator[str]:
        try:
            yield ": connected\n\n"
            due = time.monotonic() + period
            full = True  # a viewer's first traces frame is the whole window
            while True:
                try:
                    message = await asyncio.wait_for(sub.get(), max(0.0, due - time.monotonic()))
                except TimeoutError:
                    # On a fixed beat (not "period after this frame"), so the time spent
                    # sending does not slow the rate; a stream running late skips ahead.
                    due = max(due + period, time.monotonic())
                    if traces is None:
                        yield ": keep-alive\n\n"
                        continue
                    # Encoded once per session and tick, the same text for every viewer.
                    frame = await trace_push.FEEDS.frame(state, session_id, traces, full=full)
                    full = False
                    if frame is not None:
                        yield frame
                    continue
                if message is None:
                    return
                yield trace_push.encode(message)
        finally:
            state.hub.unsubscribe(session_id, sub)

    return StreamingResponse(stream(), media_type="text/event-stream")
