"""Read one stored session back as tables and as sample blocks."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from affectstream.errors import ConfigError
from affectstream.io._grid import estimate_sfreq, regular_block
from affectstream.store import GAP_EVENT_KIND, RAW_PREFIX, TAG_KEYS, SessionInfo, TimeSeriesStore
from affectstream.types import UNITS, SampleBlock

logger = logging.getLogger(__name__)

#: Modalities stored one point per event (no sampling rate).
EVENT_MODALITIES = ("rr", "hr", "battery")
#: Order in which measurements are read and exported.
TABLE_ORDER = ("features", "quality", "affect", "events")

#: ``progress(stage, done, total)``: what long operations report.
Progress = Callable[[str, int, int], None]


def _no_progress(stage: str, done: int, total: int) -> None:
    """Progress callback that shows nothing."""


@dataclass(frozen=True)
class StoredSession:
    """Every measurement of one session as read from the store.

    Parameters
    ----------
    info : SessionInfo
        Session id, participant and time span.
    tables : dict of str to DataFrame
        Measurement name -> the store's read result (``time_ns``, tag columns, fields).
    """

    info: SessionInfo
    tables: dict[str, pd.DataFrame]

    @property
    def raw_measurements(self) -> list[str]:
        """The ``raw_<modality>`` measurements present, sorted."""
        return sorted(m for m in self.tables if m.startswith(RAW_PREFIX))

    def events(self) -> pd.DataFrame:
        """The ``events`` table (empty with ``time_ns``, ``kind``, ``label`` if none)."""
        frame = self.tables.get("events")
        if frame is None:
            return pd.DataFrame(
                {"time_ns": np.empty(0, np.int64), "kind": [], "label": [], "stream": []}
            )
        return frame

    def settings(self) -> dict[str, Any]:
        """The feature and model settings the session recorded in its ``start`` event.

        Returns
        -------
        dict
            ``window_s``, ``step_s``, ``line_freq``, ``model`` as the live session wrote
            them (:meth:`affectstream.runtime.LiveSession.settings`); empty for sessions
            stored before sessions recorded them.
        """
        frame = self.events()
        if not len(frame) or "detail" not in frame:
            return {}
        start = frame[(frame["kind"] == "session") & (frame["label"] == "start")]
        for detail in start["detail"].dropna().astype(str):
            if detail.startswith("{"):
                with contextlib.suppress(ValueError, TypeError):
                    return dict(json.loads(detail))
        return {}


def describe_sessions(sessions: list[SessionInfo]) -> str:
    """One line per session for error messages and ``--list``."""
    if not sessions:
        return "(the store holds no session)"
    lines = []
    for info in sessions:
        start = datetime.fromtimestamp(info.start_ns / 1e9, tz=UTC).isoformat(timespec="seconds")
        who = f"participant {info.participant!r}, " if info.participant else ""
        lines.append(f"  {info.session} ({who}from {start}, {info.n_points} points)")
    return "\n".join(lines)


def find_session(store: TimeSeriesStore, session: str) -> SessionInfo:
    """Return the stored session ``session`` or raise a :class:`ConfigError` listing them.

    Parameters
    ----------
    store : TimeSeriesStore
    session : str
        Session id.

    Returns
    -------
    SessionInfo
    """
    sessions = store.sessions()
    for info in sessions:
        if info.session == session:
            return info
    raise ConfigError(
        f"Session {session!r} is not in the store {store!r}. Sessions there:\n"
        f"{describe_sessions(sessions)}\nPass one of these ids (or --store for another store)."
    )


def load_session(
    store: TimeSeriesStore, session: str, progress: Progress | None = None
) -> StoredSession:
    """Read every measurement of a session.

    Parameters
    ----------
    store : TimeSeriesStore
        The store holding the session.
    session : str
        Session id.
    progress : callable, optional
        ``progress(stage, done, total)`` after each measurement read.

    Returns
    -------
    StoredSession

    Raises
    ------
    ConfigError
        The session does not exist (the message lists those that do).
    """
    report = progress or _no_progress
    info = find_session(store, session)
    present = {measurement for measurement, _ in store.series(session)}
    order = [m for m in TABLE_ORDER if m in present] + sorted(present - set(TABLE_ORDER))
    tables: dict[str, pd.DataFrame] = {}
    for done, measurement in enumerate(order, start=1):
        tables[measurement] = store.read(measurement, tags={"session": session})
        report("reading session", done, len(order))
    return StoredSession(info=info, tables=tables)


def field_columns(frame: pd.DataFrame) -> list[str]:
    """Field columns of a store read result (everything but time and tags)."""
    return [c for c in frame.columns if c != "time_ns" and c not in TAG_KEYS]


@lru_cache(maxsize=1)
def _standard_names() -> dict[str, str]:
    import warnings

    import mne

    # MNE 1.13 renamed the template montages; try the new name first.
    for name in ("colin27_1005", "standard_1005"):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                montage = mne.channels.make_standard_montage(name)
        except ValueError:
            continue
        return {ch.lower(): ch for ch in montage.ch_names}
    return {}


def channel_display_name(modality: str, stored: str) -> str:
    """Channel name for files read by other tools: 10-20 spelling for EEG (``af7`` -> ``AF7``).

    Parameters
    ----------
    modality : str
    stored : str
        Field name in the store (lowercase).

    Returns
    -------
    str
    """
    if modality == "eeg":
        return _standard_names().get(stored.lower(), stored)
    return stored


def slug(text: str) -> str:
    """File-name-safe form of a stream or session id (``polar/ecg`` -> ``polar-ecg``)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")
    return cleaned or "unnamed"


def raw_streams(data: StoredSession) -> dict[str, str]:
    """Stream id -> modality of every raw stream of a session (as :func:`raw_blocks` names them)."""
    streams: dict[str, str] = {}
    for measurement in data.raw_measurements:
        modality = measurement[len(RAW_PREFIX) :]
        frame = data.tables[measurement]
        names = pd.unique(frame["stream"]) if "stream" in frame else [""]
        for stream in names:
            streams[str(stream) or f"{data.info.session}/{modality}"] = modality
    return streams


def raw_blocks(data: StoredSession) -> list[SampleBlock]:
    """Raw streams of a session as sample blocks, with NaN rows and gaps where samples miss.

    The store keeps the samples that arrived, not the device counter: the sampling rate is
    estimated from the timestamps (see :func:`affectstream.io.estimate_sfreq`) and gaps are
    where consecutive samples are more than 1.5 periods apart; gap reasons come from the
    session's ``gap`` events.

    Parameters
    ----------
    data : StoredSession

    Returns
    -------
    list of SampleBlock
        One per stored stream, channels in stored field order.
    """
    events = data.events()
    blocks = []
    for measurement in data.raw_measurements:
        modality = measurement[len(RAW_PREFIX) :]
        frame = data.tables[measurement]
        streams = frame["stream"] if "stream" in frame else pd.Series([""] * len(frame))
        for stream in pd.unique(streams):
            part = frame[(streams == stream).to_numpy()]
            fields = [c for c in field_columns(part) if part[c].notna().any()]
            t = part["time_ns"].to_numpy(np.int64) / 1e9
            name = str(stream) or f"{data.info.session}/{modality}"
            where = f"stream {name!r} of session {data.info.session!r}"
            sfreq = None if modality in EVENT_MODALITIES else estimate_sfreq(t, where)
            reasons: dict[float, str] = {}
            if len(events) and "stream" in events:
                mine = events[(events["stream"] == stream) & (events["kind"] == GAP_EVENT_KIND)]
                reasons = dict(
                    zip(mine["time_ns"] / 1e9, mine["label"].fillna("gap").astype(str), strict=True)
                )
            device = part["device"].iloc[0] if "device" in part and len(part) else ""
            blocks.append(
                regular_block(
                    stream=name,
                    modality=modality,
                    channels=tuple(channel_display_name(modality, f) for f in fields),
                    unit=UNITS.get(modality, ""),
                    t=t,
                    values=part[fields].to_numpy(np.float64),
                    sfreq=sfreq,
                    device=str(device),
                    gap_reasons=reasons,
                    # A stored session's gaps are real (its host clock wrote the times):
                    # filled whatever their length, as the EDF/BIDS exports need.
                    max_gap=math.inf,
                )
            )
    return blocks
