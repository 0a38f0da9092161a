"""Lazy attribute access for packages that re-export names from heavy submodules."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_getattr(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """Build a module ``__getattr__`` that imports each exported name on first use.

    Parameters
    ----------
    package : str
        The package's ``__name__``, for the error message.
    exports : mapping of str to str
        Exported name -> absolute name of the module that defines it.

    Returns
    -------
    callable
        ``__getattr__(name)``: the attribute, or :class:`AttributeError` for other names.
    """

    def attribute(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    return attribute
