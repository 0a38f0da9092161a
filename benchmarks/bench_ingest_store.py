"""InfluxDB writes through the service vs directly, plus the service's own CPU seconds.

Only the throughput phase of ``affectstream bench api`` (:func:`affectstream.api.loadgen.
store_ceiling`): starts a throwaway ``influxd`` and ``affectstream serve`` storing into it,
warms both up with a short round (imports, first connections: a real ``bench api`` run has
its live phase before), then ``ROUNDS`` times sends ``SECONDS`` of each of 4 participants'
data in 1-s batches over the ingest WebSocket, through the service and directly (the order
alternating by round). Prints one JSON line: the ``store_ceiling`` result (every round's
fraction, their median and spread) plus ``service_cpu_s`` (the service process's user +
system CPU seconds during the measured rounds), which varies far less than the wall-clock
rates on a loaded machine. To compare two versions of the code, alternate runs of each.

Usage: ``python benchmarks/bench_ingest_store.py [SECONDS] [http|ws] [ROUNDS]`` (default
600 ws 5).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

from affectstream.api.loadgen_store import store_ceiling
from affectstream.api.serve_process import ServeProcess
from affectstream.store.influx_devserver import LocalInfluxDB

PARTICIPANTS, BATCH_SECONDS, BUCKET = 4, 1.0, "affectstream"


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (Linux ``/proc``)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 600.0
    transport = sys.argv[2] if len(sys.argv) > 2 else "ws"
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    server = LocalInfluxDB(database=BUCKET)
    server.start()
    try:
        with ServeProcess(store=f"{server.url}?bucket={BUCKET}") as service:

            def round_(secs: float, n: int) -> dict[str, object]:
                return asyncio.run(
                    store_ceiling(
                        service.url,
                        service.admin_key,
                        server.url,
                        BUCKET,
                        participants=PARTICIPANTS,
                        seconds=secs,
                        batch_seconds=BATCH_SECONDS,
                        transport=transport,
                        rounds=n,
                    )
                )

            round_(20.0, 1)  # warm-up
            before = _cpu_seconds(service.pid)
            result = round_(seconds, rounds)
            result["service_cpu_s"] = round(_cpu_seconds(service.pid) - before, 2)
    finally:
        server.stop()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
