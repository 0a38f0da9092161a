"""``affectstream export``: a stored session as CSV, Parquet, EDF/BDF or a BIDS folder."""

from __future__ import annotations

import argparse
from typing import Any

from affectstream.cli._ids import id_argument
from affectstream.cli._output import emit_json, progress_bars, say
from affectstream.cli._store_args import add_store_arguments

FORMATS = ("csv", "parquet", "edf", "bdf", "bids")


def register(subparsers: Any) -> None:
    """Register ``export``.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The top-level sub-command registry.
    """
    parser = subparsers.add_parser(
        "export",
        help="export a stored session (CSV, Parquet, EDF/BDF, BIDS)",
        description=(
            "Write a stored session for analysis: csv/parquet (features, quality, affect, "
            "events, one file per raw stream), edf/bdf (one file per EEG or ECG stream, gaps "
            "annotated BAD_ACQ_SKIP), or bids (a BIDS dataset). See docs/export.md."
        ),
    )
    parser.add_argument(
        "session",
        type=id_argument("session"),
        help="session id (run with an unknown id to list them)",
    )
    parser.add_argument("--format", required=True, choices=FORMATS, dest="fmt")
    parser.add_argument("--out", required=True, help="output folder (BIDS root for bids)")
    add_store_arguments(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--json", action="store_true", help="(accepted; JSON is always printed)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Export the session and print a JSON summary.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed arguments.

    Returns
    -------
    int
        Exit code.
    """
    from affectstream.export import export_session
    from affectstream.store import open_store

    with open_store(args.store, read_only=True) as store:
        if args.no_progress:
            result = export_session(store, args.session, args.fmt, args.out)
        else:
            with progress_bars() as progress:
                result = export_session(store, args.session, args.fmt, args.out, progress=progress)
    say(
        f"exported session {result.session} as {result.format}: "
        f"{len(result.files)} files in {result.out}"
    )
    emit_json(
        {
            "session": result.session,
            "participant": result.participant,
            "format": result.format,
            "out": str(result.out),
            "files": [str(p) for p in result.files],
            "rows": result.rows,
        }
    )
    return 0
