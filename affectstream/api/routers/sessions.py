"""Sessions (start on emulated devices or for ingest, stop, status), markers, self-reports."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from affectstream.api import service, session_ops
from affectstream.api.deps import DbDep, PagingDep, PrincipalDep, StateDep
from affectstream.api.etag import NOT_MODIFIED, etagged
from affectstream.api.schemas import (
    Id,
    MarkerIn,
    MarkerOut,
    SelfReportIn,
    SelfReportOut,
    SessionId,
    SessionIn,
    SessionOut,
    SessionPage,
    SessionStatus,
)

router = APIRouter(tags=["sessions"])


@router.post("/sessions", status_code=status.HTTP_201_CREATED)
async def start_session(
    body: SessionIn, state: StateDep, db: DbDep, who: PrincipalDep
) -> SessionOut:
    """Start a session: emulated devices through the runtime, or one fed by ingest."""
    row = await session_ops.start_session(
        state,
        db,
        who,
        body.participant_id,
        body.kind,
        body.duration,
        body.devices,
        body.seed,
        disconnects={str(k): v for k, v in body.disconnects.items()},
        model=body.model,
    )
    return SessionOut.model_validate(row)


@router.get("/studies/{study_id}/sessions", response_model=SessionPage, responses=NOT_MODIFIED)
def list_sessions(
    request: Request,
    study_id: Id,
    db: DbDep,
    who: PrincipalDep,
    paging: PagingDep,
) -> Response:
    """Sessions of a study, newest first."""
    page = service.list_sessions(db, who, study_id, *paging)
    return etagged(request, SessionPage.model_validate(page, from_attributes=True))


@router.get("/sessions/{session_id}", response_model=SessionStatus, responses=NOT_MODIFIED)
async def session_status(
    request: Request, session_id: SessionId, state: StateDep, db: DbDep, who: PrincipalDep
) -> Response:
    """Status: live per-stream counts while running here, the summary once stopped."""
    status_now = await session_ops.status(state, db, who, session_id)
    return etagged(request, SessionStatus.model_validate(status_now))


@router.post("/sessions/{session_id}/stop")
async def stop_session(
    session_id: SessionId, state: StateDep, db: DbDep, who: PrincipalDep
) -> SessionStatus:
    """Stop a running session; returns once everything is flushed to the store."""
    await session_ops.stop_session(state, db, who, session_id)
    db.expire_all()
    return SessionStatus.model_validate(await session_ops.status(state, db, who, session_id))


@router.post("/sessions/{session_id}/markers", status_code=status.HTTP_201_CREATED)
async def add_marker(
    session_id: SessionId, body: MarkerIn, state: StateDep, db: DbDep, who: PrincipalDep
) -> MarkerOut:
    """Set a marker (stored as an event and pushed live)."""
    marker = await session_ops.add_marker(
        state, db, who, session_id, body.label, body.detail, body.t
    )
    return MarkerOut.model_validate(marker)


@router.get("/sessions/{session_id}/markers")
def list_markers(session_id: SessionId, db: DbDep, who: PrincipalDep) -> list[MarkerOut]:
    """Markers of a session in time order."""
    return [MarkerOut.model_validate(m) for m in service.markers(db, who, session_id)]


@router.post("/sessions/{session_id}/self-reports", status_code=status.HTTP_201_CREATED)
async def add_self_report(
    session_id: SessionId, body: SelfReportIn, state: StateDep, db: DbDep, who: PrincipalDep
) -> SelfReportOut:
    """Record a SAM self-report (1-9); ``block`` names the protocol block it rates."""
    report = await session_ops.add_self_report(
        state, db, who, session_id, body.arousal, body.valence, body.dominance, body.t, body.block
    )
    return SelfReportOut.model_validate(report)


@router.get("/sessions/{session_id}/self-reports")
def list_self_reports(session_id: SessionId, db: DbDep, who: PrincipalDep) -> list[SelfReportOut]:
    """Self-reports of a session in time order."""
    return [SelfReportOut.model_validate(r) for r in service.self_reports(db, who, session_id)]
