"""InfluxStore against a real InfluxDB: exact round trips, read semantics, errors.

Runs on the local InfluxDB 1.6.7 (real storage engine, v2 writes mapped by the test proxy)
and, when AFFECTSTREAM_TEST_INFLUX_URL is set, on an external InfluxDB 2.x/3.x.
"""

from __future__ import annotations

import logging
import socket
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from conftest import InfluxTarget, ServerProcess, create_database, free_port
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from influxdb_client import Point

from affectstream.errors import ConfigError, StoreError, StoreUnavailableError
from affectstream.store.base import SeriesBatch
from affectstream.store.influx import InfluxStore, is_loopback, normalize_url, parse_series_key
from affectstream.store.influx_lineprotocol import batch_to_line_protocol
from affectstream.store.spool import SpoolFullError

pytestmark = pytest.mark.servers

T0 = 1_700_000_000_123_456_789  # not a whole microsecond: ns precision matters


def open_store(target: InfluxTarget, spool: Path, **options: object) -> InfluxStore:
    """An InfluxStore on ``target`` with fast retries (tests wait on real servers)."""
    settings: dict[str, object] = {"retry_interval": 0.05, "max_retry_delay": 0.5}
    settings.update(options)
    return InfluxStore(
        target.url,
        token=target.token,
        org=target.org,
        bucket=target.bucket,
        spool_dir=spool,
        **settings,  # type: ignore[arg-type]
    )


def mixed_batch(session: str, n: int = 257, seed: int = 0, device: str = "dev\\ice") -> SeriesBatch:
    """Points of every field type, with awkward values, tags and timestamps.

    The default device tag holds a backslash, which InfluxDB keeps literally in tags;
    influxdb-client's Point escapes it (``\\\\``), so Point tests use another device name.
    """
    rng = np.random.default_rng(seed)
    time_ns = T0 + np.cumsum(rng.integers(1, 3_906_251, size=n)).astype(np.int64)
    floats = rng.normal(size=n) * 10.0 ** rng.integers(-300, 300, size=n)
    floats[:4] = [np.nextafter(1.0, 2.0), 5e-324, 1.7976931348623157e308, 0.1]
    ints = rng.integers(-(2**62), 2**62, size=n, dtype=np.int64)
    ints[:2] = [np.iinfo(np.int64).max, np.iinfo(np.int64).min + 1]
    words = ["plain", 'quote " inside', "back\\slash", "comma, equals=, space", "µV ünïcödé"]
    strings = np.array([words[i % len(words)] for i in range(n)], dtype=object)
    return SeriesBatch(
        "events",
        {"participant": "p 1,x=y", "session": session, "device": device},
        time_ns,
        {
            "value": floats,
            "count": ints,
            "flag": rng.integers(0, 2, size=n).astype(bool),
            "label": strings,
            "odd key,x=y": np.arange(n, dtype=np.float64) / 7,  # a field key to escape
        },
    )


def assert_frame_matches(frame: object, batch: SeriesBatch) -> None:
    """Every timestamp, tag and field value comes back bit for bit."""
    import pandas as pd

    assert isinstance(frame, pd.DataFrame)
    assert frame["time_ns"].to_numpy().tolist() == batch.time_ns.tolist()
    for key, value in batch.tags.items():
        assert set(frame[key]) == {value}
    floats = frame["value"].to_numpy(dtype=np.float64)
    assert floats.view(np.int64).tolist() == batch.fields["value"].view(np.int64).tolist()
    assert frame["count"].dtype == np.int64
    assert frame["count"].tolist() == batch.fields["count"].tolist()
    assert frame["flag"].tolist() == batch.fields["flag"].tolist()
    assert frame["label"].tolist() == batch.fields["label"].tolist()
    assert frame["odd key,x=y"].tolist() == batch.fields["odd key,x=y"].tolist()


def test_fast_path_round_trip_is_exact(
    influx_target: InfluxTarget, unique_session: str, tmp_path: Path
) -> None:
    batch = mixed_batch(unique_session)
    with open_store(influx_target, tmp_path / "spool") as store:
        store.write([batch])
        store.flush(timeout=30)
        frame = store.read("events", tags={"session": unique_session})
        series = store.series(unique_session)
    assert_frame_matches(frame, batch)
    assert series == [("events", dict(batch.tags))]  # escaped tags parse back exactly


def test_point_objects_round_trip_is_exact(
    influx_target: InfluxTarget, unique_session: str, tmp_path: Path
) -> None:
    batch = mixed_batch(unique_session, seed=1, device="dev 1")
    points = []
    for i, t in enumerate(batch.time_ns.tolist()):
        point = Point("events").time(t)
        for key, value in batch.tags.items():
            point = point.tag(key, value)
        for name, column in batch.fields.items():
            point = point.field(name, column[i].item() if hasattr(column[i], "item") else column[i])
        points.append(point)
    # gzip on explicitly: the servers here are local, where it is off by default.
    with open_store(influx_target, tmp_path / "spool", gzip=True) as store:
        store.write_points(points)
        store.flush(timeout=30)
        frame = store.read("events", tags={"session": unique_session})
    assert_frame_matches(frame, batch)


def test_fast_path_formats_like_point_objects() -> None:
    batch = mixed_batch("s", n=50, seed=2, device="dev=1")
    fast, n_lines = batch_to_line_protocol(batch)
    lines = []
    for i, t in enumerate(batch.time_ns.tolist()):
        point = Point("events").time(t)
        for key, value in batch.tags.items():
            point = point.tag(key, value)
        for name, column in batch.fields.items():
            point = point.field(name, column[i].item() if hasattr(column[i], "item") else column[i])
        lines.append(point.to_line_protocol())
    # Point sorts fields by name; compare each line's parts as sets.
    fast_lines = fast.decode().splitlines()
    assert n_lines == len(fast_lines) == len(lines)
    for ours, theirs in zip(fast_lines, lines, strict=True):
        assert ours.split(" ")[0] == theirs.split(" ")[0]
        assert ours.rsplit(" ", 1)[1] == theirs.rsplit(" ", 1)[1]


def test_missing_values_are_not_written_and_never_overwrite(
    influx_target: InfluxTarget, unique_session: str, tmp_path: Path
) -> None:
    time_ns = np.array([T0, T0 + 1, T0 + 2], dtype=np.int64)
    tags = {"session": unique_session, "stream": "ecg"}
    first = SeriesBatch(
        "features",
        tags,
        time_ns,
        {"a": np.array([1.0, np.nan, np.nan]), "b": np.array([2.0, 3.0, np.nan])},
    )
    # Same points again: NaN must not erase a stored value; a new value overwrites.
    second = SeriesBatch(
        "features", tags, time_ns[:1], {"a": np.array([np.nan]), "b": np.array([20.0])}
    )
    with open_store(influx_target, tmp_path / "spool") as store:
        store.write([first])
        store.write([second])
        store.flush(timeout=30)
        frame = store.read("features", tags={"session": unique_session})
    assert frame["time_ns"].tolist() == [T0, T0 + 1]  # the all-NaN row is no point
    assert frame["a"].tolist()[0] == 1.0 and np.isnan(frame["a"].tolist()[1])
    assert frame["b"].tolist() == [20.0, 3.0]


def test_read_filters_tags_time_and_fields(
    influx_target: InfluxTarget, unique_session: str, tmp_path: Path
) -> None:
    n = 100
    time_ns = T0 + np.arange(n, dtype=np.int64) * 1_000_000
    values = np.arange(n, dtype=np.float64)
    batches = [
        SeriesBatch(
            "quality",
            {"session": unique_session, "stream": stream},
            time_ns,
            {"q": values + k, "r": -values},
        )
        for k, stream in enumerate(["ecg", "eda"])
    ]
    with open_store(influx_target, tmp_path / "spool") as store:
        store.write(batches)
        store.flush(timeout=30)
        start, stop = int(time_ns[10]), int(time_ns[20])
        frame = store.read(
            "quality",
            tags={"session": unique_session, "stream": "eda"},
            start_ns=start,
            stop_ns=stop,
            fields=["q"],
        )
        everything = store.read("quality", tags={"session": unique_session})
        # "" selects series without that tag, as in the embedded store (the base contract).
        untagged = store.read("quality", tags={"session": unique_session, "model": ""})
        no_stream = store.read("quality", tags={"session": unique_session, "stream": ""})
        series = store.series(unique_session)
    assert list(frame.columns) == ["time_ns", "session", "stream", "q"]
    assert frame["time_ns"].tolist() == time_ns[10:20].tolist()
    assert frame["q"].tolist() == (values[10:20] + 1).tolist()
    assert len(everything) == 2 * n
    assert len(untagged) == 2 * n and len(no_stream) == 0
    assert np.all(np.diff(everything["time_ns"].to_numpy()) >= 0)
    assert sorted(s[1]["stream"] for s in series) == ["ecg", "eda"]
    assert {s[0] for s in series} == {"quality"}


def test_sessions_and_delete_session(
    influx_target: InfluxTarget, unique_session: str, tmp_path: Path
) -> None:
    other = unique_session + "-other"
    time_ns = T0 + np.arange(10, dtype=np.int64) * 7
    with open_store(influx_target, tmp_path / "spool") as store:
        for session in (unique_session, other):
            store.write(
                [
                    SeriesBatch(
                        "affect",
                        {"participant": "p9", "session": session, "model": "m1"},
                        time_ns,
                        {"arousal": np.linspace(0, 1, 10), "valence": np.linspace(1, 0, 10)},
                    )
                ]
            )
        store.flush(timeout=30)
        infos = {info.session: info for info in store.sessions()}
        assert infos[unique_session].participant == "p9"
        assert infos[unique_session].start_ns == time_ns[0]
        assert infos[unique_session].stop_ns == time_ns[-1] + 1
        assert infos[unique_session].n_points == 10
        store.delete_session(unique_session)
        assert store.read("affect", tags={"session": unique_session}).empty
        assert len(store.read("affect", tags={"session": other})) == 10
        assert unique_session not in {info.session for info in store.sessions()}


def test_refused_batch_is_kept_aside_not_dropped(
    influx_target: InfluxTarget,
    unique_session: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    tags = {"session": unique_session}
    as_int = SeriesBatch("features", tags, np.array([T0], dtype=np.int64), {"x": np.array([1])})
    as_float = SeriesBatch(
        "features", tags, np.array([T0 + 1], dtype=np.int64), {"x": np.array([1.5])}
    )
    after = SeriesBatch(
        "features", tags, np.array([T0 + 2], dtype=np.int64), {"y": np.array([2.5])}
    )
    spool = tmp_path / "spool"
    with caplog.at_level(logging.ERROR), open_store(influx_target, spool) as store:
        store.write([as_int])
        store.flush(timeout=30)
        store.write([as_float])  # field type conflict: the server refuses it for good
        store.write([after])
        store.flush(timeout=30)
        frame = store.read("features", tags=tags)
    assert frame["time_ns"].tolist() == [T0, T0 + 2]
    rejected = list((spool / "rejected").glob("*.lp"))
    assert len(rejected) == 1
    # The batch as sent (the server may have stored its other lines: a partial write).
    assert batch_to_line_protocol(as_float)[0] in rejected[0].read_bytes()
    assert "conflict" in rejected[0].with_suffix(".txt").read_text()
    assert any("refused" in r.getMessage() for r in caplog.records)


def test_missing_database_keeps_data_spooled_until_it_exists(
    influx_server: ServerProcess, influx_proxy: object, tmp_path: Path, unique_session: str
) -> None:
    database = "later_" + unique_session.replace("-", "_")
    target = InfluxTarget("influxdb-1.6.7", influx_proxy.url, database)  # type: ignore[attr-defined]
    batch = mixed_batch(unique_session, n=20)
    with open_store(target, tmp_path / "spool") as store:
        store.write([batch])
        with pytest.raises(StoreUnavailableError, match="did not take"):
            store.flush(timeout=0.5)
        assert store.pending_bytes > 0
        assert store.last_error is not None and "404" in store.last_error
        create_database(influx_server.url, database)
        store.flush(timeout=30)
        assert_frame_matches(store.read("events"), batch)


def test_unreachable_server_gives_clear_errors_quickly(tmp_path: Path) -> None:
    port = free_port()  # nothing listens here
    url = f"http://127.0.0.1:{port}"
    store = InfluxStore(
        url, bucket="b", spool_dir=tmp_path / "spool", close_timeout=1.0, timeout=2.0
    )
    assert not store.ping()
    with pytest.raises(StoreUnavailableError, match=f"127.0.0.1:{port}"):
        store.read("features")
    store.write([mixed_batch("s", n=5)])
    with pytest.raises(StoreUnavailableError, match="stay safe in"):
        store.flush(timeout=0.5)
    started = time.monotonic()
    store.close()
    # Bounded close: close_timeout, plus at most one request timeout for the sender.
    assert time.monotonic() - started < 1.0 + 2.0 + 2.0
    # The data was not lost: a new store on the same spool still has it pending.
    reopened = InfluxStore(url, bucket="b", spool_dir=tmp_path / "spool", close_timeout=0.1)
    assert reopened.pending_bytes > 0
    reopened.close()


def test_blackhole_server_does_not_hang_reads(tmp_path: Path) -> None:
    # A server that accepts connections but never answers.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        store = InfluxStore(
            url, bucket="b", spool_dir=tmp_path / "spool", timeout=0.5, close_timeout=0.5
        )
        try:
            with pytest.raises(StoreUnavailableError, match="cannot be reached"):
                store.read("features")
        finally:
            store.close()


def test_configuration_errors_name_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AFFECTSTREAM_INFLUX_URL", raising=False)
    with pytest.raises(ConfigError, match="AFFECTSTREAM_INFLUX_URL"):
        InfluxStore(spool_dir=tmp_path / "a")
    with pytest.raises(ConfigError, match="ftp://x"):
        InfluxStore("ftp://x", spool_dir=tmp_path / "b")
    monkeypatch.setenv("AFFECTSTREAM_INFLUX_URL", "influx://h:1?bucket=bk&org=o")
    monkeypatch.setenv("AFFECTSTREAM_INFLUX_TOKEN", "tok")
    store = InfluxStore(spool_dir=tmp_path / "c", close_timeout=0.1)
    try:
        assert (store.url, store.bucket, store.org, store.token) == ("http://h:1", "bk", "o", "tok")
        with pytest.raises(StoreError, match="in use"):
            InfluxStore(spool_dir=tmp_path / "c")
    finally:
        store.close()


def test_helpers_parse_and_normalise() -> None:
    assert parse_series_key(r"raw_eeg,device=d\ev,participant=p\ 1\,x\=y,session=s") == (
        "raw_eeg",
        {"device": "d\\ev", "participant": "p 1,x=y", "session": "s"},
    )
    assert normalize_url("https://db.example:8086/") == ("https://db.example:8086", {})


_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"),
    min_size=1,
    max_size=12,
)


@pytest.mark.slow
@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    pairs=st.lists(
        st.tuples(_TEXT.filter(lambda s: not s.endswith("\\")), _TEXT), min_size=1, max_size=15
    )
)
def test_any_tag_and_string_value_round_trips(
    pairs: list[tuple[str, str]],
    influx_target: InfluxTarget,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    device_values = [device for device, _ in pairs]
    labels = np.array([label for _, label in pairs], dtype=object)
    session = f"s-{uuid.uuid4().hex[:10]}"
    time_ns = T0 + np.arange(len(pairs), dtype=np.int64)
    batches = [
        SeriesBatch(
            "events",
            {"session": session, "device": device},
            time_ns[i : i + 1],
            {"label": labels[i : i + 1]},
        )
        for i, device in enumerate(device_values)
    ]
    with open_store(influx_target, tmp_path_factory.mktemp("spool")) as store:
        store.write(batches)
        store.flush(timeout=30)
        frame = store.read("events", tags={"session": session})
    assert frame["time_ns"].tolist() == time_ns.tolist()
    assert frame["device"].tolist() == device_values
    assert frame["label"].tolist() == labels.tolist()


def test_values_line_protocol_cannot_carry_are_refused_clearly(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    one = np.array([T0], dtype=np.int64)
    with InfluxStore(url, spool_dir=tmp_path, close_timeout=0.1) as store:
        cases = [
            (SeriesBatch("events", {"session": "a\nb"}, one, {"x": np.ones(1)}), "line break"),
            (SeriesBatch("events", {"session": "ends\\"}, one, {"x": np.ones(1)}), "backslash"),
            (SeriesBatch("events", {}, one, {"x": np.array([np.inf])}), "finite"),
            (
                SeriesBatch("events", {}, one, {"label": np.array(["two\nlines"], dtype=object)}),
                "line break",
            ),
        ]
        # Each point is refused alone, counted and explained; nothing is half-written.
        for i, (batch, reason) in enumerate(cases, start=1):
            store.write([batch])
            report = store.delivery()
            assert report.rejected_points == i
            assert reason in report.last_rejection
        assert store.pending_bytes == 0


def test_full_spool_refuses_writes_with_the_server_named(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # down: nothing drains the spool
    batch = mixed_batch("full", n=50)
    size = len(batch_to_line_protocol(batch)[0])
    store = InfluxStore(
        url, spool_dir=tmp_path, spool_max_bytes=3 * size, on_full="raise", close_timeout=0.1
    )
    try:
        store.write([batch])
        store.write([batch])
        with pytest.raises(SpoolFullError, match=f"127.0.0.1:{url.rsplit(':', 1)[1]}"):
            store.write([batch])
        assert 2 * size < store.pending_bytes <= 3 * size  # the two accepted writes, kept
    finally:
        store.close()


def test_default_spool_lives_with_the_embedded_store_one_per_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AFFECTSTREAM_SPOOL_DIR", raising=False)
    monkeypatch.setenv("AFFECTSTREAM_HOME", str(tmp_path))
    first = InfluxStore(f"http://127.0.0.1:{free_port()}", close_timeout=0.1)
    second = InfluxStore(f"http://127.0.0.1:{free_port()}", close_timeout=0.1)
    try:
        assert first.spool_dir.parent == second.spool_dir.parent == tmp_path / "spool"
        assert first.spool_dir != second.spool_dir
    finally:
        first.close()
        second.close()


def test_gzip_is_off_only_for_servers_on_this_machine(tmp_path: Path) -> None:
    assert is_loopback("http://127.0.0.1:8086") and is_loopback("http://[::1]:8086")
    assert is_loopback("http://localhost:8086")
    assert not is_loopback("http://influx.example.org:8086")
    assert not is_loopback("http://10.1.2.3:8086")
    for url, expected in (("http://127.0.0.1:9", False), ("http://influx.invalid:9", True)):
        with InfluxStore(url, spool_dir=tmp_path / str(expected), close_timeout=0) as store:
            assert store.gzip is expected
    with InfluxStore("http://127.0.0.1:9", spool_dir=tmp_path / "on", gzip=True) as store:
        assert store.gzip is True
