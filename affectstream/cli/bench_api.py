"""``affectstream bench api``: emulated participants through a real ``affectstream serve``.

The benchmark starts the service on a loopback port (its own temporary home and admin key,
storing into InfluxDB when one is given or started, else the embedded store) and runs
:func:`affectstream.api.loadgen.live_load` against it; with InfluxDB also
:func:`affectstream.api.loadgen.store_ceiling`. The logic lives in the api layer.
"""

from __future__ import annotations

import argparse
from typing import Any

from affectstream.cli._output import add_json_argument, emit_result, say
from affectstream.cli._store_args import add_start_server_argument, local_influx

#: The numeric options, all checked positive: flag, default (its type is the option's), help.
_POSITIVE: tuple[tuple[str, float, str], ...] = (
    ("--seconds", 60.0, "paced seconds each"),
    ("--prefill", 60.0, "seconds sent at once first (one window)"),
    ("--max-latency", 10.0, "p99 ingest-to-WebSocket seconds a sustained participant may see"),
    ("--store-seconds", 120.0, "seconds of data per participant in the InfluxDB throughput phase"),
    ("--store-batch-seconds", 10.0, "seconds of data per request in the throughput phase"),
    (
        "--store-rounds",
        5,
        "service/direct pairs in the throughput phase (median and spread are reported)",
    ),
)


def register(subparsers: Any) -> None:
    """Add ``api`` to the ``bench`` ``subparsers`` (see :mod:`affectstream.cli.bench`)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "api",
        help="participants through ingest -> estimates -> WebSocket on a real service",
    )
    parser.add_argument(
        "--participants",
        default="4",
        help="emulated participants; a comma list (4,8,16) ramps up until one is not sustained",
    )
    for flag, default, text in _POSITIVE:
        parser.add_argument(flag, type=type(default), default=default, help=text)
    parser.add_argument("--model", default=None, help="shipped bundle of the ingest sessions")
    parser.add_argument(
        "--store-transport",
        choices=("http", "ws"),
        default="http",
        help="how gateways send in the throughput phase (HTTP POST or the ingest WebSocket)",
    )
    parser.add_argument("--influx-url", default=None, help="InfluxDB the service writes to")
    parser.add_argument("--influx-bucket", default="affectstream", help="its bucket")
    add_start_server_argument(parser)
    add_json_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark and print its JSON result last.

    Exit code: 1 if the first step of the ramp was not sustained or a batch failed, else 0.
    """
    import asyncio

    from affectstream._validate import check_positive
    from affectstream.api.loadgen import live_load
    from affectstream.api.loadgen_store import store_ceiling
    from affectstream.api.serve_process import ServeProcess
    from affectstream.errors import ConfigError

    for flag, *_ in _POSITIVE:
        check_positive(flag, getattr(args, flag[2:].replace("-", "_")))
    try:
        ramp = [int(x) for x in str(args.participants).split(",") if x.strip()]
    except ValueError:
        ramp = []
    if not ramp or min(ramp) < 1 or ramp != sorted(ramp):
        raise ConfigError(
            f"--participants {args.participants!r}: give a positive number or an increasing "
            "comma list (4,8,16)."
        )
    if args.influx_url and args.start_server:
        raise ConfigError("Give --influx-url or --start-server, not both.")
    result: dict[str, Any] = {}
    with local_influx(args.start_server, args.influx_bucket) as local_url:
        influx_url = local_url or args.influx_url
        store = f"{influx_url}?bucket={args.influx_bucket}" if influx_url else None
        result["store"] = "influxdb" if store else "embedded"
        with ServeProcess(store=store) as service:
            result["ramp"] = []
            for n in ramp:
                say(f"bench api: {n} participants, {args.seconds:g} s paced ...")
                live = asyncio.run(
                    live_load(
                        service.url,
                        service.admin_key,
                        participants=n,
                        seconds=float(args.seconds),
                        prefill=float(args.prefill),
                        server_pid=service.pid,
                        max_latency=float(args.max_latency),
                        model=args.model,
                    )
                )
                result["ramp"].append(live)
                held = live["participants_sustained"] == n and not live["errors"]
                if "live" not in result or held:
                    result["live"] = live  # the largest fully sustained step
                if not held:
                    break
            result["participants_sustained_max"] = max(
                (
                    r["participants"]
                    for r in result["ramp"]
                    if r["participants_sustained"] == r["participants"]
                ),
                default=0,
            )
            if influx_url:
                say("bench api: InfluxDB writes, service vs direct ...")
                result["influx"] = asyncio.run(
                    store_ceiling(
                        service.url,
                        service.admin_key,
                        influx_url,
                        args.influx_bucket,
                        participants=ramp[0],
                        seconds=float(args.store_seconds),
                        batch_seconds=float(args.store_batch_seconds),
                        transport=args.store_transport,
                        rounds=int(args.store_rounds),
                    )
                )
            else:
                result["influx_skipped"] = "no InfluxDB: give --influx-url or --start-server"
    live = result["live"]
    say(
        f"sustained {live['participants_sustained']}/{live['participants']}; ingest->WebSocket "
        f"p50 {live['ingest_to_websocket']['p50_ms']} ms, p99 "
        f"{live['ingest_to_websocket']['p99_ms']} ms; CPU/participant "
        f"{live['cpu_per_participant']}"
    )
    if "influx" in result:
        say(f"InfluxDB: {result['influx']['fraction_of_ceiling']:.0%} of the direct ceiling")
    emit_result(args, result)
    ok = result["participants_sustained_max"] >= ramp[0] and not live["errors"]
    return 0 if ok else 1
