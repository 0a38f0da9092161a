"""Small validators in the spirit of MNE-Python's ``_check_option``/``_validate_type``.

Each names the parameter, what is allowed and what was given.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TypeVar

from affectstream.errors import ConfigError

T = TypeVar("T")


def check_option(name: str, value: T, allowed: Iterable[T]) -> T:
    """Return ``value`` if it is one of ``allowed``, else raise a :class:`ConfigError`.

    Parameters
    ----------
    name : str
        Parameter name shown in the message.
    value : object
        The value given.
    allowed : iterable
        The values accepted.

    Returns
    -------
    object
        ``value`` unchanged.
    """
    options = list(allowed)
    if value not in options:
        shown = ", ".join(repr(o) for o in options)
        raise ConfigError(f"Invalid value for {name!r}: {value!r}. Allowed values are {shown}.")
    return value


def check_positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    """Return ``value`` as float if it is finite and positive (or zero when allowed).

    Parameters
    ----------
    name : str
        Parameter name shown in the message.
    value : float
        The value given.
    allow_zero : bool
        Whether 0 is accepted.

    Returns
    -------
    float
        The value as a float.
    """
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}.") from None
    if not math.isfinite(number) or number < 0 or (number == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"{name} must be a finite number {bound}, got {value!r}.")
    return number
