"""``affectstream replay``: a stored session or a recording file through the live pipeline.

The recording is cut into one-second chunks and fed to the live session runtime
(:class:`affectstream.runtime.LiveSession`: streaming features, the same model bundles and
participant reference, the store) as a device layer would, paced ``--speed`` times faster
than real time or as fast as the machine goes, so the numbers are those a live session
gives.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import math
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from affectstream.cli._ids import id_argument
from affectstream.cli._output import emit_json, say
from affectstream.cli._store_args import STORE_HELP, add_store_arguments
from affectstream.errors import ConfigError

if TYPE_CHECKING:  # the heavy layers load only when the command runs, so --help stays fast
    from affectstream.signal import WindowConfig
    from affectstream.store import TimeSeriesStore
    from affectstream.types import SampleBlock

logger = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    """Register ``replay``.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The top-level sub-command registry.
    """
    parser = subparsers.add_parser(
        "replay",
        help="replay a stored session or a CSV/EDF/XDF recording through the live pipeline",
        description=(
            "Feed a recording (CSV, EDF/BDF, XDF) or a stored session through the live "
            "features + models pipeline faster than real time. Results go to a temporary "
            "store unless --save is given. See docs/export.md."
        ),
    )
    parser.add_argument("source", help="recording file, or the id of a stored session")
    pace = parser.add_mutually_exclusive_group()
    pace.add_argument("--speed", type=float, default=None, help="times faster than real time")
    pace.add_argument("--as-fast-as-possible", action="store_true", help="no pacing (the default)")
    add_store_arguments(
        parser, help_text=f"where stored sessions are and --save writes; {STORE_HELP}"
    )
    parser.add_argument("--save", action="store_true", help="keep the replayed session in --store")
    parser.add_argument(
        "--session-id",
        default=None,
        type=id_argument("session"),
        help="id of the saved replay session",
    )
    parser.add_argument(
        "--participant",
        default=None,
        type=id_argument("participant", allow_empty=True),
        help="participant id of the replay",
    )
    parser.add_argument("--model", default=None, help="arousal bundle (folder or shipped name)")
    parser.add_argument(
        "--allow-version-mismatch", action="store_true", help="score with an older bundle"
    )
    parser.add_argument("--window", type=float, default=60.0, help="window length, s")
    parser.add_argument("--step", type=float, default=5.0, help="window step, s")
    parser.add_argument("--sfreq", type=float, default=None, help="CSV without time: rate, Hz")
    parser.add_argument("--t0", type=float, default=0.0, help="CSV: start, s since the epoch")
    parser.add_argument(
        "--unit", action="append", default=[], metavar="MODALITY=UNIT",
        help="CSV unit of a modality, e.g. ecg=mV (repeatable)",
    )  # fmt: skip
    parser.add_argument("--modalities", default=None, help="keep only these, e.g. ecg,eda")
    parser.add_argument(
        "--skip-unknown-columns", action="store_true", help="CSV: skip unknown columns"
    )
    parser.add_argument("--out", default=None, help="write the feature/estimate rows (CSV)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="(accepted; JSON is always printed)")
    parser.set_defaults(func=run)


def parse_units(pairs: Sequence[str]) -> dict[str, str]:
    """``["ecg=mV"]`` -> ``{"ecg": "mV"}``.

    Parameters
    ----------
    pairs : sequence of str

    Returns
    -------
    dict of str to str
    """
    units = {}
    for pair in pairs:
        modality, sep, unit = pair.partition("=")
        if not sep or not modality.strip():
            raise ConfigError(f"--unit takes MODALITY=UNIT (e.g. ecg=mV), got {pair!r}.")
        units[modality.strip().lower()] = unit.strip()
    return units


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
    from affectstream.export import load_session, raw_blocks

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
    from affectstream.io.replay import ReplaySource
    from affectstream.models.bundle import load_bundle
    from affectstream.runtime import LiveEstimator, LiveSession, SessionConfig
    from affectstream.runtime.estimator import resolve_arousal_bundle
    from affectstream.signal.extractor import FAMILY

    present = [b for b in blocks if len(b)]
    if not present:
        raise ConfigError("Nothing to replay: the recording has no samples.")
    origin = min(float(b.t[0]) for b in present)
    # The saved session spans the recording (its last sample plus one period), not the
    # wall clock of the replay.
    end = max(float(b.t[-1]) + (1.0 / b.sfreq if b.sfreq else 0.0) for b in present)
    # Live sessions start their window grid at the first sample; so does the replay.
    from affectstream.signal import WindowConfig

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
    from affectstream.store import TAG_KEYS

    merged: pd.DataFrame | None = None
    for measurement in ("features", "quality", "affect"):
        frame = store.read(measurement, tags={"session": session})
        frame = frame.drop(columns=[c for c in TAG_KEYS if c in frame.columns])
        merged = frame if merged is None else merged.merge(frame, on="time_ns", how="outer")
    assert merged is not None
    merged.insert(1, "t_end", merged["time_ns"].to_numpy(np.int64) / 1e9)
    return merged.sort_values("time_ns").reset_index(drop=True)


def _streams(blocks: Sequence[SampleBlock]) -> dict[str, Mapping[str, Any]]:
    return {
        b.stream: {
            "modality": b.modality,
            "channels": list(b.channels),
            "samples": len(b),
            "sfreq": b.sfreq,
            "gaps": len(b.gaps),
        }
        for b in blocks
    }


def run(args: argparse.Namespace) -> int:
    """Replay and print a JSON summary.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed arguments.

    Returns
    -------
    int
        Exit code.
    """
    from affectstream.cli._output import progress_bars
    from affectstream.io import RECORDING_SUFFIXES, read_recording
    from affectstream.store import open_store

    modalities = None
    if args.modalities:
        modalities = [m.strip().lower() for m in args.modalities.split(",") if m.strip()]
    source_path = Path(args.source)
    baseline_end = None
    participant = args.participant
    if source_path.is_file():
        blocks = read_recording(
            source_path,
            sfreq=args.sfreq,
            t0=args.t0,
            units=parse_units(args.unit),
            modalities=modalities,
            skip_unknown=args.skip_unknown_columns,
        )
        kind = "file"
    elif source_path.suffix.lower() in RECORDING_SUFFIXES:
        raise ConfigError(
            f"Recording file {args.source!r} does not exist (to replay a stored session, "
            "pass its id; `affectstream export` with any id lists them)."
        )
    else:
        with open_store(args.store, read_only=True) as store:
            blocks, stored_participant, baseline_end = stored_blocks(store, args.source)
        if modalities is not None:
            blocks = [b for b in blocks if b.modality in modalities]
        participant = participant if participant is not None else stored_participant
        kind = "session"
    from affectstream.signal import WindowConfig

    window = WindowConfig(window=args.window, step=args.step)
    with _ReplayStore(args.store, save=args.save) as store:
        options: dict[str, Any] = {
            "speed": args.speed,
            "participant": participant or "",
            "session_id": args.session_id,
            "bundle": args.model,
            "allow_version_mismatch": args.allow_version_mismatch,
            "window": window,
            "baseline_end": baseline_end,
        }
        if args.no_progress:
            summary = replay_blocks(blocks, store, **options)
        else:
            with progress_bars() as progress:
                summary = replay_blocks(blocks, store, progress=progress, **options)
        # Read back only to write --out: a store that took nothing cannot answer either.
        rows = session_rows(store, summary["session"]) if args.out else None
    if rows is not None:
        rows.to_csv(args.out, index=False)
    say(
        f"replayed {summary['data_seconds']:.0f} s of {kind} {args.source} in "
        f"{summary['replay_seconds']:.1f} s ({summary['speed_factor']:.0f}x real time): "
        f"{summary['n_feature_rows']} windows, {summary['n_estimates']} estimates"
        + (f"; saved as session {summary['session']}" if args.save and summary["stored"] else "")
    )
    for loss in summary["not_stored"]:
        say(f"error: {loss}")
    emit_json(
        {
            "source": str(args.source),
            "source_kind": kind,
            "saved": bool(args.save) and summary["stored"],
            "not_stored": summary["not_stored"],
            "session": summary["session"] if args.save else None,
            "streams": _streams(blocks),
            "data_seconds": summary["data_seconds"],
            "replay_seconds": summary["replay_seconds"],
            "speed_factor": summary["speed_factor"],
            "n_feature_rows": summary["n_feature_rows"],
            "n_estimates": summary["n_estimates"],
            "model": summary["model"],
            "feature_streams": summary["feature_streams"],
            "feature_errors": summary["feature_errors"],
            "out": args.out,
        }
    )
    return 0 if summary["stored"] else 1


class _ReplayStore:
    """The store at ``url`` when saving, else a temporary embedded store removed on exit."""

    def __init__(self, url: str | None, *, save: bool) -> None:
        self.url = url
        self.save = save
        self._folder: tempfile.TemporaryDirectory[str] | None = None
        self._store: TimeSeriesStore | None = None

    def __enter__(self) -> TimeSeriesStore:
        from affectstream.store import EmbeddedStore, open_store

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
