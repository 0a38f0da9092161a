"""The one storage interface and schema shared by every backend.

Schema (the same on every backend, and what the Grafana dashboard queries):

- measurements: ``raw_<modality>`` (raw samples, one field per channel, e.g. ``raw_eeg``
  with fields ``tp9``, ``af7``...), ``features`` (one field per feature name),
  ``quality`` (one field per quality index), ``affect`` (arousal/valence estimates),
  ``events`` (markers, gaps, phases; string fields ``kind`` and ``label``);
- tags: ``participant`` (pseudonymous id), ``session``, ``device``, ``stream``, ``model``;
  only these, never per-sample values;
- timestamps: int64 nanoseconds since the Unix epoch.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from affectstream.errors import StoreError

MEASUREMENTS = ("features", "quality", "affect", "events")
RAW_PREFIX = "raw_"
TAG_KEYS = ("participant", "session", "device", "stream", "model")

FieldValues = NDArray[np.float64] | NDArray[np.int64] | NDArray[np.bool_] | NDArray[np.object_]


def check_measurement(name: str) -> str:
    """Return ``name`` if it belongs to the schema, else raise :class:`StoreError`.

    Parameters
    ----------
    name : str
        Measurement name.

    Returns
    -------
    str
    """
    if name in MEASUREMENTS or (name.startswith(RAW_PREFIX) and len(name) > len(RAW_PREFIX)):
        return name
    raise StoreError(
        f"Unknown measurement {name!r}: use one of {', '.join(MEASUREMENTS)} "
        f"or '{RAW_PREFIX}<modality>'."
    )


@dataclass(frozen=True)
class SeriesBatch:
    """Columnar points of one series: one measurement, one tag set, many timestamps.

    Parameters
    ----------
    measurement : str
        A schema measurement (see module docstring).
    tags : mapping of str to str
        Tag values; keys from :data:`TAG_KEYS`.
    time_ns : ndarray of int64, shape (n,)
        Timestamps in nanoseconds since the Unix epoch.
    fields : mapping of str to ndarray, each shape (n,)
        Field columns. NaN float values are not written (a missing field, not a zero).
    """

    measurement: str
    tags: Mapping[str, str]
    time_ns: NDArray[np.int64]
    fields: Mapping[str, FieldValues] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_measurement(self.measurement)
        unknown = set(self.tags) - set(TAG_KEYS)
        if unknown:
            raise StoreError(
                f"Unknown tag keys {sorted(unknown)} for {self.measurement!r}: "
                f"tags are limited to {', '.join(TAG_KEYS)}."
            )
        n = self.time_ns.shape[0]
        for name, values in self.fields.items():
            if values.shape != (n,):
                raise StoreError(
                    f"Field {name!r} of {self.measurement!r} has shape {values.shape}, "
                    f"expected ({n},) like time_ns."
                )

    def __len__(self) -> int:
        return int(self.time_ns.shape[0])


@dataclass(frozen=True)
class SessionInfo:
    """A stored session: its participant, time span and the series it holds."""

    session: str
    participant: str
    start_ns: int
    stop_ns: int
    n_points: int


class TimeSeriesStore(abc.ABC):
    """Write points in batches, read a measurement back, list and delete sessions.

    Every backend stores the same schema, so code above the store never knows which
    backend it talks to. Use as a context manager: leaving it flushes and closes.
    """

    @abc.abstractmethod
    def write(self, batches: Iterable[SeriesBatch]) -> None:
        """Write batches; durable (or safely spooled) when this returns.

        Parameters
        ----------
        batches : iterable of SeriesBatch
            Points to write. Writing a point again (same series and timestamp) overwrites
            it: a replay never duplicates.
        """

    @abc.abstractmethod
    def read(
        self,
        measurement: str,
        *,
        tags: Mapping[str, str] | None = None,
        start_ns: int | None = None,
        stop_ns: int | None = None,
        fields: Iterable[str] | None = None,
    ) -> pd.DataFrame:
        """Read points of one measurement, filtered by tags and a half-open time range.

        Parameters
        ----------
        measurement : str
            Measurement name.
        tags : mapping, optional
            Tag values that must match exactly.
        start_ns, stop_ns : int, optional
            Keep points with ``start_ns <= time_ns < stop_ns``.
        fields : iterable of str, optional
            Fields to return (all by default).

        Returns
        -------
        pandas.DataFrame
            Column ``time_ns`` (int64), one column per tag key present, one per field;
            sorted by time.
        """

    @abc.abstractmethod
    def sessions(self) -> list[SessionInfo]:
        """List stored sessions.

        Returns
        -------
        list of SessionInfo
        """

    @abc.abstractmethod
    def series(self, session: str | None = None) -> list[tuple[str, dict[str, str]]]:
        """List stored series as (measurement, tags), optionally for one session.

        Parameters
        ----------
        session : str, optional
            Restrict to this session.

        Returns
        -------
        list of (str, dict)
        """

    @abc.abstractmethod
    def delete_session(self, session: str) -> None:
        """Delete every point of a session.

        Parameters
        ----------
        session : str
            Session id.
        """

    def flush(self) -> None:  # noqa: B027 - optional hook, a no-op for synchronous stores
        """Push buffered points to durable storage."""

    def close(self) -> None:
        """Flush and release resources."""
        self.flush()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
