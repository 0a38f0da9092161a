"""``affectstream bench live``: end-to-end latency and participants sustained per process."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from affectstream.cli._emulated_run import add_emulated_run_arguments, emulated_bundle, run_store
from affectstream.cli._output import add_json_argument, emit_result, say


def register(subparsers: Any) -> None:
    """Add ``bench live`` to ``subparsers`` (see :mod:`affectstream.cli`)."""
    parser = subparsers.add_parser(
        "live",
        help="latency from window end to stored estimate; participants one process sustains",
        description=(
            "Run emulated participants (HR strap, Polar H10, EDA band, Muse each) through the "
            "live runtime into an embedded store, doubling them until a step drops anything "
            "or falls behind; report p50/p99 latency from the last sample of a window to its "
            "stored estimate."
        ),
    )
    parser.add_argument(
        "--step-seconds", type=float, default=30.0, help="seconds per step (default 30)"
    )
    parser.add_argument("--max-participants", type=int, default=64, help="largest step")
    parser.add_argument("--max-seconds", type=float, default=240.0, help="time budget")
    add_emulated_run_arguments(parser)
    add_json_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the ramp and print the result."""
    from affectstream.runtime.bench import bench_live

    bundle = emulated_bundle(args.model)

    def on_step(step: dict[str, Any]) -> None:
        latency = step["latency_window_end_s"]
        say(
            f"{step['participants']:3d} participants: "
            f"{'sustained' if step['sustained'] else 'NOT sustained: ' + '; '.join(step['why'])}"
            f" (latency p50 {latency['p50'] or float('nan'):.2f} s, "
            f"cpu {step['cpu_per_participant_s_per_s']:.3f} s/s per participant)"
        )

    with run_store(args.store, "affectstream-bench-live-") as store:
        result = asyncio.run(
            bench_live(
                store,
                bundle,
                step_seconds=args.step_seconds,
                max_participants=args.max_participants,
                max_seconds=args.max_seconds,
                on_step=on_step,
            )
        )
    result["model"] = bundle.model_id if bundle is not None else None
    say(f"max sustained participants: {result['max_sustained_participants']}")
    emit_result(args, result)
    return 0
