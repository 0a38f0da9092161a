"""``affectstream bench features``: signal-layer speed and agreement, JSON last."""

from __future__ import annotations

import argparse
from typing import Any

from affectstream.cli._output import add_json_argument, emit_result, say


def register(subparsers: Any) -> None:
    """Add ``features`` to the ``bench`` ``subparsers`` (see :mod:`affectstream.cli.bench`)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "features",
        help="feature extraction: ours (batch, streaming) vs naive per-window NeuroKit2/MNE",
    )
    parser.add_argument("--minutes", type=float, default=60.0, help="recording length")
    parser.add_argument(
        "--naive-windows",
        type=int,
        default=24,
        help="windows the naive approach is timed on, extrapolated to all (0 = all, ~200 s/h)",
    )
    parser.add_argument(
        "--agreement-windows", type=int, default=100, help="windows checked against NeuroKit2/MNE"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic recording")
    add_json_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark and print its JSON result last."""
    from affectstream._validate import check_positive
    from affectstream.signal.benchmark import run_benchmark

    check_positive("--minutes", args.minutes)
    say(f"benchmarking feature extraction on {args.minutes:g} min of synthetic signals ...")
    result = run_benchmark(
        minutes=args.minutes,
        naive_windows=args.naive_windows,
        agreement_windows=max(1, args.agreement_windows),
        seed=args.seed,
    )
    say(
        f"batch {result['batch_seconds']:.2f} s, naive {result['naive_seconds']:.1f} s "
        f"(speedup {result['speedup']:.0f}x), streaming {result['stream_ms_per_step']:.2f} ms "
        f"per {result['step_seconds']:g}-s step"
    )
    emit_result(args, result)
    return 0
