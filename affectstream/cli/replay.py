"""``affectstream replay``: a stored session or a recording file through the live pipeline.

The recording is cut into one-second chunks and fed to the live session runtime
(:class:`affectstream.runtime.LiveSession`: streaming features, the same model bundles and
participant reference, the store) as a device layer would, paced ``--speed`` times faster
than real time or as fast as the machine goes, so the numbers are those a live session
gives.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from affectstream.cli._ids import id_argument
from affectstream.cli._line_freq import add_line_freq_argument
from affectstream.cli._lsl_out import add_lsl_out_argument
from affectstream.cli._output import add_json_argument, emit_result, say
from affectstream.cli._store_args import STORE_HELP, add_store_arguments
from affectstream.errors import ConfigError

if TYPE_CHECKING:  # the heavy layers load only when the command runs, so --help stays fast
    from affectstream.types import SampleBlock

logger = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    """Add ``replay`` to ``subparsers`` (see :mod:`affectstream.cli`)."""
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
    parser.add_argument(
        "--model",
        default=None,
        help="arousal bundle (folder or shipped name; 'none': features only)",
    )
    parser.add_argument(
        "--allow-version-mismatch", action="store_true", help="score with an older bundle"
    )
    parser.add_argument(
        "--window",
        type=float,
        default=None,
        help="window length, s (default: a stored session's own, else the model's, else 60)",
    )
    parser.add_argument(
        "--step", type=float, default=None, help="window step, s (default as --window, else 5)"
    )
    add_line_freq_argument(parser, ", Hz (default: a stored session's own, else detected)")
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
    parser.add_argument(
        "--max-gap", type=float, default=3600.0, metavar="SECONDS",
        help="longest gap between a file's timestamps filled with NaN rows (default 3600)",
    )  # fmt: skip
    parser.add_argument("--out", default=None, help="write the feature/estimate rows (CSV)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_lsl_out_argument(parser, " (affectstream[lsl])")
    add_json_argument(parser)
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
    """Replay and print a JSON summary."""
    from affectstream.cli._output import progress_bars
    from affectstream.runtime.replay import (
        ReplayStore,
        load_source,
        replay_blocks,
        replay_bundle,
        replay_line_freq,
        replay_own_windows,
        replay_window,
        session_rows,
    )

    modalities = None
    if args.modalities:
        modalities = [m.strip().lower() for m in args.modalities.split(",") if m.strip()]
    source = load_source(
        args.source,
        store=args.store,
        sfreq=args.sfreq,
        t0=args.t0,
        units=parse_units(args.unit),
        modalities=modalities,
        skip_unknown=args.skip_unknown_columns,
        max_gap=args.max_gap,
    )
    blocks, events, settings, kind = source.blocks, source.events, source.settings, source.kind
    baseline_end = source.baseline_end
    participant = args.participant if args.participant is not None else source.participant
    window = replay_window(blocks, settings, window=args.window, step=args.step)
    own_windows = replay_own_windows(settings, window=args.window) if window is not None else None
    line_freq = replay_line_freq(blocks, settings, args.line_freq)
    with ReplayStore(args.store, save=args.save) as store:
        options: dict[str, Any] = {
            "speed": args.speed,
            "participant": participant or "",
            "session_id": args.session_id,
            "bundle": replay_bundle(settings, args.model),
            "allow_version_mismatch": args.allow_version_mismatch,
            "window": window,
            "own_windows": own_windows,
            "baseline_end": baseline_end,
            "events": events,
            "line_freq": line_freq,
        }
        publishers: list[Any] = []
        if args.lsl_out:
            from affectstream.runtime.lsl_out import attach

            options["on_session"] = lambda session: publishers.append(attach(session))
        if args.no_progress:
            summary = replay_blocks(blocks, store, **options)
        else:
            with progress_bars() as progress:
                summary = replay_blocks(blocks, store, progress=progress, **options)
        for publisher in publishers:
            publisher.close()
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
    if summary["reference"]:
        say(summary["reference"])
    for loss in summary["not_stored"]:
        say(f"error: {loss}")
    for where, message in summary["feature_errors"].items():
        say(f"error: features of {where} failed, its windows are missing: {message}")
    emit_result(
        args,
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
            "n_events": len(events),
            "window_s": summary["window_s"],
            "step_s": summary["step_s"],
            "line_freq": summary["line_freq"],
            "model": summary["model"],
            "reference_s": summary["reference_s"],
            "reference": summary["reference"],
            "feature_streams": summary["feature_streams"],
            "feature_errors": summary["feature_errors"],
            "warnings": summary["warnings"],
            "out": args.out,
        },
    )
    # Windows a feature error skipped are missing from the result: not a success.
    return 0 if summary["stored"] and not summary["feature_errors"] else 1
