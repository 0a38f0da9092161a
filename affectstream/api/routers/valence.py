"""Personal valence calibration of a participant: fit from rated sessions, read, delete."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, status

from affectstream.api import service
from affectstream.api.deps import DbDep, PrincipalDep, StateDep
from affectstream.api.schemas import Id, ValenceCalibrationIn
from affectstream.api.security import audit

router = APIRouter(tags=["valence"])


def _public(data: dict[str, Any]) -> dict[str, Any]:
    """The stored model without its coefficient arrays."""
    return {k: v for k, v in data.items() if k != "linear"}


@router.post(
    "/participants/{participant_id}/valence-calibration", status_code=status.HTTP_201_CREATED
)
async def calibrate(
    participant_id: Id, body: ValenceCalibrationIn, state: StateDep, db: DbDep, who: PrincipalDep
) -> dict[str, Any]:
    """(Re)fit the participant's valence model on their sessions' rated blocks.

    Scored leave one episode out against the person's own mean rating; a model that does
    not beat it is stored as ``uncalibrated`` and live valence stays uncalibrated.
    """
    from affectstream.runtime.calibration import calibrate_participant

    service.check(who, "participant:write")
    participant = service.get_participant(db, who, participant_id)
    for session_id in body.sessions:
        row = service.get_session(db, who, session_id)
        if row.participant_id != participant.id:
            raise service.ConflictError(
                f"Session {session_id!r} belongs to another participant; calibrate each "
                f"participant on their own sessions."
            )
    result = await asyncio.to_thread(
        calibrate_participant, state.store, body.sessions, participant.pseudonym
    )
    audit(db, who, "create", f"participant/{participant.id}/valence", result["status"])
    db.commit()
    return result


@router.get("/participants/{participant_id}/valence-calibration")
def read_calibration(participant_id: Id, db: DbDep, who: PrincipalDep) -> dict[str, Any]:
    """The participant's valence model card: status, measured accuracy, episodes."""
    from affectstream.models.valence_store import read_personal_valence

    service.check(who, "selfreport:read")  # the card lists the person's ratings
    participant = service.get_participant(db, who, participant_id)
    data = read_personal_valence(participant.pseudonym)
    if data is None:
        raise service.NotFoundError(
            f"Participant {participant_id} has no valence calibration; POST rated sessions to "
            f"/participants/{participant_id}/valence-calibration."
        )
    return _public(data)


@router.delete("/participants/{participant_id}/valence-calibration")
def delete_calibration(participant_id: Id, db: DbDep, who: PrincipalDep) -> dict[str, Any]:
    """Delete the participant's valence model: their valence is uncalibrated again."""
    from affectstream.models.valence_store import delete_personal_valence

    service.check(who, "participant:write")
    participant = service.get_participant(db, who, participant_id)
    deleted = delete_personal_valence(participant.pseudonym)
    audit(db, who, "delete", f"participant/{participant.id}/valence")
    db.commit()
    return {"participant_id": participant.id, "deleted": deleted}
