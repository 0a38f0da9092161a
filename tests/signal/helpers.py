"""Helpers shared by the signal tests: streamed rows, agreement of two beat lists."""

from __future__ import annotations

import numpy as np
import pandas as pd

from affectstream.signal import StreamingExtractor, WindowConfig
from affectstream.signal.synthetic import split_block
from affectstream.types import SampleBlock


def streamed_rows(block: SampleBlock, config: WindowConfig, size: int) -> pd.DataFrame:
    """The extractor's rows for ``block`` pushed in ``size``-sample blocks."""
    extractor = StreamingExtractor(config, origin=float(block.t[0]))
    parts = [extractor.push(chunk) for chunk in split_block(block, [size])]
    parts.append(extractor.flush())
    return pd.concat([p for p in parts if len(p)], ignore_index=True)


def agreement(
    found: np.ndarray, reference: np.ndarray, sfreq: float, tolerance: float
) -> tuple[float, float, float]:
    """Sensitivity, PPV (within ``tolerance`` s) and the median |time difference| of matches."""
    distance = np.abs(found[:, None] - reference[None, :]) / sfreq
    matched = distance.min(axis=1)
    return (
        float(np.mean(distance.min(axis=0) <= tolerance)),
        float(np.mean(matched <= tolerance)),
        float(np.median(matched[matched <= tolerance])),
    )
