"""Valence calibration in sessions: ask for self-reports after calibration blocks, fit, store.

A protocol's calibration blocks (phases with ``calibration = true``) are each followed by a
SAM self-report (valence and arousal, 1-9): typed at the prompt of ``affectstream record``
/ ``demo``, read from a ``--self-reports`` file, given by :meth:`Session.self_report
<affectstream.runtime.app.Session.self_report>` or posted to the service's self-report
route. Every report is an ``events`` point of kind ``self_report`` with numeric ``valence``
and ``arousal`` fields (and the block it rates in ``detail`` when known).

:func:`calibrate_participant` turns stored sessions into calibration episodes
(:func:`calibration_blocks`), fits :class:`~affectstream.models.valence.PersonalValenceModel`
on the stored feature windows and writes it with its card
(:mod:`affectstream.models.valence_store`), calibrated or not; live sessions of that
participant then use it (:mod:`affectstream.runtime.valence_live`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
import time
import tomllib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from affectstream.errors import ConfigError, ModelError
from affectstream.models.valence import CalibrationBlock, PersonalValenceModel
from affectstream.models.valence_store import save_personal_valence
from affectstream.store import SessionInfo, TimeSeriesStore

logger = logging.getLogger(__name__)

#: ``kind`` of self-report events.
SELF_REPORT_KIND = "self_report"
#: Label of self-report events written by the runtime.
SELF_REPORT_LABEL = "self-report"
#: One SAM answer typed at the prompt: ``valence arousal`` (``7 3``, ``7,3``, ``v=7 a=3``).
_ANSWER = re.compile(r"^\s*(?:v\w*\s*=\s*)?(\d)\s*[ ,;/]\s*(?:a\w*\s*=\s*)?(\d)\s*$", re.I)
_LABEL_RATING = re.compile(r"\b(valence|arousal)\s*=\s*(\d+(?:\.\d+)?)")

#: ``(valence, arousal)`` on the 1-9 SAM scales.
Ratings = tuple[float, float]


def parse_answer(text: str) -> Ratings | None:
    """Read a typed SAM answer ``"valence arousal"`` (both 1-9), or None if it is not one.

    Parameters
    ----------
    text : str

    Returns
    -------
    tuple of float or None
    """
    match = _ANSWER.match(text)
    if not match:
        return None
    valence, arousal = float(match.group(1)), float(match.group(2))
    if not (1 <= valence <= 9 and 1 <= arousal <= 9):
        return None
    return valence, arousal


def load_self_reports(path: str | Path) -> dict[str, Ratings]:
    """Read self-reports for scripted sessions: block name -> valence and arousal.

    The file is JSON or TOML: ``{"sad-music": {"valence": 3, "arousal": 2}, ...}``.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    dict of str to (valence, arousal)
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
        data: Any = tomllib.loads(text) if file.suffix.lower() == ".toml" else json.loads(text)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"Cannot read self-reports {str(file)!r}: {exc}. Give JSON or TOML mapping each "
            'calibration block to {"valence": 1-9, "arousal": 1-9}.'
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"Self-reports {str(file)!r}: expected a mapping block -> ratings.")
    out: dict[str, Ratings] = {}
    for block, entry in data.items():
        try:
            valence, arousal = float(entry["valence"]), float(entry["arousal"])
        except (TypeError, KeyError, ValueError):
            raise ConfigError(
                f'Self-reports {str(file)!r}: block {block!r} needs {{"valence": 1-9, '
                f'"arousal": 1-9}}, got {entry!r}.'
            ) from None
        if not (1 <= valence <= 9 and 1 <= arousal <= 9):
            raise ConfigError(
                f"Self-reports {str(file)!r}: block {block!r} ratings must be 1-9 (SAM), got "
                f"valence {valence:g}, arousal {arousal:g}."
            )
        out[str(block)] = (valence, arousal)
    return out


class CalibrationPrompter:
    """Collects a self-report when each calibration block ends, during a live session.

    Register :meth:`on_event` as a session listener; the block that just ended is answered
    from ``answers`` (a ``--self-reports`` file) when it names it, else ``ask`` is called
    with the question and the next typed line is the answer (:meth:`answer_line`).

    Parameters
    ----------
    mark : callable
        ``mark(label, kind=..., detail=..., values=...)``: writes the event (the session's).
    calibration_blocks : sequence of str
        Names of the protocol's calibration phases.
    answers : mapping, optional
        Block name -> (valence, arousal).
    ask : callable, optional
        Shows a question (e.g. on stderr); None: no interactive prompt.
    """

    def __init__(
        self,
        mark: Callable[..., None],
        calibration_blocks: Sequence[str],
        *,
        answers: Mapping[str, Ratings] | None = None,
        ask: Callable[[str], None] | None = None,
    ) -> None:
        self.mark = mark
        self.blocks = set(calibration_blocks)
        self.answers = dict(answers or {})
        self.ask = ask
        self.current: str | None = None
        self.waiting: list[str] = []
        self.reported: list[str] = []
        self.missing: list[str] = []
        self.ask_after_stop = True  # False once the session stops: nobody can answer then

    def on_event(self, what: str, payload: Mapping[str, Any]) -> None:
        """Session listener: a new phase, or the session's stop, ends the running phase."""
        if what != "event":
            return
        if payload.get("kind") == "phase":
            self.block_ended()
            self.current = str(payload.get("label", ""))
        elif payload.get("kind") == "session" and payload.get("label") == "stop":
            self.ask_after_stop = False
            self.block_ended()
            if self.waiting:
                self.missing += self.waiting
                logger.warning(
                    "the session ended before %s could be rated; end a calibration protocol "
                    "with a short non-calibration phase (e.g. 30 s of rest) to rate the last "
                    "block, or rate it in a --self-reports file",
                    ", ".join(map(repr, self.waiting)),
                )
                self.waiting = []

    def block_ended(self) -> None:
        """The running phase is over: ask about it if it was a calibration block."""
        block, self.current = self.current, None
        if block is None or block not in self.blocks:
            return
        if block in self.answers:
            self._record(block, self.answers[block])
        elif self.ask is not None and self.ask_after_stop:
            self.waiting.append(block)
            if len(self.waiting) == 1:
                self._ask()
        else:
            self.missing.append(block)
            logger.warning(
                "calibration block %r has no self-report: pass --self-reports FILE or answer "
                "the prompt",
                block,
            )

    def _ask(self) -> None:
        if self.ask is not None and self.waiting:
            self.ask(
                f"Block {self.waiting[0]!r} ended. Rate it: valence (1 unpleasant - 9 pleasant) "
                f"and arousal (1 calm - 9 excited), e.g. '7 3', then Enter:"
            )

    def answer_line(self, line: str) -> bool:
        """Take a typed line as the pending answer; False when no answer is pending.

        Parameters
        ----------
        line : str

        Returns
        -------
        bool
            True when the line was consumed (answer stored, or re-asked after a bad one).
        """
        if not self.waiting:
            return False
        ratings = parse_answer(line)
        if ratings is None:
            if self.ask is not None:
                self.ask(f"Not understood: {line.strip()!r}. Two numbers 1-9, e.g. '7 3'.")
            self._ask()
            return True
        self._record(self.waiting.pop(0), ratings)
        self._ask()
        return True

    def _record(self, block: str, ratings: Ratings) -> None:
        valence, arousal = ratings
        self.mark(
            SELF_REPORT_LABEL,
            kind=SELF_REPORT_KIND,
            detail=block,
            values={"valence": valence, "arousal": arousal},
        )
        self.reported.append(block)
        logger.info("self-report for %s: valence %g, arousal %g", block, valence, arousal)


def _report_ratings(row: Mapping[str, Any]) -> Ratings | None:
    """Valence and arousal of a stored self-report event (fields, else its label)."""
    found: dict[str, float] = {}
    for name in ("valence", "arousal"):
        value = row.get(name)
        if value is not None and isinstance(value, int | float) and math.isfinite(value):
            found[name] = float(value)
    # The service's reports carry them in the label ("arousal=3 valence=7").
    for name, value in _LABEL_RATING.findall(str(row.get("label", ""))):
        found.setdefault(name, float(value))
    if "valence" not in found:
        return None
    return found["valence"], found.get("arousal", math.nan)


def session_end(events: pd.DataFrame, info: SessionInfo) -> float:
    """When the session stopped: its ``stop`` event (self-reports may come later).

    Parameters
    ----------
    events : pandas.DataFrame
        The session's events.
    info : SessionInfo
        Its stored span (the fallback).

    Returns
    -------
    float
        Seconds since the epoch.
    """
    if len(events) and {"kind", "label"} <= set(events.columns):
        stop = events[(events["kind"] == "session") & (events["label"] == "stop")]
        if len(stop):
            return float(stop["time_ns"].max()) / 1e9
    return info.stop_ns / 1e9


def calibration_blocks(events: pd.DataFrame, session_end: float) -> list[CalibrationBlock]:
    """The rated calibration episodes of one stored session.

    A self-report rates the calibration block named in its ``detail``, else the latest
    calibration block that started before it and has no rating yet. In a session with no
    phase flagged ``calibration``, every phase but ``baseline`` counts as a block (the
    service's dashboard asks for a rating at the end of each phase).

    Parameters
    ----------
    events : pandas.DataFrame
        The session's ``events`` table (``time_ns``, ``kind``, ``label``, ``detail``...).
    session_end : float
        End of the session (s), the end of its last phase.

    Returns
    -------
    list of CalibrationBlock
        In time order; unrated blocks are left out.
    """
    if not len(events):
        return []
    frame = events.sort_values("time_ns")
    t = frame["time_ns"].to_numpy(np.int64) / 1e9
    kinds = frame["kind"].astype(str).to_numpy()
    phase_idx = np.flatnonzero(kinds == "phase")
    phases = []  # (name, start, end, is_calibration)
    for n, i in enumerate(phase_idx):
        end = t[phase_idx[n + 1]] if n + 1 < len(phase_idx) else session_end
        row = frame.iloc[i]
        flag = row.get("calibration")
        is_cal = flag is not None and isinstance(flag, int | float) and flag == 1
        phases.append((str(row["label"]), float(t[i]), float(end), bool(is_cal)))
    if not any(p[3] for p in phases):
        # No block flagged (a service session, a protocol without calibration keys): every
        # phase but the baseline is an episode once a self-report rates it.
        phases = [(n, a, b, n.lower() != "baseline") for n, a, b, _ in phases]
    rated: dict[int, tuple[Ratings, str]] = {}
    for i in np.flatnonzero(kinds == SELF_REPORT_KIND):
        report = {str(k): v for k, v in frame.iloc[i].to_dict().items()}
        ratings = _report_ratings(report)
        if ratings is None:
            continue
        named = [k for k, p in enumerate(phases) if p[3] and p[0] == str(report.get("detail", ""))]
        before = [k for k, p in enumerate(phases) if p[3] and p[1] < t[i] and k not in rated]
        target = named[-1] if named else (before[-1] if before else None)
        if target is not None:
            rated[target] = (ratings, phases[target][0])
    blocks = []
    for k in sorted(rated):
        (valence, arousal), name = rated[k]
        _, start, end, _ = phases[k]
        if end > start:
            arousal_or_none = arousal if math.isfinite(arousal) else None
            blocks.append(CalibrationBlock(start, end, valence, arousal_or_none, name))
    return blocks


def calibrate_participant(
    store: TimeSeriesStore,
    sessions: Sequence[str],
    participant: str | None = None,
    *,
    home: Path | None = None,
) -> dict[str, Any]:
    """Fit a participant's personal valence model on stored calibration sessions and keep it.

    Parameters
    ----------
    store : TimeSeriesStore
        Holds the sessions.
    sessions : sequence of str
        Session ids with calibration blocks and self-reports (all one participant's).
    participant : str, optional
        Whose model; default the sessions' participant.
    home : Path, optional
        Where models live; :func:`~affectstream.models.valence_store.valence_home`.

    Returns
    -------
    dict
        ``participant``, ``status`` (``calibrated`` / ``uncalibrated``), ``accuracy``,
        ``path`` (the stored bundle) and the episodes used.

    Raises
    ------
    ConfigError
        No session given, sessions of several participants, or different window lengths.
    ModelError
        Too few or unsuitable calibration episodes (the message says what to add).
    """
    from affectstream.export.session import load_session

    if not sessions:
        raise ConfigError("Give at least one session id with calibration blocks (--session).")
    frames, blocks, windows, owners = [], [], set(), set()
    for session_id in sessions:
        stored = load_session(store, session_id)
        owners.add(stored.info.participant)
        features = stored.tables.get("features")
        if features is None or not len(features):
            raise ModelError(
                f"Session {session_id!r} has no stored feature windows to fit on: make each "
                f"calibration block longer than the feature window (the model's, e.g. 60 s)."
            )
        window = stored.settings().get("window_s")
        if window is None:
            raise ModelError(f"Session {session_id!r} did not record its window length.")
        windows.add(float(window))
        frame = features.copy()
        frame["t_end"] = frame["time_ns"].to_numpy(np.int64) / 1e9
        frames.append(frame)
        found = calibration_blocks(stored.events(), session_end(stored.events(), stored.info))
        blocks += [dataclasses.replace(b, session=session_id) for b in found]
        frame["session"] = session_id
    if len(owners) > 1:
        raise ConfigError(f"Sessions belong to several participants {sorted(owners)}; give one's.")
    if len(windows) > 1:
        raise ConfigError(f"Sessions used different windows {sorted(windows)} s; calibrate apart.")
    who = participant or next(iter(owners))
    if not who:
        raise ConfigError("The sessions have no participant id: pass --participant.")
    table = pd.concat(frames, ignore_index=True).drop(columns=["subject"], errors="ignore")
    model = PersonalValenceModel().fit(table, blocks, windows.pop())
    path = save_personal_valence(who, model, sources=list(sessions), home=home)
    return {
        "participant": who,
        "status": "calibrated" if model.calibrated_ else "uncalibrated",
        "accuracy": {k: v for k, v in model.accuracy_.items() if k != "episodes"},
        "episodes": model.accuracy_["episodes"],
        "path": str(path),
        "created": time.time(),
    }
