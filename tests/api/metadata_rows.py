"""Rows the alert-log test and benchmark start from: one study, one participant, sessions."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import insert
from sqlalchemy.orm import Session

from affectstream.api.db import Participant, SessionRow, Study


def running_sessions(db: Session, session_ids: Sequence[str]) -> int:
    """Add a study with one participant whose sessions ``session_ids`` are running; commit.

    Returns
    -------
    int
        The study's id.
    """
    study = Study(name="alert-log")
    db.add(study)
    db.flush()
    person = Participant(study_id=study.id, pseudonym="alert-log")
    db.add(person)
    db.flush()
    rows = [
        {"id": s, "study_id": study.id, "participant_id": person.id, "kind": "ingest"}
        for s in session_ids
    ]
    db.execute(insert(SessionRow), [{**row, "status": "running"} for row in rows])
    db.commit()
    return study.id
