"""Consent withdrawal: erase a participant's data everywhere the service put it.

Order matters: time series first (embedded store or InfluxDB; the store sends its spool
before deleting, so nothing spooled comes back later), then export files, then the metadata
rows (sessions cascade to markers, self-reports and ingest cursors). The erasure itself is
audited; earlier audit entries stay (the log is append-only) and name sessions by id only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from affectstream.api import service
from affectstream.api.db import AlertDelivery, ExportJob, Participant, SessionRow
from affectstream.api.exports import ExportJobs
from affectstream.api.security import Principal, audit
from affectstream.store import TimeSeriesStore

logger = logging.getLogger(__name__)


@dataclass
class Erased:
    """What an erasure removed."""

    participant_id: int
    sessions: int
    export_files: int


def erase_participant(
    db: Session,
    who: Principal,
    participant_id: int,
    store: TimeSeriesStore,
    exports: ExportJobs,
    running: set[str],
) -> Erased:
    """Erase ``participant_id`` (worker thread).

    Parameters
    ----------
    db : Session
    who : Principal
    participant_id : int
    store : TimeSeriesStore
    exports : ExportJobs
    running : set of str
        Sessions running in this process (409: stop them first).

    Returns
    -------
    Erased
    """
    service.check(who, "participant:erase")
    participant = service.get_participant(db, who, participant_id)
    sessions = list(
        db.execute(select(SessionRow).where(SessionRow.participant_id == participant.id)).scalars()
    )
    busy = [s.id for s in sessions if s.id in running or s.status == "running"]
    if busy:
        raise service.ConflictError(
            f"Participant {participant_id} has running session(s) {busy}; stop them, then erase."
        )
    ids = [s.id for s in sessions]
    for session_id in ids:
        store.delete_session(session_id)  # raises (nothing in the DB erased yet) if it cannot
    jobs = list(db.execute(select(ExportJob).where(ExportJob.session_id.in_(ids))).scalars())
    for job in jobs:
        exports.remove_files(job)
    db.execute(delete(AlertDelivery).where(AlertDelivery.session_id.in_(ids)))
    db.execute(delete(ExportJob).where(ExportJob.session_id.in_(ids)))
    db.execute(delete(SessionRow).where(SessionRow.id.in_(ids)))
    # The personal valence model holds the person's ratings and physiology: it goes too.
    from affectstream.models.valence_store import delete_personal_valence

    valence = delete_personal_valence(participant.pseudonym)
    db.delete(db.get(Participant, participant.id))
    detail = f"{len(ids)} session(s), {len(jobs)} export(s) erased"
    if valence:
        detail += ", valence model deleted"
    audit(db, who, "erase", f"participant/{participant_id}", detail)
    db.commit()
    logger.info("participant %d erased: %s", participant_id, detail)
    return Erased(participant_id, len(ids), len(jobs))
