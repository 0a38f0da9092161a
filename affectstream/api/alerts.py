"""Alerts: rules on a running session's estimates and signal, evaluated as estimates are made.

Two kinds of rule (rows of ``alert_rules``, one study each):

``threshold``
    ``metric`` (an estimate field, e.g. ``arousal``) ``above``/``below`` ``threshold`` in every
    estimate for ``min_duration_s`` seconds of estimate time, each with
    ``<metric>_confidence >= min_confidence``, fires. Hysteresis: it clears only once the value
    crosses back over ``clear`` (at or below the threshold for ``above``), so a value wobbling
    around the threshold does not flap. After firing it will not fire again for
    ``cooldown_s`` seconds.
``signal_lost``
    No new sample on any stream for ``lost_after_s`` wall-clock seconds fires; the next sample
    clears it.

Each transition is written to the delivery log (:mod:`affectstream.api.alert_log`, which
is also where every replica reads the alerts firing now), then published on the session's live
channel (``type: "alert"``) and, if the rule has a webhook, delivered signed by
:class:`~affectstream.api.webhooks.WebhookSender`. The engine hooks into the session as one of
its listeners, so it sees every estimate when it is made.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from affectstream.api.alert_log import alert_message, log_transition
from affectstream.api.bus import ReplicaBus
from affectstream.api.db import AlertRule
from affectstream.api.live import LiveHub
from affectstream.api.runner import SessionRunner
from affectstream.api.webhooks import WebhookSender

logger = logging.getLogger(__name__)

#: Seconds between signal-lost checks.
TICK_S = 0.5


@dataclass
class RuleState:
    """Where one rule stands in one session (pure: no I/O, easy to reason about)."""

    rule: AlertRule
    active: bool = False
    since: float | None = None
    last_fired: float = -math.inf

    def on_estimate(self, record: Mapping[str, Any]) -> tuple[str, float] | None:
        """Feed one estimate; the transition it causes, if any.

        Parameters
        ----------
        record : mapping
            An estimate record (``t_end`` and fields).

        Returns
        -------
        tuple of (str, float) or None
            ``("fired" | "cleared", value)``.
        """
        rule = self.rule
        value = _number(record.get(rule.metric))
        if value is None:
            return None
        t = float(record["t_end"])
        above = rule.direction == "above"
        if self.active:
            if (value < rule.clear) if above else (value > rule.clear):
                self.active, self.since = False, None
                return ("cleared", value)
            return None
        confidence = _number(record.get(f"{rule.metric}_confidence"))
        confident = rule.min_confidence <= 0 or (
            confidence is not None and confidence >= rule.min_confidence
        )
        holds = ((value > rule.threshold) if above else (value < rule.threshold)) and confident
        if not holds:
            self.since = None
            return None
        if self.since is None:
            self.since = t
        if t - self.since >= rule.min_duration_s and t - self.last_fired >= rule.cooldown_s:
            self.active, self.last_fired = True, t
            return ("fired", value)
        return None

    def on_tick(self, silent_for: float) -> tuple[str, float] | None:
        """Signal-lost check: ``silent_for`` seconds without a new sample.

        Parameters
        ----------
        silent_for : float

        Returns
        -------
        tuple of (str, float) or None
        """
        if not self.active and silent_for >= self.rule.lost_after_s:
            self.active = True
            return ("fired", silent_for)
        if self.active and silent_for < self.rule.lost_after_s:
            self.active = False
            return ("cleared", silent_for)
        return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


@dataclass
class _Watch:
    session_id: str
    study_id: int
    states: list[RuleState]
    task: asyncio.Task[None] | None = None
    delivered: int = -1
    last_change: float = field(default_factory=time.monotonic)
    #: Held while a transition is logged and published: one at a time, in the order they
    #: happened, so the log's last row per rule is its state (asyncio.Lock serves in order).
    log_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class AlertEngine:
    """Evaluates each running session's rules and delivers what they raise.

    Parameters
    ----------
    sessions : sessionmaker
        The metadata database.
    runner : SessionRunner
        Where the running sessions are.
    hub : LiveHub
        The live channel.
    """

    def __init__(self, sessions: sessionmaker[Session], runner: SessionRunner, hub: LiveHub):
        self._sessions = sessions
        self._runner = runner
        self._hub = hub
        self.webhooks = WebhookSender(sessions)
        self._watches: dict[str, _Watch] = {}
        # Per study, reading its rules and applying them happen one at a time: a rule made
        # while a session starts, or a create and a delete in quick succession, can then
        # never leave a session with rules older than the database's.
        self._study_locks: dict[int, asyncio.Lock] = {}

    def _rules(self, study_id: int) -> list[AlertRule]:
        with self._sessions() as db:
            return list(
                db.execute(select(AlertRule).where(AlertRule.study_id == study_id)).scalars()
            )

    async def watch(self, session_id: str, study_id: int) -> None:
        """Start evaluating the study's rules on a running session (also those added later).

        Parameters
        ----------
        session_id : str
        study_id : int
        """
        async with self._study_locks.setdefault(study_id, asyncio.Lock()):
            rules = await asyncio.to_thread(self._rules, study_id)
            live = self._runner.live(session_id)
            if live is None:
                return
            for ended in [s for s in self._watches if self._runner.live(s) is None]:
                self._watches.pop(ended, None)
            watch = _Watch(session_id, study_id, [RuleState(r) for r in rules])
            self._watches[session_id] = watch
            live.listeners.append(lambda kind, payload: self._on_event(watch, kind, payload))
            self._tick_if_needed(watch)

    def _tick_if_needed(self, watch: _Watch) -> None:
        """Start the signal-lost checks of ``watch`` once it has such a rule."""
        if watch.task is None and any(s.rule.kind == "signal_lost" for s in watch.states):
            watch.task = asyncio.create_task(self._ticks(watch), name=f"alerts-{watch.session_id}")

    async def rules_changed(self, study_id: int, bus: ReplicaBus | None) -> None:
        """A rule of ``study_id`` was created or deleted here: apply it here and elsewhere.

        Parameters
        ----------
        study_id : int
        bus : ReplicaBus or None
            The replica bus (PostgreSQL), which tells the other replicas to :meth:`reload`.
        """
        if bus is not None:
            bus.rules_changed(study_id)
        await self.reload(study_id)

    async def reload(self, study_id: int) -> None:
        """Apply ``study_id``'s rules as they are now to its sessions running here.

        Called when a rule is created or deleted, on this replica or (through the replica
        bus) another, so a rule acts on sessions already running wherever they run. A rule
        kept keeps its state (firing, hysteresis, cooldown); a new one starts clear; a
        deleted one stops.

        Parameters
        ----------
        study_id : int
        """
        async with self._study_locks.setdefault(study_id, asyncio.Lock()):
            watches = [w for w in self._watches.values() if w.study_id == study_id]
            if not watches:
                return
            rules = await asyncio.to_thread(self._rules, study_id)
            for watch in watches:
                kept = {s.rule.id: s for s in watch.states}
                # One assignment: the listener iterates whichever list it got, never a half-made
                # one.
                watch.states = [kept.get(r.id) or RuleState(r) for r in rules]
                self._tick_if_needed(watch)
        logger.info("alert rules of study %d reloaded for %d session(s)", study_id, len(watches))

    def _on_event(self, watch: _Watch, kind: str, payload: Mapping[str, Any]) -> None:
        if kind != "estimate":
            return
        for state in watch.states:
            if state.rule.kind == "threshold":
                change = state.on_estimate(payload)
                if change is not None:
                    self._raise(watch, state.rule, *change)

    async def _ticks(self, watch: _Watch) -> None:
        """Signal-lost checks until the session ends (delivered samples are its heartbeat)."""
        while (live := self._runner.live(watch.session_id)) is not None:
            delivered = sum(s.delivered for s in live.snapshot().streams)
            now = time.monotonic()
            if delivered != watch.delivered:
                watch.delivered, watch.last_change = delivered, now
            for state in watch.states:
                if state.rule.kind == "signal_lost":
                    change = state.on_tick(now - watch.last_change)
                    if change is not None:
                        self._raise(watch, state.rule, *change)
            await asyncio.sleep(TICK_S)
        self._watches.pop(watch.session_id, None)

    def _raise(self, watch: _Watch, rule: AlertRule, transition: str, value: float) -> None:
        """Event loop: log the transition, then publish it (and send the webhook)."""
        payload = alert_message(rule, watch.session_id, transition, value, time.time())
        logger.info("alert %s %s on %s", rule.name, transition, watch.session_id)
        self.webhooks.track(self._log_and_send(watch, rule, payload))

    async def _log_and_send(self, watch: _Watch, rule: AlertRule, payload: dict[str, Any]) -> None:
        """Log first, publish after: a client that joins in between finds the transition in
        the log (its first ``status``); one that joined before gets the live message."""
        url, secret = rule.webhook_url, rule.webhook_secret

        def log() -> int:
            with self._sessions() as db:
                return log_transition(db, payload, webhook=bool(url))

        delivery_id: int | None = None
        async with watch.log_lock:
            try:
                delivery_id = await asyncio.to_thread(log)
            except Exception:  # e.g. the rule was deleted meanwhile (foreign key)
                logger.exception("could not log alert %s: published live only", rule.name)
            self._hub.publish(watch.session_id, "alert", payload)
        if delivery_id is not None and url and secret:
            self.webhooks.submit(delivery_id, url, secret, {**payload, "delivery_id": delivery_id})

    async def close(self) -> None:
        """Stop the checks and give pending deliveries a bounded time to finish."""
        for watch in list(self._watches.values()):
            if watch.task is not None:
                watch.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watch.task
        await self.webhooks.close()
