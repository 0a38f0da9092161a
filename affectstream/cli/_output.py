"""Helpers shared by sub-commands: the final JSON line and human-readable output."""

from __future__ import annotations

import contextlib
import json
import math
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
