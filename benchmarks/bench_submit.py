"""CPU cost of ``LiveSession.submit`` per block (the path every BLE notification takes).

Submits 20,000 12-sample, 4-channel EEG blocks to a session that is not running (nothing
is written or computed: only the submit path is timed), 9 times, and prints one JSON line
with the minimum and median CPU microseconds per block.

Usage: ``python benchmarks/bench_submit.py``
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np

from affectstream.runtime.session import LiveSession, SessionConfig
from affectstream.store import EmbeddedStore
from affectstream.types import SampleBlock

N_BLOCKS, SIZE, REPEATS = 20_000, 12, 9


def main() -> None:
    blocks = [
        SampleBlock(
            "muse/eeg",
            "eeg",
            ("tp9", "af7", "af8", "tp10"),
            "µV",
            256.0,
            1.7e9 + (i * SIZE + np.arange(SIZE)) / 256.0,
            np.zeros((SIZE, 4)),
            np.arange(i * SIZE, (i + 1) * SIZE, dtype=np.int64),
        )
        for i in range(N_BLOCKS)
    ]
    per_block = []
    with tempfile.TemporaryDirectory() as tmp:
        store = EmbeddedStore(Path(tmp) / "store")
        for rep in range(REPEATS):
            config = SessionConfig(
                participant="P",
                session_id=f"S{rep}",
                max_pending_samples=10**9,  # no back-pressure: time the plain path
                compute_backlog_samples=10**9,
            )
            session = LiveSession(store, config)
            started = time.process_time()  # CPU, not wall: other processes share the machine
            for block in blocks:
                session.submit(block)
            per_block.append((time.process_time() - started) / N_BLOCKS * 1e6)
        store.close()
    per_block.sort()
    result = {
        "bench": "live_session_submit_cpu_us_per_block",
        "min": round(per_block[0], 2),
        "median": round(per_block[REPEATS // 2], 2),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
