"""``affectstream store``: list, inspect and delete stored sessions."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from affectstream.cli._ids import id_argument
from affectstream.cli._output import add_json_argument, advice, emit_result, say
from affectstream.cli._store_args import add_store_arguments
from affectstream.errors import ConfigError


def register(subparsers: Any) -> None:
    """Add ``store ls|show|rm`` to ``subparsers`` (see :mod:`affectstream.cli`)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "store", help="list, inspect and delete stored sessions"
    )
    add_store_arguments(parser)
    add_json_argument(parser)
    actions = parser.add_subparsers(dest="store_action", metavar="ACTION")
    actions.add_parser("ls", help="list sessions")
    show = actions.add_parser("show", help="series of a session, and optionally its points")
    show.add_argument(
        "session", type=id_argument("session"), help="session id (see `affectstream store ls`)"
    )
    show.add_argument("--measurement", help="also print points of this measurement")
    show.add_argument("--limit", type=int, default=10, help="points to print (default 10)")
    remove = actions.add_parser("rm", help="delete every point of a session")
    remove.add_argument(
        "session", type=id_argument("session"), help="session id (see `affectstream store ls`)"
    )
    remove.add_argument("--yes", action="store_true", help="really delete")
    parser.set_defaults(func=run, store_parser=parser)


def _time(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).isoformat(timespec="milliseconds")


def _replays(store: Any) -> set[str]:
    """Ids of the sessions that are saved replays (they carry the replay event)."""
    # All fields: asking the embedded store for fields of an absent measurement raises.
    events = store.read("events")
    if events.empty or not {"session", "kind", "label"} <= set(events.columns):
        return set()
    from affectstream.store.base import REPLAY_EVENT

    kind, label = REPLAY_EVENT
    hit = (events["kind"] == kind) & (events["label"] == label)
    return {str(s) for s in events.loc[hit, "session"].unique()}


def _store_words(args: argparse.Namespace) -> list[str]:
    """``--store X`` as given, so that printed advice names the same store."""
    return ["--store", args.store] if args.store else []


def run(args: argparse.Namespace) -> int:
    """Run a store action and print its result as one JSON line."""
    if not args.store_action:
        args.store_parser.print_help()
        return 0
    from affectstream.store import open_store

    # ls/show only read; rm writes (and then needs a writable store).
    with open_store(args.store, read_only=args.store_action != "rm") as store:
        sessions = {info.session: info for info in store.sessions()}
        if args.store_action == "ls":
            replays = _replays(store)
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
                    "replay": info.session in replays,
                }
                for info in sessions.values()
            ]
            for row in rows:
                say(
                    f"{row['session']}  {row['participant'] or '-'}  {row['start']}  "
                    f"{row['duration_s']:.0f} s  {row['n_points']} points"
                    + ("  (replay)" if row["replay"] else "")
                )
            if not rows:
                say(f"no sessions in {store!r}")
            emit_result(args, {"store": repr(store), "sessions": rows})
            return 0
        info = sessions.get(args.session)
        if info is None:
            raise ConfigError(
                f"No session {args.session!r} in {store!r}; "
                f"`{advice('store', 'ls', *_store_words(args))}` lists the stored sessions."
            )
        if args.store_action == "rm":
            if not args.yes:
                raise ConfigError(
                    f"Deleting session {args.session!r} ({info.n_points} points) cannot be "
                    "undone; add --yes to delete it."
                )
            store.delete_session(args.session)
            say(f"deleted session {args.session} ({info.n_points} points)")
            emit_result(args, {"deleted": args.session, "n_points": info.n_points})
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
            say(f"{args.measurement}: {len(frame)} points, the first {len(head)}:")
            if len(head):
                say(head.to_string(index=False))
        emit_result(args, payload)
    return 0
