"""The embedded store's read side: stored chunks of several series into one DataFrame.

Pure functions on decoded :class:`~affectstream.store._chunks.Columns` (no SQLite):
:func:`decode_range` cuts one series' chunks to a time range, :func:`frame_of` combines
series into the frame :meth:`~affectstream.store.base.TimeSeriesStore.read` promises
(time order, tag columns, nullable int/bool, ``None`` for missing str).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from affectstream.store import _chunks
from affectstream.store._chunks import Columns
from affectstream.store.base import TAG_KEYS, FieldKind


def decode_range(
    chunks: Sequence[tuple[int, bytes]], start: int, stop: int, fields: Sequence[str] | None
) -> Columns | None:
    """Decode consecutive chunks of one series, keeping ``start <= time_ns < stop``.

    Parameters
    ----------
    chunks : sequence of (int, bytes)
        Chunk ids and blobs of one series, in time order.
    start, stop : int
        Half-open time range in ns.
    fields : sequence of str, optional
        Fields to decode (all when None).

    Returns
    -------
    Columns or None
        None when no point falls in the range.
    """
    pieces: list[Columns] = []
    for chunk_id, data in chunks:
        piece = _chunks.decode(data, fields, where=f"chunk {chunk_id}")
        times = piece.time_ns
        if times[0] < start or times[-1] >= stop:
            lo, hi = np.searchsorted(times, [start, stop], side="left")
            piece = piece.slice(int(lo), int(hi))
        if len(piece):
            pieces.append(piece)
    if not pieces:
        return None
    return _chunks.merge(pieces) if len(pieces) > 1 else pieces[0]


def _output_column(kind: FieldKind, values: np.ndarray, present: np.ndarray) -> object:
    """Convert a merged column to its DataFrame form (see TimeSeriesStore.read)."""
    if kind == "int" and not present.all():
        return pd.arrays.IntegerArray(values.astype(np.int64), ~present)
    if kind == "bool" and not present.all():
        return pd.arrays.BooleanArray(values.astype(np.bool_), ~present)
    if kind == "str":
        # pandas 3 would infer its "str" dtype and turn None into NaN; the contract is None.
        return pd.Series(values, dtype=object, copy=False)
    return values


def frame_of(
    parts: Sequence[tuple[dict[str, str], Columns]],
    wanted: Sequence[str] | None,
    known: Mapping[str, FieldKind],
) -> pd.DataFrame:
    """Combine the columns of several series into one DataFrame sorted by time.

    Parameters
    ----------
    parts : sequence of (dict, Columns)
        Tags and points of each series.
    wanted : sequence of str, optional
        Fields asked for (None: every field present, in stored order).
    known : mapping of str to str
        Stored type of each field of the measurement.

    Returns
    -------
    pandas.DataFrame
    """
    present_fields = {name for _, columns in parts for name in columns.kinds}
    if wanted is None:
        names = [name for name in known if name in present_fields]
        names += sorted(present_fields - set(names))
    else:
        names = list(wanted)
    kinds: dict[str, FieldKind] = {}
    for _, columns in parts:
        kinds.update(columns.kinds)
    for name in names:
        kinds.setdefault(name, known.get(name, "float"))
    if not parts:
        # No rows: still give the columns a reader can expect (requested or known fields).
        empty: dict[str, np.ndarray] = {"time_ns": np.empty(0, dtype=np.int64)}
        for name in names if wanted is not None else known:
            empty[name] = _chunks.missing_column(kinds.get(name, known[name]), 0)
        return pd.DataFrame(empty)

    times = (
        np.concatenate([columns.time_ns for _, columns in parts])
        if len(parts) > 1
        else parts[0][1].time_ns
    )
    order = np.argsort(times, kind="stable") if len(parts) > 1 else None
    sizes = [len(columns) for _, columns in parts]
    data: dict[str, np.ndarray] = {"time_ns": times}
    for key in TAG_KEYS:
        if any(key in tags for tags, _ in parts):
            tag_column = np.empty(times.shape[0], dtype=object)
            offset = 0
            for (tags, _), n in zip(parts, sizes, strict=True):
                tag_column[offset : offset + n] = tags.get(key, "")  # fast, unlike np.full
                offset += n
            data[key] = tag_column
    any_present = np.zeros(times.shape[0], dtype=bool)
    masks: dict[str, np.ndarray] = {}
    for name in names:
        kind = kinds[name]
        pieces: list[np.ndarray] = []
        present: list[np.ndarray] = []
        for _, columns in parts:
            if name in columns.kinds:
                pieces.append(columns.values[name])
                present.append(columns.mask(name))
            else:
                pieces.append(_chunks.missing_column(kind, len(columns)))
                present.append(np.zeros(len(columns), dtype=bool))
        data[name] = np.concatenate(pieces) if len(pieces) > 1 else pieces[0]
        masks[name] = np.concatenate(present) if len(present) > 1 else present[0]
        any_present |= masks[name]
    keep: np.ndarray | None = order
    if not any_present.all():
        keep = order if order is not None else np.arange(times.shape[0])
        keep = keep[any_present[keep]]
    result: dict[str, object] = {}
    for column, values in data.items():
        selected = values[keep] if keep is not None else values
        if column in masks:
            mask = masks[column][keep] if keep is not None else masks[column]
            result[column] = _output_column(kinds[column], selected, mask)
        else:
            result[column] = selected
    return pd.DataFrame(result)
