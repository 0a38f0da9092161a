"""Helpers shared by sub-commands: the final JSON line and human-readable output."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import shlex
import sys
from collections.abc import Callable, Iterator
from typing import Any


def _jsonable(value: Any) -> Any:
    """Turn numpy scalars and non-finite floats into JSON-safe values (NaN becomes null)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def emit_json(payload: dict[str, Any]) -> None:
    """Write ``payload`` as one JSON line on stdout; commands call it last.

    Parameters
    ----------
    payload : dict
        Result to print; numpy scalars are converted and NaN becomes null.
    """
    sys.stdout.write(json.dumps(_jsonable(payload), sort_keys=True) + "\n")
    sys.stdout.flush()


#: Help of ``--json``: one meaning in every command.
JSON_HELP = "print the result as one JSON object, the last line on stdout"


def add_json_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--json`` with the meaning it has in every command.

    Without it a command writes only human-readable lines (on stderr); with it the result
    is also one JSON object, the last line on stdout (see :func:`emit_result`).

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The sub-command's parser.
    """
    parser.add_argument("--json", action="store_true", help=JSON_HELP)


def emit_result(args: argparse.Namespace, payload: dict[str, Any]) -> None:
    """Print ``payload`` as the last stdout line when the command was given ``--json``.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed arguments (``args.json``).
    payload : dict
        The command's result.
    """
    if getattr(args, "json", False):
        emit_json(payload)


def advice(*words: object) -> str:
    """A command line to print as advice, quoted so that it runs when pasted verbatim.

    Parameters
    ----------
    *words : object
        The words after ``affectstream`` (converted with ``str``).

    Returns
    -------
    str
        For example ``affectstream store ls --store '/tmp/my store'``.
    """
    return shlex.join(["affectstream", *(str(w) for w in words)])


def say(message: str) -> None:
    """Write a line for a person on stderr, keeping stdout for results.

    Parameters
    ----------
    message : str
        Text to show.
    """
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


@contextlib.contextmanager
def progress_bars() -> Iterator[Callable[[str, int, int], None]]:
    """Rich progress bars on stderr, one per stage; yields ``progress(stage, done, total)``.

    Yields
    ------
    callable
        Call with a stage name, the work done and the total to draw or update its bar.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=False,
    ) as bar:
        tasks: dict[str, Any] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield update
