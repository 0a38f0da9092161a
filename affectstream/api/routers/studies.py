"""Studies and their participants."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from affectstream.api import service
from affectstream.api.deps import DbDep, PagingDep, PrincipalDep
from affectstream.api.etag import NOT_MODIFIED, etagged
from affectstream.api.schemas import (
    Id,
    ParticipantIn,
    ParticipantOut,
    ParticipantPage,
    StudyIn,
    StudyOut,
    StudyPage,
)

router = APIRouter(tags=["studies"])


@router.get("/studies", response_model=StudyPage, responses=NOT_MODIFIED)
def list_studies(request: Request, db: DbDep, who: PrincipalDep, paging: PagingDep) -> Response:
    """Studies the caller may see."""
    page = service.list_studies(db, who, *paging)
    return etagged(request, StudyPage.model_validate(page, from_attributes=True))


@router.post("/studies", status_code=status.HTTP_201_CREATED)
def create_study(body: StudyIn, db: DbDep, who: PrincipalDep) -> StudyOut:
    """Create a study (a researcher creating one becomes its member)."""
    return StudyOut.model_validate(service.create_study(db, who, body.name, body.description))


@router.get("/studies/{study_id}", response_model=StudyOut, responses=NOT_MODIFIED)
def get_study(request: Request, study_id: Id, db: DbDep, who: PrincipalDep) -> Response:
    """One study."""
    service.check(who, "study:read")
    return etagged(request, StudyOut.model_validate(service.get_study(db, who, study_id)))


@router.get("/studies/{study_id}/participants")
def list_participants(
    study_id: Id, db: DbDep, who: PrincipalDep, paging: PagingDep
) -> ParticipantPage:
    """Participants of a study."""
    page = service.list_participants(db, who, study_id, *paging)
    return ParticipantPage.model_validate(page, from_attributes=True)


@router.post("/studies/{study_id}/participants", status_code=status.HTTP_201_CREATED)
def create_participant(
    study_id: Id, body: ParticipantIn, db: DbDep, who: PrincipalDep
) -> ParticipantOut:
    """Add a participant (pseudonymous id only)."""
    participant = service.create_participant(db, who, study_id, body.pseudonym)
    return ParticipantOut.model_validate(participant)


@router.get("/participants/{participant_id}")
def get_participant(participant_id: Id, db: DbDep, who: PrincipalDep) -> ParticipantOut:
    """One participant."""
    service.check(who, "participant:read")
    return ParticipantOut.model_validate(service.get_participant(db, who, participant_id))
