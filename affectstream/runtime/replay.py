"""Replay recorded blocks through the live session runtime: the runtime behind
``affectstream replay``.

The recording is cut into one-second chunks and fed to :class:`LiveSession` (streaming
features, the same model bundles and participant reference, the store) as a device layer
would, paced ``speed`` times faster than real time or as fast as the machine goes, so the
numbers are those a live session gives. :func:`stored_blocks` reads a stored session back,
:func:`session_rows` joins the rows a replay wrote, :class:`ReplayStore` is the store a
replay writes to.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from affectstream.errors import ConfigError
from affectstream.export.session import load_session, raw_blocks
from affectstream.io.replay import ReplaySource
from affectstream.models.bundle import load_bundle
from affectstream.runtime.estimator import LiveEstimator, resolve_arousal_bundle
from affectstream.runtime.session import LiveSession, SessionConfig
from affectstream.signal import WindowConfig
from affectstream.signal.extractor import FAMILY
from affectstream.store import TAG_KEYS, EmbeddedStore, TimeSeriesStore, open_store
from affectstream.types import SampleBlock

logger = logging.getLogger(__name__)


def stored_blocks(
    store: TimeSeriesStore, session: str
) -> tuple[list[SampleBlock], str, float | None]:
    """Raw streams of a stored session, its participant and the end of its baseline phase.

    Parameters
    ----------
    store : TimeSeriesStore
    session : str

    Returns
    -------
    blocks : list of SampleBlock
    participant : str
    baseline_end : float or None
        Time of the phase event after a ``baseline`` phase event, if any.
    """

    data = load_session(store, session)
    blocks = raw_blocks(data)
    if not blocks:
        raise ConfigError(f"Session {session!r} holds no raw samples to replay.")
    events = data.events()
    baseline_end = None
    if len(events) and "kind" in events:
        phases = events[events["kind"] == "phase"].sort_values("time_ns")
        labels = list(phases["label"])
        if "baseline" in labels:
            after = labels.index("baseline") + 1
            if after < len(labels):
                baseline_end = int(phases["time_ns"].iloc[after]) / 1e9
    return blocks, data.info.participant, baseline_end


def replay_blocks(
    blocks: Sequence[SampleBlock],
    store: TimeSeriesStore,
    *,
    speed: float | None = None,
    participant: str = "",
    session_id: str | None = None,
    bundle: str | None = None,
    allow_version_mismatch: bool = False,
    window: WindowConfig | None = None,
    baseline_end: float | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """Run recorded blocks through the live session runtime into ``store``.

    Parameters
    ----------
    blocks : sequence of SampleBlock
        The recording.
    store : TimeSeriesStore
        Where the replayed session is written.
    speed : float, optional
        Times faster than real time; None for as fast as possible.
    participant, session_id : str
        Tags of the replayed session (an id is generated when None).
    bundle : str, optional
        Arousal bundle; the best shipped one for the modalities when None (features only
        if there is none).
    allow_version_mismatch : bool
        Accept a bundle written by another affectstream version.
    window : WindowConfig, optional
        Feature windows; their grid starts at the recording's first sample.
    baseline_end : float, optional
        End of the participant's reference period (host time, s); default: the start plus
        the runtime's baseline length.
    progress : callable, optional
        ``progress(stage, done, total)`` while replaying.

    Returns
    -------
    dict
        The runtime's session summary plus ``data_seconds``, ``replay_seconds`` and
        ``speed_factor`` (recording time per second of replay).
    """

    present = [b for b in blocks if len(b)]
    if not present:
        raise ConfigError("Nothing to replay: the recording has no samples.")
    origin = min(float(b.t[0]) for b in present)
    # The saved session spans the recording (its last sample plus one period), not the
    # wall clock of the replay.
    end = max(float(b.t[-1]) + (1.0 / b.sfreq if b.sfreq else 0.0) for b in present)
    # Live sessions start their window grid at the first sample; so does the replay.
    window = dataclasses.replace(window or WindowConfig(), origin=origin)
    total = sum(len(b) for b in present)
    config = SessionConfig(
        participant=participant,
        session_id=session_id,
        window=window,
        # The whole recording is in memory already: never drop or skip for back-pressure.
        max_pending_samples=total + 1,
        compute_backlog_samples=total + 1,
    )
    families = {FAMILY[b.modality] for b in present if b.modality in FAMILY}
    path = resolve_arousal_bundle(bundle, families, allow_demo=False)
    estimator = None
    if path is not None:
        loaded = load_bundle(path, allow_version_mismatch=allow_version_mismatch)
        estimator = LiveEstimator([loaded], baseline_end=None)
    else:
        logger.warning("no model bundle fits %s: replaying features only", sorted(families))
    session = LiveSession(store, config, estimator)
    if estimator is not None:
        estimator.baseline_end = (
            baseline_end if baseline_end is not None else origin + session.baseline_seconds()
        )

    async def main() -> dict[str, Any]:
        finished = asyncio.Event()
        source = ReplaySource(
            present, session.submit, speed=speed, finished=finished, progress=progress
        )
        first_blocks = {b.stream: b for b in reversed(present)}
        session.declare_streams(source.streams, first_blocks)
        summary = await session.run(
            source, stop=finished, declare=source.streams, span=(origin, end)
        )
        summary["data_seconds"] = source.data_seconds
        return summary

    started = time.monotonic()
    summary = asyncio.run(main())
    elapsed = time.monotonic() - started
    summary["replay_seconds"] = elapsed
    summary["speed_factor"] = summary["data_seconds"] / elapsed if elapsed > 0 else math.inf
    return summary


def session_rows(store: TimeSeriesStore, session: str) -> pd.DataFrame:
    """Features, quality and affect of a session joined on the window end.

    Parameters
    ----------
    store : TimeSeriesStore
    session : str

    Returns
    -------
    pandas.DataFrame
        ``time_ns``, ``t_end`` (s) and every field of the three measurements.
    """
    merged: pd.DataFrame | None = None
    for measurement in ("features", "quality", "affect"):
        frame = store.read(measurement, tags={"session": session})
        frame = frame.drop(columns=[c for c in TAG_KEYS if c in frame.columns])
        merged = frame if merged is None else merged.merge(frame, on="time_ns", how="outer")
    if merged is None:  # unreachable: the loop runs three times
        raise ConfigError(f"Session {session!r}: nothing to read.")
    merged.insert(1, "t_end", merged["time_ns"].to_numpy(np.int64) / 1e9)
    return merged.sort_values("time_ns").reset_index(drop=True)


class ReplayStore:
    """The store at ``url`` when saving, else a temporary embedded store removed on exit."""

    def __init__(self, url: str | None, *, save: bool) -> None:
        self.url = url
        self.save = save
        self._folder: tempfile.TemporaryDirectory[str] | None = None
        self._store: TimeSeriesStore | None = None

    def __enter__(self) -> TimeSeriesStore:
        if self.save:
            self._store = open_store(self.url)
        else:
            self._folder = tempfile.TemporaryDirectory(prefix="affectstream-replay-")
            self._store = EmbeddedStore(Path(self._folder.name), synchronous="normal")
        return self._store

    def __exit__(self, *exc: object) -> None:
        if self._store is not None:
            self._store.close()
        if self._folder is not None:
            self._folder.cleanup()
