"""Windowed HRV, EDA and EEG features with signal-quality indices, batch and streaming.

Public API: :class:`WindowConfig`, :func:`extract_features`, :class:`StreamingExtractor`,
per-window helpers :func:`hrv_time`, :func:`hrv_frequency`,
:func:`find_scrs`. Feature names, units and definitions: docs/features.md.
"""

from affectstream.signal.config import EEG_BANDS, WindowConfig
from affectstream.signal.eda import find_scrs
from affectstream.signal.extractor import StreamingExtractor, extract_features
from affectstream.signal.hrv import hrv_frequency, hrv_time

__all__ = [
    "EEG_BANDS",
    "StreamingExtractor",
    "WindowConfig",
    "extract_features",
    "find_scrs",
    "hrv_frequency",
    "hrv_time",
]
