"""affectstream: wearable physiology over BLE to live arousal and valence estimates.

Subpackages follow the data flow: :mod:`affectstream.device` (BLE ingestion),
:mod:`affectstream.signal` (windowed features), :mod:`affectstream.models` (estimates),
:mod:`affectstream.store` (time series) and :mod:`affectstream.api` (serving).
"""

from affectstream._version import __version__
from affectstream.errors import (
    AffectstreamError,
    ConfigError,
    DecodeError,
    DeviceError,
    ModelError,
    SignalError,
    StoreError,
)

__all__ = [
    "AffectstreamError",
    "ConfigError",
    "DecodeError",
    "DeviceError",
    "ModelError",
    "SignalError",
    "StoreError",
    "__version__",
]
