"""Exports of stored sessions (create -> progress -> download) and consent erasure."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, status
from fastapi.responses import FileResponse, Response, StreamingResponse

from affectstream.api import erasure
from affectstream.api.deps import DbDep, PrincipalDep, StateDep
from affectstream.api.schemas import ErasedOut, ExportIn, ExportOut, Id, SessionId

router = APIRouter(tags=["exports"])


@router.post("/sessions/{session_id}/exports", status_code=status.HTTP_202_ACCEPTED)
async def create_export(
    session_id: SessionId, body: ExportIn, state: StateDep, db: DbDep, who: PrincipalDep
) -> ExportOut:
    """Start exporting a stored session (``estimates``: no raw; other formats need raw access).
    Poll ``GET /exports/{id}`` until ``status`` is ``done``, then download."""
    running = session_id in state.runner.running
    job = await asyncio.to_thread(state.exports.create, db, who, session_id, body.format, running)
    state.exports.start(job)
    return ExportOut.model_validate(job)


@router.get("/exports/{export_id}")
def get_export(export_id: Id, state: StateDep, db: DbDep, who: PrincipalDep) -> ExportOut:
    """An export's status and progress."""
    return ExportOut.model_validate(state.exports.get(db, who, export_id))


@router.get(
    "/exports/{export_id}/download",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}}},
)
def download_export(export_id: Id, state: StateDep, db: DbDep, who: PrincipalDep) -> Response:
    """The finished export as a zip (audited), from whichever replica is asked."""
    job, path = state.exports.download(db, who, export_id)
    if path is not None:
        return FileResponse(path, media_type="application/zip", filename=path.name)
    name = state.exports.archive(job).name  # made by another replica: from the database
    return StreamingResponse(
        state.exports.chunks(job.id),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.post("/participants/{participant_id}/erase")
async def erase_participant(
    participant_id: Id, state: StateDep, db: DbDep, who: PrincipalDep
) -> ErasedOut:
    """Erase a participant everywhere (store, spool, exports, metadata); audited. Export
    their sessions first (``POST /sessions/{id}/exports``) if they asked for a copy."""
    running = set(state.runner.running)
    erased = await asyncio.to_thread(
        erasure.erase_participant, db, who, participant_id, state.store, state.exports, running
    )
    return ErasedOut(**vars(erased))
