"""The web dashboard: its static page and the few read endpoints it needs beyond the API.

The page (``/ui``) is static HTML, CSS and JavaScript shipped inside the package (no Node
build at install; the one charting library, uPlot, is vendored with its licence under
``static/vendor/uplot``). It calls the service's own routes with the API key the user types
in, and these endpoints under ``/dashboard`` for what those routes do not give a browser:

- ``GET /dashboard/me``: who the key belongs to and what the page may show them;
- ``GET /dashboard/overview``: every running session the caller may see, one call per refresh
  for the study grid;
- ``GET /dashboard/sessions/{id}/live``: protocol phase with time left, per-stream delivery
  and gap counts, quality and the latest estimate of a running session;
- ``GET /dashboard/sessions/{id}/traces?modalities=ecg,eda``: min/max envelopes of the last
  seconds of raw streams (what a chart draws), with the spans without samples as gaps;
- ``GET /dashboard/sessions/{id}/timeline``: phases, markers, gaps and session events.

Each handler checks the caller's role with :func:`affectstream.api.service.check` and the
object with :func:`affectstream.api.service.get_session`, like every other route.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any, cast

from fastapi import APIRouter, FastAPI, Query
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import select
from sqlalchemy.orm import Session

from affectstream.api import service
from affectstream.api.dashboard_traces import RecentSamples
from affectstream.api.db import Participant, SessionRow
from affectstream.api.deps import DbDep, PrincipalDep, ServiceState, StateDep
from affectstream.api.live import json_safe
from affectstream.api.security import Principal, audit
from affectstream.runtime.devices import device_of

router = APIRouter(prefix="/dashboard", tags=["dashboard"])

#: Folder of the page's static files inside the package.
STATIC_DIR = Path(str(files("affectstream.api") / "static"))

#: Longest trace window a chart may ask for (seconds); more is a session-page read.
MAX_TRACE_SECONDS = 120.0


def mount(app: FastAPI) -> None:
    """Add the dashboard to ``app``: its static files, its page and its router.

    Parameters
    ----------
    app : fastapi.FastAPI
    """
    from affectstream.api import dashboard_export

    app.mount("/ui/static", StaticFiles(directory=STATIC_DIR), name="dashboard-static")
    app.include_router(router)
    app.include_router(dashboard_export.router)
    app.include_router(pages)


pages = APIRouter(include_in_schema=False)


@pages.get("/")
def root() -> RedirectResponse:
    """The dashboard is the service's front page."""
    return RedirectResponse("/ui")


@pages.get("/ui")
def page() -> FileResponse:
    """The single page; it routes by URL fragment (``#/live/<session>``...)."""
    return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


def _safe(value: dict[str, Any]) -> dict[str, Any]:
    return cast("dict[str, Any]", json_safe(value))


def _may(who: Principal, action: str) -> bool:
    return who.role in service.PERMISSIONS[action]


@router.get("/me")
def me(who: PrincipalDep) -> dict[str, Any]:
    """The caller, their role and what the page may show or offer them."""
    export = _may(who, "features:read")  # operators export estimates and events
    return {
        "name": who.name,
        "role": who.role,
        "studies": sorted(who.studies),
        "may": {
            "run": _may(who, "session:run"),
            "markers": _may(who, "marker:write"),
            "self_reports": _may(who, "selfreport:write"),
            "traces": _may(who, "features:read"),
            "export": export,
            "export_raw": _may(who, "raw:read"),
        },
    }


def _phase(state: ServiceState, session_id: str) -> dict[str, Any] | None:
    live = state.runner.live(session_id)
    if live is None:
        return None
    snap = live.snapshot()
    protocol = live.config.protocol
    out: dict[str, Any] = {
        "participant": live.config.participant,
        "elapsed_s": snap.elapsed,
        "duration_s": snap.duration,
        "model": snap.model,
        "quality": snap.quality,
        "estimate": snap.estimate,
        "store_ok": snap.store_ok,
        "streams": [
            {
                "stream": s.stream,
                "device": device_of(s.stream),
                "modality": s.modality,
                "rate": s.rate,
                "delivered": s.delivered,
                "gap_samples": s.gap_samples,
                "stored": s.stored,
            }
            for s in snap.streams
        ],
        # One entry per device: connected/reconnecting, battery, contact, reconnects, gaps.
        "devices": [d.as_dict() for d in snap.devices],
        "phase": None,
        "phases": [],
    }
    if protocol is not None:
        starts = protocol.starts()
        out["phases"] = [
            {"name": p.name, "start_s": s, "duration_s": p.duration}
            for s, p in zip(starts, protocol.phases, strict=True)
        ]
        for start, phase in zip(starts, protocol.phases, strict=True):
            if start <= snap.elapsed < start + phase.duration:
                out["phase"] = {
                    "name": phase.name,
                    "instruction": phase.instruction,
                    "left_s": start + phase.duration - snap.elapsed,
                }
    ledgers = live.ledgers
    for entry in out["streams"]:
        ledger = ledgers.get(entry["stream"])
        entry["gap_events"] = ledger.gap_events if ledger is not None else 0
    return out


@router.get("/sessions/{session_id}/live")
def live_state(session_id: str, state: StateDep, db: DbDep, who: PrincipalDep) -> dict[str, Any]:
    """A running session's phase, streams, quality and latest estimate (``running: false`` else)."""
    service.check(who, "live")
    row = service.get_session(db, who, session_id)
    live = _phase(state, session_id)
    return _safe(
        {"session": session_id, "status": row.status, "running": live is not None, "live": live}
    )


@router.get("/overview")
def overview(state: StateDep, db: DbDep, who: PrincipalDep) -> list[dict[str, Any]]:
    """Every running session the caller may see, with its state at a glance."""
    service.check(who, "live")
    query = (
        select(SessionRow, Participant.pseudonym)
        .join(Participant, Participant.id == SessionRow.participant_id)
        .where(SessionRow.status == "running")
        .order_by(Participant.pseudonym)
    )
    out = []
    for row, pseudonym in db.execute(query).all():
        if not who.may_see_study(row.study_id):
            continue
        out.append(
            {
                "session": row.id,
                "study_id": row.study_id,
                "participant": pseudonym,
                "live": _phase(state, row.id),
            }
        )
    return cast("list[dict[str, Any]]", json_safe(out))


#: Audit a principal's trace reads once per session (a chart polls several times a second).
_TRACE_AUDITED: set[tuple[int, str]] = set()

#: Recent raw samples per (session, modality), shared by every viewer of a session.
_RECENT = RecentSamples(max_seconds=MAX_TRACE_SECONDS)


#: The trace query's modality list (``ecg,eda``), shared with the live stream's ``traces=``.
MODALITIES_PATTERN = "^[a-z0-9_]{1,20}(,[a-z0-9_]{1,20}){0,9}$"


def allow_traces(db: Session, who: Principal, session_id: str, modalities: str) -> None:
    """Check ``who`` may see raw traces of the session; audit the first look (``view_trace``).

    Raises
    ------
    affectstream.api.service.ForbiddenError, affectstream.api.service.NotFoundError
    """
    service.check(who, "features:read")
    service.get_session(db, who, session_id)
    if (who.user_id, session_id) not in _TRACE_AUDITED:
        _TRACE_AUDITED.add((who.user_id, session_id))
        audit(db, who, "view_trace", f"session/{session_id}", f"live envelope of {modalities}")
        db.commit()


def trace_envelopes(
    state: ServiceState, session_id: str, modalities: str, seconds: float, points: int
) -> dict[str, Any]:
    """Envelopes of the session's recent raw streams, JSON-safe (NaN as ``null``).

    A session running in this process is read from its in-memory
    :class:`~affectstream.runtime.recent.RecentTraces` (no store, no thread: cheap enough
    for the event loop); any other (stopped, or running in another replica) from the store
    through :data:`_RECENT`, which blocks: call that off the event loop.
    """
    live = state.runner.live(session_id)
    out: dict[str, Any] = {}
    for modality in dict.fromkeys(modalities.split(",")):
        if live is not None:
            env = live.recent.envelope(modality, seconds, points)
        else:
            env = _RECENT.envelope(state.store, session_id, modality, seconds, points)
        if env is not None:
            out[modality] = env
    return _safe({"session": session_id, "seconds": seconds, "traces": out})


@router.get("/sessions/{session_id}/traces")
def traces(
    session_id: str,
    state: StateDep,
    db: DbDep,
    who: PrincipalDep,
    modalities: Annotated[str, Query(pattern=MODALITIES_PATTERN)],
    seconds: Annotated[float, Query(gt=0, le=MAX_TRACE_SECONDS)] = 10.0,
    points: Annotated[int, Query(ge=10, le=2000)] = 300,
) -> dict[str, Any]:
    """Min/max envelopes of the last ``seconds`` of raw streams (``modalities=ecg,eda``).

    A bin without a finite sample (lost, saturated or not yet arrived) is ``null`` and part
    of a span in ``gaps``, which the page shades. Modalities the session does not have are
    left out. Operators may look (they watch signal quality); viewers may not; the first
    read per session is audited (``view_trace``), not every poll. The live page gets the
    same envelopes pushed on the session's event stream (``/sessions/{id}/events?traces=``).
    """
    allow_traces(db, who, session_id, modalities)
    return trace_envelopes(state, session_id, modalities, seconds, points)


@router.get("/sessions/{session_id}/timeline")
def timeline(session_id: str, state: StateDep, db: DbDep, who: PrincipalDep) -> dict[str, Any]:
    """Phases, markers, gaps and session events of a session, in time order."""
    service.check(who, "estimates:read")
    row = service.get_session(db, who, session_id)
    frame = state.store.read("events", tags={"session": session_id})
    keep = [
        c
        for c in ("time_ns", "kind", "label", "detail", "n_samples", "stream")
        if c in frame.columns
    ]
    events = frame[keep].astype(object).where(frame[keep].notna(), None).to_dict("records")
    return _safe(
        {
            "session": session_id,
            "started_at": row.started_at,
            "stopped_at": row.stopped_at,
            "events": [{**e, "t": int(e.pop("time_ns")) / 1e9} for e in events],
        }
    )
