"""Replay recorded blocks through the live session runtime: the runtime behind
``affectstream replay``.

The recording is cut into one-second chunks and fed to :class:`LiveSession` (streaming
features, the same model bundles and participant reference, the store) as a device layer
would, paced ``speed`` times faster than real time or as fast as the machine goes, so the
numbers are those a live session gives. What is replayed, and with which windows and mains
frequency, comes from :mod:`affectstream.runtime.replay_source` (re-exported here);
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
from affectstream.io import RecordedEvent
from affectstream.io.montage import model_channels_missing, muse_mapping, to_muse_montage
from affectstream.io.replay import ReplaySource
from affectstream.models.bundle import ModelBundle, load_bundle
from affectstream.runtime.estimator import (
    NO_MODEL,
    LiveEstimator,
    features_only_note,
    resolve_arousal_bundles,
)
from affectstream.runtime.multiwindow import reads_own_windows, session_window
from affectstream.runtime.replay_source import (
    REPLAYED_KINDS,
    ReplayInput,
    exported_session,
    load_source,
    replay_bundle,
    replay_input,
    replay_line_freq,
    replay_own_windows,
    replay_window,
    stored_session,
)
from affectstream.runtime.session import LiveSession, SessionConfig
from affectstream.runtime.valence_live import personal_valence
from affectstream.signal import WindowConfig
from affectstream.signal.extractor import FAMILY
from affectstream.store import TAG_KEYS, EmbeddedStore, TimeSeriesStore, open_store
from affectstream.store.base import REPLAY_EVENT
from affectstream.types import SampleBlock

__all__ = [
    "REPLAY_NO_VALENCE_NOTE",
    "REPLAY_VALENCE_NOTE",
    "ReplayInput",
    "ReplayStore",
    "exported_session",
    "load_source",
    "replay_blocks",
    "replay_bundle",
    "replay_input",
    "replay_line_freq",
    "replay_own_windows",
    "replay_valence_note",
    "replay_window",
    "session_rows",
    "stored_session",
]

logger = logging.getLogger(__name__)


#: Why a replay's valence is uncalibrated although the participant has a personal model.
REPLAY_VALENCE_NOTE = (
    "valence is uncalibrated in a replay: the participant's personal valence model is not "
    "applied (the one stored now may not be the one the session used, or may have been fitted "
    "on this very session); see docs/export.md"
)


#: Said instead when the replay runs no model at all: then it gives no valence either.
REPLAY_NO_VALENCE_NOTE = (
    "no valence in this replay: no arousal model reads these devices, and the participant's "
    "personal valence model is not applied in a replay; see docs/export.md"
)


def replay_valence_note(participant: str, *, estimated: bool = True) -> list[str]:
    """:data:`REPLAY_VALENCE_NOTE` when ``participant`` has a calibrated personal model.

    A replay does not know which personal valence model the session used (a session stores
    no model identity for it), so it applies none: its valence is the uncalibrated estimate,
    whatever the live session reported. This says so where it could differ.

    Parameters
    ----------
    participant : str
        The replay's participant id (empty: nobody, no note).
    estimated : bool
        Whether the replay estimates at all; False (features only): the live session's
        calibrated valence is missing altogether (:data:`REPLAY_NO_VALENCE_NOTE`).

    Returns
    -------
    list of str
        The note, or empty.
    """
    personal = personal_valence(participant)
    if personal is None or not personal.calibrated_:
        return []
    return [REPLAY_VALENCE_NOTE if estimated else REPLAY_NO_VALENCE_NOTE]


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
    own_windows: bool | None = None,
    baseline_end: float | None = None,
    events: Sequence[RecordedEvent] = (),
    line_freq: float | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    on_session: Callable[[LiveSession], None] | None = None,
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
        Arousal bundle; ``"none"`` for features only; when None, every shipped bundle that
        fits the modalities, each on its own window and combined per window, as in a live
        session (:func:`~affectstream.runtime.estimator.resolve_arousal_bundles`; a bundle
        whose EEG channels the recording lacks is left out). A bundle named
        here whose EEG channels the recording lacks is refused (:class:`ConfigError`).
        When the model reads Muse positions and the EEG is on 10-20 electrodes, the EEG is
        mapped to them first (:mod:`affectstream.io.montage`).
    allow_version_mismatch : bool
        Accept a bundle written by another affectstream version.
    window : WindowConfig, optional
        Feature windows; their grid starts at the recording's first sample. By default the
        shortest model window (as trained; :func:`~affectstream.runtime.multiwindow.
        session_window`), else 60 s every 5 s, as a live session.
    own_windows : bool
        Required with ``window`` (:func:`replay_own_windows`: a stored session's own, False
        for ``--window``): True, each model trained on another length reads its own
        windows beside ``window``; False, every model runs on ``window``. Without
        ``window``, each model reads its own (:func:`~affectstream.runtime.multiwindow.
        reads_own_windows`).
    baseline_end : float, optional
        End of the participant's reference period (host time, s); default: the start plus
        the session's default, long enough for every model
        (:meth:`LiveSession.reference_period`).
    events : sequence of RecordedEvent
        Markers, phases and self-reports of the recording, written into the replayed
        session at their times.
    line_freq : float, optional
        Mains frequency (50 or 60 Hz) for the notch filters; default: the bundles' (as in
        a live session), else the window's.
    progress : callable, optional
        ``progress(stage, done, total)`` while replaying.
    on_session : callable, optional
        Receives the :class:`LiveSession` before anything is marked or replayed (e.g.
        :func:`affectstream.runtime.lsl_out.attach` to publish the replay over LSL).

    Returns
    -------
    dict
        The runtime's session summary plus ``data_seconds``, ``replay_seconds`` and
        ``speed_factor`` (recording time per second of replay). ``warnings`` names a
        10-20 → Muse montage mapping, a model left out for missing channels and, for a
        participant with a calibrated personal valence model, that the replay's valence is
        uncalibrated (:data:`REPLAY_VALENCE_NOTE`).

    Raises
    ------
    ConfigError
        No samples, or a recording shorter than one window (no window could complete).
    TypeError
        ``window`` without ``own_windows``.
    """
    if window is not None and own_windows is None:
        raise TypeError("replay_blocks: own_windows is required with a window")

    present = [b for b in blocks if len(b)]
    if not present:
        raise ConfigError("Nothing to replay: the recording has no samples.")
    origin = min(float(b.t[0]) for b in present)
    # The saved session spans the recording (its last sample plus one period), not the
    # wall clock of the replay.
    end = max(float(b.t[-1]) + (1.0 / b.sfreq if b.sfreq else 0.0) for b in present)
    # Live sessions start their window grid at the first sample; so does the replay.
    notes: list[str] = []
    families = {FAMILY[b.modality] for b in present if b.modality in FAMILY}
    features_only = bundle is not None and str(bundle).lower() == NO_MODEL
    # The same bundles as a live session on these devices (record/demo): the one named,
    # else every shipped one that fits, each on its own window, combined per window.
    paths = [] if features_only else resolve_arousal_bundles(bundle, families, allow_demo=False)
    if not paths and not features_only:
        notes.append(features_only_note(families))
    loaded: list[ModelBundle] = []
    for path in paths:
        candidate = load_bundle(path, allow_version_mismatch=allow_version_mismatch)
        missing = model_channels_missing(candidate.features, present)
        mapped = [to_muse_montage(b) for b in present]
        if missing and any(m is not None for m in mapped):
            # The model reads Muse positions and the EEG is on 10-20 electrodes.
            present = [m if m is not None else b for m, b in zip(mapped, present, strict=True)]
            missing = model_channels_missing(candidate.features, present)
            notes.append(
                "EEG on 10-20 electrodes mapped to the Muse positions the model reads ("
                + ", ".join(f"{k} = mean({', '.join(v)})" for k, v in muse_mapping().items())
                + "); see docs/export.md"
            )
        if missing:
            have = sorted({c for b in present if b.modality == "eeg" for c in b.channels})
            message = (
                f"model {candidate.model_id} reads EEG channels {missing} that the recording "
                f"does not have (it has {have})"
            )
            if bundle is not None:
                raise ConfigError(
                    f"Refusing to score: {message}. Choose a model trained on these channels, "
                    f"or replay features only (--model {NO_MODEL})."
                )
            logger.warning("%s: left out", message)
            notes.append(f"{message}: left out" + ("" if len(paths) > 1 else ", no estimates"))
            continue
        loaded.append(candidate)
    # Each bundle on its own windows unless the session's windows are for all (the stored
    # session's rule, or --window): replay_own_windows.
    if window is None:
        own_windows = reads_own_windows(window)
        window = session_window(loaded, None, line_freq)
    elif line_freq is not None:
        window = dataclasses.replace(window, line_freq=float(line_freq))
    # Data time only: the live silence rule (max_lag) and the event-stream look-ahead judge
    # a stream by how far the others' data ran ahead when a batch is computed, and batches
    # grow with the machine's load; a replay holds every sample, so rows wait for each
    # stream as in training (extract_features) and the same file gives the same rows at any
    # speed. A stream's windows without data are NaN because the data say so.
    window = dataclasses.replace(window, origin=origin, max_lag=None)
    if end - origin < window.window:
        raise ConfigError(
            f"The recording spans {end - origin:.1f} s, shorter than one {window.window:g}-s "
            "feature window, so no window would complete; replay a longer recording or "
            f"choose a shorter window (--window {max(1.0, math.floor(end - origin)):g})."
        )
    total = sum(len(b) for b in present)
    config = SessionConfig(
        participant=participant,
        session_id=session_id,
        window=window,
        # The whole recording is in memory already: never drop or skip for back-pressure.
        max_pending_samples=total + 1,
        compute_backlog_samples=total + 1,
    )
    estimator = None
    if loaded:
        estimator = LiveEstimator(
            loaded, baseline_end=None, window=window.window, own_windows=bool(own_windows)
        )
    elif not paths and not features_only:
        logger.warning("no model bundle fits %s: replaying features only", sorted(families))
    session = LiveSession(store, config, estimator)
    if on_session is not None:
        on_session(session)
    # Marks the saved session as a replay for `affectstream store ls`; 1 us after the start
    # event, which it would replace in the store at the same timestamp.
    kind, label = REPLAY_EVENT
    session.mark(label, kind=kind, detail="replay of a recording", t=origin + 1e-6)
    if estimator is not None:
        estimator.baseline_end = (
            baseline_end if baseline_end is not None else origin + session.baseline_seconds()
        )
        if baseline_end is not None:
            session.reference_basis = "the recorded session's baseline phase"
    notes.extend(replay_valence_note(participant, estimated=estimator is not None))

    async def main() -> dict[str, Any]:
        finished = asyncio.Event()
        source = ReplaySource(
            present, session.submit, speed=speed, finished=finished, progress=progress
        )
        for event in events:
            if event.kind in REPLAYED_KINDS:
                session.mark(event.label, kind=event.kind, detail=event.detail, t=event.t)
        # Each stream whole, so rows keep coming in data time after a stream ends early or
        # through its gaps, instead of waiting for the final flush or the next sample.
        session.declare_streams(source.streams, whole_streams(present), whole=True)
        summary = await session.run(
            source, stop=finished, declare=source.streams, span=(origin, end)
        )
        summary["data_seconds"] = source.data_seconds
        summary["warnings"] = [*notes, *summary.get("warnings", [])]
        return summary

    started = time.monotonic()
    summary = asyncio.run(main())
    elapsed = time.monotonic() - started
    summary["replay_seconds"] = elapsed
    summary["speed_factor"] = summary["data_seconds"] / elapsed if elapsed > 0 else math.inf
    return summary


def whole_streams(blocks: Sequence[SampleBlock]) -> dict[str, SampleBlock]:
    """Each stream of a recording as one block.

    Parameters
    ----------
    blocks : sequence of SampleBlock
        The recording (one or more blocks per stream, in time order).

    Returns
    -------
    dict of str to SampleBlock
        Stream id -> its samples (a stream's only block itself, not a copy).
    """
    parts: dict[str, list[SampleBlock]] = {}
    for block in blocks:
        if len(block):
            parts.setdefault(block.stream, []).append(block)
    return {s: p[0] if len(p) == 1 else SampleBlock.concat(p) for s, p in parts.items()}


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
