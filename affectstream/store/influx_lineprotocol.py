"""Vectorised InfluxDB line protocol for :class:`~affectstream.store.base.SeriesBatch`.

One batch is one measurement and one tag set, so the ``measurement,tags `` prefix is built
once and only field values and timestamps are formatted per row, column by column with
pyarrow compute kernels (several times faster than formatting ``Point`` objects).

Formatting follows the line protocol reference: measurement names escape commas and spaces;
tag keys, tag values and field keys escape commas, equals signs and spaces; string field
values are double-quoted with ``"`` and ``\\`` escaped; integers carry an ``i`` suffix;
floats use the shortest text that parses back to the same float64 (so round trips are exact);
NaN values are left out (a missing field, not a zero) and a row whose fields are all missing
is not written. Tags are sorted by key, as InfluxData recommends.
"""

from __future__ import annotations

import logging

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from affectstream.errors import StoreError
from affectstream.store.base import FieldValues, SeriesBatch

logger = logging.getLogger(__name__)

# InfluxDB unescapes only these in names and tags; a backslash elsewhere stays literal.
_MEASUREMENT_ESCAPES = ((",", "\\,"), (" ", "\\ "))
_KEY_ESCAPES = ((",", "\\,"), ("=", "\\="), (" ", "\\ "))
_STRING_FIELD_ESCAPES = (("\\", "\\\\"), ('"', '\\"'))


def _escape(text: str, rules: tuple[tuple[str, str], ...]) -> str:
    for old, new in rules:
        text = text.replace(old, new)
    return text


def _check_name(kind: str, text: str, batch: SeriesBatch) -> None:
    if "\n" in text or "\r" in text or text.endswith("\\"):
        raise StoreError(
            f"{kind} {text!r} of measurement {batch.measurement!r} contains a line break or "
            "ends with a backslash, which line protocol cannot carry: change it before writing."
        )


def escape_measurement(name: str) -> str:
    """Escape a measurement name for line protocol."""
    return _escape(name, _MEASUREMENT_ESCAPES)


def escape_key(text: str) -> str:
    """Escape a tag key, tag value or field key for line protocol.

    Parameters
    ----------
    text : str
        Key or tag value.

    Returns
    -------
    str
    """
    return _escape(text, _KEY_ESCAPES)


def series_prefix(batch: SeriesBatch) -> str:
    """Return ``measurement,tag=value,... `` (with the trailing space) of a batch.

    Empty tag values are left out: line protocol has no empty tag value.

    Parameters
    ----------
    batch : SeriesBatch
        The batch.

    Returns
    -------
    str
    """
    parts = [escape_measurement(batch.measurement)]
    for key in sorted(batch.tags):
        value = batch.tags[key]
        if value == "":
            continue
        _check_name("Tag value", value, batch)
        parts.append(f"{escape_key(key)}={escape_key(value)}")
    return ",".join(parts) + " "


def _field_column(name: str, values: FieldValues, batch: SeriesBatch) -> pa.Array:
    """Return ``key=value`` strings for one field column, null where the value is missing."""
    _check_name("Field name", name, batch)
    key = escape_key(name) + "="
    kind = values.dtype.kind
    if kind == "f":
        floats = np.asarray(values, dtype=np.float64)
        missing = np.isnan(floats)
        if np.isinf(floats).any():
            where = int(np.flatnonzero(np.isinf(floats))[0])
            raise StoreError(
                f"Field {name!r} of {batch.measurement!r} holds {floats[where]} at row {where}: "
                "InfluxDB stores only finite floats; write NaN for a missing value."
            )
        text = pc.cast(pa.array(floats, mask=missing), pa.string())
        return pc.binary_join_element_wise(key, text, "")
    if kind in "iu":
        text = pc.cast(pa.array(np.asarray(values, dtype=np.int64)), pa.string())
        return pc.binary_join_element_wise(key, text, "i", "")
    if kind == "b":
        text = pa.array(np.where(np.asarray(values, dtype=bool), "true", "false"))
        return pc.binary_join_element_wise(key, text, "")
    if kind in "OUT":
        # SeriesBatch guarantees str or None (missing) in object columns.
        text = pa.array(np.asarray(values, dtype=object), type=pa.string())
        for old, new in _STRING_FIELD_ESCAPES:
            text = pc.replace_substring(text, old, new)
        if pc.any(pc.match_substring_regex(text, "[\r\n]")).as_py():
            raise StoreError(
                f"Field {name!r} of {batch.measurement!r} holds a string with a line break, "
                "which this writer does not send: replace it (e.g. with a space)."
            )
        return pc.binary_join_element_wise(key + '"', text, '"', "")
    raise StoreError(
        f"Field {name!r} of {batch.measurement!r} has dtype {values.dtype}: use float64, "
        "int64, bool or str values."
    )


def batch_to_line_protocol(batch: SeriesBatch) -> tuple[bytes, int]:
    """Format one batch as newline-terminated line protocol with nanosecond timestamps.

    Parameters
    ----------
    batch : SeriesBatch
        Points to format.

    Returns
    -------
    payload : bytes
        UTF-8 line protocol, one line per row that has at least one field.
    n_lines : int
        Number of lines in ``payload``.
    """
    n = len(batch)
    if n == 0 or not batch.fields:
        return b"", 0
    columns = [_field_column(name, values, batch) for name, values in batch.fields.items()]
    # Join column by column so missing (null) values leave no stray comma; pyarrow's
    # null_handling="skip" mis-sizes its output when a row is entirely null.
    fields = columns[0]
    for column in columns[1:]:
        both = pc.binary_join_element_wise(fields, column, ",")
        fields = pc.coalesce(both, fields, column)
    fields = pc.fill_null(fields, "")
    times = pc.cast(pa.array(np.asarray(batch.time_ns, dtype=np.int64)), pa.string())
    lines = pc.binary_join_element_wise(series_prefix(batch), fields, " ", times, "\n", "")
    keep = pc.not_equal(fields, "")
    if not pc.all(keep).as_py():
        lines = pc.filter(lines, keep)
    return _concatenated_bytes(lines), len(lines)


def _concatenated_bytes(strings: pa.Array | pa.ChunkedArray) -> bytes:
    """Return the UTF-8 bytes of every string of a null-free array, back to back."""
    if isinstance(strings, pa.ChunkedArray):
        return b"".join(_concatenated_bytes(chunk) for chunk in strings.chunks)
    if len(strings) == 0:
        return b""
    offsets = np.frombuffer(strings.buffers()[1], dtype=np.int32)
    start = int(offsets[strings.offset])
    stop = int(offsets[strings.offset + len(strings)])
    data = strings.buffers()[2]
    return data.to_pybytes()[start:stop] if data is not None else b""
