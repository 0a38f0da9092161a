"""``affectstream demo``: the whole path on emulated wearables, no hardware, no server.

Examples::

    affectstream demo
    affectstream demo --duration 30 --store ./demo-store --json
    affectstream demo --serve          # also the service: dashboard URL and key printed
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from typing import Any

from affectstream.cli._ids import id_argument
from affectstream.cli._lsl_out import add_lsl_out_argument
from affectstream.cli._output import add_json_argument, advice, emit_result, say
from affectstream.cli._store_args import add_store_arguments


def register(subparsers: Any) -> None:
    """Add ``demo`` to ``subparsers`` (see :mod:`affectstream.cli`)."""
    parser = subparsers.add_parser(
        "demo",
        help="run a scripted session on emulated wearables (no hardware or server needed)",
        description=(
            "Start an emulated HR strap (with RR), Polar H10 (ECG), EDA band and Muse on the "
            "emulated BLE stack, run a scripted session (baseline, stress, recovery) through "
            "the real ingestion, feature, model and storage code, show it live on stderr, "
            "store it in the embedded store and say where the data is."
        ),
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        help=(
            "seconds (default 150: a 70-s baseline, the wrist model's reference, then stress "
            "and recovery; ends by itself; from 130 s every model estimates)"
        ),
    )
    add_store_arguments(parser)
    parser.add_argument(
        "--window",
        type=float,
        default=None,
        help="feature window in seconds (default: the model's own if at most 30 s, else 20)",
    )
    parser.add_argument(
        "--step",
        type=float,
        default=None,
        help="seconds between estimates (default: the model's own, else 2)",
    )
    parser.add_argument(
        "--participant",
        default="demo",
        type=id_argument("participant", allow_empty=True),
        help="participant id (default demo)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the emulated signals")
    parser.add_argument("--model", metavar="BUNDLE", help="arousal model bundle (folder or name)")
    add_lsl_out_argument(parser, " (affectstream[lsl])")
    parser.add_argument(
        "--serve",
        action="store_true",
        help="run the session in the service on loopback and print the dashboard URL and a key",
    )
    parser.add_argument(
        "--port", type=int, default=0, help="with --serve: port (default: any free one)"
    )
    add_json_argument(parser)
    parser.set_defaults(func=run)


async def _demo(args: argparse.Namespace) -> dict[str, Any]:
    from affectstream.runtime.demo import DemoOptions, run_demo
    from affectstream.runtime.view import LiveView

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_interrupt() -> None:
        say("stopping: flushing everything to the store (Ctrl-C again to abort)")
        stop.set()
        loop.remove_signal_handler(signal.SIGINT)

    with contextlib.suppress(NotImplementedError, RuntimeError):  # not on Windows
        loop.add_signal_handler(signal.SIGINT, on_interrupt)
    options = DemoOptions(
        duration=args.duration,
        store=args.store,
        window=args.window,
        step=args.step,
        participant=args.participant,
        seed=args.seed,
        bundle=args.model,
    )
    publishers: list[Any] = []
    on_session = None
    if args.lsl_out:
        from affectstream.runtime.lsl_out import attach

        def on_session(session: Any) -> None:
            publishers.append(attach(session))

    try:
        with LiveView("affectstream demo") as view:
            return await run_demo(
                options, on_update=view.update, stop=stop, on_status=say, on_session=on_session
            )
    finally:
        for publisher in publishers:
            publisher.close()


def _report(summary: dict[str, Any]) -> None:
    say("")
    say(
        f"session {summary['session']}: {summary['duration_s']:.0f} s, "
        f"{summary['n_estimates']} estimates from {summary['n_feature_rows']} windows "
        f"of {summary['window_s']:g} s every {summary['step_s']:g} s"
    )
    for stream, entry in summary["streams"].items():
        say(
            f"  {stream:28s} {entry['stored']:>8d} samples stored, "
            f"{entry['gap_samples']:>5d} marked as gaps"
            + (", feeds features" if entry.get("features") else "")
        )
    latency = summary["latency_window_end_s"]
    if latency["n"]:
        say(
            f"  latency window end -> stored estimate: p50 {latency['p50']:.2f} s, "
            f"p99 {latency['p99']:.2f} s"
        )
    for warning in summary.get("warnings", []):
        say(f"  note: {warning}")
    for loss in summary["not_stored"]:
        say(f"  error: {loss}")
    store = summary["store"]
    session = summary["session"]
    say(f"data: {store}")
    for what, command in next_steps(str(store), str(session)):
        say(f"  {what + ':':16s} {command}")


def next_steps(store: str, session: str) -> list[tuple[str, str]]:
    """The commands the demo suggests next, each runnable as printed.

    Parameters
    ----------
    store : str
        Where the session is (``--store``).
    session : str
        The session id.

    Returns
    -------
    list of (str, str)
        What each command does, and the command line.
    """
    return [
        ("list sessions", advice("store", "ls", "--store", store)),
        ("inspect", advice("store", "show", session, "--store", store, "--measurement", "affect")),
        (
            "export",
            advice("export", session, "--store", store, "--format", "csv", "--out", "./export"),
        ),
    ]


def run(args: argparse.Namespace) -> int:
    """Run the demo; print the human summary on stderr and the JSON summary last.

    Exit code: 0 when estimates were produced and everything was stored, else 1.
    """
    if args.duration is None:
        from affectstream.runtime.demo import DEMO_DURATION

        args.duration = DEMO_DURATION
    if args.serve:
        from affectstream.cli import _demo_serve as demo_serve

        served = demo_serve.run(args)
        say(
            f"session {served['session']}: {served['status']}, "
            f"{served.get('n_estimates', 0)} estimates"
        )
        emit_result(args, served)
        return 0 if served.get("n_estimates", 0) > 0 else 1
    summary = asyncio.run(_demo(args))
    _report(summary)
    emit_result(args, summary)
    ok = summary["n_estimates"] > 0 and summary["stored"] and not summary["unflushed_samples"]
    return 0 if ok else 1
