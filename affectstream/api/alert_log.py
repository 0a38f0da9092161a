"""The alert delivery log: the one record of alert transitions, and what is firing now.

Every transition an :class:`~affectstream.api.alerts.AlertEngine` raises becomes a row of
``alert_deliveries`` before its live ``alert`` message is published, and the engine writes
one session's rows one at a time, in the order the transitions happened (so row ids follow
that order). "Firing now" is read from those rows alone (:func:`firing`): a rule fires on a
session when its last row for that session says ``fired`` and the session is running. Every
replica answers a joining live client from the shared database the same way, the replica
that runs the session included, so there is no second, in-memory list that could disagree.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from affectstream.api.db import AlertDelivery, AlertRule, SessionRow


def alert_message(
    rule: AlertRule, session_id: str, state: str, value: float | None, t: float
) -> dict[str, Any]:
    """The body of a live ``alert`` message (and of its webhook, and of a ``status.alerts`` item).

    Parameters
    ----------
    rule : AlertRule
    session_id : str
    state : str
        ``"fired"`` or ``"cleared"``.
    value : float or None
        What the rule judged (the metric's value, or the seconds of silence).
    t : float
        When the transition happened, Unix seconds.

    Returns
    -------
    dict
        ``rule_id``, ``name``, ``kind``, ``metric``, ``state``, ``value``, ``t``, ``session``.
    """
    return {
        "rule_id": rule.id,
        "name": rule.name,
        "kind": rule.kind,
        "metric": rule.metric,
        "state": state,
        "value": value,
        "t": t,
        "session": session_id,
    }


def log_transition(db: Session, payload: dict[str, Any], *, webhook: bool) -> int:
    """Write one transition (an :func:`alert_message`) to the delivery log and commit.

    Parameters
    ----------
    db : Session
    payload : dict
        The transition, as :func:`alert_message` made it.
    webhook : bool
        Whether a webhook will deliver it (status ``pending``; else ``live_only``).

    Returns
    -------
    int
        The row's id (the webhook's ``delivery_id``).
    """
    row = AlertDelivery(
        rule_id=payload["rule_id"],
        session_id=payload["session"],
        t=payload["t"],
        state=payload["state"],
        value=payload["value"],
        status="pending" if webhook else "live_only",
        attempts=0,
        last_error="",
    )
    db.add(row)
    db.commit()
    return row.id


def firing(db: Session, session_id: str) -> list[dict[str, Any]]:
    """The alerts firing now on a session, as their live ``fired`` messages, oldest first.

    A rule fires when its last logged transition on the session is ``fired`` and the session
    is still running. An ended session has none: its rules are no longer evaluated, so nothing
    would ever clear what was firing when it stopped, and "firing" would stay true for ever.

    Parameters
    ----------
    db : Session
    session_id : str

    Returns
    -------
    list of dict
        :func:`alert_message` bodies (``state`` ``"fired"``).
    """
    last = (
        select(func.max(AlertDelivery.id))
        .where(AlertDelivery.session_id == session_id)
        .group_by(AlertDelivery.rule_id)
    )
    rows = db.execute(
        select(AlertDelivery, AlertRule)
        .join(AlertRule, AlertRule.id == AlertDelivery.rule_id)
        .join(SessionRow, SessionRow.id == AlertDelivery.session_id)
        .where(
            # Implied by ``last``, but it lets the planner start from this session's rows
            # even before the table has statistics (PostgreSQL otherwise may join every
            # session first: 0.5 s instead of 1 ms over 100,000 rows).
            AlertDelivery.session_id == session_id,
            AlertDelivery.id.in_(last),
            AlertDelivery.state == "fired",
            SessionRow.status == "running",
        )
        .order_by(AlertDelivery.t, AlertDelivery.id)
    ).all()
    return [alert_message(rule, session_id, d.state, d.value, d.t) for d, rule in rows]
