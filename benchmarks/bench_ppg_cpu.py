"""Process CPU of PPG beat detection in the extractor's HRV processor, as JSON.

Usage: ``python benchmarks/bench_ppg_cpu.py [--minutes 60]``

One simulated wrist pulse (``nk.ppg_simulate``, 64 Hz, the Empatica E4's BVP rate) through
:class:`affectstream.signal.hrv.HrvProcessor` (causal band-pass, then beat detection), whole
and in 16-sample blocks. Run it with ``PYTHONPATH`` on another checkout of the package (for
example ``git archive main affectstream | tar -x -C /tmp/old``) to compare code; run old and
new alternately, the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from typing import Any

import neurokit2 as nk

from affectstream.signal import WindowConfig
from affectstream.signal.hrv import HrvProcessor
from affectstream.signal.synthetic import split_block
from affectstream.types import SampleBlock

T0 = 1_700_000_000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    args = parser.parse_args()
    sfreq = 64
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        x = nk.ppg_simulate(
            duration=int(args.minutes * 60), sampling_rate=sfreq, heart_rate=75, random_state=0
        )
    block = SampleBlock.regular("w/ppg", "ppg", ("BVP",), x, float(sfreq), T0)
    out: dict[str, Any] = {}
    for name, size in (("whole", len(block)), ("blocks_16", 16)):
        processor = HrvProcessor(block, WindowConfig(origin=T0))
        chunks = split_block(block, [size])
        start = time.process_time()
        for chunk in chunks:
            processor.feed(chunk)
        processor.finish()
        out[f"{name}_cpu_s"] = round(time.process_time() - start, 4)
        out[f"{name}_beats"] = int(processor.beat_pos.size)
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
