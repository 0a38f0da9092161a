"""Time-series storage: the TimeSeriesStore interface, embedded default, InfluxDB, spool.

Open a store with :func:`open_store`; every backend speaks the schema in
:mod:`affectstream.store.base`. :func:`blocks_to_batches` turns sample blocks into the
``raw_<modality>`` and ``events`` batches the store takes.
"""

from __future__ import annotations

import importlib
import os
import re
import urllib.parse
from pathlib import Path
from typing import Any

from affectstream.errors import ConfigError, StoreError
from affectstream.redact import redact_url
from affectstream.store.base import (
    MEASUREMENTS,
    RAW_PREFIX,
    RESERVED_FIELD_NAMES,
    TAG_KEYS,
    DeliveryReport,
    FieldKind,
    FieldValues,
    SeriesBatch,
    SessionInfo,
    TimeSeriesStore,
    check_measurement,
)
from affectstream.store.convert import (
    GAP_EVENT_KIND,
    blocks_to_batches,
    event_batch,
    seconds_to_ns,
)
from affectstream.store.embedded import EmbeddedStore
from affectstream.store.influx_config import URL_SCHEMES  # light: no client imported

__all__ = [
    "GAP_EVENT_KIND",
    "MEASUREMENTS",
    "RAW_PREFIX",
    "RESERVED_FIELD_NAMES",
    "TAG_KEYS",
    "DeliveryReport",
    "EmbeddedStore",
    "FieldKind",
    "FieldValues",
    "SeriesBatch",
    "SessionInfo",
    "TimeSeriesStore",
    "blocks_to_batches",
    "check_measurement",
    "default_store_path",
    "event_batch",
    "open_store",
    "seconds_to_ns",
]

_EMBEDDED_OPTIONS = ("synchronous", "chunk_points", "timeout_s", "read_only")
# Alias kept for cli/bench_store.py, which reads it: the schemes are URL_SCHEMES' keys.
_INFLUX_SCHEMES = frozenset(URL_SCHEMES)
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def default_store_path() -> Path:
    """Return where the embedded store lives by default.

    Returns
    -------
    pathlib.Path
        ``$AFFECTSTREAM_HOME/store`` if that variable is set, else ``~/.affectstream/store``.
    """
    home = os.environ.get("AFFECTSTREAM_HOME")
    base = Path(home).expanduser() if home else Path.home() / ".affectstream"
    return base / "store"


def open_store(url: str | os.PathLike[str] | None = None, **options: Any) -> TimeSeriesStore:
    """Open the store a URL or path names.

    Parameters
    ----------
    url : str or path-like, optional
        - ``None`` or ``""``: the embedded store at :func:`default_store_path`;
        - a path, or ``file:///abs/path`` (``file://rel/path`` is relative): an
          :class:`EmbeddedStore` there;
        - ``http(s)://host:port`` or ``influx://host:port`` (plain HTTP; also
          ``influx+https://``): an ``affectstream.store.influx.InfluxStore`` on that
          server; the query string may carry ``bucket``, ``org`` and ``token``.
    **options
        Passed to the backend: for the embedded store ``synchronous``, ``chunk_points``,
        ``timeout_s``, ``read_only`` (read commands: refuse a path without a store, write
        nothing); for InfluxDB ``token``, ``org``, ``bucket``, ``spool_dir``...

    Returns
    -------
    TimeSeriesStore
        Use it as a context manager so that it is flushed and closed.
    """
    if url is None or isinstance(url, os.PathLike):
        return _embedded(default_store_path() if url is None else Path(url), options)
    if not isinstance(url, str):
        raise ConfigError(f"Store URL must be a str or path, got {url!r}.")
    text = url.strip()
    if not text:
        return _embedded(default_store_path(), options)
    match = _SCHEME.match(text)
    if match is None:
        return _embedded(Path(text), options)
    scheme = match.group(1).lower()
    if scheme == "file":
        parts = urllib.parse.urlsplit(text)
        host = "" if parts.netloc in ("", "localhost") else parts.netloc
        path = urllib.parse.unquote(host + parts.path)
        if not path:
            raise ConfigError(f"Store URL {url!r} names no path; use file:///path/to/store.")
        return _embedded(Path(path), options)
    if scheme in URL_SCHEMES:
        return _influx(text, options)
    raise ConfigError(
        f"Unknown store URL scheme {scheme!r} in {redact_url(url)!r}: use a path, file:///path, "
        "influx://host:port, http://host:port or https://host:port."
    )


def _embedded(path: Path, options: dict[str, Any]) -> EmbeddedStore:
    if options.get("read_only") and path == default_store_path() and not path.exists():
        # The user's own default store, not a mistyped path: created on first use.
        options = {**options, "read_only": False}
    unknown = sorted(set(options) - set(_EMBEDDED_OPTIONS))
    if unknown:
        raise ConfigError(
            f"Unknown option(s) {unknown} for the embedded store at {path}; it accepts "
            f"{', '.join(_EMBEDDED_OPTIONS)}."
        )
    return EmbeddedStore(path, **options)


def _influx(url: str, options: dict[str, Any]) -> TimeSeriesStore:
    try:
        module = importlib.import_module("affectstream.store.influx")
        influx_store = module.InfluxStore
    except (ImportError, AttributeError) as exc:
        raise StoreError(
            f"The InfluxDB backend (affectstream.store.influx.InfluxStore) is not available "
            f"({exc}), so {redact_url(url)!r} cannot be opened; use the embedded store (a "
            "path) instead."
        ) from exc
    # A server store is read the same way in both modes (queries write nothing).
    options = {k: v for k, v in options.items() if k != "read_only"}
    store = influx_store(url, **options)
    if not isinstance(store, TimeSeriesStore):
        raise StoreError(f"InfluxStore({redact_url(url)!r}) did not give a TimeSeriesStore.")
    return store
