"""API keys (argon2 hashes), principals, roles and the audit log.

An API key reads ``ask_<prefix>_<secret>``: the prefix finds the key's row, the argon2 hash
of the whole key proves it. Only the hash is stored; the key is shown once, when created.
Verified keys are remembered for a minute (by a SHA-256 of the key, in memory) so argon2,
which is slow on purpose, runs once per key per minute rather than on every request;
revocation is still checked on every request.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Protocol, TypeVar

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from affectstream.api.db import ApiKey, AuditEntry, Membership, User

logger = logging.getLogger(__name__)


class _Keyed(Protocol):
    @property
    def id(self) -> int: ...


_Row = TypeVar("_Row", bound=_Keyed)

KEY_PREFIX = "ask_"
_HASHER = PasswordHasher()
_CACHE_SECONDS = 60.0


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user, their role, the studies they may see.

    Parameters
    ----------
    user_id : int
    name : str
    role : str
        One of :data:`affectstream.api.db.ROLES`.
    studies : frozenset of int
        Studies the user is a member of (admins see every study regardless).
    participant_id : int, optional
        The participant a ``device`` account ingests for.
    key_prefix : str
        Public prefix of the key used (for rate limits and the audit log).
    """

    user_id: int
    name: str
    role: str
    studies: frozenset[int]
    participant_id: int | None
    key_prefix: str

    @property
    def is_admin(self) -> bool:
        """Whether the caller is an admin."""
        return self.role == "admin"

    def may_see_study(self, study_id: int) -> bool:
        """Whether the caller may see anything of ``study_id``.

        Parameters
        ----------
        study_id : int

        Returns
        -------
        bool
        """
        return self.is_admin or study_id in self.studies


def new_api_key() -> tuple[str, str, str]:
    """Make a new key.

    Returns
    -------
    key : str
        The whole key, to hand out once.
    prefix : str
        Its public prefix (stored in clear to find the row).
    hashed : str
        Its argon2 hash (stored).
    """
    key = new_key_text()
    return key, key.split("_")[1], _HASHER.hash(key)


def new_key_text() -> str:
    """A fresh key in the service's format, ``ask_<prefix>_<secret>`` (not stored anywhere).

    Returns
    -------
    str
    """
    return f"{KEY_PREFIX}{secrets.token_hex(6)}_{secrets.token_urlsafe(24)}"


class KeyVerifier:
    """Check bearer keys against the database, remembering recent successes."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def principal(self, db: Session, token: str) -> Principal | None:
        """Return the caller a key belongs to, or ``None`` if it is unknown or revoked.

        Parameters
        ----------
        db : sqlalchemy.orm.Session
        token : str
            The bearer token as sent.

        Returns
        -------
        Principal or None
        """
        parts = token.split("_")
        if not token.startswith(KEY_PREFIX) or len(parts) < 3:
            return None
        prefix = parts[1]
        row = db.execute(select(ApiKey).where(ApiKey.prefix == prefix)).scalar_one_or_none()
        if row is None or row.revoked:
            return None
        digest = hashlib.sha256(token.encode()).hexdigest()
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(digest)
        if cached is None or cached[0] < now or cached[1] != row.id:
            try:
                _HASHER.verify(row.hash, token)
            except (VerificationError, InvalidHashError):
                return None
            with self._lock:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[digest] = (now + _CACHE_SECONDS, row.id)
        user = db.get(User, row.user_id)
        if user is None:
            return None
        return _principal_of(db, user, prefix)


def _principal_of(db: Session, user: User, key_prefix: str) -> Principal:
    studies = db.execute(select(Membership.study_id).where(Membership.user_id == user.id)).scalars()
    return Principal(
        user.id, user.name, user.role, frozenset(studies), user.participant_id, key_prefix
    )


class JwtVerifier:
    """Check JWT bearer tokens from one issuer (OIDC): signature by its JWKS, ``iss``,
    ``aud``, ``exp``; ``sub`` must name an existing user, whose role and studies apply.

    Parameters
    ----------
    issuer, audience : str
    jwks_url : str
        The issuer's JSON Web Key Set (keys are fetched once and cached by ``kid``).
    """

    ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "PS256")

    def __init__(self, issuer: str, audience: str, jwks_url: str) -> None:
        self.issuer = issuer
        self.audience = audience
        self._jwks = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=300)

    def principal(self, db: Session, token: str) -> Principal | None:
        """Return the caller a token names, or ``None`` if it does not verify.

        Parameters
        ----------
        db : sqlalchemy.orm.Session
        token : str

        Returns
        -------
        Principal or None
        """
        try:
            key = self._jwks.get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=list(self.ALGORITHMS),
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as exc:
            logger.info("JWT refused: %s", type(exc).__name__)  # never the token
            return None
        user = db.execute(select(User).where(User.name == str(claims["sub"]))).scalar_one_or_none()
        if user is None:
            return None
        return _principal_of(db, user, f"jwt:{user.id}")


def audit(
    db: Session, principal: Principal | None, action: str, resource: str, detail: str = ""
) -> None:
    """Append one entry to the audit log (committed with the caller's transaction).

    Parameters
    ----------
    db : sqlalchemy.orm.Session
    principal : Principal, optional
        Who acted (``None`` for a failed login).
    action : str
        E.g. ``"read_raw"``, ``"create"``, ``"login_failed"``.
    resource : str
        What was acted on, e.g. ``"session/S1"``.
    detail : str
        Free text; never a secret.
    """
    db.add(
        AuditEntry(
            user_id=principal.user_id if principal else None,
            action=action,
            resource=resource[:200],
            detail=detail[:2000],
        )
    )


def add_audited(db: Session, principal: Principal, row: _Row, kind: str, detail: str = "") -> _Row:
    """Insert ``row``, audit its creation as ``<kind>/<id>`` and commit.

    Parameters
    ----------
    db : sqlalchemy.orm.Session
    principal : Principal
        Who created it.
    row : mapped object with an integer ``id``
    kind : str
        The audit log's name for such rows, e.g. ``"participant"``.
    detail : str
        Free text for the audit entry; never a secret.

    Returns
    -------
    The same row, with its ``id``.
    """
    db.add(row)
    db.flush()  # assigns the id the audit entry names
    audit(db, principal, "create", f"{kind}/{row.id}", detail)
    db.commit()
    return row
