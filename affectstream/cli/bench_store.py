"""``affectstream bench store``: write throughput of the stores, every point counted back.

The same points (256 Hz, 4-channel EEG in 10-s batches) go, in one run, into the embedded
store and into InfluxDB through influxdb-client ``Point`` objects and through the
vectorised line-protocol fast path. InfluxDB writes pass through the durable spool; a
method's time runs from its first write to the server acknowledging the last point
(``flush``), and each method's points are counted back from the store.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from affectstream.cli._output import add_json_argument, emit_result, say
from affectstream.cli._store_args import (
    add_start_server_argument,
    add_store_arguments,
    local_influx,
)

CHANNELS = ("tp9", "af7", "af8", "tp10")
SFREQ = 256.0
BATCH_POINTS = 2560  # 10 s of 256 Hz


def register(subparsers: Any) -> None:
    """Add ``store`` to the ``bench`` ``subparsers`` (see :mod:`affectstream.cli.bench`)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "store", help="points/s into the embedded store and InfluxDB (Point objects, fast path)"
    )
    parser.add_argument("--points", type=int, default=1_000_000, help="points per method")
    add_store_arguments(
        parser,
        help_text=(
            "an InfluxDB URL to benchmark (default $AFFECTSTREAM_INFLUX_URL), or a new folder "
            "for the embedded store's run (default: a temporary folder)"
        ),
    )
    add_start_server_argument(parser)
    parser.add_argument("--no-embedded", action="store_true", help="skip the embedded store")
    add_json_argument(parser)
    parser.set_defaults(func=run)


def _batches(n_points: int, session: str) -> Iterator[Any]:
    import numpy as np

    from affectstream.store.base import SeriesBatch

    rng = np.random.default_rng(0)
    period_ns = 1e9 / SFREQ
    t0_ns = 1_700_000_000_000_000_000
    tags = {"participant": "bench", "session": session, "device": "muse", "stream": "muse/eeg"}
    for start in range(0, n_points, BATCH_POINTS):
        k = np.arange(start, min(start + BATCH_POINTS, n_points), dtype=np.int64)
        time_ns = t0_ns + np.rint(k * period_ns).astype(np.int64)
        fields = {c: rng.normal(0.0, 40.0, size=len(k)) for c in CHANNELS}
        yield SeriesBatch("raw_eeg", tags, time_ns, fields)


def _points(batch: Any) -> list[Any]:
    from influxdb_client.client.write import point as point_module

    point_class: Any = point_module.Point  # an untyped library class
    columns = [batch.fields[c].tolist() for c in CHANNELS]
    points = []
    for i, t in enumerate(batch.time_ns.tolist()):
        point = point_class("raw_eeg")
        for key, value in batch.tags.items():
            point.tag(key, value)
        for name, column in zip(CHANNELS, columns, strict=True):
            point.field(name, column[i])
        points.append(point.time(t))
    return points


def _bench_embedded(n_points: int, directory: Path) -> dict[str, Any]:
    from affectstream.store.embedded import EmbeddedStore

    session = "bench-embedded"
    batches = list(_batches(n_points, session))
    with EmbeddedStore(directory) as store:
        started = time.perf_counter()
        for batch in batches:
            store.write([batch])
        store.flush()
        seconds = time.perf_counter() - started
        counted = len(store.read("raw_eeg", tags={"session": session}, fields=["tp9"]))
    return _result(n_points, seconds, counted)


def _bench_influx(
    method: str, n_points: int, options: dict[str, Any], directory: Path
) -> dict[str, Any]:
    from affectstream.store.influx import InfluxStore

    session = f"bench-{method}-{time.time_ns()}"
    batches = list(_batches(n_points, session))
    with InfluxStore(spool_dir=directory / f"spool-{method}", **options) as store:
        started = time.perf_counter()
        for batch in batches:
            if method == "points":
                store.write_points(_points(batch))
            else:
                store.write([batch])
        accepted = time.perf_counter() - started
        # Waits while acknowledged, however long the backlog; fails after 60 s of nothing.
        store.flush(timeout=60.0, limit=math.inf)
        seconds = time.perf_counter() - started
        counted = store.count("raw_eeg", "tp9", tags={"session": session})
    result = _result(n_points, seconds, counted)
    result["spooled_points_per_s"] = n_points / accepted
    return result


def _result(n_points: int, seconds: float, counted: int) -> dict[str, Any]:
    return {
        "points": n_points,
        "seconds": seconds,
        "points_per_s": n_points / seconds,
        "counted_back": counted,
        "all_accounted_for": counted == n_points,
    }


def run(args: argparse.Namespace) -> int:
    """Run the benchmark and print its JSON result last.

    Exit code: 1 if a point was not counted back, else 0.
    """
    import importlib.util
    import os

    from affectstream._validate import check_positive
    from affectstream.errors import ConfigError
    from affectstream.store import _INFLUX_SCHEMES, _SCHEME

    check_positive("--points", args.points)
    scheme = _SCHEME.match(args.store.strip()) if args.store else None
    if scheme is not None and scheme.group(1).lower() not in _INFLUX_SCHEMES:
        raise ConfigError(f"--store {args.store!r}: give an InfluxDB URL or a folder.")
    store_url = args.store if scheme is not None else None
    embedded_dir = Path(args.store) if args.store and store_url is None else None
    if store_url and args.start_server:
        raise ConfigError("Give --store URL or --start-server, not both.")
    if embedded_dir is not None and embedded_dir.exists() and any(embedded_dir.iterdir()):
        raise ConfigError(
            f"--store {embedded_dir} is not empty; the benchmark writes a new embedded store, "
            "give a new folder (or none for a temporary one)."
        )
    n_points = int(args.points)
    results: dict[str, Any] = {"points_per_method": n_points, "fields_per_point": len(CHANNELS)}
    with tempfile.TemporaryDirectory(prefix="affectstream-bench-store-") as tmp:
        directory = Path(tmp)
        if not args.no_embedded and importlib.util.find_spec("affectstream.store.embedded"):
            say(f"embedded store: {n_points} points ...")
            results["embedded"] = _bench_embedded(n_points, embedded_dir or directory / "embedded")
        with local_influx(args.start_server, args.influx_bucket or "affectstream") as local_url:
            if local_url:
                url: str | None = local_url
                results["influx_server"] = "local influxd 1.x started for this run (v2 shim)"
            else:
                url = store_url or os.environ.get("AFFECTSTREAM_INFLUX_URL")
                results["influx_server"] = url
            if url:
                # Token, org and bucket: the --influx-* flags set the variables InfluxStore reads.
                options = {"url": url}
                for method in ("points", "fast_path"):
                    say(f"InfluxDB via {method}: {n_points} points ...")
                    results[f"influx_{method}"] = _bench_influx(
                        method, n_points, options, directory
                    )
            else:
                results["influx_skipped"] = (
                    "no InfluxDB: give --store URL (or set AFFECTSTREAM_INFLUX_URL) or "
                    "--start-server"
                )
                say(f"InfluxDB skipped: {results['influx_skipped']}")
    for name, value in results.items():
        if isinstance(value, dict):
            say(
                f"{name}: {value['points_per_s']:,.0f} points/s, "
                f"{value['counted_back']}/{value['points']} counted back"
            )
    emit_result(args, results)
    complete = all(v["all_accounted_for"] for v in results.values() if isinstance(v, dict))
    return 0 if complete else 1
