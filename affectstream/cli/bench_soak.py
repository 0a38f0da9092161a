"""``affectstream bench soak``: RSS growth of a long live session (bounded memory)."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from affectstream.cli._emulated_run import add_emulated_run_arguments, emulated_bundle, run_store
from affectstream.cli._output import add_json_argument, emit_result, say
from affectstream.runtime.memory import RELEASE_INTERVAL_S


def register(subparsers: Any) -> None:
    """Add ``bench soak`` to ``subparsers`` (see :mod:`affectstream.cli`)."""
    parser = subparsers.add_parser(
        "soak",
        help="memory growth (RSS slope, MB/h) of a long emulated live session",
        description=(
            "Stream one emulated participant (HR strap, Polar H10, EDA band, Muse) through "
            "the live runtime into an embedded store for --minutes of session time and "
            "report the resident memory's slope per hour after warm-up (real time: the "
            "runtime stamps samples with the host clock)."
        ),
    )
    parser.add_argument("--minutes", type=float, required=True, help="session minutes")
    parser.add_argument("--kinds", default="hr,polar,eda,muse", help="emulated devices")
    parser.add_argument("--sample-seconds", type=float, default=5.0, help="RSS sample period")
    parser.add_argument(
        "--stall-every",
        type=float,
        metavar="S",
        help="provoke a burst every S seconds: the devices fall behind, then catch up at once",
    )
    parser.add_argument("--stall-seconds", type=float, default=20.0, help="length of a stall")
    parser.add_argument(
        "--stall-mode",
        choices=["loop", "device"],
        default="loop",
        help="loop: block the event loop (a starved host); device: devices hold notifications",
    )
    parser.add_argument(
        "--tracemalloc",
        type=int,
        default=0,
        metavar="FRAMES",
        help="trace Python allocations (FRAMES per traceback) and report the top growth",
    )
    parser.add_argument(
        "--release-every",
        type=float,
        default=RELEASE_INTERVAL_S,
        metavar="S",
        help="give allocator retention back every S s (malloc_trim, pyarrow's pool; "
        "0: never, to compare)",
    )
    add_emulated_run_arguments(parser)
    add_json_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the soak and print the result.

    Exit code: 0, or 1 when the session did not store everything.
    """
    from affectstream._validate import check_positive
    from affectstream.runtime.soak import soak

    check_positive("--minutes", args.minutes)
    check_positive("--sample-seconds", args.sample_seconds)
    check_positive("--stall-seconds", args.stall_seconds)
    check_positive("--tracemalloc", args.tracemalloc, allow_zero=True)
    check_positive("--release-every", args.release_every, allow_zero=True)
    if args.stall_every is not None:
        check_positive("--stall-every", args.stall_every)
    bundle = emulated_bundle(args.model)
    with run_store(args.store, "affectstream-soak-") as store:
        result = asyncio.run(
            soak(
                args.minutes,
                store,
                bundle,
                kinds=args.kinds,
                sample_seconds=args.sample_seconds,
                stall_every=args.stall_every,
                stall_seconds=args.stall_seconds,
                stall_mode=args.stall_mode,
                trace_frames=args.tracemalloc,
                release_every=args.release_every or None,
            )
        )
    slope = result["rss_slope_mb_per_h"]
    say(
        f"soak: {args.minutes:g} min session ({result['wall_s']:.0f} s); RSS "
        f"{result['rss_mb']['start']} -> {result['rss_mb']['end']} MB, slope after warm-up "
        f"{'n/a (too short)' if slope is None else f'{slope:+.2f} MB/h'}"
    )
    for loss in result["not_stored"]:
        say(f"error: {loss}")
    emit_result(args, result)
    return 0 if result["stored"] else 1
