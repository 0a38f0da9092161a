"""Process CPU of the batch extractor, split by part, and a digest of its frame, as JSON.

Usage: ``python benchmarks/bench_batch_parts.py [--minutes 60] [--repeats 4]``

The recording ``affectstream bench features`` times (synthetic ECG 250 Hz, EDA 64 Hz, EEG
4 x 256 Hz, seed 0) through :func:`affectstream.signal.extract_features`; the first call is
reported apart (``cold``: it pays the first touch of the whole recording's arrays, as the
``batch_seconds`` of ``bench features`` does), then the median of the later ones (``warm``).
Each processor's ``add_samples`` (filters, detection, EEG segments) and ``window`` (per-window
features) is timed by wrapping the method. ``frame_sha256`` hashes the bytes of the frame, so
two checkouts giving the same digest give the same features to the last bit. Run it with
``PYTHONPATH`` on another checkout to compare code; run old and new alternately, the machine
is shared.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from affectstream.signal import WindowConfig, extract_features
from affectstream.signal.eda import EdaProcessor
from affectstream.signal.eeg import EegProcessor
from affectstream.signal.hrv import HrvProcessor
from affectstream.signal.synthetic import synthetic_recording

PARTS: collections.defaultdict[str, float] = collections.defaultdict(float)


def _timed(cls: type, name: str) -> None:
    method: Callable[..., Any] = getattr(cls, name)

    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        start = time.process_time()
        try:
            return method(self, *args, **kwargs)
        finally:
            PARTS[f"{cls.__name__}.{name}"] += time.process_time() - start

    setattr(cls, name, wrapper)


def _digest(frame: pd.DataFrame) -> str:
    h = hashlib.sha256(",".join(frame.columns).encode())
    for column in frame.columns:
        h.update(np.ascontiguousarray(frame[column].to_numpy()).tobytes())
    return h.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--repeats", type=int, default=4)
    args = parser.parse_args()
    # Imported before any timed call, as `bench features` does (older code imported them
    # when a processor was built).
    import mne  # noqa: F401
    import neurokit2  # noqa: F401

    recording = synthetic_recording(args.minutes, seed=0)
    config = WindowConfig()
    for cls in (HrvProcessor, EdaProcessor, EegProcessor):
        _timed(cls, "add_samples")
        _timed(cls, "window")
    runs = []
    frame = pd.DataFrame()
    for _ in range(1 + args.repeats):
        PARTS.clear()
        start = time.process_time()
        frame = extract_features(recording.blocks, config)
        runs.append({"total": time.process_time() - start, **PARTS})
    keys = list(runs[0])
    out = {
        "minutes": args.minutes,
        "windows": len(frame),
        "timing": "process CPU seconds; cold = first call, warm = median of the others",
        "cold": {k: round(runs[0][k], 4) for k in keys},
        "warm": {k: round(float(np.median([r[k] for r in runs[1:]])), 4) for k in keys},
        "frame_sha256": _digest(frame),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
