"""``affectstream export``: a stored session as CSV, Parquet, EDF/BDF or a BIDS folder."""

from __future__ import annotations

import argparse
from typing import Any

from affectstream.cli._ids import id_argument
from affectstream.cli._output import add_json_argument, emit_result, progress_bars, say
from affectstream.cli._store_args import add_store_arguments

FORMATS = ("csv", "parquet", "edf", "bdf", "bids")


def register(subparsers: Any) -> None:
    """Add ``export`` to ``subparsers`` (see :mod:`affectstream.cli`)."""
    parser = subparsers.add_parser(
        "export",
        help="export stored sessions (CSV, Parquet, EDF/BDF, BIDS)",
        description=(
            "Write stored sessions for analysis: csv/parquet (features, quality, affect, "
            "events, one file per raw stream, units in sidecars), edf/bdf (one file per regular "
            "stream, gaps annotated BAD_ACQ_SKIP), or bids (a BIDS dataset). Each session goes "
            "to its own folder OUT/<session>/ (bids: OUT is the dataset root); existing files "
            "are never replaced without --force. See docs/export.md."
        ),
    )
    parser.add_argument(
        "session",
        nargs="?",
        default=None,
        type=id_argument("session"),
        help="session id (an unknown id lists the stored ones)",
    )
    parser.add_argument(
        "--participant",
        metavar="ID",
        type=id_argument("participant"),
        help="export every session of ID",
    )
    parser.add_argument("--all", action="store_true", dest="every", help="export every session")
    parser.add_argument(
        "--format", required=True, choices=FORMATS, dest="fmt", help="what to write (see above)"
    )
    parser.add_argument(
        "--out", required=True, help="output folder: OUT/<session>/ per session (bids: root)"
    )
    parser.add_argument(
        "--force", action="store_true", help="replace files of an earlier export of a session"
    )
    add_store_arguments(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_json_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Export the sessions chosen; say where each went (JSON with ``--json``)."""
    from affectstream.export import export_sessions, select_sessions
    from affectstream.store import open_store

    with open_store(args.store, read_only=True) as store:
        sessions = select_sessions(
            store, args.session, participant=args.participant, every=args.every
        )
        if args.no_progress:
            results = export_sessions(store, sessions, args.fmt, args.out, force=args.force)
        else:
            with progress_bars() as progress:
                results = export_sessions(
                    store, sessions, args.fmt, args.out, force=args.force, progress=progress
                )
    exports = []
    for result in results:
        say(
            f"exported session {result.session} as {result.format}: "
            f"{len(result.files)} files in {result.out}"
        )
        for stream, why in result.left_out.items():
            say(f"  not in {result.format}: {stream} ({why})")
        exports.append(
            {
                "session": result.session,
                "participant": result.participant,
                "format": result.format,
                "out": str(result.out),
                "files": [str(p) for p in result.files],
                "rows": result.rows,
                "left_out": result.left_out,
            }
        )
    # One session: its entry's fields at the top level too, as scripts read them.
    payload = {**(exports[0] if len(exports) == 1 else {}), "exports": exports}
    emit_result(args, payload)
    return 0
