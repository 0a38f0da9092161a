"""What a replay reads and with which settings: the input side of ``affectstream replay``.

:func:`load_source` turns a path or a session id into a :class:`ReplayInput` (streams,
markers and phases, the participant, a stored session's settings): a recording file or
folder in any layout :mod:`affectstream.io` reads, a CSV/Parquet export, or a session in
the store. :func:`replay_window` and :func:`replay_line_freq` resolve the feature windows
and the mains frequency: given, else stored with the session, else (mains) detected.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from affectstream.errors import ConfigError
from affectstream.export.session import StoredSession as ExportedSession
from affectstream.export.session import load_session, raw_blocks
from affectstream.ids import check_id
from affectstream.io import MAX_GAP_SECONDS, RECORDING_SUFFIXES, RecordedEvent, load_recording
from affectstream.io.exported import export_manifest, is_export_table, read_export
from affectstream.runtime.devices import device_of
from affectstream.runtime.multiwindow import reads_own_windows
from affectstream.signal import WindowConfig
from affectstream.signal.mains import detect_line_freq
from affectstream.store import TimeSeriesStore, open_store
from affectstream.types import SampleBlock

#: Event kinds a replay carries over into the replayed session (session start/stop and
#: gaps are the replay's own).
REPLAYED_KINDS = ("marker", "phase", "self_report")


@dataclass(frozen=True)
class ReplayInput:
    """What a replay needs of a stored session (or of an export of one).

    Parameters
    ----------
    blocks : list of SampleBlock
        Its raw streams, with their gaps.
    participant : str
    baseline_end : float or None
        Time of the phase event after a ``baseline`` phase event, if any.
    events : list of RecordedEvent
        Its markers, phases and self-reports.
    settings : dict
        The settings its ``start`` event holds (``window_s``, ``step_s``, ``line_freq``,
        ``model``); empty for a session stored before sessions recorded them.
    kind : str
        ``"session"`` (from the store), ``"export"`` (a CSV/Parquet export) or ``"file"``
        (a recording file or folder).
    """

    blocks: list[SampleBlock]
    participant: str
    baseline_end: float | None
    events: list[RecordedEvent] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    kind: str = "session"


def stored_session(store: TimeSeriesStore, session: str) -> ReplayInput:
    """Read a stored session back for replay.

    Parameters
    ----------
    store : TimeSeriesStore
    session : str

    Returns
    -------
    ReplayInput
    """
    return replay_input(load_session(store, session))


def exported_session(path: Path) -> ReplayInput:
    """Read a CSV/Parquet export folder (or one raw table of it) back for replay.

    Parameters
    ----------
    path : Path
        See :func:`affectstream.io.exported.read_export`.

    Returns
    -------
    ReplayInput
    """
    return replay_input(read_export(path))


def replay_input(data: ExportedSession) -> ReplayInput:
    """Streams, events and settings of a session read from the store or an export.

    Parameters
    ----------
    data : affectstream.export.session.StoredSession

    Returns
    -------
    ReplayInput
    """
    session = data.info.session
    blocks = raw_blocks(data)
    if not blocks:
        raise ConfigError(f"Session {session!r} holds no raw samples to replay.")
    frame = data.events()
    baseline_end = None
    events: list[RecordedEvent] = []
    if len(frame) and "kind" in frame:
        frame = frame.sort_values("time_ns")
        phases = frame[frame["kind"] == "phase"]
        labels = list(phases["label"])
        if "baseline" in labels:
            after = labels.index("baseline") + 1
            if after < len(labels):
                baseline_end = int(phases["time_ns"].iloc[after]) / 1e9
        details = frame["detail"] if "detail" in frame else pd.Series([""] * len(frame))
        for when, kind, label, detail in zip(
            frame["time_ns"].to_numpy(np.int64),
            frame["kind"].astype(str),
            frame["label"].astype(str),
            details.fillna("").astype(str),
            strict=True,
        ):
            if kind in REPLAYED_KINDS:
                events.append(RecordedEvent(int(when) / 1e9, label, kind, detail))
    return ReplayInput(blocks, data.info.participant, baseline_end, events, data.settings())


def load_source(
    source: str | Path,
    *,
    store: str | None = None,
    sfreq: float | None = None,
    t0: float = 0.0,
    units: Mapping[str, str] | None = None,
    modalities: Sequence[str] | None = None,
    skip_unknown: bool = False,
    max_gap: float = MAX_GAP_SECONDS,
) -> ReplayInput:
    """What to replay: a recording file or folder, an export, or a stored session's id.

    Parameters
    ----------
    source : str or Path
        A path that exists (a recording file, an E4 or BIDS folder, a CSV/Parquet export
        folder or one raw table of it), else the id of a session in ``store``.
    store : str, optional
        Store path or URL of stored sessions (the default store when None).
    sfreq, t0, units, skip_unknown
        The project's CSV layout; see :func:`affectstream.io.read_csv`.
    modalities : sequence of str, optional
        Keep only these modalities.
    max_gap : float
        Recording files: longest gap between timestamps (s) filled with NaN rows.

    Returns
    -------
    ReplayInput
    """
    path = Path(source)
    if export_manifest(path) is not None and (path.is_dir() or is_export_table(path)):
        found = replace(exported_session(path), kind="export")
    elif path.exists():
        recording = load_recording(
            path,
            sfreq=sfreq,
            t0=t0,
            units=units,
            modalities=modalities,
            skip_unknown=skip_unknown,
            max_gap=max_gap,
        )
        check_device_ids(recording.blocks, source)
        return ReplayInput(recording.blocks, "", None, recording.events, {}, "file")
    elif path.suffix.lower() in RECORDING_SUFFIXES:
        raise ConfigError(
            f"Recording file {str(source)!r} does not exist (to replay a stored session, "
            "pass its id; `affectstream export` with any id lists them)."
        )
    else:
        with open_store(store, read_only=True) as opened:
            found = stored_session(opened, str(source))
    if modalities is not None:
        kept = [b for b in found.blocks if b.modality in modalities]
        if not kept:
            raise ConfigError(
                f"{str(source)!r} has no stream of modalities {list(modalities)} (it has "
                f"{sorted({b.modality for b in found.blocks})})."
            )
        found = replace(found, blocks=kept)
    check_device_ids(found.blocks, source)
    return found


def check_device_ids(blocks: Sequence[SampleBlock], source: str | Path) -> None:
    """Refuse a recording whose stream ids name a device that is not a valid device id.

    Device names read from files (file names, XDF stream names, export columns) go into
    store tags, queries and export paths like every other id, so they pass the same
    validator (:func:`affectstream.ids.check_id`).

    Parameters
    ----------
    blocks : sequence of SampleBlock
        The recording's streams (ids ``<device>/<kind>``).
    source : str or Path
        Where they were read from (named in the error).

    Raises
    ------
    ConfigError
        One line naming the file and what to rename.
    """
    for block in blocks:
        try:
            check_id(device_of(block.stream), "device")
        except ConfigError as exc:
            raise ConfigError(
                f"{str(source)!r}, stream {block.stream[:60]!r}: {exc} Rename the file (or "
                "the stream) to a valid device name and replay again."
            ) from None


def replay_window(
    blocks: Sequence[SampleBlock],
    settings: Mapping[str, Any],
    *,
    window: float | None = None,
    step: float | None = None,
) -> WindowConfig | None:
    """The feature windows of a replay: given values, else the stored session's own.

    Parameters
    ----------
    blocks : sequence of SampleBlock
        The recording (unused; kept for symmetry with :func:`replay_line_freq`).
    settings : mapping
        A stored session's settings (:attr:`ReplayInput.settings`), or empty.
    window, step : float, optional
        Explicit values (CLI flags).

    Returns
    -------
    WindowConfig or None
        None when nothing is given or stored: the model's own windows then apply (see
        :func:`replay_blocks`).
    """
    window = window if window is not None else settings.get("window_s")
    step = step if step is not None else settings.get("step_s")
    if window is None and step is None:
        return None
    default = WindowConfig()
    return WindowConfig(
        window=float(window) if window is not None else default.window,
        step=float(step) if step is not None else default.step,
    )


def replay_own_windows(settings: Mapping[str, Any], *, window: float | None = None) -> bool:
    """Whether a replay gives each model the windows it was trained on, as the session did.

    Parameters
    ----------
    settings : mapping
        A stored session's settings (its ``own_windows``), or empty.
    window : float, optional
        Explicit window length (``--window``): every model on the session's windows
        (:func:`~affectstream.runtime.multiwindow.reads_own_windows`).

    Returns
    -------
    bool
        The stored value unless a window is given; True for a file, and for sessions
        stored before they said (``record``, ingest and the service's sessions always did).
    """
    if window is not None:
        return reads_own_windows(window)
    return bool(settings.get("own_windows", True))


def replay_line_freq(
    blocks: Sequence[SampleBlock], settings: Mapping[str, Any], line_freq: float | None = None
) -> float | None:
    """The mains frequency of a replay: given, else stored, else detected, else None.

    Parameters
    ----------
    blocks : sequence of SampleBlock
        The recording (ECG/EEG spectra for the detection).
    settings : mapping
        A stored session's settings, or empty.
    line_freq : float, optional
        Explicit value (``--line-freq``).

    Returns
    -------
    float or None
        None: nothing given, stored or detected (the windows' default applies).
    """
    if line_freq is not None:
        return float(line_freq)
    if settings.get("line_freq") is not None:
        return float(settings["line_freq"])
    return detect_line_freq(blocks)


def replay_bundle(settings: Mapping[str, Any], model: str | None = None) -> str | None:
    """The arousal bundle a replay runs: given, else the stored session's.

    Parameters
    ----------
    settings : mapping
        A stored session's settings (:meth:`LiveSession.settings`), or empty.
    model : str, optional
        Explicit bundle (``--model``).

    Returns
    -------
    str or None
        A bundle folder or name, ``"none"`` for features only; None: every shipped bundle
        the recording's devices feed, as a live session chooses them (a stored session
        that ran several did so).
    """
    if model is not None:
        return model
    if len(settings.get("models") or []) > 1:
        return None
    stored = settings.get("model")
    return None if stored is None else str(stored)
