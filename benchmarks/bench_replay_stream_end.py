"""Rows a streaming extractor gives while pushing vs at the flush when a stream ends early, as JSON.

Usage: ``python benchmarks/bench_replay_stream_end.py``

Two 4-Hz streams (synthetic EDA for 300 s, skin temperature ending at 100 s) pushed in
one-second chunks in time order, 60-s windows every 5 s, for data time only
(``max_lag=None``, as replay runs) and the live rule (``max_lag=30``), each without and with
:meth:`~affectstream.signal.StreamingExtractor.expect` saying the temperature has ended after
its last chunk (what replay does).
"""

from __future__ import annotations

import json
import math

import numpy as np

from affectstream.signal import StreamingExtractor, WindowConfig
from affectstream.signal.synthetic import split_block, synthetic_eda
from affectstream.types import SampleBlock

T0, DURATION, END = 1_700_000_000.0, 300.0, 100.0


def main() -> None:
    rng = np.random.default_rng(1)
    eda = SampleBlock.regular("eda", "eda", ("EDA",), synthetic_eda(DURATION, 4.0, rng)[0], 4.0, T0)
    temp = SampleBlock.regular(
        "temp", "temp", ("T",), 33.0 + rng.normal(0.0, 0.05, int(END * 4)), 4.0, T0
    )
    chunks = sorted(
        (c for b in (eda, temp) for c in split_block(b, [4])), key=lambda c: float(c.t[-1])
    )
    out = []
    for max_lag in (None, 30.0):
        for expect in (False, True):
            extractor = StreamingExtractor(
                WindowConfig(window=60.0, step=5.0, origin=T0, max_lag=max_lag)
            )
            pushing = 0
            for chunk in chunks:
                pushing += len(extractor.push_rows(chunk))
                if expect and chunk.stream == "temp" and chunk.t[-1] == temp.t[-1]:
                    pushing += len(extractor.expect("temp", math.inf))
            flushed = len(extractor.flush())
            out.append({"max_lag": max_lag, "expect": expect, "pushing": pushing, "flush": flushed})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
