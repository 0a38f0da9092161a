"""Nothing is lost: a server stopped mid-stream, and a writer killed with SIGKILL.

Both run against a dedicated real InfluxDB 1.6.7 (its own data directory and port, so it
can be stopped and restarted on them) behind the product's v2-write shim (URL mapping only).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import ServerProcess, create_database, influxd_server

from affectstream.store.base import SeriesBatch
from affectstream.store.influx import InfluxStore
from affectstream.store.influx_devserver import V2WriteShim
from affectstream.store.spool import Spool

pytestmark = [pytest.mark.servers, pytest.mark.slow]

T0 = 1_750_000_000_000_000_001
POINTS_PER_BATCH = 500
PERIOD_NS = 3_906_250  # 256 Hz


def ecg_batch(index: int, session: str) -> SeriesBatch:
    """Batch ``index`` of a 256 Hz stream; sample k carries value k (so loss shows)."""
    k = index * POINTS_PER_BATCH + np.arange(POINTS_PER_BATCH, dtype=np.int64)
    return SeriesBatch(
        "raw_ecg",
        {"session": session, "device": "h10"},
        T0 + k * PERIOD_NS,
        {"ch1": k.astype(np.float64) * 0.5, "index": k},
    )


def wait_for(condition: object, timeout: float = 30.0) -> None:
    """Poll a condition of a real server/process (no event exists to wait on)."""
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {condition}")
        time.sleep(0.02)


@pytest.fixture
def own_influx(tmp_path: Path) -> Iterator[tuple[ServerProcess, V2WriteShim]]:
    server = influxd_server(tmp_path / "influxd")
    server.start()
    proxy = V2WriteShim(server.port, record_writes=True).start()
    try:
        create_database(server.url, "outage")
        yield server, proxy
    finally:
        proxy.close()
        server.stop()


def first_delivery_order(proxy: V2WriteShim) -> list[int]:
    """Timestamps in the order the server first acknowledged them."""
    seen: dict[int, None] = {}
    for body in proxy.accepted_writes:
        for line in body.splitlines():
            seen.setdefault(int(line.rsplit(b" ", 1)[1]), None)
    return list(seen)


def test_server_stopped_mid_stream_every_point_lands_once_in_order(
    own_influx: tuple[ServerProcess, V2WriteShim], tmp_path: Path
) -> None:
    server, proxy = own_influx
    n_batches = 30
    store = InfluxStore(
        proxy.url,
        bucket="outage",
        spool_dir=tmp_path / "spool",
        batch_size=POINTS_PER_BATCH,
        retry_interval=0.05,
        max_retry_delay=0.3,
    )
    try:
        for i in range(5):
            store.write([ecg_batch(i, "outage")])
        store.flush(timeout=30)
        for i in range(5, 12):
            store.write([ecg_batch(i, "outage")])
        server.stop(signal.SIGTERM)  # mid-stream: the sender is busy with batches 5-11
        sizes = []
        for i in range(12, 22):
            store.write([ecg_batch(i, "outage")])  # returns although the server is gone
            sizes.append(store.pending_bytes)
        wait_for(lambda: store.last_error is not None)
        assert sizes == sorted(sizes) and sizes[-1] > sizes[0]  # the spool grows
        server.start()  # same data directory, same port
        for i in range(22, n_batches):
            store.write([ecg_batch(i, "outage")])
        store.flush(timeout=60)
        assert store.pending_bytes == 0
        total = n_batches * POINTS_PER_BATCH
        assert store.count("raw_ecg", "ch1") == total
        frame = store.read("raw_ecg", tags={"session": "outage"})
    finally:
        store.close()
    k = np.arange(total, dtype=np.int64)
    assert frame["time_ns"].tolist() == (T0 + k * PERIOD_NS).tolist()
    assert frame["index"].tolist() == k.tolist()
    assert frame["ch1"].tolist() == (k * 0.5).tolist()
    assert first_delivery_order(proxy) == (T0 + k * PERIOD_NS).tolist()


_WRITER = """
import sys
import numpy as np
from affectstream.store.base import SeriesBatch
from affectstream.store.influx import InfluxStore
from affectstream.store.influx_devserver import V2WriteShim

url, bucket, spool = sys.argv[1:4]
store = InfluxStore(url, bucket=bucket, spool_dir=spool, batch_size=100, retry_interval=0.05)
for i in range(100_000):
    k = i * 100 + np.arange(100, dtype=np.int64)
    store.write([SeriesBatch("raw_eda", {"session": "crash"}, {T0} + k * 1_000_003,
                             {{"eda": k * 0.25, "index": k}})])
    print(i, flush=True)  # batch i is in the spool (fsynced): acknowledged to its writer
"""


def test_writer_killed_then_restarted_replays_the_spool(
    own_influx: tuple[ServerProcess, V2WriteShim], tmp_path: Path
) -> None:
    _server, proxy = own_influx
    proxy.write_delay = 0.05  # a slow server: the spool holds a backlog when the kill comes
    spool_dir = tmp_path / "spool"
    script = _WRITER.replace("{T0}", str(T0)).replace("{{", "{").replace("}}", "}")
    writer = subprocess.Popen(
        [sys.executable, "-c", script, proxy.url, "outage", str(spool_dir)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout is not None
    last_acknowledged = -1
    try:
        for line in writer.stdout:
            last_acknowledged = int(line)
            if last_acknowledged >= 40:
                break
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(10)
    assert last_acknowledged >= 40, "the writer died before writing"
    probe = Spool(spool_dir)
    backlog = probe.pending_bytes
    probe.close()
    assert backlog > 0  # the kill left unsent points behind
    proxy.write_delay = 0.0
    with InfluxStore(proxy.url, bucket="outage", spool_dir=spool_dir, retry_interval=0.05) as store:
        store.flush(timeout=60)
        frame = store.read("raw_eda", tags={"session": "crash"})
    k = frame["index"].to_numpy()
    # Every batch acknowledged to the writer landed; beyond it only whole batches that the
    # kill caught in flight, each once, with its exact values.
    assert len(k) % 100 == 0 and len(k) >= (last_acknowledged + 1) * 100
    assert k.tolist() == list(range(len(k)))
    assert frame["eda"].tolist() == (k * 0.25).tolist()
    assert frame["time_ns"].tolist() == (T0 + k * 1_000_003).tolist()
