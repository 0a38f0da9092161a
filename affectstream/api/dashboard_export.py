"""The dashboard's export download: the API's export path (:mod:`affectstream.api.exports`),
run to completion in one request so the page gets the zip directly.

Formats and roles are the API's: ``estimates`` without raw samples for anyone with
``features:read``; the raw formats for roles with ``raw:read``. Creating and downloading are
audited and the job is listed at ``GET /exports/{id}`` like any other.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse

from affectstream.api.deps import DbDep, PrincipalDep, StateDep
from affectstream.api.exports import EXPORT_FORMATS

router = APIRouter(prefix="/dashboard", tags=["dashboard"])

#: Every format the page offers (the API's).
DASHBOARD_FORMATS = EXPORT_FORMATS


@router.post("/sessions/{session_id}/export")
async def export(
    session_id: str,
    state: StateDep,
    db: DbDep,
    who: PrincipalDep,
    fmt: Annotated[str, Query(alias="format", pattern="^(estimates|csv|parquet|edf|bdf|bids)$")],
) -> FileResponse:
    """Export a stored session as a zip (``estimates``: no raw samples; others: with raw)."""
    running = session_id in state.runner.running
    job = await asyncio.to_thread(state.exports.create, db, who, session_id, fmt, running)
    await state.exports.start(job)
    db.expire_all()  # the job row changed in the worker's own database session
    _, path = await asyncio.to_thread(state.exports.download, db, who, job.id)
    assert path is not None  # this replica made it just now: the file is here
    return FileResponse(path, media_type="application/zip", filename=path.name)
