"""Who may do what: the role table, the access errors and pagination the service layer shares.

Object-level access (may this caller see this study?) lives with the objects
(:mod:`affectstream.api.studies`); this module holds the role check and the errors every
service module raises, so each of them imports it and none imports another for these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from affectstream.api.security import Principal
from affectstream.errors import AffectstreamError

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


_T = TypeVar("_T")


def found(row: _T | None, missing: str) -> _T:
    """``row``, or :class:`NotFoundError` saying ``missing`` when there is none.

    Parameters
    ----------
    row : object or None
        What a look-up returned.
    missing : str
        The error's message, e.g. ``"No participant 3."``.

    Returns
    -------
    object
        ``row`` itself.
    """
    if row is None:
        raise NotFoundError(missing)
    return row


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
