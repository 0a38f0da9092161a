"""Users, API keys and the audit log (admin only)."""

from __future__ import annotations

from fastapi import APIRouter, status

from affectstream.api import service
from affectstream.api.deps import DbDep, PagingDep, PrincipalDep
from affectstream.api.schemas import AuditPage, Id, KeyOut, UserIn, UserOut

router = APIRouter(tags=["admin"])


@router.post("/users", status_code=status.HTTP_201_CREATED)
def create_user(body: UserIn, db: DbDep, who: PrincipalDep) -> UserOut:
    """Create a user with its study memberships (a device user is bound to a participant)."""
    user = service.create_user(db, who, body.name, body.role, body.studies, body.participant_id)
    return UserOut.model_validate(user)


@router.post("/users/{user_id}/keys", status_code=status.HTTP_201_CREATED)
def create_key(user_id: Id, db: DbDep, who: PrincipalDep) -> KeyOut:
    """Issue an API key; the key is in this response only (the service keeps its hash)."""
    row, key = service.create_key(db, who, user_id)
    return KeyOut(prefix=row.prefix, key=key, user_id=user_id)


@router.delete("/keys/{prefix}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_key(prefix: str, db: DbDep, who: PrincipalDep) -> None:
    """Revoke an API key by its prefix."""
    service.revoke_key(db, who, prefix)


@router.get("/audit")
def list_audit(
    db: DbDep,
    who: PrincipalDep,
    paging: PagingDep,
    action: str | None = None,
) -> AuditPage:
    """The audit log, newest first, optionally one action (``read_raw``, ``create``...)."""
    page = service.list_audit(db, who, action, *paging)
    return AuditPage.model_validate(page, from_attributes=True)
