"""LSL benchmark: outlet -> inlet latency of affectstream's outlets, and samples lost when
an external outlet restarts under ``record --lsl``.

Latency: an :class:`~affectstream.runtime.lsl_out.LslPublisher` raw outlet pushes
``--seconds`` of 4-channel EEG at ``--rate`` Hz in 1/32-s blocks (as BLE deliveries arrive),
a plain pylsl inlet on loopback pulls them; each sample's latency is the inlet's
``local_clock()`` when pulled minus the ``local_clock()`` just before its block was pushed
(p50/p99/max). Restart: an external outlet streams ``--seconds`` at ``--rate`` Hz into an
:class:`~affectstream.device.lsl.LslSource`, is destroyed halfway, is re-created with the
same ``source_id`` ``--down`` seconds later and goes on; the samples the source marks as a
``disconnect`` gap are the samples pushed while nobody listened plus those pushed before the
inlet re-connected. One JSON object is printed last.

Usage: ``LSLAPICFG=tests/lsl/lsl_api.cfg python benchmarks/bench_lsl.py [--rate 256]
[--seconds 10] [--down 1.0]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import numpy as np
import pylsl

from affectstream.device.lsl import LslSource
from affectstream.runtime.lsl_out import LslPublisher
from affectstream.types import SampleBlock

LABELS = ("TP9", "AF7", "AF8", "TP10")


def _outlet(rate: float) -> Any:
    info = pylsl.StreamInfo("BenchEEG", "EEG", len(LABELS), rate, pylsl.cf_float32, "bench-1")
    return pylsl.StreamOutlet(info)


def latency(rate: float, seconds: float) -> dict[str, Any]:
    """Per-sample outlet -> inlet latency of our raw outlet."""
    publisher = LslPublisher("bench")
    step = max(1, int(rate / 32))
    n = int(rate * seconds)
    values = np.random.default_rng(0).normal(0, 20, (n, len(LABELS)))
    t0 = time.time()
    publisher.raw(SampleBlock.regular("bench/eeg", "eeg", LABELS, values[:1], rate, t0))
    inlet = pylsl.StreamInlet(pylsl.resolve_bypred("name='bench/eeg'", 1, 10.0)[0])
    inlet.open_stream(10.0)
    time.sleep(0.3)
    pushed_at = np.zeros(n)
    lat: list[float] = []
    received = 0
    for start in range(1, n, step):
        stop = min(start + step, n)
        pushed_at[start:stop] = pylsl.local_clock()
        block = SampleBlock.regular(
            "bench/eeg", "eeg", LABELS, values[start:stop], rate, t0 + start / rate
        )
        publisher.raw(block)
        deadline = time.monotonic() + 1.0
        while received < stop - 1 and time.monotonic() < deadline:
            chunk, _ = inlet.pull_chunk(timeout=0.0)
            now = pylsl.local_clock()
            lat.extend(now - pushed_at[1 + received : 1 + received + len(chunk)])
            received += len(chunk)
        time.sleep(max(0.0, step / rate - (pylsl.local_clock() - pushed_at[start])))
    publisher.close()
    ms = np.asarray(lat) * 1e3
    return {
        "samples": n - 1,
        "received": received,
        "latency_ms_p50": float(np.percentile(ms, 50)),
        "latency_ms_p99": float(np.percentile(ms, 99)),
        "latency_ms_max": float(ms.max()),
    }


async def restart(rate: float, seconds: float, down: float) -> dict[str, Any]:
    """Samples lost (marked as a gap) when an external outlet restarts."""
    blocks: list[SampleBlock] = []
    outlet = _outlet(rate)
    source = LslSource(["name='BenchEEG'"], on_block=blocks.append, resolve_timeout=10.0)
    await source.start()
    n = int(rate * seconds)
    half = n // 2
    t0 = pylsl.local_clock()
    step = max(1, int(rate / 32))
    pushed = 0
    not_heard = 0
    i = 0
    while i < n:
        if i == half:
            del outlet
            await asyncio.sleep(down)
            i += int(down * rate)  # the instrument kept sampling while its outlet was down
            outlet = _outlet(rate)
            while not outlet.have_consumers():  # samples now go nowhere
                outlet.push_sample([float(i)] * len(LABELS), t0 + i / rate)
                not_heard += 1
                i += 1
                await asyncio.sleep(1 / rate)
            continue
        for j in range(i, min(i + step, n, half if i < half else n)):
            outlet.push_sample([float(j)] * len(LABELS), t0 + j / rate)
            pushed += 1
        i = min(i + step, n, half if i < half else n)
        await asyncio.sleep(step / rate)
    await asyncio.sleep(0.5)
    await source.stop()
    stats = source.stats()["lsl-BenchEEG/eeg"]
    return {
        "outlet_down_s": down,
        "samples_not_sent": int(down * rate),
        "samples_sent_before_reconnect": not_heard,
        "gap_samples": stats.gap_samples,
        "received": stats.samples_received,
        "reconnects": stats.reconnects,
        "expected_total": n,
        "accounted": stats.samples_received + stats.gap_samples,
    }


def main() -> None:
    """Run both measurements and print one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=256.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--down", type=float, default=1.0)
    args = parser.parse_args()
    result = {
        "liblsl": pylsl.library_info(),
        "rate_hz": args.rate,
        "outlet_to_inlet": latency(args.rate, args.seconds),
        "restart": asyncio.run(restart(args.rate, args.seconds, args.down)),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
