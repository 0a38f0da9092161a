"""Gateways in their own process: 4 devices' raw streams per participant, 10 batches a second.

``bench_dashboard.py --feed ingest`` runs this as a separate process so the number it
measures is the dashboard's data path (ingest -> session -> pushed trace frames -> page),
not the in-process BLE emulation (bumble), which on a shared 2-core machine cannot itself
deliver 40 devices' packets on time. Each participant is one ingest WebSocket
(``/sessions/{id}/ingest``) sending, every :data:`BATCH_SECONDS`, one batch with the
samples of that tenth of a second of a chest strap's heart rate (1 Hz), a Polar H10's ECG
(130 Hz), an EDA band (32 Hz) and a Muse's EEG (256 Hz, 4 channels): the rates of the
emulated devices. The waveforms are synthetic (sines and noise): the trace path does not
look at values.

Usage (started by the benchmark)::

    AFFECTSTREAM_BENCH_KEY=ask_... python benchmarks/trace_feeder.py URL SESSION [...] --seconds 60
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import sys
import time

import numpy as np
from websockets.asyncio.client import connect

logger = logging.getLogger(__name__)

#: Seconds of samples per batch: ten batches a second per participant.
BATCH_SECONDS = 0.1
#: (stream, modality, channels, rate) of each emulated device.
STREAMS = (
    ("strap/hr", "hr", ("hr",), 1.0),
    ("polar/ecg", "ecg", ("ecg",), 130.0),
    ("band/eda", "eda", ("eda",), 32.0),
    ("muse/eeg", "eeg", ("TP9", "AF7", "AF8", "TP10"), 256.0),
)


def _values(modality: str, t: np.ndarray, n_channels: int, rng: np.random.Generator) -> list:
    if modality == "hr":
        v = 70 + 5 * np.sin(t / 20)
    elif modality == "ecg":
        v = 800 * np.exp(-(((t % 0.85) - 0.1) ** 2) / 2e-4) + rng.normal(0, 20, len(t))
    elif modality == "eda":
        v = 4 + 0.5 * np.sin(t / 7)
    else:
        v = 20 * np.sin(2 * math.pi * 10 * t) + rng.normal(0, 10, len(t))
    return np.repeat(v[:, None], n_channels, axis=1).round(3).tolist()


async def feed(url: str, key: str, session: str, seconds: float, seed: int) -> int:
    """Send one participant's batches for ``seconds``; the number of batches sent."""
    rng = np.random.default_rng(seed)
    ws_url = url.replace("http", "ws", 1) + f"/sessions/{session}/ingest"
    start = time.time()
    sent = {name: 0 for name, *_ in STREAMS}
    batches = 0
    async with connect(ws_url, additional_headers={"Authorization": f"Bearer {key}"}) as ws:
        while (now := time.time()) - start < seconds:
            blocks = []
            for name, modality, channels, rate in STREAMS:
                due = int((now - start) * rate)
                first = sent[name]
                if due <= first:
                    continue
                t = start + np.arange(first, due) / rate
                blocks.append(
                    {
                        "stream": name,
                        "modality": modality,
                        "channels": list(channels),
                        "sfreq": rate,
                        "first_seq": first,
                        "t": t.tolist(),
                        "values": _values(modality, t, len(channels), rng),
                        "device": name.split("/")[0],
                    }
                )
                sent[name] = due
            if blocks:
                await ws.send(json.dumps({"blocks": blocks}))
                answer = json.loads(await ws.recv())
                if "error" in answer:
                    raise RuntimeError(f"ingest refused a batch: {answer['error']}")
                batches += 1
            await asyncio.sleep(max(0.0, BATCH_SECONDS - (time.time() - now)))
    return batches


async def main_async(args: argparse.Namespace) -> int:
    key = os.environ["AFFECTSTREAM_BENCH_KEY"]  # not on the command line (ps shows it)
    counts = await asyncio.gather(
        *(feed(args.url, key, s, args.seconds, i) for i, s in enumerate(args.sessions))
    )
    rate = sum(counts) / len(counts) / args.seconds
    print(json.dumps({"batches_per_s_per_participant": round(rate, 2)}))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("sessions", nargs="+")
    parser.add_argument("--seconds", type=float, default=60.0)
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
