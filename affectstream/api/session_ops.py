"""Session operations over the runtime and the store: start, stop, status, markers, ingest."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from affectstream.api import alert_log, ingest, service
from affectstream.api.bus import INGEST, block_from_json, block_to_json
from affectstream.api.db import (
    IngestCursor,
    IngestHandoff,
    Marker,
    Participant,
    SelfReport,
    SessionRow,
)
from affectstream.api.deps import ServiceState
from affectstream.api.ingest_cursors import LocalCursors
from affectstream.api.live import json_safe
from affectstream.api.runner import check_model, status_payload
from affectstream.api.security import Principal, audit
from affectstream.runtime import LiveSession
from affectstream.store import SeriesBatch, event_batch
from affectstream.types import SampleBlock


async def start_session(
    state: ServiceState,
    db: Session,
    who: Principal,
    participant_id: int,
    kind: str,
    duration: float,
    devices: str,
    seed: int,
    *,
    disconnects: Mapping[str, Sequence[float]] | None = None,
    model: str | None = None,
) -> SessionRow:
    """Create a session row and start it on the runtime.

    Returns
    -------
    SessionRow
    """
    service.check(who, "session:run")
    limit = state.settings.max_running_sessions
    if len(state.runner.running) >= limit:
        raise service.ConflictError(
            f"{limit} sessions are running on this server already (max_running_sessions); "
            "stop one or raise the limit."
        )
    if kind == "ingest":
        check_model(model)
    row, participant = await asyncio.to_thread(service.new_session, db, who, participant_id, kind)
    if kind == "emulated":
        await state.runner.start_emulated(
            row.id,
            participant.pseudonym,
            duration=duration,
            kinds=devices,
            seed=seed,
            disconnects=disconnects or {},
        )
    else:
        await state.runner.start_ingest(row.id, participant.pseudonym, devices=devices, model=model)
    await state.alerts.watch(row.id, row.study_id)
    return row


async def stop_session(state: ServiceState, db: Session, who: Principal, session_id: str) -> None:
    """Stop a running session (it flushes everything first)."""
    service.check(who, "session:run")
    row = await asyncio.to_thread(service.get_session, db, who, session_id)
    stopped_here = await state.runner.stop(session_id)
    if state.cursors is not None:
        await state.cursors.flush(session_id)
    if not stopped_here:
        if state.bus is None or row.status != "running":
            raise service.ConflictError(f"Session {session_id!r} is not running on this server.")
        state.bus.request_stop(session_id)  # the replica running it stops it
        if not await _wait_stopped(state, session_id, STOP_TIMEOUT):
            raise service.ConflictError(
                f"Session {session_id!r} did not stop within {STOP_TIMEOUT:g} s: no running "
                "replica has it (see GET /sessions/{id}); it is marked interrupted when its "
                "replica restarts."
            )
    audit(db, who, "stop", f"session/{session_id}")
    await asyncio.to_thread(db.commit)


#: Seconds a replica waits for another one to stop a session it runs.
STOP_TIMEOUT = 60.0


async def _wait_stopped(state: ServiceState, session_id: str, timeout: float) -> bool:
    def status_now() -> str | None:
        with state.sessions() as db:
            row = db.get(SessionRow, session_id)
            return None if row is None else row.status

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await asyncio.to_thread(status_now) != "running":
            return True
        await asyncio.sleep(0.2)
    return False


def _live_state(state: ServiceState, session_id: str) -> dict[str, Any] | None:
    """Event loop only: the running session's counters (the runtime mutates them there)."""
    live = state.runner.live(session_id)
    if live is None:
        return None
    summary = live.summary()
    return {
        "elapsed_s": live.snapshot().elapsed,
        # Which models run and the reference period they share (docs/runtime.md).
        "model": summary["model"],
        "reference_s": summary["reference_s"],
        "reference": summary["reference"],
        # What the session said at its start (e.g. which model this emulated session is too
        # short for); the summary's own end-of-session warnings come with it at stop.
        "warnings": list(live.warnings),
        "n_estimates": summary["n_estimates"],
        "n_feature_rows": summary["n_feature_rows"],
        "streams": summary["streams"],
        "latest_estimate": live.latest_estimate,
        "quality": live.latest_quality,
        "store_ok": live.store_ok,
    }


def _stored_status(db: Session, who: Principal, session_id: str) -> dict[str, Any]:
    """Worker thread: the session's row and ingest cursors."""
    service.check(who, "session:read")
    row = service.get_session(db, who, session_id)
    cursors = db.execute(select(IngestCursor).where(IngestCursor.session_id == session_id))
    ingest_state = {
        c.stream: {
            "next_seq": c.next_seq,
            "received": c.received,
            "duplicates": c.duplicates,
            "gap_samples": c.gap_samples,
        }
        for c in cursors.scalars()
    }
    return {
        "id": row.id,
        "study_id": row.study_id,
        "participant_id": row.participant_id,
        "kind": row.kind,
        "status": row.status,
        "started_at": row.started_at,
        "stopped_at": row.stopped_at,
        "summary": row.summary,
        "ingest": ingest_state,
    }


async def status(
    state: ServiceState, db: Session, who: Principal, session_id: str
) -> dict[str, Any]:
    """A session's row, its live state if running here, its summary, its ingest cursors.

    Returns
    -------
    dict
    """
    out = await asyncio.to_thread(_stored_status, db, who, session_id)
    out["live"] = json_safe(_live_state(state, session_id))
    if state.cursors is not None and (current := state.cursors.state(session_id)) is not None:
        out["ingest"] = current  # newer than the stored ones (written within FLUSH_S)
    return out


def _event_batch(
    row: SessionRow,
    pseudonym: str,
    t: float,
    kind: str,
    label: str,
    detail: str,
    values: dict[str, float] | None = None,
) -> SeriesBatch:
    return event_batch(
        {"participant": pseudonym, "session": row.id}, t, kind, label, detail, values
    )


def _save_marker(
    db: Session, who: Principal, session_id: str, label: str, detail: str, when: float
) -> tuple[Marker, SeriesBatch]:
    """Worker thread: check, store the marker row and audit it; the event batch to write."""
    service.check(who, "marker:write")
    row = service.get_session(db, who, session_id)
    participant = db.get(Participant, row.participant_id)
    pseudonym = participant.pseudonym if participant is not None else ""
    marker = Marker(session_id=row.id, t=when, label=label, detail=detail, user_id=who.user_id)
    db.add(marker)
    audit(db, who, "create", f"session/{row.id}/marker", label)
    db.commit()
    return marker, _event_batch(row, pseudonym, when, "marker", label, detail)


async def add_marker(
    state: ServiceState,
    db: Session,
    who: Principal,
    session_id: str,
    label: str,
    detail: str,
    t: float | None,
) -> Marker:
    """Record a marker: in the metadata DB, in the store as an event, and pushed live.

    Returns
    -------
    Marker
    """
    when = time.time() if t is None else t
    marker, batch = await asyncio.to_thread(_save_marker, db, who, session_id, label, detail, when)
    live = state.runner.live(session_id)
    if live is not None:  # on the event loop, where the runtime runs
        live.mark(label, kind="marker", detail=detail, t=when)
    else:  # stored here; pushed live (to other replicas too, through the bus)
        await asyncio.to_thread(state.store.write, [batch])
        event = {"t": when, "kind": "marker", "label": label, "detail": detail}
        state.hub.publish(session_id, "event", event)
    return marker


def _save_self_report(
    db: Session,
    who: Principal,
    session_id: str,
    values: tuple[int, int, int | None],
    when: float,
    block: str = "",
) -> tuple[SelfReport, SeriesBatch]:
    """Worker thread: check, store the self-report row and audit it; the event batch."""
    service.check(who, "selfreport:write")
    row = service.get_session(db, who, session_id)
    participant = db.get(Participant, row.participant_id)
    pseudonym = participant.pseudonym if participant is not None else ""
    arousal, valence, dominance = values
    report = SelfReport(
        session_id=row.id,
        t=when,
        arousal=arousal,
        valence=valence,
        dominance=dominance,
        user_id=who.user_id,
    )
    db.add(report)
    audit(db, who, "create", f"session/{row.id}/self_report")
    db.commit()
    label = _self_report_label(arousal, valence, dominance)
    # Numeric fields and the rated block: what valence calibration reads back.
    fields = _self_report_values(arousal, valence, dominance)
    return report, _event_batch(row, pseudonym, when, "self_report", label, block, fields)


def _self_report_values(arousal: int, valence: int, dominance: int | None) -> dict[str, float]:
    values = {"arousal": float(arousal), "valence": float(valence)}
    if dominance is not None:
        values["dominance"] = float(dominance)
    return values


def _self_report_label(arousal: int, valence: int, dominance: int | None) -> str:
    text = f"arousal={arousal} valence={valence}"
    return text + (f" dominance={dominance}" if dominance is not None else "")


async def add_self_report(
    state: ServiceState,
    db: Session,
    who: Principal,
    session_id: str,
    arousal: int,
    valence: int,
    dominance: int | None,
    t: float | None,
    block: str | None = None,
) -> SelfReport:
    """Record a SAM self-report (metadata DB, store event, live push).

    ``block`` names the protocol block rated (stored as the event's ``detail``); a rated
    block becomes a valence calibration episode (:mod:`affectstream.runtime.calibration`).

    Returns
    -------
    SelfReport
    """
    when = time.time() if t is None else t
    report, batch = await asyncio.to_thread(
        _save_self_report, db, who, session_id, (arousal, valence, dominance), when, block or ""
    )
    live = state.runner.live(session_id)
    label = _self_report_label(arousal, valence, dominance)
    if live is not None:
        live.mark(
            label,
            kind="self_report",
            detail=block or "",
            t=when,
            values=_self_report_values(arousal, valence, dominance),
        )
    else:
        await asyncio.to_thread(state.store.write, [batch])
        event = {"t": when, "kind": "self_report", "label": label, "detail": ""}
        state.hub.publish(session_id, "event", event)
    return report


def _apply_batch(
    state: ServiceState, who: Principal, session_id: str, blocks: list[ingest.BlockIn]
) -> tuple[list[tuple[Any, ingest.Accepted]], bool]:
    """Worker thread: check access, convert blocks, advance cursors (one transaction).

    For a session another replica runs (PostgreSQL only), the accepted blocks are written
    to ``ingest_handoff`` in the same transaction, which notifies that replica on commit.

    Returns
    -------
    results : list of (SampleBlock or None, Accepted)
    handed_off : bool
        Whether the blocks went to another replica.
    """
    with state.sessions() as db:
        here = state.runner.live(session_id) is not None
        elsewhere = not here and state.bus is not None
        _takes_ingest(db, who, session_id, here or elsewhere)
        converted = [ingest.to_block(b) for b in blocks]
        cursors = _lock_cursors(db, session_id, converted)
        out = [ingest.apply_cursor(cursors[block.stream], block) for block in converted]
        accepted = [b for b, _ in out if b is not None]
        if elsewhere and accepted:
            db.add(
                IngestHandoff(session_id=session_id, blocks=[block_to_json(b) for b in accepted])
            )
            db.execute(
                text("SELECT pg_notify(:channel, :session)"),
                {"channel": INGEST, "session": session_id},
            )
        db.commit()
    return out, elsewhere


def _lock_cursors(
    db: Session, session_id: str, blocks: Sequence[SampleBlock]
) -> dict[str, IngestCursor]:
    """Worker thread: the cursors of every stream in ``blocks``, locked, made if new.

    One ``SELECT ... FOR UPDATE`` for the whole batch (ordered by stream, so replicas sharing
    PostgreSQL lock a session's cursors in the same order and cannot deadlock) instead of a
    locked read per block: the per-block reads each flushed the previous block's update first.
    A stream seen for the first time starts at its first block's sequence number; a
    concurrent first batch of the same stream fails the flush here (``IntegrityError``: the
    caller retries), not later.

    Returns
    -------
    dict of str to IngestCursor
        Stream id to its cursor (updated in place by :func:`ingest.apply_cursor`; the caller
        commits them in one transaction).
    """
    streams = sorted({block.stream for block in blocks})
    if not streams:
        return {}
    found = db.scalars(
        select(IngestCursor)
        .where(IngestCursor.session_id == session_id, IngestCursor.stream.in_(streams))
        .order_by(IngestCursor.stream)
        .with_for_update()
    ).all()
    cursors = {cursor.stream: cursor for cursor in found}
    new = False
    for block in blocks:
        if block.stream not in cursors:
            cursors[block.stream] = ingest.new_cursor(session_id, block.stream)
            db.add(cursors[block.stream])
            new = True
    if new:
        db.flush()
    return cursors


def _feed(
    state: ServiceState, session_id: str, live: LiveSession, blocks: list[SampleBlock]
) -> None:
    """Event loop: hand accepted blocks to the running session; push their gaps live."""
    for block in blocks:
        live.submit(block)
        for gap in block.gaps:
            state.hub.publish(
                session_id,
                "event",
                {
                    "kind": "gap",
                    "label": gap.reason,
                    "stream": gap.stream,
                    "n_samples": gap.n_samples,
                    "t": gap.t_start,
                },
            )


@dataclass
class IngestAccess:
    """What one ingest connection was already allowed: checked once per run of its session.

    An ingest WebSocket authenticates once; its access to the session (role, study,
    session kind and status) is checked on the first batch and then trusted while the same
    run of the session is live here. When that run ends the next batch is checked again.
    """

    live: LiveSession | None = None


def _takes_ingest(db: Session, who: Principal, session_id: str, reachable: bool = True) -> None:
    """May ``who`` send ingest to ``session_id`` (running, and run here or on a replica)?"""
    service.check(who, "ingest")
    row = service.get_session(db, who, session_id)
    if row.kind != "ingest" or row.status != "running" or not reachable:
        raise service.ConflictError(
            f"Session {session_id!r} does not take ingest (kind {row.kind}, status "
            f"{row.status}) on this server; start a session with kind 'ingest'."
        )


def _check_ingest(state: ServiceState, who: Principal, session_id: str) -> None:
    """Worker thread: may ``who`` send ingest to ``session_id``, running in this process?"""
    with state.sessions() as db:
        _takes_ingest(db, who, session_id)


#: Samples in a batch above which its conversion leaves the event loop.
_CONVERT_ON_LOOP = 20_000


async def _ingest_local(
    state: ServiceState,
    who: Principal,
    session_id: str,
    blocks: list[ingest.BlockIn],
    live: LiveSession,
    cursors: LocalCursors,
    access: IngestAccess | None,
) -> list[ingest.Accepted]:
    """No replica bus, session running here: cursors in memory (:mod:`.ingest_cursors`).

    Caller holds the session's ingest lock.
    """
    if access is None or access.live is not live:
        await asyncio.to_thread(_check_ingest, state, who, session_id)
        if access is not None:
            access.live = live
    if sum(len(b.t) for b in blocks) > _CONVERT_ON_LOOP:
        converted = await asyncio.to_thread(lambda: [ingest.to_block(b) for b in blocks])
    else:
        converted = [ingest.to_block(b) for b in blocks]
    current = await cursors.get(session_id, converted)
    results = [ingest.apply_cursor(current[block.stream], block) for block in converted]
    cursors.changed(session_id)
    accepted = [b for b, _ in results if b is not None]
    if state.runner.live(session_id) is live:
        _feed(state, session_id, live, accepted)
    else:  # ended while its cursors loaded: the store write still lands
        state.store.write(ingest.orphan_batches(accepted, session_id))
    return [a for _, a in results]


async def ingest_batch(
    state: ServiceState,
    who: Principal,
    session_id: str,
    blocks: list[ingest.BlockIn],
    access: IngestAccess | None = None,
) -> list[ingest.Accepted]:
    """Apply a batch: dedupe by sequence number, gaps for holes, hand blocks to the session.

    Parameters
    ----------
    state : ServiceState
    who : Principal
    session_id : str
    blocks : list of ingest.BlockIn
    access : IngestAccess, optional
        The sending connection's earlier access check (an ingest WebSocket).

    Returns
    -------
    list of Accepted
    """
    lock = state.ingest_locks.setdefault(session_id, asyncio.Lock())
    async with lock:  # one batch of a session at a time: cursors advance in order
        live = state.runner.live(session_id)
        if state.cursors is not None and live is not None:
            return await _ingest_local(state, who, session_id, blocks, live, state.cursors, access)
        for attempt in range(3):
            try:
                results, handed_off = await asyncio.to_thread(
                    _apply_batch, state, who, session_id, blocks
                )
                break
            except IntegrityError:  # another replica created the stream's cursor first
                if attempt == 2:
                    raise
        accepted = [b for b, _ in results if b is not None]
        live = state.runner.live(session_id)
        if handed_off:
            pass  # the replica running the session takes them (take_handoff)
        elif live is None:  # ended between the check and now: the store write still lands
            state.store.write(ingest.orphan_batches(accepted, session_id))
        else:
            _feed(state, session_id, live, accepted)
    return [a for _, a in results]


def _take_rows(state: ServiceState, session_id: str) -> list[SampleBlock]:
    """Worker thread: delete and return the hand-off rows of ``session_id``, oldest first."""
    with state.sessions() as db:
        rows = db.execute(
            delete(IngestHandoff)
            .where(IngestHandoff.session_id == session_id)
            .returning(IngestHandoff.id, IngestHandoff.blocks)
        ).all()
        db.commit()
    return [block_from_json(b) for _, blocks in sorted(rows) for b in blocks]


async def take_handoff(state: ServiceState, session_id: str) -> None:
    """Feed this replica's running session the blocks other replicas accepted for it.

    Parameters
    ----------
    state : ServiceState
    session_id : str
    """
    if state.runner.live(session_id) is None:
        return  # another replica's session
    async with state.ingest_locks.setdefault(session_id, asyncio.Lock()):
        blocks = await asyncio.to_thread(_take_rows, state, session_id)
        live = state.runner.live(session_id)
        if live is None:
            state.store.write(ingest.orphan_batches(blocks, session_id))
        else:
            _feed(state, session_id, live, blocks)


def _joined(state: ServiceState, session_id: str) -> tuple[bool, list[dict[str, Any]]]:
    """Worker thread: whether the session row says running, and the alerts firing on it."""
    with state.sessions() as db:
        row = db.get(SessionRow, session_id)
        return row is not None and row.status == "running", alert_log.firing(db, session_id)


async def hello(state: ServiceState, session_id: str) -> dict[str, Any]:
    """The first live message: where a session is (phase, counts) and the alerts firing on it.

    Call it once the client is subscribed (and put it first: :meth:`Subscriber.put_first`):
    an alert is logged before it is published, so each transition reaches the client in this
    message, as a live message after it, or both, never neither.

    Parameters
    ----------
    state : ServiceState
    session_id : str

    Returns
    -------
    dict
        ``running`` (anywhere; the session row's status when another replica runs it),
        ``here`` (in this replica: phase and counts follow) and ``alerts``, the alerts
        firing now (:func:`affectstream.api.alert_log.firing`: the same on every replica),
        with the fields of their live ``alert`` messages.
    """
    running, alerts = await asyncio.to_thread(_joined, state, session_id)
    live = state.runner.live(session_id)
    if live is None:
        return {
            "type": "status",
            "session": session_id,
            "running": running,
            "here": False,
            "alerts": alerts,
        }
    return {
        "type": "status",
        "session": session_id,
        **status_payload(live.snapshot()),
        "here": True,
        "alerts": alerts,
    }
