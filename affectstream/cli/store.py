"""``affectstream store``: list, inspect and delete stored sessions."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from affectstream.cli._ids import id_argument
from affectstream.cli._output import emit_json, say
from affectstream.cli._store_args import add_store_arguments
from affectstream.errors import ConfigError


def register(subparsers: Any) -> None:
    """Register ``store ls|show|rm``.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The top-level sub-command registry.
    """
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "store", help="list, inspect and delete stored sessions"
    )
    add_store_arguments(parser)
    actions = parser.add_subparsers(dest="store_action", metavar="ACTION")
    actions.add_parser("ls", help="list sessions")
    show = actions.add_parser("show", help="series of a session, and optionally its points")
    show.add_argument("session", type=id_argument("session"))
    show.add_argument("--measurement", help="also print points of this measurement")
    show.add_argument("--limit", type=int, default=10, help="points to print (default 10)")
    remove = actions.add_parser("rm", help="delete every point of a session")
    remove.add_argument("session", type=id_argument("session"))
    remove.add_argument("--yes", action="store_true", help="really delete")
    parser.set_defaults(func=run, store_parser=parser)


def _time(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).isoformat(timespec="milliseconds")


def run(args: argparse.Namespace) -> int:
    """Run a store action and print its result as one JSON line.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed arguments.

    Returns
    -------
    int
        Exit code.
    """
    if not args.store_action:
        args.store_parser.print_help()
        return 0
    from affectstream.store import open_store

    # ls/show only read; rm writes (and then needs a writable store).
    with open_store(args.store, read_only=args.store_action != "rm") as store:
        sessions = {info.session: info for info in store.sessions()}
        if args.store_action == "ls":
            rows = [
                {
                    "session": info.session,
                    "participant": info.participant,
                    "start": _time(info.start_ns),
                    "stop": _time(info.stop_ns),
                    "start_ns": info.start_ns,
                    "stop_ns": info.stop_ns,
                    "duration_s": (info.stop_ns - info.start_ns) / 1e9,
                    "n_points": info.n_points,
                }
                for info in sessions.values()
            ]
            for row in rows:
                say(
                    f"{row['session']}  {row['participant'] or '-'}  {row['start']}  "
                    f"{row['duration_s']:.0f} s  {row['n_points']} points"
                )
            emit_json({"store": repr(store), "sessions": rows})
            return 0
        info = sessions.get(args.session)
        if info is None:
            raise ConfigError(
                f"No session {args.session!r} in {store!r}; `affectstream store ls` lists "
                "the stored sessions."
            )
        if args.store_action == "rm":
            if not args.yes:
                raise ConfigError(
                    f"Deleting session {args.session!r} ({info.n_points} points) cannot be "
                    "undone; add --yes to delete it."
                )
            store.delete_session(args.session)
            say(f"deleted session {args.session} ({info.n_points} points)")
            emit_json({"deleted": args.session, "n_points": info.n_points})
            return 0
        series = store.series(args.session)
        payload: dict[str, Any] = {
            "session": info.session,
            "participant": info.participant,
            "start_ns": info.start_ns,
            "stop_ns": info.stop_ns,
            "n_points": info.n_points,
            "series": [{"measurement": m, "tags": tags} for m, tags in series],
        }
        for measurement, tags in series:
            say(f"{measurement}  " + "  ".join(f"{k}={v}" for k, v in tags.items()))
        if args.measurement:
            if args.limit < 0:
                raise ConfigError(f"--limit must be >= 0, got {args.limit}.")
            frame = store.read(args.measurement, tags={"session": args.session})
            head = frame.head(args.limit).astype(object)
            payload["measurement"] = args.measurement
            payload["n_rows"] = len(frame)
            payload["points"] = head.where(head.notna(), None).to_dict(orient="records")
        emit_json(payload)
    return 0
