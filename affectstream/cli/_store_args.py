"""The ``--store`` option and the InfluxDB flags shared by every command that stores or reads."""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Iterator

# The names affectstream.store.influx reads (spelt out so that --help need not import the
# InfluxDB client; tests/test_cli.py checks that they agree).
ENV_TOKEN = "AFFECTSTREAM_INFLUX_TOKEN"
ENV_ORG = "AFFECTSTREAM_INFLUX_ORG"
ENV_BUCKET = "AFFECTSTREAM_INFLUX_BUCKET"

STORE_HELP = (
    "embedded store folder, or an InfluxDB URL (http(s)://host:8086?bucket=NAME or influx://...); "
    "default: the embedded store in $AFFECTSTREAM_HOME/store or ~/.affectstream/store"
)

_FLAGS = {"influx_token": ENV_TOKEN, "influx_org": ENV_ORG, "influx_bucket": ENV_BUCKET}


def add_store_arguments(parser: argparse.ArgumentParser, *, help_text: str = STORE_HELP) -> None:
    """Add ``--store`` and the ``--influx-*`` flags to ``parser``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The sub-command's parser.
    help_text : str
        Help of ``--store``.
    """
    parser.add_argument("--store", metavar="PATH_OR_URL", default=None, help=help_text)
    influx = parser.add_argument_group("InfluxDB (when --store is a URL)")
    influx.add_argument(
        "--influx-token",
        metavar="TOKEN",
        help=f"API token (default ${ENV_TOKEN}; prefer the variable: flags show in `ps`)",
    )
    influx.add_argument("--influx-org", metavar="ORG", help=f"organisation (default ${ENV_ORG})")
    influx.add_argument(
        "--influx-bucket", metavar="BUCKET", help=f"bucket or database (default ${ENV_BUCKET})"
    )


def apply_store_arguments(args: argparse.Namespace) -> None:
    """Let the ``--influx-*`` flags given override the environment of this process.

    Every path that opens a store (``open_store`` and the runtime) reads the same variables,
    so the flags reach them all.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed arguments; commands without the flags are left alone.
    """
    for attribute, variable in _FLAGS.items():
        value = getattr(args, attribute, None)
        if value:
            os.environ[variable] = value


def add_start_server_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--start-server`` (a throwaway local influxd for a benchmark run) to ``parser``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The benchmark's parser; :func:`local_influx` starts the server when it is given.
    """
    parser.add_argument(
        "--start-server",
        action="store_true",
        help="start a throwaway local influxd (Debian package influxdb) for the run",
    )


@contextlib.contextmanager
def local_influx(start: bool, database: str) -> Iterator[str | None]:
    """A local influxd for the block when ``start`` (``--start-server``), else nothing.

    Parameters
    ----------
    start : bool
        Whether to start one.
    database : str
        The database (bucket) to create in it.

    Yields
    ------
    str or None
        The server's URL, or ``None`` when none was started.
    """
    if not start:
        yield None
        return
    from affectstream.store.influx_devserver import LocalInfluxDB

    server = LocalInfluxDB(database=database)
    try:  # not ``with``: stop() also cleans up after a start() that failed half-way
        server.start()
        yield server.url
    finally:
        server.stop()
