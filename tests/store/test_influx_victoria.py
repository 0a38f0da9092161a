"""InfluxStore writing to a real VictoriaMetrics through its genuine ``/api/v2/write``.

VictoriaMetrics answers no InfluxQL, so points are read back with ``/api/v1/export`` and
compared within its documented precision: timestamps floored to whole milliseconds, values
as float64 with about 12 significant digits. Metric names are ``<measurement>_<field>``;
tags become labels.
"""

from __future__ import annotations

import json
import signal
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import ServerProcess, http_request, victoria_server

from affectstream.errors import StoreError
from affectstream.store.base import SeriesBatch
from affectstream.store.influx import InfluxStore

pytestmark = pytest.mark.servers

T0 = 1_760_000_000_000_000_000
# "Floats keep about 12 significant digits": VictoriaMetrics stores a block of samples as
# int64 decimal mantissas with one shared exponent, so the error is bounded relative to
# the largest magnitude in the block (seen: 12 decimals for values up to ~5e6).
RELATIVE_PRECISION = 1e-12


def export(server: ServerProcess, selector: str) -> dict[str, dict[str, list[float]]]:
    """Every sample matching ``selector``, by metric name: {"timestamps": ms, "values": ...}."""
    status, _ = http_request(server.url + "/internal/force_flush")
    assert status == 200
    query = urllib.parse.urlencode({"match[]": selector})
    status, body = http_request(f"{server.url}/api/v1/export?{query}")
    assert status == 200, body
    found: dict[str, dict[str, list[float]]] = {}
    for line in body.splitlines():
        item = json.loads(line)
        entry = found.setdefault(item["metric"]["__name__"], {"timestamps": [], "values": []})
        entry["timestamps"] += item["timestamps"]
        entry["values"] += item["values"]
        entry["labels"] = item["metric"]  # type: ignore[assignment]
    for entry in found.values():
        order = np.argsort(entry["timestamps"], kind="stable")
        entry["timestamps"] = np.asarray(entry["timestamps"])[order].tolist()
        entry["values"] = np.asarray(entry["values"])[order].tolist()
    return found


def signal_batch(session: str, n: int = 1000, seed: int = 0) -> SeriesBatch:
    rng = np.random.default_rng(seed)
    # distinct milliseconds, sub-millisecond parts that the server floors away
    ms = np.sort(rng.choice(10 * n, size=n, replace=False)).astype(np.int64)
    time_ns = T0 + ms * 1_000_000 + rng.integers(0, 1_000_000, size=n)
    return SeriesBatch(
        "raw_eeg",
        {"participant": "p1", "session": session, "device": "muse"},
        time_ns,
        {
            "tp9": rng.normal(0, 50, size=n) * 10.0 ** rng.integers(-6, 6, size=n),
            "index": np.arange(n, dtype=np.int64),
        },
    )


def assert_exported(server: ServerProcess, batch: SeriesBatch) -> None:
    found = export(server, f'{{session="{batch.tags["session"]}"}}')
    assert set(found) == {f"{batch.measurement}_{name}" for name in batch.fields}
    expected_ms = (batch.time_ns // 1_000_000).tolist()
    for name, column in batch.fields.items():
        entry = found[f"{batch.measurement}_{name}"]
        labels = entry["labels"]
        assert {k: labels[k] for k in batch.tags} == dict(batch.tags)  # type: ignore[call-overload]
        assert entry["timestamps"] == expected_ms  # once each: no duplicate, none lost
        values = column.astype(np.float64)
        bound = RELATIVE_PRECISION * float(np.max(np.abs(values)))
        np.testing.assert_allclose(entry["values"], values, rtol=0, atol=bound)


def test_round_trip_within_documented_precision(
    victoria: ServerProcess, tmp_path: Path, unique_session: str
) -> None:
    batch = signal_batch(unique_session)
    # gzip on explicitly (off by default for a local server): VictoriaMetrics decodes it.
    with InfluxStore(
        victoria.url, bucket="ignored", spool_dir=tmp_path / "spool", gzip=True
    ) as store:
        store.write([batch])
        store.flush(timeout=30)
    assert_exported(victoria, batch)


def test_replayed_points_land_once(
    victoria: ServerProcess, tmp_path: Path, unique_session: str
) -> None:
    # As after a crash between the server's answer and the spool's cursor update.
    batch = signal_batch(unique_session, n=200, seed=1)
    with InfluxStore(victoria.url, bucket="b", spool_dir=tmp_path / "spool") as store:
        store.write([batch])
        store.flush(timeout=30)
        store.write([batch])
        store.flush(timeout=30)
    # A server property: VictoriaMetrics keeps duplicates unless started with
    # -dedup.minScrapeInterval (the fixture uses 1ms), so deployments should set it too.
    assert_exported(victoria, batch)


def test_reads_explain_that_victoriametrics_has_no_influxql(
    victoria: ServerProcess, tmp_path: Path
) -> None:
    with (
        InfluxStore(victoria.url, spool_dir=tmp_path / "spool") as store,
        pytest.raises(StoreError, match="does not speak InfluxQL"),
    ):
        store.read("raw_eeg")


def test_without_dedup_victoriametrics_keeps_both_copies(tmp_path: Path) -> None:
    """The server property the dedup flag exists for (why deployments should set it)."""
    server = victoria_server(tmp_path / "victoria", dedup=False)
    server.start()
    try:
        line = b"raw_eda,session=dup eda=1.5 1760000000000000000\n"
        for _ in range(2):
            assert http_request(server.url + "/api/v2/write", method="POST", data=line)[0] == 204
        found = export(server, '{session="dup"}')
    finally:
        server.stop()
    assert found["raw_eda_eda"]["timestamps"] == [1_760_000_000_000] * 2


@pytest.fixture
def own_victoria(tmp_path: Path) -> Iterator[ServerProcess]:
    server = victoria_server(tmp_path / "victoria")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.slow
def test_outage_on_victoriametrics_loses_nothing(
    own_victoria: ServerProcess, tmp_path: Path, unique_session: str
) -> None:
    batches = [signal_batch(unique_session, n=300, seed=s) for s in range(3)]
    # one session, three disjoint time spans
    batches = [
        SeriesBatch(b.measurement, b.tags, b.time_ns + i * 10**13, b.fields)
        for i, b in enumerate(batches)
    ]
    store = InfluxStore(
        own_victoria.url,
        spool_dir=tmp_path / "spool",
        batch_size=100,
        retry_interval=0.05,
        max_retry_delay=0.3,
    )
    try:
        store.write([batches[0]])
        own_victoria.stop(signal.SIGTERM)
        store.write([batches[1]])
        deadline = time.monotonic() + 30
        while store.last_error is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert store.last_error is not None and store.pending_bytes > 0
        own_victoria.start()
        store.write([batches[2]])
        store.flush(timeout=60)
    finally:
        store.close()
    merged = SeriesBatch(
        batches[0].measurement,
        batches[0].tags,
        np.concatenate([b.time_ns for b in batches]),
        {k: np.concatenate([b.fields[k] for b in batches]) for k in batches[0].fields},
    )
    assert_exported(own_victoria, merged)
