"""The embedded store on a real SQLite file: round trips, filters, overwrite, damage."""

from __future__ import annotations

import json
import sqlite3
import struct
import threading
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from affectstream.errors import StoreError
from affectstream.store import EmbeddedStore, SeriesBatch, SessionInfo, _chunks, open_store

SESSION_TAGS = {"participant": "p01", "session": "s01", "device": "dev", "stream": "dev/x"}


def _batch(
    times: np.ndarray,
    fields: dict[str, np.ndarray],
    measurement: str = "raw_eeg",
    **tags: str,
) -> SeriesBatch:
    return SeriesBatch(measurement, {**SESSION_TAGS, **tags}, np.asarray(times, np.int64), fields)


def _bits(values: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(values, dtype=np.float64).view(np.int64)


# -- round trips -----------------------------------------------------------------------


def test_round_trip_is_exact_for_every_type(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    times = np.unique(rng.integers(-(2**40), 2**62, 1000, dtype=np.int64))
    n = times.size
    floats = rng.integers(0, 2**64 - 1, n, dtype=np.uint64, endpoint=True).view(np.float64)
    floats[np.isnan(floats)] = 1.0  # NaN is "missing" by contract; every other bit pattern stays
    floats[:6] = [0.0, -0.0, np.inf, -np.inf, 5e-324, np.finfo(np.float64).max]
    ints = rng.integers(np.iinfo(np.int64).min, np.iinfo(np.int64).max, n, dtype=np.int64)
    ints[:2] = [np.iinfo(np.int64).min, np.iinfo(np.int64).max]
    bools = rng.random(n) < 0.5
    words = ["", "a", "é", "日本語", "🫀", 'quote " and \\ back', "line\nbreak", "\x00nul"]
    strings = np.array([words[i % len(words)] for i in range(n)], dtype=object)
    fields = {"f": floats, "i": ints, "b": bools, "s": strings}
    with EmbeddedStore(tmp_path, chunk_points=97) as store:
        store.write([_batch(times, fields, "events")])
        frame = store.read("events")
    assert list(frame.columns) == [
        "time_ns",
        "participant",
        "session",
        "device",
        "stream",
        "f",
        "i",
        "b",
        "s",
    ]
    np.testing.assert_array_equal(frame["time_ns"].to_numpy(), times)
    np.testing.assert_array_equal(_bits(frame["f"].to_numpy()), _bits(floats))
    assert frame["i"].dtype == np.int64
    np.testing.assert_array_equal(frame["i"].to_numpy(), ints)
    assert frame["b"].dtype == np.bool_
    np.testing.assert_array_equal(frame["b"].to_numpy(), bools)
    assert frame["s"].tolist() == strings.tolist()
    assert set(frame["session"]) == {"s01"}


def test_unsorted_batch_is_stored_sorted(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    times = rng.permutation(np.arange(500, dtype=np.int64) * 7)
    values = times.astype(np.float64) / 7
    with EmbeddedStore(tmp_path, chunk_points=64) as store:
        store.write([_batch(times, {"af7": values})])
        frame = store.read("raw_eeg")
    order = np.argsort(times)
    np.testing.assert_array_equal(frame["time_ns"].to_numpy(), times[order])
    np.testing.assert_array_equal(frame["af7"].to_numpy(), values[order])


def test_missing_values_are_not_stored(tmp_path: Path) -> None:
    times = np.arange(6, dtype=np.int64)
    a = np.array([1.0, np.nan, 3.0, np.nan, np.nan, 6.0])
    b = np.array([10.0, 20.0, np.nan, np.nan, np.nan, 60.0])
    label = np.array(["x", None, None, None, "y", None], dtype=object)
    with EmbeddedStore(tmp_path) as store:
        store.write([_batch(times, {"a": a, "b": b, "label": label}, "events")])
        frame = store.read("events")
        only_a = store.read("events", fields=["a"])
        sessions = store.sessions()
    # Row 3 has no value at all: not a point.
    assert frame["time_ns"].tolist() == [0, 1, 2, 4, 5]
    np.testing.assert_array_equal(frame["a"].to_numpy(), a[[0, 1, 2, 4, 5]])
    assert frame["label"].tolist() == ["x", None, None, "y", None]
    # Selecting fields drops rows where all of them are missing.
    assert only_a["time_ns"].tolist() == [0, 2, 5]
    assert list(only_a.columns[-1:]) == ["a"]
    assert sessions[0].n_points == 5


def test_int_and_bool_fields_with_gaps_read_as_nullable(tmp_path: Path) -> None:
    with EmbeddedStore(tmp_path) as store:
        store.write(
            [
                _batch(
                    np.array([0, 2]),
                    {"n": np.array([5, 7]), "ok": np.array([True, False])},
                    "events",
                )
            ]
        )
        store.write([_batch(np.array([1]), {"label": np.array(["mid"], dtype=object)}, "events")])
        frame = store.read("events")
    assert str(frame["n"].dtype) == "Int64"
    assert frame["n"].tolist() == [5, pd.NA, 7]
    assert str(frame["ok"].dtype) == "boolean"
    assert frame["ok"].tolist() == [True, pd.NA, False]
    assert frame["label"].tolist() == [None, "mid", None]


# -- filters and listing ---------------------------------------------------------------


@pytest.fixture
def filled(tmp_path: Path) -> tuple[EmbeddedStore, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Two sessions, two streams each, small chunks so ranges cross chunk boundaries."""
    store = EmbeddedStore(tmp_path, chunk_points=50)
    data: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    rng = np.random.default_rng(3)
    for session, start in (("s01", 1_000_000), ("s02", 9_000_000)):
        for stream in ("a/eeg", "b/eeg"):
            times = start + np.cumsum(rng.integers(1, 1000, 777)).astype(np.int64)
            values = rng.normal(size=777)
            store.write([_batch(times, {"af7": values}, session=session, stream=stream)])
            data[f"{session} {stream}"] = (times, values)
    yield store, data
    store.close()


def test_time_range_is_half_open_across_chunks(filled: tuple[EmbeddedStore, dict]) -> None:
    store, data = filled
    times, values = data["s01 a/eeg"]
    rng = np.random.default_rng(4)
    bounds = [(times[0], times[-1]), (times[10], times[10]), (times[49], times[51] + 1)]
    bounds += [tuple(sorted(rng.choice(times, 2))) for _ in range(20)]
    for start, stop in bounds:
        frame = store.read(
            "raw_eeg",
            tags={"session": "s01", "stream": "a/eeg"},
            start_ns=int(start),
            stop_ns=int(stop),
        )
        inside = (times >= start) & (times < stop)
        np.testing.assert_array_equal(frame["time_ns"].to_numpy(), times[inside])
        np.testing.assert_array_equal(frame["af7"].to_numpy(), values[inside])
    assert len(store.read("raw_eeg", start_ns=int(times[0]), stop_ns=int(times[0]))) == 0


def test_tag_filters_select_series_and_merge_them_by_time(
    filled: tuple[EmbeddedStore, dict],
) -> None:
    store, data = filled
    frame = store.read("raw_eeg", tags={"session": "s01"})
    expected_times = np.concatenate([data["s01 a/eeg"][0], data["s01 b/eeg"][0]])
    np.testing.assert_array_equal(
        frame["time_ns"].to_numpy(), np.sort(expected_times, kind="stable")
    )
    assert set(frame["stream"]) == {"a/eeg", "b/eeg"}
    b_rows = frame[frame["stream"] == "b/eeg"]
    np.testing.assert_array_equal(b_rows["af7"].to_numpy(), data["s01 b/eeg"][1])
    assert len(store.read("raw_eeg", tags={"participant": "p01"})) == 4 * 777
    assert len(store.read("raw_eeg", tags={"session": "nope"})) == 0
    assert len(store.read("raw_eeg", tags={"model": ""})) == 4 * 777  # "" = series without it
    assert len(store.read("raw_eeg", tags={"device": ""})) == 0
    assert len(store.read("raw_ecg")) == 0
    with pytest.raises(StoreError, match="Cannot filter on tag 'subject'"):
        store.read("raw_eeg", tags={"subject": "x"})
    with pytest.raises(StoreError, match="Unknown measurement"):
        store.read("eeg")
    with pytest.raises(StoreError, match="start_ns must be an int"):
        store.read("raw_eeg", start_ns=1.5)  # type: ignore[arg-type]


def test_sessions_and_series_listing(filled: tuple[EmbeddedStore, dict]) -> None:
    store, data = filled
    expected = []
    for session in ("s01", "s02"):
        times = np.concatenate([data[f"{session} a/eeg"][0], data[f"{session} b/eeg"][0]])
        expected.append(
            SessionInfo(session, "p01", int(times.min()), int(times.max()) + 1, times.size)
        )
    assert store.sessions() == expected
    one = store.read(
        "raw_eeg",
        tags={"session": "s02"},
        start_ns=expected[1].start_ns,
        stop_ns=expected[1].stop_ns,
    )
    assert len(one) == expected[1].n_points
    series = store.series()
    assert len(series) == 4
    assert store.series("s02") == [
        ("raw_eeg", {**SESSION_TAGS, "session": "s02", "stream": "a/eeg"}),
        ("raw_eeg", {**SESSION_TAGS, "session": "s02", "stream": "b/eeg"}),
    ]


def test_delete_session_removes_only_that_session(filled: tuple[EmbeddedStore, dict]) -> None:
    store, data = filled
    store.delete_session("s01")
    assert [info.session for info in store.sessions()] == ["s02"]
    assert store.series("s01") == []
    assert len(store.read("raw_eeg", tags={"session": "s01"})) == 0
    kept = store.read("raw_eeg", tags={"session": "s02", "stream": "a/eeg"})
    np.testing.assert_array_equal(kept["af7"].to_numpy(), data["s02 a/eeg"][1])
    store.delete_session("s01")  # unknown now: nothing to do
    with pytest.raises(StoreError, match="needs a session id"):
        store.delete_session("")
    # The session can be written again from scratch.
    store.write([_batch(np.array([5]), {"af7": np.array([1.0])}, session="s01")])
    assert store.read("raw_eeg", tags={"session": "s01"})["af7"].tolist() == [1.0]


def test_delete_session_gives_the_space_back(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    times = np.arange(200_000, dtype=np.int64)
    with EmbeddedStore(tmp_path) as store:
        for session in ("big1", "big2"):
            store.write([_batch(times, {"af7": rng.normal(size=times.size)}, session=session)])
    database = tmp_path / "store.sqlite"
    before = database.stat().st_size
    with EmbeddedStore(tmp_path) as store:
        store.delete_session("big1")
    # Half of the data went, so about half of the file (pages are freed, not just unused).
    assert database.stat().st_size < 0.6 * before


# -- overwrite ---------------------------------------------------------------------------


def test_writing_the_same_batch_twice_stores_it_once(tmp_path: Path) -> None:
    times = np.arange(1000, dtype=np.int64) * 3_906_250
    batch = _batch(times, {"af7": np.sin(times / 1e9)})
    with EmbeddedStore(tmp_path, chunk_points=128) as store:
        store.write([batch])
        store.write([batch])
        store.write([batch, batch])
        frame = store.read("raw_eeg")
        assert store.sessions()[0].n_points == len(times)
    np.testing.assert_array_equal(frame["time_ns"].to_numpy(), times)


def test_overwrite_is_field_by_field_last_write_wins(tmp_path: Path) -> None:
    with EmbeddedStore(tmp_path) as store:
        store.write([_batch(np.array([1, 2, 2]), {"a": np.array([1.0, 2.0, 3.0])}, "features")])
        store.write([_batch(np.array([2]), {"b": np.array([20.0])}, "features")])
        store.write([_batch(np.array([1, 2]), {"a": np.array([np.nan, 4.0])}, "features")])
        frame = store.read("features")
    # Within a batch the later duplicate wins; a new field merges in; NaN keeps the old value.
    assert frame["time_ns"].tolist() == [1, 2]
    assert frame["a"].tolist() == [1.0, 4.0]
    assert frame["b"].tolist()[1] == 20.0 and np.isnan(frame["b"].tolist()[0])


@pytest.mark.parametrize("seed", range(4))
def test_random_overlapping_writes_match_a_reference_model(tmp_path: Path, seed: int) -> None:
    """Random writes overlapping in time and fields, read back against a dict model."""
    rng = np.random.default_rng(seed)
    model: dict[int, dict[str, object]] = {}
    with EmbeddedStore(tmp_path, chunk_points=int(rng.integers(3, 40))) as store:
        for _ in range(25):
            n = int(rng.integers(1, 120))
            times = rng.integers(0, 400, n).astype(np.int64) * 1000
            fields: dict[str, np.ndarray] = {}
            if rng.random() < 0.8:
                x = rng.normal(size=n)
                x[rng.random(n) < 0.2] = np.nan
                fields["x"] = x
            if rng.random() < 0.5 or not fields:
                fields["n"] = rng.integers(-5, 5, n)
            if rng.random() < 0.3:
                fields["s"] = np.array(
                    [None if rng.random() < 0.3 else f"e{int(v)}" for v in rng.integers(0, 9, n)],
                    dtype=object,
                )
            store.write([_batch(times, fields, "events")])
            for i, t in enumerate(times.tolist()):
                for name, column in fields.items():
                    value = column[i]
                    if value is None or (isinstance(value, float) and np.isnan(value)):
                        continue
                    model.setdefault(t, {})[name] = value
        start, stop = sorted(int(v) for v in rng.integers(0, 400_000, 2))
        for lo, hi in ((None, None), (start, stop)):
            frame = store.read("events", start_ns=lo, stop_ns=hi)
            expected_times = sorted(
                t for t in model if (lo is None or lo <= t) and (hi is None or t < hi)
            )
            assert frame["time_ns"].tolist() == expected_times
            for name in ("x", "n", "s"):
                if name not in frame:
                    assert all(name not in model[t] for t in expected_times)
                    continue
                got = frame[name].tolist()
                for t, value in zip(expected_times, got, strict=True):
                    want = model[t].get(name)
                    if want is None:
                        assert value is None or value is pd.NA or np.isnan(value)
                    else:
                        assert value == want
        assert store.sessions()[0].n_points == len(model)


def test_many_small_writes_end_up_in_few_chunks(tmp_path: Path) -> None:
    chunk_points = 64
    rng = np.random.default_rng(6)
    sizes = rng.integers(1, 12, 400)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    with EmbeddedStore(tmp_path, chunk_points=chunk_points) as store:
        for start, size in zip(starts, sizes, strict=True):
            times = np.arange(start, start + size, dtype=np.int64)
            store.write([_batch(times, {"af7": times * 0.5})])
        frame = store.read("raw_eeg")
    total = int(sizes.sum())
    np.testing.assert_array_equal(frame["time_ns"].to_numpy(), np.arange(total))
    np.testing.assert_array_equal(frame["af7"].to_numpy(), np.arange(total) * 0.5)
    with sqlite3.connect(tmp_path / "store.sqlite") as connection:
        counts = [
            row[0] for row in connection.execute("SELECT n_points FROM chunks ORDER BY start_ns")
        ]
    connection.close()
    assert sum(counts) == total
    # Full chunks, then at most ~log2(chunk_points) small ones at the tail (binary counter).
    small = [n for n in counts if n < chunk_points]
    assert len(small) <= int(np.log2(chunk_points)) + 2
    assert counts[: len(counts) - len(small)] == [chunk_points] * (len(counts) - len(small))


# -- lifecycle, concurrency -------------------------------------------------------------


def test_reopen_after_close_and_closed_store_errors(tmp_path: Path) -> None:
    times = np.arange(300, dtype=np.int64)
    store = EmbeddedStore(tmp_path)
    store.write([_batch(times, {"af7": times * 0.5})])
    store.close()
    store.close()  # idempotent
    with pytest.raises(StoreError, match="is closed"):
        store.read("raw_eeg")
    with open_store(str(tmp_path)) as again:
        np.testing.assert_array_equal(again.read("raw_eeg")["af7"].to_numpy(), times * 0.5)
        again.write([_batch(times + 300, {"af7": times * 2.0})])
    with EmbeddedStore(tmp_path) as third:
        assert len(third.read("raw_eeg")) == 600


def test_second_connection_sees_committed_writes_while_another_thread_writes(
    tmp_path: Path,
) -> None:
    writer = EmbeddedStore(tmp_path, synchronous="normal")
    reader = EmbeddedStore(tmp_path)
    done = threading.Event()
    errors: list[BaseException] = []

    def write_loop() -> None:
        try:
            for k in range(40):
                times = np.arange(k * 100, (k + 1) * 100, dtype=np.int64)
                writer.write([_batch(times, {"af7": times.astype(np.float64)})])
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=write_loop)
    thread.start()
    seen = []
    while not done.is_set():
        frame = reader.read("raw_eeg")
        if frame.empty:  # before the first commit
            continue
        # Every read sees whole writes: a multiple of 100 points, values equal to times.
        assert len(frame) % 100 == 0
        np.testing.assert_array_equal(frame["af7"].to_numpy(), frame["time_ns"].to_numpy())
        seen.append(len(frame))
    thread.join()
    assert not errors
    assert seen == sorted(seen)  # a reader never sees committed points disappear
    assert len(reader.read("raw_eeg")) == 4000
    writer.close()
    reader.close()


# -- bad input and damage ---------------------------------------------------------------


def test_points_with_a_field_type_conflict_are_refused_alone_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with EmbeddedStore(tmp_path) as store:
        store.write([_batch(np.array([1]), {"n": np.array([1])}, "features")])
        good = _batch(np.array([2]), {"n": np.array([2])}, "features", session="s02")
        # Points 3 and 4 give `n` as float (stored: int); point 5 has no `n` (NaN is
        # missing), so it conflicts with nothing and is stored with its other field.
        mixed = _batch(
            np.array([3, 4, 5]),
            {"n": np.array([3.5, 4.5, np.nan]), "x": np.array([30.0, 40.0, 50.0])},
            "features",
        )
        store.write([good, mixed])
        frame = store.read("features")
        assert frame["time_ns"].tolist() == [1, 2, 5]
        assert frame["x"].isna().tolist() == [True, True, False]
        report = store.delivery()
        assert report.rejected_points == 2 and not report.complete
        assert "field 'n' holds int values, 2 point(s) give float" in report.last_rejection
        assert any("not stored" in r.getMessage() for r in caplog.records)
        one_series = [
            _batch(np.array([5]), {"q": np.array([0.5])}, "quality"),
            _batch(np.array([6, 7]), {"q": np.array([1, 2])}, "quality"),
        ]
        store.write(one_series)  # conflict inside one call: the first type counts
        assert store.read("quality")["time_ns"].tolist() == [5]
        assert store.delivery().rejected_points == 2 + 2
        with pytest.raises(StoreError, match="takes SeriesBatch objects"):
            store.write([{"measurement": "features"}])  # type: ignore[list-item]
    # Field types persist after reopening; a new store counts from zero.
    with EmbeddedStore(tmp_path) as store:
        store.write([_batch(np.array([9]), {"n": np.array([9.5])}, "features")])
        assert store.delivery().rejected_points == 1
        assert 9 not in store.read("features")["time_ns"].tolist()


def test_a_full_disk_fails_the_write_cleanly_and_later_writes_succeed(tmp_path: Path) -> None:
    small = _batch(np.arange(10), {"af7": np.arange(10.0)})
    rng = np.random.default_rng(7)
    big_times = np.arange(10, 200_010)
    big = _batch(big_times, {"af7": rng.normal(size=big_times.size)})
    with EmbeddedStore(tmp_path) as store:
        store.write([small])
        connection = store._db()  # SQLite's own size cap stands in for a full disk
        (pages,) = connection.execute("PRAGMA page_count").fetchone()
        connection.execute(f"PRAGMA max_page_count = {pages + 2}")
        with pytest.raises(StoreError, match="full"):
            store.write([big])
        assert len(store.read("raw_eeg")) == 10  # the failed write left nothing behind
        connection.execute("PRAGMA max_page_count = 1073741823")
        store.write([big])
        frame = store.read("raw_eeg")
    np.testing.assert_array_equal(frame["af7"].to_numpy()[10:], big.fields["af7"])
    assert len(frame) == 200_010


def test_a_file_that_is_not_a_database_gives_a_clear_error(tmp_path: Path) -> None:
    database = tmp_path / "store.sqlite"
    database.write_bytes(b"this is a CSV file, not a store\n" * 200)
    with pytest.raises(StoreError) as info:
        EmbeddedStore(tmp_path)
    message = str(info.value)
    assert str(database) in message and "Move store.sqlite" in message and ".recover" in message


def test_another_applications_database_is_refused(tmp_path: Path) -> None:
    database = tmp_path / "other.db"
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE t (x)")
    connection.close()
    with pytest.raises(StoreError, match="not an affectstream store"):
        EmbeddedStore(database)


def test_truncated_database_gives_a_clear_error(tmp_path: Path) -> None:
    times = np.arange(200_000, dtype=np.int64)
    with EmbeddedStore(tmp_path, chunk_points=1000) as store:
        store.write([_batch(times, {"af7": np.random.default_rng(5).normal(size=times.size)})])
    database = tmp_path / "store.sqlite"
    assert not (tmp_path / "store.sqlite-wal").exists()  # checkpointed on close
    data = database.read_bytes()
    database.write_bytes(data[: len(data) // 2])
    with pytest.raises(StoreError, match="damaged"), EmbeddedStore(tmp_path) as store:
        store.read("raw_eeg")
        store.check()


def test_damaged_chunk_gives_a_clear_error(tmp_path: Path) -> None:
    times = np.arange(100, dtype=np.int64)
    with EmbeddedStore(tmp_path, chunk_points=10) as store:
        store.write([_batch(times, {"af7": times * 1.0})])
    with sqlite3.connect(tmp_path / "store.sqlite") as connection:
        (chunk_id,) = connection.execute(
            "SELECT id FROM chunks ORDER BY start_ns LIMIT 1 OFFSET 4"
        ).fetchone()
        connection.execute(
            "UPDATE chunks SET data = substr(data, 1, length(data) - 5) WHERE id = ?", (chunk_id,)
        )
    connection.close()
    with EmbeddedStore(tmp_path) as store:
        with pytest.raises(StoreError, match=f"chunk {chunk_id} cannot be decoded"):
            store.read("raw_eeg")
        # Ranges that avoid the damaged chunk still read.
        assert store.read("raw_eeg", stop_ns=40)["af7"].tolist() == list(times[:40] * 1.0)


def test_newer_format_is_refused(tmp_path: Path) -> None:
    EmbeddedStore(tmp_path).close()
    with sqlite3.connect(tmp_path / "store.sqlite") as connection:
        connection.execute("UPDATE meta SET value = '99' WHERE key = 'format_version'")
    connection.close()
    with pytest.raises(StoreError, match=r"format version 99.*upgrade affectstream"):
        EmbeddedStore(tmp_path)


def test_unwritable_location_gives_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="Cannot create the store folder"):
        EmbeddedStore(blocker / "sub" / "store")


# -- chunk codec ---------------------------------------------------------------------------


def test_chunk_codec_decodes_only_requested_fields_and_keeps_masks() -> None:
    columns = _chunks.Columns(
        time_ns=np.array([10, 20, 35], dtype=np.int64),
        values={
            "x": np.array([1.0, np.nan, 3.0]),
            "n": np.array([1, 0, 3]),
            "s": np.array(["a", None, "c"], dtype=object),
        },
        valid={"n": np.array([True, False, True])},
        kinds={"x": "float", "n": "int", "s": "str"},
    )
    blob = _chunks.encode(columns)
    full = _chunks.decode(blob)
    np.testing.assert_array_equal(full.time_ns, columns.time_ns)
    np.testing.assert_array_equal(full.mask("n"), [True, False, True])
    assert full.values["s"].tolist() == ["a", None, "c"]
    only_n = _chunks.decode(blob, ["n", "absent"])
    assert list(only_n.kinds) == ["n"]
    with pytest.raises(StoreError, match="cannot be decoded"):
        _chunks.decode(b"XXXX" + blob[4:])


def _asc1_blob(time_ns: np.ndarray, fields: dict[str, tuple[str, bytes]]) -> bytes:
    """An ASC1 chunk built from the format the _chunks docstring describes (not by encode).

    Segments of 512 bytes or more are zlib-compressed (the codec every build can read),
    smaller ones stored as is, exactly as the description says.
    """
    body = bytearray()

    def add(raw: bytes) -> list[int]:
        compressed = len(raw) >= 512
        data = zlib.compress(raw) if compressed else raw
        body.extend(data)
        return [len(body) - len(data), len(data), len(raw), int(compressed)]

    deltas = np.diff(time_ns, prepend=0).astype("<i8")
    header: dict[str, object] = {"codec": "zlib", "n": len(time_ns), "time": add(deltas.tobytes())}
    header["fields"] = [[name, kind, add(raw), None] for name, (kind, raw) in fields.items()]
    header["crc"] = zlib.crc32(bytes(body))
    head = json.dumps(header).encode()
    return b"ASC1" + struct.pack("<I", len(head)) + head + bytes(body)


def test_a_store_holding_chunks_in_the_documented_asc1_format_reads_back(
    tmp_path: Path,
) -> None:
    n = 300  # every segment is over 512 bytes: compressed with zlib
    times = 1_000 + np.arange(n, dtype=np.int64) * 3
    values = np.linspace(-1.0, 1.0, n)
    labels = ["a", "b"] * (n // 2)
    fields = {"x": values, "label": np.array(labels, dtype=object)}
    with EmbeddedStore(tmp_path / "store") as store:
        store.write([_batch(times, fields)])
    blob = _asc1_blob(
        times,
        {
            "x": ("float", values.astype("<f8").tobytes()),
            "label": ("str", json.dumps(labels).encode()),
        },
    )
    with sqlite3.connect(tmp_path / "store" / "store.sqlite") as connection:
        (count,) = connection.execute("SELECT COUNT(*) FROM chunks").fetchone()
        assert count == 1
        connection.execute("UPDATE chunks SET data = ?", (blob,))
    with EmbeddedStore(tmp_path / "store", read_only=True) as store:
        frame = store.read("raw_eeg", tags={"session": "s01"})
    assert frame["time_ns"].tolist() == times.tolist()
    np.testing.assert_array_equal(_bits(frame["x"].to_numpy()), _bits(values))
    assert frame["label"].tolist() == labels
