"""Window end -> row ready, in data time: what the devices' packets and the detectors leave.

The part of the live latency no computer speed changes. The demo's four devices are
replayed with their packet sizes (Polar H10 ECG 73 samples at 130 Hz, EDA band 8 samples at
32 Hz, Muse 12 samples at 256 Hz, heart rate once a second), each packet arriving when its
last sample is taken, into a live :class:`~affectstream.signal.StreamingExtractor` (20-s
windows every 2 s, ``max_lag`` set as live). For each row: the newest sample time when it
came out minus its window end. The live latency (`affectstream demo --json`) is this plus the
worker's hand-over (up to ``LIVE_COMPUTE_INTERVAL``), the computation, the model and the
store write.

Run: ``python benchmarks/bench_latency_budget.py [--minutes 10]`` (JSON on stdout).
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from affectstream.signal import StreamingExtractor, WindowConfig
from affectstream.signal.synthetic import (
    split_block,
    synthetic_ecg,
    synthetic_recording,
    synthetic_rr,
)
from affectstream.types import SampleBlock

T0 = 1_700_000_000.0
#: The demo's window and the devices' packets (samples) and rates (Hz).
CONFIG = WindowConfig(window=20.0, step=2.0, origin=T0)
ECG_RATE, ECG_PACKET = 130.0, 73
EDA_RATE, EDA_PACKET = 32.0, 8
EEG_PACKET = 12


def _packets(minutes: float, seed: int) -> list[SampleBlock]:
    rng = np.random.default_rng(seed)
    duration = minutes * 60.0
    recording = synthetic_recording(minutes, seed=seed, t0=T0, eda_sfreq=EDA_RATE)
    _, eda, eeg = recording.blocks
    ecg_values = synthetic_ecg(synthetic_rr(duration, rng), duration, ECG_RATE, rng)
    ecg = SampleBlock.regular("polar/ecg", "ecg", ("ECG",), ecg_values, ECG_RATE, T0)
    hr_t = T0 + rng.uniform(0.0, 1.0) + np.arange(0.0, duration - 1.0, 1.0)
    hr = SampleBlock(
        stream="strap/hr",
        modality="hr",
        channels=("HR",),
        unit="bpm",
        sfreq=None,
        t=hr_t,
        values=np.full((hr_t.size, 1), 70.0),
        index=np.arange(hr_t.size, dtype=np.int64),
    )
    packets = [
        *split_block(ecg, [ECG_PACKET]),
        *split_block(eda, [EDA_PACKET]),
        *split_block(eeg, [EEG_PACKET]),
        *split_block(hr, [1]),
    ]
    packets.sort(key=lambda block: float(block.t[-1]))
    return packets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    extractor = StreamingExtractor(CONFIG)
    waits: list[float] = []
    for packet in _packets(args.minutes, args.seed):
        for row in extractor.push_rows(packet):
            waits.append(float(packet.t[-1]) - float(row["t_end"]))  # type: ignore[arg-type]
    array = np.asarray(waits)
    print(
        json.dumps(
            {
                "rows": int(array.size),
                "window_end_to_row_data_s": {
                    "p50": round(float(np.percentile(array, 50)), 3),
                    "p90": round(float(np.percentile(array, 90)), 3),
                    "p99": round(float(np.percentile(array, 99)), 3),
                    "max": round(float(array.max()), 3),
                },
            }
        )
    )


if __name__ == "__main__":
    main()
