"""``affectstream info``: versions of affectstream and the libraries it rests on."""

from __future__ import annotations

import argparse
import importlib.metadata
import platform
from typing import Any

from affectstream._version import __version__
from affectstream.cli._output import add_json_argument, emit_result, say

_LIBRARIES = (
    "bleak",
    "bumble",
    "neurokit2",
    "mne",
    "numpy",
    "scipy",
    "scikit-learn",
    "lightgbm",
    "influxdb-client",
    "fastapi",
)


def register(subparsers: Any) -> None:
    """Add ``info`` to ``subparsers`` (see :mod:`affectstream.cli`)."""
    parser = subparsers.add_parser("info", help="versions, for bug reports")
    add_json_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Show the versions (as one JSON line with ``--json``)."""
    versions: dict[str, str | None] = {}
    for name in _LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    say(f"affectstream {__version__} on Python {platform.python_version()}")
    for name, version in versions.items():
        say(f"  {name:16s} {version or 'not installed'}")
    emit_result(
        args,
        {"affectstream": __version__, "python": platform.python_version(), "libraries": versions},
    )
    return 0
