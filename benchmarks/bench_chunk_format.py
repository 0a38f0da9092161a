"""Embedded store chunk format: the own "ASC1" blob against Arrow IPC + Zstandard.

Both encode the same chunks the embedded store writes for ``affectstream bench store``
(256 Hz 4-channel EEG, ``--chunk-points`` points per chunk, the store's default 4096),
plus feature-like chunks with missing values (float NaN, int and bool with gaps, str).
For each format: bytes on disk, encode time, decode time for all fields and for one
field (what a ``read(..., fields=[...])`` does). Arrow IPC is the stream format with
``IpcWriteOptions(compression=zstd level 3)``, one record batch per chunk (the column
``time_ns`` as int64, nulls as Arrow validity bitmaps); a one-field read uses
``IpcReadOptions(included_fields=...)`` so only that column is decompressed. Both are
checked to decode to the same values before timing. Then ``bench store``'s embedded run
itself (write, flush, count back) with the store's codec swapped for each format, with the
store's size on disk. One JSON object is printed last.

Usage: ``python benchmarks/bench_chunk_format.py [--points 1000000] [--chunk-points 4096]
[--repeat 3]``
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from affectstream.cli.bench_store import _batches, _bench_embedded
from affectstream.store import _chunks
from affectstream.store._chunks import Columns
from affectstream.store.base import SeriesBatch

_ZSTD = pa.Codec("zstd", compression_level=3)
_ARROW_TYPES = {"float": pa.float64(), "int": pa.int64(), "bool": pa.bool_(), "str": pa.string()}


def arrow_encode(columns: Columns) -> bytes:
    """One Arrow IPC stream (schema + one record batch), Zstandard-compressed buffers."""
    arrays = [pa.array(columns.time_ns, type=pa.int64())]
    names = ["time_ns"]
    for name, kind in columns.kinds.items():
        values = columns.values[name]
        mask = None if kind in ("float", "str") else ~columns.mask(name)
        if kind == "float":
            mask = np.isnan(values)
        arrays.append(pa.array(values, type=_ARROW_TYPES[kind], mask=mask))
        names.append(name)
    batch = pa.record_batch(arrays, names=names)
    sink = pa.BufferOutputStream()
    # One thread, as ASC1: the store encodes in the writer thread beside the live session.
    options = pa.ipc.IpcWriteOptions(compression=_ZSTD, use_threads=False)
    with pa.ipc.new_stream(sink, batch.schema, options=options) as writer:
        writer.write_batch(batch)
    return bytes(sink.getvalue().to_pybytes())


def arrow_decode(blob: bytes, fields: list[str] | None = None, *, where: str = "chunk") -> Columns:
    """Decode :func:`arrow_encode` output back to the store's in-memory columns."""
    options = None
    if fields is not None:
        schema = pa.ipc.open_stream(blob).schema
        wanted = {"time_ns", *fields}
        options = pa.ipc.IpcReadOptions(
            included_fields=[i for i, n in enumerate(schema.names) if n in wanted]
        )
    table = pa.ipc.open_stream(blob, options=options).read_all()
    times = table.column("time_ns").to_numpy()
    values: dict[str, Any] = {}
    valid: dict[str, Any] = {}
    kinds: dict[str, Any] = {}
    for name in table.column_names[1:]:
        column = table.column(name)
        kind = {v: k for k, v in _ARROW_TYPES.items()}[column.type]
        kinds[name] = kind
        if kind == "float":
            values[name] = column.to_numpy()  # nulls become NaN
        elif kind == "str":
            values[name] = np.array(column.to_pylist(), dtype=object)
        else:
            present = column.is_valid().to_numpy(zero_copy_only=False)
            values[name] = column.fill_null(False if kind == "bool" else 0).to_numpy(
                zero_copy_only=False
            )
            if not present.all():
                valid[name] = present
    return Columns(times, values, valid, kinds)


def _feature_chunks(n_points: int, chunk_points: int) -> list[Columns]:
    """Feature-like points; every 10th row has only ``hr``, so the others have gaps."""
    rng = np.random.default_rng(1)
    t0 = 1_700_000_000_000_000_000
    time_ns = t0 + np.arange(n_points, dtype=np.int64) * 5_000_000_000
    hr = rng.normal(70, 5, n_points)
    hr[rng.random(n_points) < 0.05] = np.nan
    full = np.arange(n_points) % 10 != 0
    label = np.array([("calm", "stress", None)[i % 3] for i in range(n_points)], dtype=object)
    tags = {"session": "bench"}
    fields = {
        "hr": hr[full],
        "n_beats": rng.integers(0, 100, n_points)[full],
        "label": label[full],
        "usable": (rng.random(n_points) > 0.1)[full],
    }
    parts = [
        _chunks.from_batch(SeriesBatch("features", tags, time_ns[full], fields)),
        _chunks.from_batch(SeriesBatch("features", tags, time_ns[~full], {"hr": hr[~full]})),
    ]
    return _chunks.split(_chunks.merge(parts), chunk_points)


def _best(repeat: int, work: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def _same(a: Columns, b: Columns) -> None:
    np.testing.assert_array_equal(a.time_ns, b.time_ns)
    assert a.kinds == b.kinds, (a.kinds, b.kinds)
    for name in a.kinds:
        np.testing.assert_array_equal(a.mask(name), b.mask(name))
        keep = a.mask(name)
        np.testing.assert_array_equal(a.values[name][keep], b.values[name][keep])


def _measure(chunks: list[Columns], one_field: str, repeat: int) -> dict[str, Any]:
    n_points = sum(len(c) for c in chunks)
    formats: dict[str, tuple[Callable[[Columns], bytes], Callable[..., Columns]]] = {
        "asc1": (_chunks.encode, lambda blob, fields=None: _chunks.decode(blob, fields)),
        "arrow_ipc_zstd": (arrow_encode, arrow_decode),
    }
    result: dict[str, Any] = {"points": n_points, "chunks": len(chunks)}
    for name, (encode, decode) in formats.items():
        blobs = [encode(c) for c in chunks]
        for chunk, blob in zip(chunks, blobs, strict=True):
            _same(chunk, decode(blob))
        encode_s = _best(repeat, lambda: [encode(c) for c in chunks])  # noqa: B023
        decode_s = _best(repeat, lambda: [decode(b) for b in blobs])  # noqa: B023
        field_s = _best(repeat, lambda: [decode(b, [one_field]) for b in blobs])  # noqa: B023
        size = sum(len(b) for b in blobs)
        result[name] = {
            "bytes": size,
            "bytes_per_point": size / n_points,
            "encode_points_per_s": n_points / encode_s,
            "decode_all_points_per_s": n_points / decode_s,
            "decode_one_field_points_per_s": n_points / field_s,
        }
    return result


def _store_run(n_points: int, encode: Any, decode: Any) -> dict[str, Any]:
    """``bench store``'s embedded run with the store's chunk codec swapped for this one."""
    saved = _chunks.encode, _chunks.decode
    _chunks.encode, _chunks.decode = encode, decode  # type: ignore[assignment]
    try:
        with tempfile.TemporaryDirectory() as folder:
            result = _bench_embedded(n_points, Path(folder) / "store")
            result["file_bytes"] = sum(
                p.stat().st_size for p in Path(folder).rglob("*") if p.is_file()
            )
            return result
    finally:
        _chunks.encode, _chunks.decode = saved


def main() -> None:
    """Measure both formats on EEG and feature chunks and print one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--chunk-points", type=int, default=4096)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    eeg = _chunks.merge([_chunks.from_batch(b) for b in _batches(args.points, "bench")])
    eeg_chunks = _chunks.split(eeg, args.chunk_points)
    features = _feature_chunks(max(args.points // 50, 1000), args.chunk_points)
    report = {
        "command": "python benchmarks/bench_chunk_format.py "
        f"--points {args.points} --chunk-points {args.chunk_points} --repeat {args.repeat}",
        "pyarrow": pa.__version__,
        "raw_eeg": _measure(eeg_chunks, "tp9", args.repeat),
        "features": _measure(features, "hr", args.repeat),
        # The whole `bench store` embedded run (write, flush, count back) per format.
        "bench_store_embedded": {
            "asc1": _store_run(args.points, _chunks.encode, _chunks.decode),
            "arrow_ipc_zstd": _store_run(args.points, arrow_encode, arrow_decode),
        },
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
