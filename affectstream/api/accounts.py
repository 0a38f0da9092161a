"""Users, API keys, the first admin and the audit log (admin only)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from affectstream.api.access import ConflictError, NotFoundError, Page, check, found, paginate
from affectstream.api.db import ROLES, ApiKey, AuditEntry, Membership, User
from affectstream.api.security import Principal, audit, new_api_key
from affectstream.api.studies import get_participant, get_study
from affectstream.errors import ConfigError


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
    found(db.get(User, user_id), f"No user {user_id}.")
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
