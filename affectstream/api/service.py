"""The service layer: what the routers call. Access checks, metadata, runtime, store reads.

Every function takes the caller (:class:`~affectstream.api.security.Principal`) and checks
object-level access itself: an id of a study the caller is not in is :class:`NotFoundError`,
exactly like an id that does not exist, so ids cannot be probed.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from affectstream.api.db import (
    ROLES,
    ApiKey,
    AuditEntry,
    ExportJob,
    Marker,
    Membership,
    Participant,
    SelfReport,
    SessionRow,
    Study,
    User,
    owner_is_dead,
    process_owner,
)
from affectstream.api.live import json_safe
from affectstream.api.schemas import SeriesOut
from affectstream.api.security import Principal, audit, new_api_key
from affectstream.errors import AffectstreamError, ConfigError
from affectstream.store import TimeSeriesStore
from affectstream.types import UNITS

logger = logging.getLogger(__name__)


#: What each role may do (SERVICE.md's table). Routers ask :func:`check` by action name.
PERMISSIONS: dict[str, frozenset[str]] = {
    "users": frozenset({"admin"}),
    "audit": frozenset({"admin"}),
    "study:create": frozenset({"admin", "researcher"}),
    "study:read": frozenset({"admin", "researcher", "operator", "viewer"}),
    "participant:write": frozenset({"admin", "researcher"}),
    "participant:read": frozenset({"admin", "researcher", "operator", "viewer"}),
    "session:run": frozenset({"admin", "researcher", "operator"}),
    "session:read": frozenset({"admin", "researcher", "operator", "viewer"}),
    "marker:write": frozenset({"admin", "researcher", "operator"}),
    "marker:read": frozenset({"admin", "researcher", "operator", "viewer"}),
    "selfreport:write": frozenset({"admin", "researcher", "operator"}),
    "selfreport:read": frozenset({"admin", "researcher", "operator"}),
    "estimates:read": frozenset({"admin", "researcher", "operator", "viewer"}),
    "features:read": frozenset({"admin", "researcher", "operator"}),
    "raw:read": frozenset({"admin", "researcher"}),
    "live": frozenset({"admin", "researcher", "operator", "viewer"}),
    "ingest": frozenset({"admin", "researcher", "operator", "device"}),
    "models": frozenset({"admin", "researcher", "operator", "viewer"}),
    "alerts:write": frozenset({"admin", "researcher"}),
    "participant:erase": frozenset({"admin", "researcher"}),
    "alerts:read": frozenset({"admin", "researcher", "operator"}),
}


class NotFoundError(AffectstreamError):
    """No such object, or one the caller may not know exists (HTTP 404)."""


class ForbiddenError(AffectstreamError):
    """The caller's role may not do this (HTTP 403)."""


class ConflictError(AffectstreamError):
    """The object is not in a state that allows this (HTTP 409)."""


def check(principal: Principal, action: str) -> None:
    """Raise :class:`ForbiddenError` unless ``principal``'s role may do ``action``.

    Parameters
    ----------
    principal : Principal
    action : str
        A key of :data:`PERMISSIONS`.
    """
    if principal.role not in PERMISSIONS[action]:
        raise ForbiddenError(f"Role {principal.role!r} may not {action.replace(':', ' ')}.")


@dataclass(frozen=True)
class Page:
    """A page of results with the total count (for ``limit``/``offset`` pagination)."""

    items: list[Any]
    total: int
    limit: int
    offset: int


def paginate(db: Session, query: Select[Any], limit: int, offset: int) -> Page:
    """Run ``query`` for one page and count all its rows.

    Parameters
    ----------
    db : Session
    query : Select
    limit, offset : int

    Returns
    -------
    Page
    """
    total = db.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    items = list(db.execute(query.limit(limit).offset(offset)).scalars())
    return Page(items, int(total), limit, offset)


# -- users, keys, audit ---------------------------------------------------------------------


def create_user(
    db: Session,
    principal: Principal,
    name: str,
    role: str,
    studies: list[int],
    participant_id: int | None,
) -> User:
    """Create a user with study memberships (admin only).

    Returns
    -------
    User
    """
    check(principal, "users")
    if role not in ROLES:
        raise ConfigError(f"Unknown role {role!r}: use one of {', '.join(ROLES)}.")
    if db.execute(select(User).where(User.name == name)).scalar_one_or_none() is not None:
        raise ConflictError(f"A user named {name!r} exists already; choose another name.")
    for study_id in studies:
        get_study(db, principal, study_id)
    if role == "device":
        if participant_id is None:
            raise ConfigError("A device user needs participant_id (the participant it sends for).")
        participant = get_participant(db, principal, participant_id)
        studies = [participant.study_id]
    user = User(name=name, role=role, participant_id=participant_id if role == "device" else None)
    db.add(user)
    db.flush()
    for study_id in sorted(set(studies)):
        db.add(Membership(user_id=user.id, study_id=study_id))
    audit(db, principal, "create", f"user/{user.id}", f"role {role}")
    db.commit()
    return user


def create_key(db: Session, principal: Principal, user_id: int) -> tuple[ApiKey, str]:
    """Issue an API key for a user (admin only); the key itself is returned once.

    Returns
    -------
    ApiKey, str
    """
    check(principal, "users")
    if db.get(User, user_id) is None:
        raise NotFoundError(f"No user {user_id}.")
    key, prefix, hashed = new_api_key()
    row = ApiKey(user_id=user_id, prefix=prefix, hash=hashed)
    db.add(row)
    audit(db, principal, "create", f"api_key/{prefix}", f"for user {user_id}")
    db.commit()
    return row, key


def revoke_key(db: Session, principal: Principal, prefix: str) -> None:
    """Revoke a key by its prefix (admin only)."""
    check(principal, "users")
    row = db.execute(select(ApiKey).where(ApiKey.prefix == prefix)).scalar_one_or_none()
    if row is None:
        raise NotFoundError(f"No API key with prefix {prefix!r}.")
    row.revoked = True
    audit(db, principal, "revoke", f"api_key/{prefix}")
    db.commit()


def bootstrap_admin(db: Session, key: str) -> bool:
    """Create user ``admin`` with ``key`` when no admin exists (first start).

    Returns
    -------
    bool
        Whether an admin was created.
    """
    from argon2 import PasswordHasher

    from affectstream.api.security import KEY_PREFIX

    if db.execute(select(User).where(User.role == "admin")).first() is not None:
        return False
    parts = key.split("_")
    if not key.startswith(KEY_PREFIX) or len(parts) < 3 or len(key) < 24:
        raise ConfigError(
            "The bootstrap admin key must look like ask_<prefix>_<secret> (at least 24 "
            "characters); make one with: python -c \"import secrets; print('ask_' + "
            "secrets.token_hex(6) + '_' + secrets.token_urlsafe(24))\""
        )
    user = User(name="admin", role="admin")
    db.add(user)
    db.flush()
    db.add(ApiKey(user_id=user.id, prefix=parts[1], hash=PasswordHasher().hash(key)))
    db.add(AuditEntry(user_id=None, action="bootstrap", resource=f"user/{user.id}"))
    db.commit()
    return True


def list_audit(
    db: Session, principal: Principal, action: str | None, limit: int, offset: int
) -> Page:
    """The audit log, newest first (admin only).

    Returns
    -------
    Page
    """
    check(principal, "audit")
    query = select(AuditEntry).order_by(AuditEntry.id.desc())
    if action:
        query = query.where(AuditEntry.action == action)
    return paginate(db, query, limit, offset)


# -- studies and participants ------------------------------------------------------------------


def get_study(db: Session, principal: Principal, study_id: int) -> Study:
    """A study the caller may see, else :class:`NotFoundError`.

    Returns
    -------
    Study
    """
    study = db.get(Study, study_id)
    if study is None or not principal.may_see_study(study_id) or principal.role == "device":
        raise NotFoundError(f"No study {study_id}.")
    return study


def list_studies(db: Session, principal: Principal, limit: int, offset: int) -> Page:
    """Studies the caller may see.

    Returns
    -------
    Page
    """
    check(principal, "study:read")
    query = select(Study).order_by(Study.id)
    if not principal.is_admin:
        query = query.where(Study.id.in_(principal.studies))
    return paginate(db, query, limit, offset)


def create_study(db: Session, principal: Principal, name: str, description: str) -> Study:
    """Create a study; a researcher who creates one becomes its member.

    Returns
    -------
    Study
    """
    check(principal, "study:create")
    study = Study(name=name, description=description)
    db.add(study)
    db.flush()
    if not principal.is_admin:
        db.add(Membership(user_id=principal.user_id, study_id=study.id))
    audit(db, principal, "create", f"study/{study.id}")
    db.commit()
    return study


def get_participant(db: Session, principal: Principal, participant_id: int) -> Participant:
    """A participant of a study the caller may see, else :class:`NotFoundError`.

    Returns
    -------
    Participant
    """
    participant = db.get(Participant, participant_id)
    if participant is None:
        raise NotFoundError(f"No participant {participant_id}.")
    get_study(db, principal, participant.study_id)
    return participant


def list_participants(
    db: Session, principal: Principal, study_id: int, limit: int, offset: int
) -> Page:
    """Participants of a study.

    Returns
    -------
    Page
    """
    check(principal, "participant:read")
    get_study(db, principal, study_id)
    query = select(Participant).where(Participant.study_id == study_id).order_by(Participant.id)
    return paginate(db, query, limit, offset)


def create_participant(
    db: Session, principal: Principal, study_id: int, pseudonym: str
) -> Participant:
    """Add a participant (pseudonymous id only) to a study.

    Returns
    -------
    Participant
    """
    check(principal, "participant:write")
    get_study(db, principal, study_id)
    exists = select(Participant).where(
        Participant.study_id == study_id, Participant.pseudonym == pseudonym
    )
    if db.execute(exists).first() is not None:
        raise ConflictError(f"Study {study_id} already has participant {pseudonym!r}.")
    participant = Participant(study_id=study_id, pseudonym=pseudonym)
    db.add(participant)
    db.flush()
    audit(db, principal, "create", f"participant/{participant.id}", f"study {study_id}")
    db.commit()
    return participant


# -- sessions, markers, self-reports -------------------------------------------------------------


def get_session(db: Session, principal: Principal, session_id: str) -> SessionRow:
    """A session the caller may see (a device: only its participant's), else NotFoundError.

    Returns
    -------
    SessionRow
    """
    row = db.get(SessionRow, session_id)
    if row is None:
        raise NotFoundError(f"No session {session_id!r}.")
    if principal.role == "device":
        if row.participant_id != principal.participant_id:
            raise NotFoundError(f"No session {session_id!r}.")
        return row
    get_study(db, principal, row.study_id)
    return row


def list_sessions(
    db: Session, principal: Principal, study_id: int, limit: int, offset: int
) -> Page:
    """Sessions of a study, newest first.

    Returns
    -------
    Page
    """
    check(principal, "session:read")
    get_study(db, principal, study_id)
    query = (
        select(SessionRow)
        .where(SessionRow.study_id == study_id)
        .order_by(SessionRow.started_at.desc())
    )
    return paginate(db, query, limit, offset)


def new_session(
    db: Session, principal: Principal, participant_id: int, kind: str
) -> tuple[SessionRow, Participant]:
    """Record a new session of a participant (the runner then starts it).

    Returns
    -------
    SessionRow, Participant
    """
    from affectstream.runtime import new_session_id

    check(principal, "session:run")
    participant = get_participant(db, principal, participant_id)
    row = SessionRow(
        id=new_session_id(participant.pseudonym),
        study_id=participant.study_id,
        participant_id=participant.id,
        kind=kind,
        status="running",
        owner=process_owner(),
    )
    db.add(row)
    audit(db, principal, "create", f"session/{row.id}", f"{kind}, participant {participant.id}")
    db.commit()
    return row, participant


def finish_session(
    db: Session, session_id: str, summary: dict[str, Any] | None, error: str
) -> None:
    """Store a session's end (called by the runner when a run ends)."""
    row = db.get(SessionRow, session_id)
    if row is None:
        return
    row.status = "failed" if error and error != "cancelled" else "stopped"
    row.stopped_at = time.time()
    row.summary = summary if summary is not None else {"error": error}
    db.commit()


def mark_interrupted(db: Session) -> int:
    """Start-up: sessions and export jobs whose process died are marked so, and audited.

    Only owners on this host can be judged (see :func:`~affectstream.api.db.owner_is_dead`).

    Returns
    -------
    int
        Sessions marked ``interrupted``.
    """
    n = 0
    now = time.time()
    for row in db.execute(
        select(SessionRow).where(SessionRow.status.in_(("starting", "running")))
    ).scalars():
        if owner_is_dead(row.owner):
            row.status, row.stopped_at = "interrupted", now
            row.summary = {
                "error": f"the process running it ({row.owner}) ended without stopping it"
            }
            audit(db, None, "interrupted", f"session/{row.id}", f"owner {row.owner}")
            n += 1
    for job in db.execute(
        select(ExportJob).where(ExportJob.status.in_(("queued", "running")))
    ).scalars():
        if owner_is_dead(job.owner):
            job.status, job.finished_at = "failed", now
            job.error = f"the process running it ({job.owner}) ended; create the export again"
    db.commit()
    if n:
        logger.warning("%d session(s) marked interrupted: their process had ended", n)
    return n


def read_series(
    store: TimeSeriesStore,
    session_id: str,
    measurement: str,
    *,
    start_ns: int | None,
    stop_ns: int | None,
    limit: int,
    offset: int,
    every: int = 1,
) -> tuple[list[dict[str, Any]], int]:
    """Points of one measurement of a session in a time range, as JSON-ready rows.

    Parameters
    ----------
    store : TimeSeriesStore
    session_id, measurement : str
    start_ns, stop_ns : int, optional
        Half-open range.
    limit, offset : int
        Page of the (decimated) rows.
    every : int
        Keep every ``every``-th point (decimation of raw samples).

    Returns
    -------
    rows : list of dict
    total : int
        Rows in the range after decimation.
    """
    frame: pd.DataFrame = store.read(
        measurement, tags={"session": session_id}, start_ns=start_ns, stop_ns=stop_ns
    )
    if every > 1:
        frame = frame.iloc[::every]
    total = len(frame)
    page = frame.iloc[offset : offset + limit]
    page = page.drop(columns=[c for c in ("session", "participant") if c in page.columns])
    rows = [
        {k: (None if v is pd.NA else v) for k, v in record.items()}
        for record in page.astype(object).where(page.notna(), None).to_dict("records")
    ]
    return json_safe(rows), total


def raw_measurements(store: TimeSeriesStore, session_id: str) -> list[str]:
    """The ``raw_<modality>`` measurements a session has.

    Returns
    -------
    list of str
    """
    return sorted({m for m, _ in store.series(session_id) if m.startswith("raw_")})


def self_report_rows(db: Session, session_id: str) -> list[SelfReport]:
    """Self-reports of a session in time order.

    Returns
    -------
    list of SelfReport
    """
    query = select(SelfReport).where(SelfReport.session_id == session_id).order_by(SelfReport.t)
    return list(db.execute(query).scalars())


def markers(db: Session, principal: Principal, session_id: str) -> list[Marker]:
    """Markers of a session in time order.

    Returns
    -------
    list of Marker
    """
    check(principal, "marker:read")
    get_session(db, principal, session_id)
    return list(
        db.execute(
            select(Marker).where(Marker.session_id == session_id).order_by(Marker.t)
        ).scalars()
    )


def self_reports(db: Session, principal: Principal, session_id: str) -> list[SelfReport]:
    """Self-reports of a session in time order.

    Returns
    -------
    list of SelfReport
    """
    check(principal, "selfreport:read")
    get_session(db, principal, session_id)
    return self_report_rows(db, session_id)


_READ_ACTION = {
    "affect": "estimates:read",
    "features": "features:read",
    "quality": "estimates:read",
}


def series(
    store: TimeSeriesStore,
    db: Session,
    principal: Principal,
    session_id: str,
    measurement: str,
    start_ns: int | None,
    stop_ns: int | None,
    limit: int,
    offset: int,
    *,
    every: int = 1,
) -> SeriesOut:
    """A time-range read of one measurement of a session, access-checked (raw: audited).

    Returns
    -------
    SeriesOut
    """
    check(principal, _READ_ACTION.get(measurement, "raw:read"))
    get_session(db, principal, session_id)
    if measurement.startswith("raw_"):
        modality = measurement.removeprefix("raw_")
        if modality not in UNITS:
            raise NotFoundError(f"No modality {modality!r}: use one of {', '.join(UNITS)}.")
        audit(
            db,
            principal,
            "read_raw",
            f"session/{session_id}/{measurement}",
            f"start_ns={start_ns} stop_ns={stop_ns} every={every} offset={offset} limit={limit}",
        )
        db.commit()
    rows, total = read_series(
        store,
        session_id,
        measurement,
        start_ns=start_ns,
        stop_ns=stop_ns,
        limit=limit,
        offset=offset,
        every=every,
    )
    return SeriesOut(
        measurement=measurement, total=total, limit=limit, offset=offset, every=every, rows=rows
    )


def _bundle_summary(name: str) -> dict[str, Any]:
    from affectstream.models.bundle import resolve_bundle

    path = resolve_bundle(name)
    meta = json.loads((path / "bundle.json").read_text(encoding="utf-8"))
    return {
        "name": name,
        "model_id": f"{meta.get('name', name)}@{meta.get('versions', {}).get('affectstream', '')}",
        "target": str(meta.get("target", "")),
        "features": [str(f) for f in meta.get("features", [])],
        "meta": meta,
        "path": path,
    }


def models(principal: Principal) -> list[dict[str, Any]]:
    """The shipped model bundles.

    Returns
    -------
    list of dict
    """
    from affectstream.models.bundle import shipped_bundles

    check(principal, "models")
    return [_bundle_summary(name) for name in shipped_bundles()]


def model_card(principal: Principal, name: str) -> dict[str, Any]:
    """One shipped bundle with its ``MODEL_CARD.md``.

    Returns
    -------
    dict
    """
    from affectstream.models.bundle import shipped_bundles

    check(principal, "models")
    if name not in shipped_bundles():
        raise NotFoundError(f"No shipped model bundle {name!r}; list them with GET /models.")
    summary = _bundle_summary(name)
    card = summary["path"] / "MODEL_CARD.md"
    summary["card"] = card.read_text(encoding="utf-8") if card.is_file() else ""
    return summary
