"""Studies, participants, sessions, markers and self-reports: the metadata rows, access-checked.

An id of a study the caller is not in is :class:`~affectstream.api.access.NotFoundError`,
exactly like an id that does not exist, so ids cannot be probed.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from affectstream.api.access import ConflictError, NotFoundError, Page, check, found, paginate
from affectstream.api.db import (
    ExportJob,
    Marker,
    Membership,
    Participant,
    SelfReport,
    SessionRow,
    Study,
    owner_is_dead,
    process_owner,
)
from affectstream.api.security import Principal, add_audited, audit

logger = logging.getLogger(__name__)


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


def study_page(
    db: Session,
    principal: Principal,
    study_id: int,
    action: str,
    query: Select[Any],
    limit: int,
    offset: int,
) -> Page:
    """A page of ``query`` (rows of one study) for a caller allowed ``action`` on that study.

    Parameters
    ----------
    db : sqlalchemy.orm.Session
    principal : Principal
    study_id : int
        The study the rows belong to; one the caller may not see is :class:`NotFoundError`.
    action : str
        The permission the read needs (see :data:`affectstream.api.access.PERMISSIONS`).
    query : sqlalchemy.Select
        The study's rows, in page order.
    limit, offset : int

    Returns
    -------
    Page
    """
    check(principal, action)
    get_study(db, principal, study_id)
    return paginate(db, query, limit, offset)


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
    participant = found(db.get(Participant, participant_id), f"No participant {participant_id}.")
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
    query = select(Participant).where(Participant.study_id == study_id).order_by(Participant.id)
    return study_page(db, principal, study_id, "participant:read", query, limit, offset)


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
    return add_audited(db, principal, participant, "participant", f"study {study_id}")


def get_session(db: Session, principal: Principal, session_id: str) -> SessionRow:
    """A session the caller may see (a device: only its participant's), else NotFoundError.

    Returns
    -------
    SessionRow
    """
    row = found(db.get(SessionRow, session_id), f"No session {session_id!r}.")
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
    query = (
        select(SessionRow)
        .where(SessionRow.study_id == study_id)
        .order_by(SessionRow.started_at.desc())
    )
    return study_page(db, principal, study_id, "session:read", query, limit, offset)


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
