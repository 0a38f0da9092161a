"""InfluxQL text and answers: quoting, series keys, WHERE clauses, result frames.

Pure functions (no I/O): what :class:`~affectstream.store.influx_reader.InfluxReader`
sends to ``/query`` and how it turns the JSON answer into the frame
:meth:`~affectstream.store.base.TimeSeriesStore.read` promises.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from affectstream.ids import check_id
from affectstream.store.base import TAG_KEYS


def influxql_identifier(name: str) -> str:
    """Quote an InfluxQL identifier (measurement, field or tag key).

    Parameters
    ----------
    name : str
        Identifier.

    Returns
    -------
    str
    """
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def influxql_string(value: str) -> str:
    """Quote an InfluxQL string literal (a tag value).

    Parameters
    ----------
    value : str
        Literal.

    Returns
    -------
    str
    """
    # InfluxQL's scanner reads \\, \' and \n escapes; a raw line break ends the statement.
    escaped = value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
    return "'" + escaped + "'"


def delete_predicate(session: str) -> str:
    """The InfluxDB 2.x ``/api/v2/delete`` predicate selecting one session.

    The id is validated (:func:`affectstream.ids.check_id`) and quoted, never pasted in.

    Parameters
    ----------
    session : str
        Session id.

    Returns
    -------
    str
    """
    value = check_id(session, "session")
    return 'session="' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


_UNESCAPED_COMMA = re.compile(r"(?<!\\),")
_UNESCAPED_EQUALS = re.compile(r"(?<!\\)=")


def _unescape_key(text: str) -> str:
    """Undo line-protocol escaping of a key or tag value (other backslashes are literal)."""
    return text.replace("\\,", ",").replace("\\=", "=").replace("\\ ", " ")


def parse_series_key(key: str) -> tuple[str, dict[str, str]]:
    """Parse a series key as ``SHOW SERIES`` prints it: ``measurement,tag=value,...``.

    Parameters
    ----------
    key : str
        Escaped series key.

    Returns
    -------
    measurement : str
    tags : dict of str to str
    """
    measurement, *pairs = _UNESCAPED_COMMA.split(key)
    tags: dict[str, str] = {}
    for pair in pairs:
        name, value = _UNESCAPED_EQUALS.split(pair, maxsplit=1)
        tags[_unescape_key(name)] = _unescape_key(value)
    return _unescape_key(measurement), tags


def where_clause(tags: Mapping[str, str], *conditions: str) -> str:
    """Return `` WHERE "tag" = 'value' AND ...`` for exact tag matches (or nothing).

    Parameters
    ----------
    tags : mapping of str to str
        Tag values that must match exactly (quoted here).
    *conditions : str
        Further InfluxQL conditions (e.g. ``time >= 5``), ANDed after the tags.

    Returns
    -------
    str
        The clause with a leading space, or ``""`` when there is nothing to match.
    """
    terms = [f"{influxql_identifier(k)} = {influxql_string(v)}" for k, v in tags.items()]
    terms.extend(conditions)
    return f" WHERE {' AND '.join(terms)}" if terms else ""


def series_to_frame(
    series: list[dict[str, Any]], fields: list[str] | None, field_types: Mapping[str, str]
) -> pd.DataFrame:
    """Turn InfluxQL ``GROUP BY *`` series into the read() frame of the base interface.

    Parameters
    ----------
    series : list of dict
        Series of a ``/query`` answer (``columns``, ``values``, ``tags``).
    fields : list of str, optional
        Fields asked for (all seen in ``series`` when None).
    field_types : mapping of str to str
        Stored type of each field (``SHOW FIELD KEYS``), giving each column its dtype.

    Returns
    -------
    pandas.DataFrame
        ``time_ns``, the tag keys present, then the fields, sorted by time.
    """
    tag_keys = [k for k in TAG_KEYS if any((s.get("tags") or {}).get(k) for s in series)]
    if fields is None:
        seen: dict[str, None] = {}
        for block in series:
            seen.update((column, None) for column in block["columns"] if column != "time")
        field_names = list(seen)
    else:
        field_names = list(fields)
    frames = []
    for block in series:
        columns = ["time_ns" if c == "time" else c for c in block["columns"]]
        # object dtype: keep JSON ints exact (a float64 detour would round big ints)
        frame = pd.DataFrame(block.get("values", []), columns=columns, dtype=object)
        for key in tag_keys:
            frame[key] = (block.get("tags") or {}).get(key, "")
        frames.append(frame)
    ordered = ["time_ns", *tag_keys, *field_names]
    if frames:
        frame = pd.concat(frames, ignore_index=True)
    else:
        frame = pd.DataFrame({name: pd.Series(dtype=object) for name in ordered})
    for name in ordered:
        if name not in frame:
            frame[name] = None
    frame = frame[ordered]
    if field_names:
        frame = frame.dropna(subset=field_names, how="all")
    frame = frame.astype({"time_ns": np.int64})
    frame = frame.sort_values("time_ns", kind="stable").reset_index(drop=True)
    for name in tag_keys:
        frame[name] = frame[name].astype(str)
    for name in field_names:
        frame[name] = typed_column(frame[name], field_types.get(name, "float"))
    return frame


def typed_column(column: pd.Series, kind: str) -> pd.Series:
    """Give a field column the dtype the base interface promises for its stored type.

    Parameters
    ----------
    column : pandas.Series
        Values as JSON decoded them (object dtype).
    kind : str
        ``"integer"``, ``"boolean"``, ``"string"`` or ``"float"``.

    Returns
    -------
    pandas.Series
        Nullable dtypes where values are missing.
    """
    gaps = bool(column.isna().any())
    if kind == "integer":
        return column.astype("Int64") if gaps else column.astype(np.int64)
    if kind == "boolean":
        return column.astype("boolean") if gaps else column.astype(bool)
    if kind == "string":
        return column.astype(object).where(column.notna(), None)
    # JSON writes whole floats without a decimal point; float64 holds every float exactly.
    return pd.to_numeric(column, errors="coerce").astype(np.float64)
