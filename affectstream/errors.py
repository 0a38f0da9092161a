"""One exception tree for the whole package.

Every error names the offending value, what was expected and what to do, so that the CLI
and the API can show the message to a person unchanged.
"""

from __future__ import annotations


class AffectstreamError(Exception):
    """Base class of every error raised on purpose by affectstream."""


class ConfigError(AffectstreamError, ValueError):
    """A parameter, flag, file or environment variable has a value we cannot use."""


class DeviceError(AffectstreamError):
    """A BLE device could not be found, connected to or driven."""


class DeviceNotFoundError(DeviceError):
    """No device matched the address or name that was asked for."""


class ProtocolError(DeviceError):
    """A device answered a command with an error or not at all."""


class DecodeError(AffectstreamError, ValueError):
    """A notification payload is malformed or truncated.

    Decoders raise only this error on bad bytes; the ingestion loop counts the packet as
    malformed, logs it and goes on, so one bad packet never ends a stream.
    """


class SignalError(AffectstreamError, ValueError):
    """A signal cannot be processed as given (units, sampling rate, timestamps, length)."""


class StoreError(AffectstreamError):
    """The time-series store failed to write or read."""


class StoreUnavailableError(StoreError):
    """The store's server cannot be reached; data stays in the local spool."""


class ModelError(AffectstreamError):
    """A model bundle cannot be loaded, trained or applied."""


class FeatureMismatchError(ModelError, ValueError):
    """The features given to a model differ from the ones it was trained on."""


class TrainingDataError(ModelError, ValueError):
    """The training data cannot train a model (one class only, no feature columns, ...).

    A ``ValueError`` too, as scikit-learn expects of an estimator's ``fit`` on bad data.
    """
