"""Schema validation, SampleBlock conversion and open_store URL handling."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from affectstream.errors import ConfigError, StoreError
from affectstream.store import (
    GAP_EVENT_KIND,
    EmbeddedStore,
    SeriesBatch,
    blocks_to_batches,
    default_store_path,
    open_store,
    seconds_to_ns,
)
from affectstream.store.base import TimeSeriesStore, read_query
from affectstream.store.influx import InfluxStore
from affectstream.types import Gap, SampleBlock

# -- read arguments (checked once, in TimeSeriesStore.read, for every backend) -----------


def test_read_query_keeps_empty_tags_and_asks_for_each_field_once() -> None:
    query = read_query("raw_eeg", {"device": "", "session": "s1"}, 5, None, ["b", "a", "b"])
    assert query.tags == {"device": "", "session": "s1"}  # "" = series without that tag
    assert (query.start_ns, query.stop_ns) == (5, None)
    assert query.fields == ["b", "a"]
    assert read_query("features", None, None, np.int64(7), None).stop_ns == 7


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("raw EEG", None, None, None, None), "Unknown measurement"),
        (("features", {"subject": "p1"}, None, None, None), "Cannot filter on tag 'subject'"),
        (("features", {"session": 1}, None, None, None), "values are strings"),
        (("features", None, 1.5, None, None), "start_ns must be an int"),
        (("features", None, None, True, None), "stop_ns must be an int"),
        (("features", None, None, None, "hr_mean"), "fields must be a list"),
    ],
)
def test_every_store_refuses_bad_read_arguments(
    tmp_path: Path, args: tuple[object, ...], message: str
) -> None:
    # Both backends read through TimeSeriesStore.read, so both refuse what read_query does.
    assert EmbeddedStore.read is InfluxStore.read is TimeSeriesStore.read
    with pytest.raises(StoreError, match=message):
        read_query(*args)  # type: ignore[arg-type]
    with EmbeddedStore(tmp_path / "store") as store, pytest.raises(StoreError, match=message):
        measurement, tags, start_ns, stop_ns, fields = args
        store.read(measurement, tags=tags, start_ns=start_ns, stop_ns=stop_ns, fields=fields)  # type: ignore[arg-type]


# -- SeriesBatch ---------------------------------------------------------------------


def test_batch_normalises_types_and_drops_empty_tags() -> None:
    batch = SeriesBatch(
        "raw_eeg",
        {"session": "s1", "device": ""},
        np.arange(3, dtype=np.int32),
        {
            "f32": np.array([1.5, 2.5, 3.5], dtype=np.float32),
            "u8": np.array([1, 2, 3], dtype=np.uint8),
            "flag": [True, False, True],
            "label": np.array(["a", "bé", ""]),
        },
    )
    assert batch.tags == {"session": "s1"}
    assert batch.time_ns.dtype == np.int64
    assert batch.fields["f32"].dtype == np.float64
    assert batch.fields["u8"].dtype == np.int64
    assert batch.fields["flag"].dtype == np.bool_
    assert batch.fields["label"].dtype == object
    assert list(batch.fields["label"]) == ["a", "bé", ""]
    assert len(batch) == 3


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"measurement": "eeg"}, "Unknown measurement 'eeg'"),
        ({"measurement": "raw_"}, "Unknown measurement 'raw_'"),
        ({"measurement": "raw_EEG"}, "Unknown measurement 'raw_EEG'"),
        ({"tags": {"subject": "x"}}, "Unknown tag keys ['subject']"),
        ({"tags": {"session": 3}}, "tag values must be strings"),
        ({"time_ns": np.arange(3.0)}, "expected int64 nanoseconds"),
        ({"time_ns": np.zeros((3, 1), dtype=np.int64)}, "must be 1-D"),
        ({"time_ns": np.array([0, 1, 2**63], dtype=np.uint64)}, "beyond the int64 range"),
        ({"fields": {"x": np.arange(2.0)}}, "has shape (2,), expected (3,)"),
        ({"fields": {"session": np.arange(3.0)}}, "Invalid field name 'session'"),
        ({"fields": {"time": np.arange(3.0)}}, "Invalid field name 'time'"),
        ({"fields": {"": np.arange(3.0)}}, "Invalid field name ''"),
        ({"fields": {"c": np.ones(3, dtype=complex)}}, "dtype complex128"),
        ({"fields": {"o": np.array([1, "a", None], dtype=object)}}, "holds 1 (int)"),
        ({"fields": {}}, "no fields"),
    ],
)
def test_batch_rejects_bad_input_with_a_clear_message(
    change: dict[str, object], message: str
) -> None:
    arguments: dict[str, object] = {
        "measurement": "raw_eeg",
        "tags": {"session": "s1"},
        "time_ns": np.arange(3, dtype=np.int64),
        "fields": {"af7": np.arange(3.0)},
    }
    arguments.update(change)
    with pytest.raises(StoreError) as info:
        SeriesBatch(**arguments)  # type: ignore[arg-type]
    assert message in str(info.value)


def test_empty_batch_needs_no_fields() -> None:
    assert len(SeriesBatch("events", {}, np.empty(0, dtype=np.int64))) == 0


# -- SampleBlock conversion ----------------------------------------------------------


def test_seconds_to_ns_rounds_and_rejects_non_finite() -> None:
    t0 = 1_700_000_000.0
    t = t0 + np.arange(512) / 256.0
    ns = seconds_to_ns(t)
    # 256 Hz periods are 3_906_250 ns exactly; float64 seconds keep them to well under 1 µs.
    assert np.all(np.abs(np.diff(ns) - 3_906_250) < 1000)
    assert ns[0] == int(t0) * 1_000_000_000
    with pytest.raises(StoreError, match="finite"):
        seconds_to_ns(np.array([t0, np.nan]))


def test_blocks_to_batches_writes_channels_skips_gap_rows_and_records_gaps() -> None:
    values = np.arange(40.0).reshape(10, 4)
    values[3:6] = np.nan  # three missing samples
    values[8, 1] = np.nan  # one missing channel value only
    gap = Gap(
        "muse/eeg", first_index=3, n_samples=3, t_start=100.0 + 3 / 256, t_end=100.0 + 5 / 256
    )
    block = SampleBlock.regular(
        "muse/eeg", "eeg", ["TP9", "AF7", "AF8", "TP10"], values, 256.0, 100.0, device="muse-1"
    )
    block = SampleBlock(**{**_fields(block), "gaps": (gap,)})
    batches = blocks_to_batches([block], participant="p01", session="s01")
    raw, events = batches
    assert raw.measurement == "raw_eeg"
    assert raw.tags == {
        "participant": "p01",
        "session": "s01",
        "device": "muse-1",
        "stream": "muse/eeg",
    }
    assert list(raw.fields) == ["tp9", "af7", "af8", "tp10"]
    kept = ~np.all(np.isnan(values), axis=1)
    assert len(raw) == int(kept.sum())
    np.testing.assert_array_equal(raw.time_ns, seconds_to_ns(block.t[kept]))
    np.testing.assert_array_equal(raw.fields["af7"], values[kept, 1])
    assert events.measurement == "events"
    assert events.tags == raw.tags
    assert list(events.fields["kind"]) == [GAP_EVENT_KIND]
    assert list(events.fields["label"]) == [gap.reason]
    assert list(events.fields["n_samples"]) == [gap.n_samples]
    assert list(events.fields["first_index"]) == [gap.first_index]
    np.testing.assert_array_equal(events.time_ns, seconds_to_ns(np.array([gap.t_start])))


def test_blocks_to_batches_joins_consecutive_blocks_per_stream(tmp_path: Path) -> None:
    ecg = [
        SampleBlock.regular(
            "h10/ecg",
            "ecg",
            ["ECG"],
            np.arange(73.0) + i,
            130.0,
            10.0 + i * 73 / 130,
            first_index=i * 73,
        )
        for i in range(3)
    ]
    eda = SampleBlock.regular("band/eda", "eda", ["EDA"], np.full(8, 2.0), 4.0, 10.0)
    batches = blocks_to_batches([ecg[0], eda, ecg[1], ecg[2]], session="s")
    assert [(b.measurement, len(b)) for b in batches] == [("raw_ecg", 219), ("raw_eda", 8)]
    with EmbeddedStore(tmp_path) as store:
        store.write(batches)
        frame = store.read("raw_ecg", tags={"session": "s"})
    expected = SampleBlock.concat(ecg)
    np.testing.assert_array_equal(frame["ecg"].to_numpy(), expected.values[:, 0])
    np.testing.assert_array_equal(frame["time_ns"].to_numpy(), seconds_to_ns(expected.t))


def test_blocks_to_batches_writes_gaps_of_a_zero_row_block() -> None:
    gap = Gap("s/eeg", first_index=5, n_samples=3, t_start=1.0, t_end=2.0, reason="backlog")
    block = SampleBlock(
        "s/eeg",
        "eeg",
        ("A",),
        "µV",
        256.0,
        np.zeros(0),
        np.zeros((0, 1)),
        np.zeros(0, dtype=np.int64),
        (gap,),
        "dev",
    )
    (events,) = blocks_to_batches([block], session="x")
    assert events.measurement == "events"
    assert list(events.fields["label"]) == ["backlog"]
    assert list(events.fields["n_samples"]) == [3]


def test_blocks_to_batches_rejects_channels_that_collide_when_lowercased() -> None:
    block = SampleBlock.regular("x/eeg", "eeg", ["AF7", "af7"], np.zeros((4, 2)), 256.0, 0.0)
    with pytest.raises(StoreError, match="collide once lowercased"):
        blocks_to_batches([block])


def _fields(block: SampleBlock) -> dict[str, object]:
    return {name: getattr(block, name) for name in SampleBlock.__dataclass_fields__}


# -- open_store ----------------------------------------------------------------------


def test_open_store_default_location_follows_affectstream_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AFFECTSTREAM_HOME", str(tmp_path / "home"))
    assert default_store_path() == tmp_path / "home" / "store"
    for url in (None, "", "  "):
        with open_store(url) as store:
            assert isinstance(store, EmbeddedStore)
            assert store.database_path == tmp_path / "home" / "store" / "store.sqlite"


def test_open_store_paths_and_file_urls(tmp_path: Path) -> None:
    cases = {
        str(tmp_path / "a"): tmp_path / "a" / "store.sqlite",
        f"file://{tmp_path}/b": tmp_path / "b" / "store.sqlite",
        f"file://localhost{tmp_path}/c%20d": tmp_path / "c d" / "store.sqlite",
        str(tmp_path / "e.sqlite"): tmp_path / "e.sqlite",
    }
    for url, database in cases.items():
        with open_store(url, synchronous="normal") as store:
            assert isinstance(store, EmbeddedStore)
            assert store.database_path == database
        assert database.is_file()
    with open_store(tmp_path / "e.sqlite") as store:  # a PathLike, and an existing file
        assert isinstance(store, EmbeddedStore)
        assert store.database_path == tmp_path / "e.sqlite"


def test_open_store_rejects_unknown_schemes_and_options(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Unknown store URL scheme 'ftp'"):
        open_store("ftp://example.org/x")
    with pytest.raises(ConfigError, match="Unknown option"):
        open_store(str(tmp_path), bucket="x")
    with pytest.raises(ConfigError, match="synchronous"):
        open_store(str(tmp_path), synchronous="sometimes")


def test_open_store_hands_server_urls_to_the_influx_backend(tmp_path: Path) -> None:
    from affectstream.store.influx import InfluxStore

    # Nothing listens on port 9: only construction (and an empty close) is exercised here;
    # the real-server round trips live in the InfluxDB tests.
    store = open_store("influx://127.0.0.1:9/?bucket=b1", spool_dir=tmp_path, close_timeout=0.1)
    try:
        assert isinstance(store, InfluxStore)
        assert store.url == "http://127.0.0.1:9"
        assert store.bucket == "b1"
    finally:
        store.close()


def test_open_store_explains_a_missing_influx_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "affectstream.store.influx", None)  # import now fails
    with pytest.raises(StoreError, match=r"InfluxDB backend .* is not available"):
        open_store("http://127.0.0.1:9")
