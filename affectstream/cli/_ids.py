"""argparse types for ids: :func:`affectstream.ids.check_id` at the command line."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from affectstream.errors import ConfigError
from affectstream.ids import IdKind, check_id


def id_argument(kind: IdKind, *, allow_empty: bool = False) -> Callable[[str], str]:
    """Return an argparse ``type=`` that accepts only a valid id of ``kind``.

    Parameters
    ----------
    kind : {"participant", "session", "device"}
        What the argument identifies.
    allow_empty : bool
        Accept ``""``.

    Returns
    -------
    callable
    """

    def parse(text: str) -> str:
        try:
            return check_id(text, kind, allow_empty=allow_empty)
        except ConfigError as exc:  # argparse prints it as a one-line usage error
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = f"{kind} id"
    return parse
