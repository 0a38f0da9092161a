"""A bug in the send path surfaces; it is not retried forever as if the server were down.

The store under test is real except for ``_send``, which a test-only subclass
(``BuggySendStore``, a fake) replaces with code that raises TypeError, standing in for a
programming error. No server is needed: the bug happens before any request.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from affectstream.errors import StoreUnavailableError
from affectstream.store.base import SeriesBatch
from affectstream.store.influx import InfluxStore

T0 = 1_700_000_000_000_000_000


class BuggySendStore(InfluxStore):
    """Fake: an InfluxStore whose send path has a bug."""

    calls = 0

    def _send(self, payload: bytes) -> None:
        type(self).calls += 1
        raise TypeError("unsupported operand type(s) for +: 'int' and 'str'")


def test_a_bug_in_the_sender_stops_it_with_its_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[threading.ExceptHookArgs] = []
    monkeypatch.setattr(threading, "excepthook", seen.append)
    batch = SeriesBatch("raw_eda", {"session": "bug"}, T0 + np.arange(3), {"eda": np.ones(3)})
    store = BuggySendStore(
        "http://127.0.0.1:9", bucket="b", spool_dir=tmp_path / "spool",
        retry_interval=0.01, max_retry_delay=0.05, close_timeout=1,
    )  # fmt: skip
    try:
        store.write([batch])
        with pytest.raises(StoreUnavailableError, match=r"unexpected error.*TypeError"):
            store.flush(timeout=2)
    finally:
        store.close()
    assert BuggySendStore.calls == 1  # tried once, not retried as if transient
    assert [type(args.exc_value) for args in seen] == [TypeError]
    assert store.pending_bytes > 0  # the data stays in the spool for a fixed version
