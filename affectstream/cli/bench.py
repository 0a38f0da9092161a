"""``affectstream bench``: benchmarks that print one JSON object last."""

from __future__ import annotations

import argparse
import importlib
from typing import Any

from affectstream.cli import bench_modules


def register(subparsers: Any) -> None:
    """Register ``bench`` and every ``bench_*`` module under it.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The top-level sub-command registry.
    """
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "bench", help="benchmarks (features, models, store, live, soak, api); print JSON last"
    )
    bench_sub = parser.add_subparsers(dest="bench", metavar="BENCHMARK")
    for name in bench_modules():
        importlib.import_module(name).register(bench_sub)

    def show_help(_args: argparse.Namespace) -> int:
        parser.print_help()
        return 0

    parser.set_defaults(func=show_help)
