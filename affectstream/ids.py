"""The one validator for participant, session and device ids.

Ids travel into store tags, InfluxQL queries, line protocol, file and folder names of
exports and HTTP requests, so every entry point (command line, session configuration,
store lookups) checks them here, with one rule per kind:

============  =====  ===============================================================
kind          max    characters
============  =====  ===============================================================
participant   64     ASCII letters, digits, ``.``, ``_``, ``-``; starts with a letter
                     or digit
session       128    the same (generated ids are ``<participant>-<UTC time>-<hex>``)
device        64     the same plus space, ``:`` and ``()`` (BLE addresses and
                     advertised names such as ``Polar H10 1A2B3C4D``)
============  =====  ===============================================================

No control character (a newline breaks line protocol and InfluxQL), no quote, no
backslash, no ``/`` (a stream id is ``<device>/<kind>``) and no ``,`` or ``=`` (tag syntax)
can pass, whatever the backend.
"""

from __future__ import annotations

import re
from typing import Literal

from affectstream.errors import ConfigError

__all__ = ["ID_RULES", "IdKind", "check_id"]

IdKind = Literal["participant", "session", "device"]

_BASE = r"A-Za-z0-9._\-"
#: kind -> (maximum length, allowed characters after the first, as a regex class body).
ID_RULES: dict[str, tuple[int, str]] = {
    "participant": (64, _BASE),
    "session": (128, _BASE),
    "device": (64, _BASE + r" :()"),
}
_PATTERNS = {kind: re.compile(rf"[A-Za-z0-9][{chars}]*") for kind, (_, chars) in ID_RULES.items()}
_SHOWN = 40  # characters of a refused id shown in the message


def check_id(value: object, kind: IdKind, *, allow_empty: bool = False) -> str:
    """Return ``value`` if it is a valid id of ``kind``, else raise :class:`ConfigError`.

    Parameters
    ----------
    value : object
        The id given.
    kind : {"participant", "session", "device"}
        What it identifies (see the module docstring for the rules).
    allow_empty : bool
        Accept ``""`` (no such id, e.g. an anonymous participant).

    Returns
    -------
    str

    Examples
    --------
    >>> check_id("P-07", "participant")
    'P-07'
    """
    if kind not in ID_RULES:
        raise ConfigError(f"Unknown id kind {kind!r}: use one of {', '.join(ID_RULES)}.")
    limit, _ = ID_RULES[kind]
    if not isinstance(value, str):
        raise ConfigError(f"The {kind} id must be text, got {type(value).__name__}.")
    if value == "" and allow_empty:
        return value
    if len(value) > limit:
        raise ConfigError(
            f"The {kind} id {_show(value)} is {len(value)} characters long; the limit is "
            f"{limit}: use a shorter id."
        )
    if not _PATTERNS[kind].fullmatch(value):
        extra = " space, ':', '(' and ')'," if kind == "device" else ""
        raise ConfigError(
            f"The {kind} id {_show(value)} is not valid: use 1-{limit} ASCII letters, digits,"
            f"{extra} '.', '_' or '-', starting with a letter or digit."
        )
    return value


def _show(value: str) -> str:
    """``value`` quoted for a one-line message: escaped, and cut when long."""
    shown = ascii(value)
    return shown if len(shown) <= _SHOWN else shown[: _SHOWN - 4] + "...'"
