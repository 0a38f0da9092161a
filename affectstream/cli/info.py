"""``affectstream info``: versions of affectstream and the libraries it rests on."""

from __future__ import annotations

import argparse
import importlib.metadata
import platform
from typing import Any

from affectstream._version import __version__
from affectstream.cli._output import emit_json

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
    """Register ``info``.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The top-level sub-command registry.
    """
    parser = subparsers.add_parser("info", help="versions, for bug reports")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the versions as one JSON line.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed arguments (unused).

    Returns
    -------
    int
        Exit code.
    """
    versions: dict[str, str | None] = {}
    for name in _LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    emit_json(
        {"affectstream": __version__, "python": platform.python_version(), "libraries": versions}
    )
    return 0
