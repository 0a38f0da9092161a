"""A flush waits while the server acknowledges, and gives up only when nothing moves.

Against the suite's real InfluxDB 1.6.7 behind a v2-write shim of this test's own, whose
``write_delay`` holds each write before forwarding it (a slow or loaded server; the
storage engine behind it is real).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import ServerProcess, create_database

from affectstream.errors import StoreUnavailableError
from affectstream.store.influx import InfluxStore
from affectstream.store.influx_devserver import V2WriteShim

pytestmark = [pytest.mark.servers]

T0 = 1_760_000_000_000_000_000
LINES_PER_RECORD = 20  # the store's batch_size: lines per spooled record


@pytest.fixture
def slow_shim(influx_server: ServerProcess) -> Iterator[tuple[V2WriteShim, str]]:
    """A shim of this test's own on the session's InfluxDB, and a fresh database."""
    database = f"flush_{uuid.uuid4().hex[:12]}"
    create_database(influx_server.url, database)
    shim = V2WriteShim(influx_server.port).start()
    try:
        yield shim, database
    finally:
        shim.close()


def lines(session: str, n: int) -> str:
    """``n`` points of one series; point k carries value k (so a loss shows)."""
    return "".join(f"raw_test,session={session} x={k}i {T0 + k}\n" for k in range(n))


def store_on(shim: V2WriteShim, database: str, spool: Path) -> InfluxStore:
    return InfluxStore(
        shim.url,
        bucket=database,
        spool_dir=spool,
        batch_size=LINES_PER_RECORD,
        retry_interval=0.05,
        max_retry_delay=0.5,
        close_timeout=0.5,
    )


def test_a_slow_server_that_keeps_acknowledging_is_waited_for(
    slow_shim: tuple[V2WriteShim, str], tmp_path: Path
) -> None:
    shim, database = slow_shim
    shim.write_delay = 0.4
    stall = 2.0
    n = 40 * LINES_PER_RECORD  # 40 records, a few per request: several requests
    with store_on(shim, database, tmp_path / "spool") as store:
        store.write_line_protocol(lines("slow", n))
        started = time.monotonic()
        store.flush(timeout=stall)
        waited = time.monotonic() - started
        assert store.pending_bytes == 0
        shim.write_delay = 0.0
        stored = store.read("raw_test", tags={"session": "slow"})
    # The test means something only if the whole drain took longer than the stall bound
    # (a fixed deadline of that length would have failed); load only makes it longer.
    assert shim.n_writes * 0.4 > stall and waited > stall
    assert stored["x"].tolist() == list(range(n))


def test_a_server_that_acknowledges_nothing_fails_the_flush_and_says_what_stays(
    slow_shim: tuple[V2WriteShim, str], tmp_path: Path
) -> None:
    shim, database = slow_shim
    shim.write_delay = 3.0  # each request held longer than the stall bound below
    n = 5 * LINES_PER_RECORD
    with store_on(shim, database, tmp_path / "spool") as store:
        store.write_line_protocol(lines("stuck", n))
        with pytest.raises(StoreUnavailableError, match="nothing acknowledged for 1 s") as info:
            store.flush(timeout=1.0)
        pending = store.pending_bytes
        assert pending > 0 and f"{pending} bytes stay safe in" in str(info.value)
        assert str(tmp_path / "spool") in str(info.value)
        # Nothing was lost: once the server answers again, the same store delivers it all.
        shim.write_delay = 0.0
        store.flush(timeout=30.0)
        stored = store.read("raw_test", tags={"session": "stuck"})
    assert np.array_equal(stored["x"].to_numpy(), np.arange(n))


def test_a_flush_waits_no_longer_than_its_limit_while_the_server_acknowledges(
    slow_shim: tuple[V2WriteShim, str], tmp_path: Path
) -> None:
    """A backlog that takes longer than ``limit`` to drain is left in the spool, reported,
    and sent later: closing a session never waits for hours of backlog."""
    shim, database = slow_shim
    shim.write_delay = 0.4  # acknowledges every 0.4 s: never a stall of 5 s
    n = 40 * LINES_PER_RECORD
    with store_on(shim, database, tmp_path / "spool") as store:
        store.write_line_protocol(lines("limit", n))
        with pytest.raises(StoreUnavailableError, match=r"within 1\.5 s") as info:
            store.flush(timeout=5.0, limit=1.5)
        pending = store.pending_bytes
        assert pending > 0 and f"{pending} bytes stay safe in" in str(info.value)
        shim.write_delay = 0.0
        store.flush(timeout=30.0)
        stored = store.read("raw_test", tags={"session": "limit"})
    assert stored["x"].tolist() == list(range(n))
