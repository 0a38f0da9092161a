"""Ingest of sample blocks from gateways and apps: HTTP batches and a WebSocket."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, HTTPException, WebSocket, WebSocketDisconnect, status
from pydantic import ValidationError

from affectstream.api import ingest, session_ops
from affectstream.api.deps import PrincipalDep, StateDep, websocket_principal
from affectstream.api.schemas import BlockIn, IngestIn, IngestOut, IngestResult, SessionId
from affectstream.errors import AffectstreamError

router = APIRouter(tags=["ingest"])


def _blocks(body: IngestIn) -> list[ingest.BlockIn]:
    return [
        ingest.BlockIn(
            b.stream, b.modality, tuple(b.channels), b.sfreq, b.first_seq, b.t, b.values, b.device
        )
        for b in body.blocks
    ]


def _out(results: list[ingest.Accepted]) -> IngestOut:
    return IngestOut(results=[IngestResult(**vars(r)) for r in results])


@router.post("/sessions/{session_id}/ingest")
async def ingest_http(
    session_id: SessionId, body: IngestIn, state: StateDep, who: PrincipalDep
) -> IngestOut:
    """A batch of sample blocks; a resent block lands once, a skipped range becomes a gap."""
    return _out(await session_ops.ingest_batch(state, who, session_id, _blocks(body)))


@router.websocket("/sessions/{session_id}/ingest")
async def ingest_ws(websocket: WebSocket, session_id: str) -> None:
    """The same batches as JSON text frames; each is answered with its ``IngestOut``."""
    state = websocket.app.state.service
    try:
        who = await asyncio.to_thread(websocket_principal, websocket)  # argon2 off the loop
    except HTTPException:
        await websocket.close(code=status.WS_1008_POLICY_VIOLATION)
        return
    await websocket.accept()
    access = session_ops.IngestAccess()  # checked on the first batch, then per run
    try:
        while True:
            text = await websocket.receive_text()
            try:
                body = IngestIn.model_validate_json(text)
                results = await session_ops.ingest_batch(
                    state, who, session_id, _blocks(body), access
                )
            except ValidationError as exc:
                await websocket.send_json({"error": f"invalid batch: {exc.errors()[:3]}"})
                continue
            except AffectstreamError as exc:
                await websocket.send_json({"error": str(exc)})
                continue
            await websocket.send_text(_out(results).model_dump_json())
    except WebSocketDisconnect:
        return


__all__ = ["BlockIn", "router"]
