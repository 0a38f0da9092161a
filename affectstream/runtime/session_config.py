"""Settings of a live session and its id: what a caller chooses before a session runs."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from affectstream._validate import check_positive
from affectstream.ids import check_id
from affectstream.runtime.protocol import StudyProtocol
from affectstream.signal import WindowConfig

#: Preferred source of each feature family when several streams could feed it.
DEFAULT_SOURCES: dict[str, tuple[str, ...]] = {"hrv": ("ecg", "ppg", "rr")}


@dataclass
class SessionConfig:
    """Settings of a live session.

    Parameters
    ----------
    participant : str
        Pseudonymous participant id (the ``participant`` tag).
    session_id : str, optional
        Session id (the ``session`` tag); generated from the participant and the UTC time.
    window : WindowConfig
        Feature windows.
    protocol : StudyProtocol, optional
        Phases written as events; a ``baseline`` phase is the reference period.
    baseline_seconds : float, optional
        Reference period from the session start when the protocol has no baseline phase;
        by default long enough for every model of the session
        (:func:`~affectstream.runtime.reference.default_reference`).
    flush_interval : float
        Seconds between store writes (a new estimate is written at once, unless the
        store is failing).
    compute_interval : float
        Seconds between hand-overs of new blocks to the feature worker.
    max_pending_samples : int
        Raw samples allowed to wait for the store before the oldest become gap events.
    max_write_samples : int
        Raw samples per store write at most (a backlog drains in several writes).
    compute_backlog_samples : int
        Samples allowed to wait for the extractor before blocks skip it.
    max_pending_points : int
        Derived points (features, quality, affect, events) allowed to wait for the store
        before the oldest are dropped (counted in ``derived_dropped_points``).
    flush_timeout : float
        Seconds the final flush keeps retrying an unavailable store.
    sources : mapping of str to tuple of str
        Preferred modalities per feature family when several streams could feed it.
    """

    participant: str = ""
    session_id: str | None = None
    window: WindowConfig = field(default_factory=WindowConfig)
    protocol: StudyProtocol | None = None
    baseline_seconds: float | None = None
    flush_interval: float = 0.5
    compute_interval: float = 0.25
    max_pending_samples: int = 4_000_000
    max_write_samples: int = 250_000
    compute_backlog_samples: int = 2_000_000
    max_pending_points: int = 200_000
    flush_timeout: float = 15.0
    sources: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_SOURCES))

    def __post_init__(self) -> None:
        check_id(self.participant, "participant", allow_empty=True)
        if self.session_id is not None:
            check_id(self.session_id, "session")
        for name in ("flush_interval", "compute_interval", "flush_timeout"):
            check_positive(f"SessionConfig.{name}", getattr(self, name))
        for name in (
            "max_pending_samples",
            "max_write_samples",
            "compute_backlog_samples",
            "max_pending_points",
        ):
            check_positive(f"SessionConfig.{name}", getattr(self, name))


def new_session_id(participant: str = "") -> str:
    """A readable, unique session id: ``<participant>-<UTC time>-<4 hex>``.

    Parameters
    ----------
    participant : str
        Participant id (``"anon"`` when empty).

    Returns
    -------
    str
    """
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{participant or 'anon'}-{stamp}-{uuid.uuid4().hex[:4]}"
