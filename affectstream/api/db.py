"""The service's metadata database: SQLAlchemy 2 models, engine, Alembic upgrade.

Time series (samples, features, estimates, events) live in the time-series store; this
database holds what the service itself keeps: users, API keys (argon2 hashes only),
studies and memberships, participants (pseudonymous ids only), sessions, markers,
self-reports, ingest cursors and the append-only audit log. The models use portable types
only, so the same migrations run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Annotated, Any

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from affectstream.errors import ConfigError

MIGRATIONS = Path(__file__).with_name("migrations")

#: Roles, most to least powerful (see docs/service.md for what each may do).
ROLES = ("admin", "researcher", "operator", "viewer", "device")


def _now() -> float:
    return time.time()


# Column kinds many tables share (SQLAlchemy's Annotated mapping: each use gets its own copy).
IntKey = Annotated[int, mapped_column(Integer, primary_key=True)]
#: A time in Unix seconds, the row's creation time unless given.
Now = Annotated[float, mapped_column(Float, default=_now)]
SessionRef = Annotated[str, mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))]
StudyRef = Annotated[int, mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))]


class Base(DeclarativeBase):
    """Declarative base of the metadata tables."""


class User(Base):
    """A person or a device account; ``participant_id`` binds a ``device`` user."""

    __tablename__ = "users"
    id: Mapped[IntKey]
    name: Mapped[str] = mapped_column(String(200), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    participant_id: Mapped[int | None] = mapped_column(
        ForeignKey("participants.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[Now]


class ApiKey(Base):
    """An API key: a public ``prefix`` to find it, an argon2 hash of the whole key."""

    __tablename__ = "api_keys"
    id: Mapped[IntKey]
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[Now]
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class Study(Base):
    """A study: the unit of access for every non-admin role."""

    __tablename__ = "studies"
    id: Mapped[IntKey]
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(String(2000), default="")
    created_at: Mapped[Now]


class Membership(Base):
    """A user's access to a study (their role is the user's role)."""

    __tablename__ = "memberships"
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    study_id: Mapped[int] = mapped_column(
        ForeignKey("studies.id", ondelete="CASCADE"), primary_key=True
    )


class Participant(Base):
    """A participant of a study, known only by a pseudonymous id."""

    __tablename__ = "participants"
    __table_args__ = (UniqueConstraint("study_id", "pseudonym"),)
    id: Mapped[IntKey]
    study_id: Mapped[StudyRef]
    pseudonym: Mapped[str] = mapped_column(String(64))
    consent: Mapped[str] = mapped_column(String(20), default="given")
    created_at: Mapped[Now]


class SessionRow(Base):
    """A recording session; its id is the ``session`` tag in the time-series store."""

    __tablename__ = "sessions"
    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    study_id: Mapped[StudyRef]
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default="starting")
    started_at: Mapped[Now]
    stopped_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    #: ``host:pid`` of the process running it (see :func:`process_owner`).
    owner: Mapped[str | None] = mapped_column(String(300), nullable=True)


class Marker(Base):
    """A marker a person set during a session (also written to the store as an event)."""

    __tablename__ = "markers"
    id: Mapped[IntKey]
    session_id: Mapped[SessionRef]
    t: Mapped[float] = mapped_column(Float)
    label: Mapped[str] = mapped_column(String(200))
    detail: Mapped[str] = mapped_column(String(2000), default="")
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class SelfReport(Base):
    """A SAM self-report (1-9 scales); these calibrate valence."""

    __tablename__ = "self_reports"
    id: Mapped[IntKey]
    session_id: Mapped[SessionRef]
    t: Mapped[float] = mapped_column(Float)
    arousal: Mapped[int] = mapped_column(Integer)
    valence: Mapped[int] = mapped_column(Integer)
    dominance: Mapped[int | None] = mapped_column(Integer, nullable=True)
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class IngestCursor(Base):
    """Next expected sequence number of one ingested stream, with its accounting."""

    __tablename__ = "ingest_cursors"
    session_id: Mapped[str] = mapped_column(
        ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True
    )
    stream: Mapped[str] = mapped_column(String(200), primary_key=True)
    next_seq: Mapped[int] = mapped_column(Integer, default=0)
    received: Mapped[int] = mapped_column(Integer, default=0)
    duplicates: Mapped[int] = mapped_column(Integer, default=0)
    gap_samples: Mapped[int] = mapped_column(Integer, default=0)


class IngestHandoff(Base):
    """Accepted blocks waiting for the replica that runs their session (see api/bus.py)."""

    __tablename__ = "ingest_handoff"
    id: Mapped[IntKey]
    session_id: Mapped[str] = mapped_column(
        ForeignKey("sessions.id", ondelete="CASCADE"), index=True
    )
    blocks: Mapped[list[Any]] = mapped_column(JSON)
    created_at: Mapped[Now]


class BusMessage(Base):
    """A live message too large for a NOTIFY payload; the notification carries its id.

    Kept for :data:`~affectstream.api.bus.KEEP_S` seconds so every replica can read it.
    """

    __tablename__ = "bus_messages"
    id: Mapped[IntKey]
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float, default=_now, index=True)


class RateCount(Base):
    """Requests of one API key in one wall-clock minute (rate limits shared by replicas)."""

    __tablename__ = "rate_counts"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    minute: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    n: Mapped[int] = mapped_column(Integer, default=0)


class AuditEntry(Base):
    """One audited action; rows are never updated or deleted (triggers refuse it)."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_time", "t"),)
    id: Mapped[IntKey]
    t: Mapped[Now]
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    action: Mapped[str] = mapped_column(String(40))
    resource: Mapped[str] = mapped_column(String(200))
    detail: Mapped[str] = mapped_column(String(2000), default="")


class AlertRule(Base):
    """An alert rule of a study (see :mod:`affectstream.api.alerts` for its semantics).

    ``webhook_secret`` is kept in clear because signing needs it; it leaves the service only
    in the response that created the rule.
    """

    __tablename__ = "alert_rules"
    id: Mapped[IntKey]
    study_id: Mapped[StudyRef]
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    metric: Mapped[str] = mapped_column(String(64), default="")
    direction: Mapped[str] = mapped_column(String(8), default="above")
    threshold: Mapped[float] = mapped_column(Float, default=0.0)
    clear: Mapped[float] = mapped_column(Float, default=0.0)
    min_duration_s: Mapped[float] = mapped_column(Float, default=0.0)
    min_confidence: Mapped[float] = mapped_column(Float, default=0.0)
    cooldown_s: Mapped[float] = mapped_column(Float, default=0.0)
    lost_after_s: Mapped[float] = mapped_column(Float, default=30.0)
    webhook_url: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    webhook_secret: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[Now]


class AlertDelivery(Base):
    """One alert transition (fired or cleared) and how its webhook delivery went."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (
        Index("ix_alert_deliveries_rule", "rule_id"),
        # The last row per rule of a session: what is firing now (alert_log.firing).
        Index("ix_alert_deliveries_session", "session_id", "rule_id", "id"),
    )
    id: Mapped[IntKey]
    rule_id: Mapped[int] = mapped_column(ForeignKey("alert_rules.id", ondelete="CASCADE"))
    session_id: Mapped[str] = mapped_column(String(80))
    t: Mapped[Now]
    state: Mapped[str] = mapped_column(String(10))
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    #: ``live_only`` (no webhook), ``pending``, ``delivered`` or ``failed``.
    status: Mapped[str] = mapped_column(String(12))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    response_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str] = mapped_column(String(500), default="")
    delivered_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class ExportJob(Base):
    """One export of a stored session: created, run in the background, downloaded."""

    __tablename__ = "export_jobs"
    id: Mapped[IntKey]
    session_id: Mapped[SessionRef]
    study_id: Mapped[StudyRef]
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    format: Mapped[str] = mapped_column(String(20))
    #: ``queued``, ``running``, ``done`` or ``failed``.
    status: Mapped[str] = mapped_column(String(10), default="queued")
    stage: Mapped[str] = mapped_column(String(100), default="")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str] = mapped_column(String(2000), default="")
    size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[Now]
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    owner: Mapped[str | None] = mapped_column(String(300), nullable=True)


class ExportChunk(Base):
    """One piece of a finished export's zip, when replicas share the database (PostgreSQL).

    Any replica can then serve the download; the rows go with their job (erasure included).
    """

    __tablename__ = "export_chunks"
    job_id: Mapped[int] = mapped_column(
        ForeignKey("export_jobs.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


def process_owner() -> str:
    """``host:pid`` of this process: who runs a session or an export job.

    Returns
    -------
    str
    """
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_is_dead(owner: str | None) -> bool:
    """Whether ``owner`` is a process of this host that no longer runs.

    Owners on other hosts (API replicas elsewhere) and rows without an owner are not
    judged: this process cannot tell whether they are alive.

    Parameters
    ----------
    owner : str, optional

    Returns
    -------
    bool
    """
    if not owner:
        return False
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return True  # our pid, reused: the process that wrote it is gone
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def make_engine(url: str) -> Engine:
    """Create the engine (SQLite: foreign keys on, a busy timeout, parent folder made).

    Parameters
    ----------
    url : str
        SQLAlchemy URL.

    Returns
    -------
    sqlalchemy.Engine
    """
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        Path(url.removeprefix("sqlite:///")).expanduser().parent.mkdir(parents=True, exist_ok=True)
    try:
        engine = create_engine(url, connect_args=_connect_args(url))
    except Exception as exc:  # bad URL or driver missing
        raise ConfigError(
            f"Cannot open the metadata database {url.split('@')[-1]!r}: {exc}; "
            "use sqlite:///path/service.sqlite or postgresql+psycopg://..."
        ) from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _connect_args(url: str) -> dict[str, Any]:
    return {"check_same_thread": False, "timeout": 30} if url.startswith("sqlite") else {}


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    # WAL + NORMAL survives a process crash; on power loss the last cursor updates may roll
    # back, and a gateway resending those batches still lands once (store writes overwrite).
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def upgrade(engine: Engine) -> None:
    """Bring the database to the newest Alembic revision.

    Parameters
    ----------
    engine : sqlalchemy.Engine
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def session_factory(engine: Engine) -> sessionmaker[Any]:
    """A session factory whose objects stay readable after commit.

    Parameters
    ----------
    engine : sqlalchemy.Engine

    Returns
    -------
    sqlalchemy.orm.sessionmaker
    """
    return sessionmaker(engine, expire_on_commit=False)
