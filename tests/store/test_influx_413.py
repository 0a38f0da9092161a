"""HTTP 413 from a real influxd (a small max-body-size) through the dev-server shim.

Before: the shim turned influxd's 413 (sent before it closes an oversized upload) into a
503, so the store retried the same batch forever and the bucket stalled behind it.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from affectstream.store.base import SeriesBatch
from affectstream.store.influx import InfluxStore
from affectstream.store.influx_devserver import LocalInfluxDB

pytestmark = pytest.mark.servers

LIMIT = 100_000  # bytes per request the server takes
T0 = 1_700_000_000_000_000_000


@pytest.fixture(scope="module")
def small_server() -> Iterator[LocalInfluxDB]:
    if shutil.which("influxd") is None:
        pytest.skip("influxd is not installed (apt-get install influxdb)")
    with LocalInfluxDB(database="small", max_body_size=LIMIT) as server:
        yield server


def store(server: LocalInfluxDB, spool: Path) -> InfluxStore:
    # One record of every write (batch_size lines), far above the server's limit.
    return InfluxStore(
        server.url, bucket=server.database, spool_dir=spool, batch_size=1_000_000,
        retry_interval=0.05, max_retry_delay=0.5, close_timeout=30,
    )  # fmt: skip


def test_oversized_batch_is_split_and_every_point_stored(
    small_server: LocalInfluxDB, tmp_path: Path
) -> None:
    n = 40_000
    values = np.arange(n, dtype=np.float64) + 0.25
    batch = SeriesBatch(
        "raw_eda", {"session": "big"}, T0 + np.arange(n, dtype=np.int64), {"eda": values}
    )
    with store(small_server, tmp_path / "spool") as influx:
        influx.write([batch])
        assert influx.spool.pending_bytes > LIMIT  # one request would be refused
        influx.flush(timeout=60)
        report = influx.delivery()
        stored = influx.read("raw_eda", tags={"session": "big"})
    assert report.complete and report.rejected_points == 0
    assert stored["eda"].tolist() == values.tolist()
    assert not (tmp_path / "spool" / "rejected").exists()


def test_a_single_line_over_the_limit_is_set_aside_and_reported(
    small_server: LocalInfluxDB, tmp_path: Path
) -> None:
    huge = 'events,session=huge label="' + "x" * (LIMIT + 10) + f'" {T0}\n'
    small = [f"events,session=huge n={i}i {T0 + 1 + i}\n" for i in range(10)]
    with store(small_server, tmp_path / "spool") as influx:
        influx.write_line_protocol("".join([small[0], huge, *small[1:]]))
        influx.flush(timeout=60)
        report = influx.delivery()
        stored = influx.read("events", tags={"session": "huge"}, fields=["n"])
    assert report.rejected_points == 1 and "413" in report.last_rejection
    assert stored["n"].tolist() == list(range(10))
    assert [p.read_text() for p in (tmp_path / "spool" / "rejected").glob("*.lp")] == [huge]
