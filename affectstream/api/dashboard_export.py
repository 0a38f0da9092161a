"""Export downloads for the dashboard's session page: one zip per format, made on request.

The service has no export route yet (``affectstream export`` is the CLI's); this router
gives the page one, reusing :func:`affectstream.export.export_session` unchanged. Formats:

- ``estimates``: CSV of estimates, quality, features and events, no raw samples: what an
  operator may take away (SERVICE.md: operators export no raw);
- ``csv``, ``parquet``, ``edf``, ``bdf``, ``bids`` (:data:`affectstream.export.FORMATS`): these
  carry raw samples, so only roles with ``raw:read`` (admin, researcher) get them.

Every export is audited. The zip is written to a temporary folder that is removed once sent.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from affectstream.api import service
from affectstream.api.deps import DbDep, PrincipalDep, StateDep
from affectstream.api.security import audit
from affectstream.export import FORMATS, export_session, load_session, write_tables
from affectstream.store import RAW_PREFIX, TimeSeriesStore

router = APIRouter(prefix="/dashboard", tags=["dashboard"])

#: Every format the page offers; ``estimates`` is the one without raw samples.
DASHBOARD_FORMATS = ("estimates", *FORMATS)


def _write(store: TimeSeriesStore, session_id: str, fmt: str, folder: Path) -> Path:
    """Worker thread: export into ``folder/out`` and zip it as ``folder/<session>-<fmt>.zip``."""
    out = folder / "out"
    if fmt == "estimates":
        data = load_session(store, session_id)
        tables = {k: v for k, v in data.tables.items() if not k.startswith(RAW_PREFIX)}
        write_tables(replace(data, tables=tables), out, "csv")
    else:
        export_session(store, session_id, fmt, out)
    archive = folder / f"{session_id}-{fmt}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(out.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(out).as_posix())
    return archive


@router.post("/sessions/{session_id}/export")
async def export(
    session_id: str,
    state: StateDep,
    db: DbDep,
    who: PrincipalDep,
    fmt: Annotated[str, Query(alias="format", pattern="^(estimates|csv|parquet|edf|bdf|bids)$")],
) -> FileResponse:
    """Export a stored session as a zip (``estimates``: no raw samples; others: with raw)."""
    service.check(who, "features:read" if fmt == "estimates" else "raw:read")
    service.get_session(db, who, session_id)
    if session_id in state.runner.running:
        raise service.ConflictError(
            f"Session {session_id!r} is still running; stop it, then export."
        )
    audit(db, who, "export", f"session/{session_id}", f"format={fmt}")
    db.commit()
    folder = Path(tempfile.mkdtemp(prefix="affectstream-export-"))
    try:
        archive = await asyncio.to_thread(_write, state.store, session_id, fmt, folder)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return FileResponse(
        archive,
        media_type="application/zip",
        filename=archive.name,
        background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True),
    )
