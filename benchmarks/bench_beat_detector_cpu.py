"""Process CPU of the ECG R-peak detector alone, as JSON.

Usage: ``python benchmarks/bench_beat_detector_cpu.py [--minutes 60] [--sfreq 250]``

Synthetic ECG (:func:`affectstream.signal.synthetic.synthetic_ecg`), high-passed as the
extractor does, through :class:`affectstream.signal.beats.EcgBeatDetector` whole and in
73-sample blocks (a Polar H10 frame). Run it with ``PYTHONPATH`` on another checkout of the
package to compare code; run old and new alternately, the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import scipy.signal as sps

from affectstream.signal.beats import EcgBeatDetector
from affectstream.signal.hrv import TEMPLATE_SPAN
from affectstream.signal.synthetic import synthetic_ecg, synthetic_rr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--sfreq", type=float, default=250.0)
    args = parser.parse_args()
    sfreq, duration = args.sfreq, args.minutes * 60.0
    rng = np.random.default_rng(0)
    x = synthetic_ecg(synthetic_rr(duration, rng), duration, sfreq, rng)
    x = sps.sosfilt(sps.butter(5, 0.5, "highpass", fs=sfreq, output="sos"), x)
    before, after = TEMPLATE_SPAN["ecg"]
    template = (round(before * sfreq), round(after * sfreq))
    out: dict[str, float | int] = {}
    for name, size in (("whole", x.size), ("blocks_73", 73)):
        detector = EcgBeatDetector(sfreq, template)
        start = time.process_time()
        beats = sum(len(detector.feed(x[i : i + size])) for i in range(0, x.size, size))
        beats += len(detector.close())
        out[f"{name}_cpu_s"] = round(time.process_time() - start, 4)
        out[f"{name}_beats"] = beats
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
