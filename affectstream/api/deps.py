"""What every request may depend on: the service state, a database session, the caller."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated, NamedTuple

from fastapi import Depends, HTTPException, Query, Request, WebSocket, status
from sqlalchemy import Engine, delete, text, update
from sqlalchemy.orm import Session, sessionmaker

from affectstream.api.alerts import AlertEngine
from affectstream.api.bus import ReplicaBus
from affectstream.api.db import RateCount
from affectstream.api.exports import ExportJobs
from affectstream.api.ingest_cursors import LocalCursors
from affectstream.api.live import LiveHub
from affectstream.api.runner import SessionRunner
from affectstream.api.schemas import MAX_ID
from affectstream.api.security import KEY_PREFIX, JwtVerifier, KeyVerifier, Principal, audit
from affectstream.api.settings import Settings
from affectstream.store import TimeSeriesStore

logger = logging.getLogger(__name__)


@dataclass
class ServiceState:
    """Everything the app holds while it runs (built in the app's lifespan)."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    store: TimeSeriesStore
    hub: LiveHub
    runner: SessionRunner
    alerts: AlertEngine
    exports: ExportJobs
    verifier: KeyVerifier = field(default_factory=KeyVerifier)
    jwt_verifier: JwtVerifier | None = None
    ingest_locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    #: Replicas sharing PostgreSQL: live push, ingest and stop across them (api/bus.py).
    bus: ReplicaBus | None = None
    #: Without a bus: ingest cursors of sessions running here, in memory (ingest_cursors.py).
    cursors: LocalCursors | None = None
    _hits: dict[str, deque[float]] = field(default_factory=dict)
    _hits_lock: threading.Lock = field(default_factory=threading.Lock)

    def rate_ok(self, key: str) -> bool:
        """Whether ``key`` is under its per-minute request limit (sliding window)."""
        limit = self.settings.rate_limit_per_minute
        if not limit:
            return True
        now = time.monotonic()
        with self._hits_lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] < now - 60.0:
                hits.popleft()
            if len(hits) >= limit:
                return False
            hits.append(now)
            return True


_COUNT = text(
    "INSERT INTO rate_counts (key, minute, n) VALUES (:key, :minute, 1) "
    "ON CONFLICT (key, minute) DO UPDATE SET n = rate_counts.n + 1 RETURNING n"
)


def shared_rate_ok(db: Session, key: str, limit: int, now: float | None = None) -> bool:
    """Whether ``key`` is under ``limit`` requests a minute, counted in the shared database.

    Every replica increments the same per-minute row (one upsert), so the limit holds for
    the whole deployment. The sliding minute is estimated from the current and the previous
    minute's counts (the previous weighted by the part of it still inside the last 60 s);
    a refused request is not counted.

    Parameters
    ----------
    db : Session
    key : str
        The API key's prefix (or the JWT user's).
    limit : int
        Requests a minute; 0 is no limit.
    now : float, optional
        Epoch seconds (default: now).

    Returns
    -------
    bool
    """
    if not limit:
        return True
    now = time.time() if now is None else now
    minute = int(now // 60)
    n = int(db.execute(_COUNT, {"key": key, "minute": minute}).scalar_one())
    if n == 1:  # first request of this key in this minute: older rows are no longer needed
        db.execute(delete(RateCount).where(RateCount.key == key, RateCount.minute < minute - 1))
    previous = db.get(RateCount, (key, minute - 1))
    carried = (previous.n if previous is not None else 0) * (1.0 - (now % 60) / 60.0)
    allowed = carried + n <= limit
    if not allowed:
        db.execute(
            update(RateCount)
            .where(RateCount.key == key, RateCount.minute == minute)
            .values(n=RateCount.n - 1)
        )
    db.commit()
    return allowed


def state_of(request: Request) -> ServiceState:
    """The service state of a request's app."""
    state: ServiceState = request.app.state.service
    return state


def get_db(request: Request) -> Iterator[Session]:
    """A database session for one request."""
    with state_of(request).sessions() as db:
        yield db


StateDep = Annotated[ServiceState, Depends(state_of)]
DbDep = Annotated[Session, Depends(get_db)]

_UNAUTHORISED = HTTPException(
    status.HTTP_401_UNAUTHORIZED,
    "Missing or invalid bearer token: send 'Authorization: Bearer <token>' with an API key "
    "(ask_...) or a JWT from the configured issuer.",
    headers={"WWW-Authenticate": "Bearer"},
)


def _bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def authenticate(state: ServiceState, db: Session, header: str | None, where: str) -> Principal:
    """Resolve the bearer token or raise 401 (a failed attempt is audited, never its token).

    Parameters
    ----------
    state : ServiceState
    db : Session
    header : str, optional
        The ``Authorization`` header.
    where : str
        The path, for the audit log.

    Returns
    -------
    Principal
    """
    token = _bearer(header)
    principal = None
    if token and token.startswith(KEY_PREFIX):
        principal = state.verifier.principal(db, token)
    elif token and state.jwt_verifier is not None and token.count(".") == 2:
        principal = state.jwt_verifier.principal(db, token)
    if principal is None:
        audit(db, None, "login_failed", where[:200], "no token" if token is None else "bad key")
        db.commit()
        raise _UNAUTHORISED
    shared = db.get_bind().dialect.name == "postgresql"  # replicas: count in the database
    allowed = (
        shared_rate_ok(db, principal.key_prefix, state.settings.rate_limit_per_minute)
        if shared
        else state.rate_ok(principal.key_prefix)
    )
    if not allowed:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"More than {state.settings.rate_limit_per_minute} requests a minute with this "
            "key; wait and retry.",
            headers={"Retry-After": "60"},
        )
    return principal


def current_principal(request: Request, state: StateDep, db: DbDep) -> Principal:
    """The authenticated caller of an HTTP request."""
    return authenticate(state, db, request.headers.get("authorization"), request.url.path)


def websocket_principal(websocket: WebSocket) -> Principal:
    """The authenticated caller of a WebSocket (``Authorization`` header of the handshake).

    Returns
    -------
    Principal
    """
    state: ServiceState = websocket.app.state.service
    with state.sessions() as db:
        return authenticate(state, db, websocket.headers.get("authorization"), websocket.url.path)


PrincipalDep = Annotated[Principal, Depends(current_principal)]


class Paging(NamedTuple):
    """Which page of a list a request asks for (``service.list_*(..., *paging)``)."""

    limit: int
    offset: int


#: An ``offset`` query parameter: rows to skip.
Offset = Annotated[int, Query(ge=0, le=MAX_ID)]


def _paging(
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> Paging:
    return Paging(limit, offset)


#: The ``limit``/``offset`` query parameters of every list route.
PagingDep = Annotated[Paging, Depends(_paging)]
