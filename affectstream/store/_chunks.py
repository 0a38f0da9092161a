"""Columnar chunks of one series: in-memory form, merge with last-write-wins, and encoding.

A chunk holds the points of one series over a time span, sorted by time with unique
timestamps. In memory (:class:`Columns`) a missing value is NaN in a float column,
``None`` in a str column, and ``False`` in the validity mask of an int or bool column.

On disk a chunk is one blob::

    b"ASC1" | uint32 header length | header (JSON) | compressed segments

The header names the codec, holds a CRC-32 of the segments (so damage is detected
whatever the codec) and lists the number of points and, for the timestamps and each
field, where its segment lies, its uncompressed size and whether it is compressed, so a
read decompresses only the fields it asks for. The codec is Zstandard level 3
through pyarrow (a dependency already): it decompresses about 3x faster than zlib at the
same ratio on sensor data, which is what range reads spend their time on; zlib (standard
library) is the fallback when a pyarrow build lacks Zstandard; both are always readable.
Segments under 512 bytes are stored uncompressed. Timestamps are stored as int64 deltas
(regular sampling makes them nearly constant, so they compress to almost nothing);
numeric fields as little-endian raw values; int/bool validity masks as packed bits (only
when some value is missing); str fields as a JSON list.

Why this format and not Arrow IPC + Zstandard (issue 11): both were measured on the chunks
``affectstream bench store`` writes (1M points of 4-channel 256-Hz EEG, 4096 points per
chunk) and on feature-like chunks with gaps (float NaN, int/bool/str missing), with
``python benchmarks/bench_chunk_format.py --points 1000000 --repeat 5`` (pyarrow 26.0.1,
Arrow IPC stream, zstd level 3 per buffer, one thread; a one-field read decompresses only
that column through ``IpcReadOptions(included_fields=...)``). Sizes are exact: EEG 30.7
bytes/point here against 34.2 for Arrow (the whole store 31.1 MB against 34.4 MB), features
8.5 against 14.6 bytes/point — the delta-coded timestamps and the packed masks are what
Arrow lacks. Speeds, measured three times on a shared 2-core machine at load 10-13, were
within the noise for EEG (ASC1 encode 2.0-2.8M points/s vs Arrow 2.2-5.4M, decode-all
2.4-4.5M vs 3.4-5.2M, one field 5.9-8.7M vs 2.7-12.7M; ``bench store`` embedded 0.49M vs
0.40M points/s in the same run) and clearly for ASC1 on features (one-field decode ~60M vs
16-24M points/s, decode-all ~10.6M vs 1.3-7.0M). Arrow gains nothing measurable and would
need a migration of every store, so ASC1 stays; crash safety is SQLite's either way (a
chunk is one row written in one transaction). Raw results: ``bench-results/`` when the
command is run.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from affectstream.errors import StoreError
from affectstream.store.base import FieldKind, SeriesBatch, field_kind

MAGIC = b"ASC1"
_HEADER_LENGTH = struct.Struct("<I")
_DTYPES: dict[str, str] = {"float": "<f8", "int": "<i8", "bool": "|b1"}
_NATIVE: dict[str, type[np.generic]] = {"float": np.float64, "int": np.int64, "bool": np.bool_}
_ZLIB_LEVEL = 1
_ZSTD_LEVEL = 3
# Below this a segment is stored as is: compressing a few values saves little and each
# codec call has a fixed cost, which dominates small live writes.
_MIN_COMPRESS_BYTES = 512

#: A field column in memory (float64, int64, bool or object).
Column = NDArray[Any]


@dataclass
class Columns:
    """Points of one series, sorted by time with unique timestamps.

    Parameters
    ----------
    time_ns : ndarray of int64, shape (n,)
        Sorted, unique timestamps.
    values : dict of str to ndarray, each shape (n,)
        Field columns; missing values as described in the module docstring.
    valid : dict of str to ndarray of bool
        Validity masks of int and bool fields that have missing values (absent = all valid).
    kinds : dict of str to str
        Stored type of each field.
    """

    time_ns: NDArray[np.int64]
    values: dict[str, Column]
    valid: dict[str, NDArray[np.bool_]]
    kinds: dict[str, FieldKind]

    def __len__(self) -> int:
        return int(self.time_ns.shape[0])

    def mask(self, name: str) -> NDArray[np.bool_]:
        """Return which values of field ``name`` are present."""
        kind = self.kinds[name]
        column = self.values[name]
        if kind == "float":
            return ~np.isnan(column.astype(np.float64, copy=False))
        if kind == "str":
            return np.array([value is not None for value in column], dtype=bool)
        return self.valid.get(name, np.ones(len(self), dtype=bool))

    def slice(self, start: int, stop: int) -> Columns:
        """Return points ``start:stop`` (positions, not times)."""
        return Columns(
            time_ns=self.time_ns[start:stop],
            values={k: v[start:stop] for k, v in self.values.items()},
            valid={k: v[start:stop] for k, v in self.valid.items()},
            kinds=dict(self.kinds),
        )


def missing_column(kind: FieldKind, n: int) -> Column:
    """Return a column of ``n`` missing values of the given kind (see :class:`Columns`)."""
    if kind == "float":
        return np.full(n, np.nan)
    if kind == "str":
        return np.full(n, None, dtype=object)
    return np.zeros(n, dtype=np.int64 if kind == "int" else np.bool_)


def from_batch(batch: SeriesBatch) -> Columns:
    """Turn a batch into sorted, deduplicated columns without all-missing rows.

    Within one batch a later duplicate timestamp wins, field by field.

    Parameters
    ----------
    batch : SeriesBatch
        Validated batch.

    Returns
    -------
    Columns
    """
    kinds = {name: field_kind(values) for name, values in batch.fields.items()}
    columns = Columns(batch.time_ns, dict(batch.fields), {}, kinds)
    present = np.zeros(len(columns), dtype=bool)
    for name in kinds:
        present |= columns.mask(name)
    if not present.all():
        keep = np.flatnonzero(present)
        columns = Columns(
            batch.time_ns[keep], {k: v[keep] for k, v in batch.fields.items()}, {}, kinds
        )
    return merge([columns])


def merge(parts: Sequence[Columns]) -> Columns:
    """Merge parts given oldest first: one point per timestamp, latest present value wins.

    Parameters
    ----------
    parts : sequence of Columns
        Parts of one series in write order. Field kinds must agree where names do.

    Returns
    -------
    Columns
    """
    kinds: dict[str, FieldKind] = {}
    for part in parts:
        kinds.update(part.kinds)
    times = np.concatenate([p.time_ns for p in parts]) if parts else np.empty(0, np.int64)
    order: NDArray[np.intp] | None = None
    group: NDArray[np.intp] | None = None
    unique_times = times
    # Fast path, the usual case (appending, reading consecutive chunks): already in order.
    if not bool(np.all(times[1:] > times[:-1])):
        order = np.argsort(times, kind="stable")  # stable: equal times stay in write order
        sorted_times = times[order]
        first = np.empty(sorted_times.shape[0], dtype=bool)
        first[:1] = True
        np.not_equal(sorted_times[1:], sorted_times[:-1], out=first[1:])
        unique_times = sorted_times[first]
        if unique_times.shape[0] != sorted_times.shape[0]:
            group = np.cumsum(first) - 1

    values: dict[str, Column] = {}
    valid: dict[str, NDArray[np.bool_]] = {}
    for name, kind in kinds.items():
        pieces: list[Column] = []
        masks: list[NDArray[np.bool_]] = []
        for part in parts:
            if name in part.kinds:
                pieces.append(part.values[name])
                masks.append(part.mask(name))
            else:
                pieces.append(missing_column(kind, len(part)))
                masks.append(np.zeros(len(part), dtype=bool))
        column = np.concatenate(pieces) if len(pieces) > 1 else pieces[0]
        present = np.concatenate(masks) if len(masks) > 1 else masks[0]
        if order is not None:
            column, present = column[order], present[order]
        if group is not None:
            positions = np.flatnonzero(present)
            groups = group[positions]
            last = np.ones(groups.shape[0], dtype=bool)
            np.not_equal(groups[1:], groups[:-1], out=last[:-1])
            merged = missing_column(kind, unique_times.shape[0])
            merged[groups[last]] = column[positions[last]]
            merged_present = np.zeros(unique_times.shape[0], dtype=bool)
            merged_present[groups[last]] = True
            column, present = merged, merged_present
        values[name] = column
        if kind in ("int", "bool") and not present.all():
            valid[name] = present
    return Columns(unique_times, values, valid, kinds)


def without_points_of(columns: Columns, fields: Iterable[str]) -> tuple[Columns, int]:
    """Drop every point that has a value in one of ``fields``, and those fields.

    Parameters
    ----------
    columns : Columns
        Points of one series.
    fields : iterable of str
        Fields whose points are refused (e.g. their type conflicts with the stored one).

    Returns
    -------
    kept : Columns
        The other points, without ``fields``.
    n_dropped : int
        Points dropped.
    """
    names = [name for name in fields if name in columns.kinds]
    dropped = np.zeros(len(columns), dtype=bool)
    for name in names:
        dropped |= columns.mask(name)
    keep = ~dropped
    kept = Columns(
        time_ns=columns.time_ns[keep],
        values={k: v[keep] for k, v in columns.values.items() if k not in names},
        valid={k: v[keep] for k, v in columns.valid.items() if k not in names},
        kinds={k: v for k, v in columns.kinds.items() if k not in names},
    )
    return kept, int(dropped.sum())


def split(columns: Columns, max_points: int) -> list[Columns]:
    """Cut columns into consecutive pieces of at most ``max_points`` points."""
    return [columns.slice(i, i + max_points) for i in range(0, len(columns), max_points)]


class _Codec:
    """Zstandard through pyarrow when available, else zlib (see the module docstring)."""

    def __init__(self) -> None:
        self._zstd: Any = None
        self.name = "zlib"
        try:
            import pyarrow as pa

            if pa.Codec.is_available("zstd"):
                self._zstd = pa.Codec("zstd", compression_level=_ZSTD_LEVEL)
                self.name = "zstd"
        except ImportError:  # pragma: no cover - pyarrow is a dependency
            pass

    def compress(self, raw: bytes) -> bytes:
        if self._zstd is not None:
            return bytes(self._zstd.compress(raw, asbytes=True))
        return zlib.compress(raw, _ZLIB_LEVEL)

    def decompress(self, name: str, data: bytes | memoryview, size: int) -> bytes | memoryview:
        if name == "zlib":
            return zlib.decompress(data)
        if name == "zstd" and self._zstd is not None:
            return bytes(self._zstd.decompress(data, decompressed_size=size, asbytes=True))
        raise StoreError(
            f"This chunk is compressed with {name!r}, which this installation cannot "
            "decompress; install pyarrow with Zstandard support (the PyPI wheels have it)."
        )


_CODEC = _Codec()


def encode(columns: Columns) -> bytes:
    """Encode columns as one chunk blob (format in the module docstring).

    Parameters
    ----------
    columns : Columns
        Sorted, unique, non-empty points.

    Returns
    -------
    bytes
    """
    segments: list[bytes] = []
    offset = 0

    def add(raw: bytes) -> list[int]:
        nonlocal offset
        compressed = len(raw) >= _MIN_COMPRESS_BYTES
        data = _CODEC.compress(raw) if compressed else raw
        segments.append(data)
        offset += len(data)
        return [offset - len(data), len(data), len(raw), int(compressed)]

    times = columns.time_ns
    deltas = np.empty_like(times)
    deltas[:1] = times[:1]
    np.subtract(times[1:], times[:-1], out=deltas[1:])
    header: dict[str, Any] = {"codec": _CODEC.name, "n": len(columns)}
    header["time"] = add(deltas.astype("<i8").tobytes())
    fields: list[list[Any]] = []
    for name, kind in columns.kinds.items():
        column = columns.values[name]
        if kind == "str":
            segment = add(json.dumps(column.tolist()).encode())
        else:
            segment = add(np.ascontiguousarray(column, dtype=_DTYPES[kind]).tobytes())
        mask = columns.valid.get(name)
        mask_segment = add(np.packbits(mask).tobytes()) if mask is not None else None
        fields.append([name, kind, segment, mask_segment])
    header["fields"] = fields
    body = b"".join(segments)
    header["crc"] = zlib.crc32(body)
    head = json.dumps(header, separators=(",", ":")).encode()
    return b"".join([MAGIC, _HEADER_LENGTH.pack(len(head)), head, body])


def decode(blob: bytes, fields: Iterable[str] | None = None, *, where: str = "chunk") -> Columns:
    """Decode a chunk blob, only the given fields (all by default).

    Parameters
    ----------
    blob : bytes
        Output of :func:`encode`.
    fields : iterable of str, optional
        Fields to decode; fields the chunk lacks are left out.
    where : str
        Names the chunk in error messages.

    Returns
    -------
    Columns
    """
    try:
        if blob[:4] != MAGIC:
            raise ValueError(f"starts with {bytes(blob[:4])!r}, not {MAGIC!r}")
        (head_length,) = _HEADER_LENGTH.unpack_from(blob, 4)
        body = 8 + head_length
        header = json.loads(bytes(blob[8:body]))
        n = int(header["n"])

        codec = str(header["codec"])

        view = memoryview(blob)
        if zlib.crc32(view[body:]) != header["crc"]:
            raise ValueError("its checksum does not match")

        def segment(location: list[int]) -> bytes | memoryview:
            start, length, size, compressed = location
            data = view[body + start : body + start + length]
            raw = _CODEC.decompress(codec, data, size) if compressed else data
            if len(raw) != size:
                raise ValueError(f"a segment holds {len(raw)} bytes, not {size}")
            return raw

        deltas = np.frombuffer(segment(header["time"]), dtype="<i8")
        if deltas.shape != (n,):
            raise ValueError(f"{deltas.shape[0]} timestamps for {n} points")
        times = np.cumsum(deltas, dtype=np.int64)
        wanted = None if fields is None else set(fields)
        values: dict[str, Column] = {}
        valid: dict[str, NDArray[np.bool_]] = {}
        kinds: dict[str, FieldKind] = {}
        for name, kind, location, mask_location in header["fields"]:
            if wanted is not None and name not in wanted:
                continue
            raw = segment(location)
            column: Column
            if kind == "str":
                column = np.array(json.loads(bytes(raw)), dtype=object)
            else:
                # A read-only view, no copy, on little-endian hosts (callers build new
                # arrays from it; pandas copies what it is given).
                column = np.frombuffer(raw, dtype=_DTYPES[kind]).astype(_NATIVE[kind], copy=False)
            if column.shape != (n,):
                raise ValueError(f"field {name!r} has {column.shape[0]} values for {n} points")
            values[name] = column
            kinds[name] = kind
            if mask_location is not None:
                bits = np.frombuffer(segment(mask_location), dtype=np.uint8)
                valid[name] = np.unpackbits(bits, count=n).astype(bool)
    except (ValueError, KeyError, TypeError, IndexError, OSError, struct.error, zlib.error) as exc:
        raise StoreError(
            f"The {where} cannot be decoded ({exc}); the store file is damaged. Read the "
            "other sessions, or move the file aside and start a new store."
        ) from exc
    return Columns(times, values, valid, kinds)
