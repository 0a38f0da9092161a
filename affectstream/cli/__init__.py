"""The ``affectstream`` command line.

Each sub-command lives in its own module of this package and exposes
``register(subparsers)``; ``bench_*`` modules register under ``affectstream bench``.
``register`` sets ``func=run``, and ``run(args)`` takes the parsed ``argparse.Namespace``
and returns the process exit code (0 on success unless its docstring says otherwise).
Modules import heavy libraries inside their ``run`` function so that ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import logging
import pkgutil
import re
import sys
from collections.abc import Sequence
from typing import NoReturn

from affectstream._version import __version__
from affectstream.cli._store_args import apply_store_arguments
from affectstream.errors import AffectstreamError
from affectstream.redact import redact_url

logger = logging.getLogger(__name__)


def _command_modules(prefix: str = "") -> list[str]:
    names = [m.name for m in pkgutil.iter_modules(__path__)]
    if prefix:
        return sorted(n for n in names if n.startswith(prefix))
    return sorted(n for n in names if not n.startswith(("_", "bench_")))


class _RedactingFilter(logging.Filter):
    """Pass every log line (and traceback) through :func:`redact_url` before it is shown."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = _NUMPY_REPR.sub(r"\1", redact_url(record.getMessage()))
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact_url(logging.Formatter().formatException(record.exc_info))
        return True


_NUMPY_REPR = re.compile(r"\bnp\.(?:float|int|uint|bool|str)_?\d*\(([^()]*)\)")


def plain_message(exc: BaseException) -> str:
    """The one-line text of an error for people: credentials redacted, numpy reprs plain.

    ``np.float64(0.5)`` (numpy 2's repr of a scalar inside a message) becomes ``0.5``.

    Parameters
    ----------
    exc : BaseException

    Returns
    -------
    str
    """
    return _NUMPY_REPR.sub(r"\1", redact_url(exc))


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors never echo a credential (store URLs)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {redact_url(message)}\n")


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every sub-command registered.

    Returns
    -------
    argparse.ArgumentParser
    """
    parser = _Parser(
        prog="affectstream",
        description="Wearable physiology over BLE to live arousal and valence estimates.",
    )
    parser.add_argument("--version", action="version", version=f"affectstream {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _command_modules():
        module = importlib.import_module(f"{__name__}.{name}")
        module.register(subparsers)
    share_options(parser)
    return parser


def share_options(
    parser: argparse.ArgumentParser, inherited: Sequence[argparse.Action] = ()
) -> None:
    """Let every option of a command also be given after its sub-commands.

    ``affectstream store ls --store X`` and ``affectstream demo -v`` then parse like
    ``affectstream store --store X ls`` and ``affectstream -v demo``. The copies default to
    "not given" (``SUPPRESS``), so a value given before the sub-command is kept.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        A parser with sub-commands (others are left alone).
    inherited : sequence of argparse.Action
        Options of the parsers above ``parser``.
    """
    sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
    if sub is None:
        return
    own = [
        a
        for a in parser._actions
        if a.option_strings and not isinstance(a, argparse._HelpAction | argparse._VersionAction)
    ]
    shared = [*inherited, *own]
    for child in {id(c): c for c in sub.choices.values()}.values():
        for action in shared:
            if any(o in child._option_string_actions for o in action.option_strings):
                continue  # the sub-command has its own option of that name
            # argparse has no public way to re-add an existing action to another parser.
            duplicate = copy.copy(action)
            duplicate.default = argparse.SUPPRESS
            child._add_action(duplicate)
        share_options(child, shared)


def bench_modules() -> list[str]:
    """Names of the ``bench_*`` modules, for ``affectstream bench``.

    Returns
    -------
    list of str
    """
    return [f"{__name__}.{n}" for n in _command_modules("bench_")]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return the process exit code.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; defaults to ``sys.argv[1:]``.

    Returns
    -------
    int
        0 on success, 2 on a user-facing error, 130 on Ctrl-C.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(_RedactingFilter())
    # Library warnings (numpy's "Mean of empty slice"...) go to the log, shown with -vv.
    logging.captureWarnings(True)
    logging.getLogger("py.warnings").setLevel(logging.DEBUG if args.verbose >= 2 else logging.ERROR)
    apply_store_arguments(args)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except AffectstreamError as exc:
        logger.debug("command failed", exc_info=True)
        sys.stderr.write(f"error: {plain_message(exc)}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
