"""The one storage interface and schema shared by every backend.

Schema (the same on every backend, and what the Grafana dashboard queries):

- measurements: ``raw_<modality>`` (raw samples, one field per channel, e.g. ``raw_eeg``
  with fields ``tp9``, ``af7``...), ``features`` (one field per feature name),
  ``quality`` (one field per quality index), ``affect`` (arousal/valence estimates),
  ``events`` (markers, gaps, phases; string fields ``kind`` and ``label``);
- tags: ``participant`` (pseudonymous id), ``session``, ``device``, ``stream``, ``model``;
  only these, never per-sample values;
- timestamps: int64 nanoseconds since the Unix epoch;
- fields: float64, int64, bool or str, one type per field and measurement; NaN (or
  ``None`` in a str field) means "missing" and is never stored as a value;
- a point is identified by its series (measurement + tags) and timestamp: writing it again
  overwrites it field by field (last write wins), so a replay never duplicates.
"""

from __future__ import annotations

import abc
import logging
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal, Self

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from affectstream.errors import StoreError

logger = logging.getLogger(__name__)

MEASUREMENTS = ("features", "quality", "affect", "events")
RAW_PREFIX = "raw_"
TAG_KEYS = ("participant", "session", "device", "stream", "model")
#: The ``events`` point (``kind``, ``label``) a replay writes, so listings can tell it apart.
REPLAY_EVENT = ("source", "replay")
#: Names a field may not take: they are columns of every read result (or reserved by InfluxQL).
RESERVED_FIELD_NAMES = frozenset({"time", "time_ns", *TAG_KEYS})

FieldValues = NDArray[np.float64] | NDArray[np.int64] | NDArray[np.bool_] | NDArray[np.object_]
FieldKind = Literal["float", "int", "bool", "str"]

_RAW_PATTERN = re.compile(re.escape(RAW_PREFIX) + r"[a-z0-9_]+")


def check_measurement(name: str) -> str:
    """Return measurement ``name`` if it is in the schema, else raise :class:`StoreError`."""
    if isinstance(name, str) and (name in MEASUREMENTS or _RAW_PATTERN.fullmatch(name)):
        return name
    raise StoreError(
        f"Unknown measurement {name!r}: use one of {', '.join(MEASUREMENTS)} "
        f"or '{RAW_PREFIX}<modality>' (modality in lowercase letters, digits and '_')."
    )


def check_tags(tags: Mapping[str, str], what: str) -> dict[str, str]:
    """Return ``tags`` as a plain dict without empty values, or raise :class:`StoreError`.

    An empty tag value means "no such tag" (as in InfluxDB), so it is dropped.

    Parameters
    ----------
    tags : mapping of str to str
        Tag values; keys from :data:`TAG_KEYS`.
    what : str
        What the tags belong to, shown in error messages.

    Returns
    -------
    dict of str to str
    """
    unknown = set(tags) - set(TAG_KEYS)
    if unknown:
        raise StoreError(
            f"Unknown tag keys {sorted(unknown)} for {what}: "
            f"tags are limited to {', '.join(TAG_KEYS)}."
        )
    for key, value in tags.items():
        if not isinstance(value, str):
            raise StoreError(
                f"Tag {key!r} of {what} is {value!r} ({type(value).__name__}); "
                "tag values must be strings."
            )
    return {key: value for key, value in tags.items() if value}


def field_kind(values: FieldValues) -> FieldKind:
    """Return the stored type of a field column: ``"float"``, ``"int"``, ``"bool"`` or ``"str"``.

    Parameters
    ----------
    values : ndarray
        A field column as held by a :class:`SeriesBatch` (float64, int64, bool or object).

    Returns
    -------
    str
    """
    kinds: dict[str, FieldKind] = {"f": "float", "i": "int", "b": "bool", "O": "str"}
    try:
        return kinds[values.dtype.kind]
    except KeyError:
        raise StoreError(
            f"Field dtype {values.dtype} is not storable: use float64, int64, bool or str."
        ) from None


def _coerce_field(name: str, values: object, what: str) -> FieldValues:
    """Convert one field column to float64, int64, bool or an object array of str/None."""
    array = np.asarray(values)
    kind = array.dtype.kind
    if kind == "f":
        return array.astype(np.float64, copy=False)
    if kind in "iu":
        if kind == "u" and array.size and int(array.max()) > np.iinfo(np.int64).max:
            raise StoreError(f"Field {name!r} of {what} has values beyond the int64 range.")
        return array.astype(np.int64, copy=False)
    if kind == "b":
        return array.astype(np.bool_, copy=False)
    if kind in "US":
        return np.array([v.decode() if isinstance(v, bytes) else str(v) for v in array], object)
    if kind == "O":
        for value in array.ravel():
            if value is not None and not isinstance(value, str):
                raise StoreError(
                    f"Field {name!r} of {what} holds {value!r} ({type(value).__name__}); "
                    "object fields must hold str (or None for a missing value)."
                )
        return array
    raise StoreError(
        f"Field {name!r} of {what} has dtype {array.dtype}; use float64, int64, bool or str values."
    )


@dataclass(frozen=True)
class SeriesBatch:
    """Columnar points of one series: one measurement, one tag set, many timestamps.

    The constructor validates and normalises its input: ``time_ns`` becomes an int64
    array (float timestamps are refused, they cannot hold nanoseconds exactly), fields
    become float64, int64, bool or object arrays of ``str``, and empty tag values are
    dropped (an empty tag is no tag, as in InfluxDB).

    Parameters
    ----------
    measurement : str
        A schema measurement (see module docstring).
    tags : mapping of str to str
        Tag values; keys from :data:`TAG_KEYS`.
    time_ns : ndarray of int64, shape (n,)
        Timestamps in nanoseconds since the Unix epoch.
    fields : mapping of str to ndarray, each shape (n,)
        Field columns. A NaN float (or ``None`` in a str field) is a missing value: it is
        not written, and never overwrites a stored value. A row whose fields are all
        missing is not a point and is not written. Field names are free-form except
        :data:`RESERVED_FIELD_NAMES`; a field keeps one type per measurement.
    """

    measurement: str
    tags: Mapping[str, str]
    time_ns: NDArray[np.int64]
    fields: Mapping[str, FieldValues] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_measurement(self.measurement)
        what = repr(self.measurement)
        # Frozen dataclass: normalised values are set through object.__setattr__.
        object.__setattr__(self, "tags", check_tags(self.tags, what))
        time_ns = np.asarray(self.time_ns)
        if time_ns.ndim != 1:
            raise StoreError(f"time_ns of {what} must be 1-D, got shape {time_ns.shape}.")
        if time_ns.size and time_ns.dtype.kind not in "iu":
            raise StoreError(
                f"time_ns of {what} has dtype {time_ns.dtype}; expected int64 nanoseconds "
                "(convert seconds with np.round(t * 1e9).astype(np.int64))."
            )
        if time_ns.dtype.kind == "u" and time_ns.size and time_ns.max() > np.iinfo(np.int64).max:
            raise StoreError(f"time_ns of {what} has values beyond the int64 range.")
        object.__setattr__(self, "time_ns", time_ns.astype(np.int64, copy=False))
        n = time_ns.shape[0]
        fields: dict[str, FieldValues] = {}
        for name, values in self.fields.items():
            if not isinstance(name, str) or not name or name in RESERVED_FIELD_NAMES:
                raise StoreError(
                    f"Invalid field name {name!r} for {what}: field names are non-empty "
                    f"strings other than {', '.join(sorted(RESERVED_FIELD_NAMES))}."
                )
            column = _coerce_field(name, values, what)
            if column.shape != (n,):
                raise StoreError(
                    f"Field {name!r} of {what} has shape {column.shape}, "
                    f"expected ({n},) like time_ns."
                )
            fields[name] = column
        if n and not fields:
            raise StoreError(
                f"A batch of {what} has {n} timestamps but no fields; give at least one."
            )
        object.__setattr__(self, "fields", fields)

    def __len__(self) -> int:
        return int(self.time_ns.shape[0])


@dataclass(frozen=True)
class SessionInfo:
    """A stored session: its participant, time span and number of points.

    Parameters
    ----------
    session : str
        Session id (the ``session`` tag).
    participant : str
        Participant of the session (``""`` if its series carry no participant tag).
    start_ns : int
        Timestamp of the session's first point.
    stop_ns : int
        One past the timestamp of its last point, so ``read(..., start_ns=start_ns,
        stop_ns=stop_ns)`` returns the whole session.
    n_points : int
        Points (distinct series and timestamp) in every measurement of the session.
    """

    session: str
    participant: str
    start_ns: int
    stop_ns: int
    n_points: int


@dataclass(frozen=True)
class DeliveryReport:
    """What a store has not (yet) stored for good, since it was opened.

    Parameters
    ----------
    rejected_points : int
        Points refused for good (invalid values, or the server refused them); each was
        set aside alone, never with its batch, and logged.
    pending_bytes : int
        Bytes still only in a local spool, waiting for the server.
    last_rejection : str
        Why the latest point was refused.
    pending_where : str
        Where the pending bytes wait and for what.
    """

    rejected_points: int = 0
    pending_bytes: int = 0
    last_rejection: str = ""
    pending_where: str = ""

    @property
    def complete(self) -> bool:
        """True when everything written reached durable storage."""
        return self.rejected_points == 0 and self.pending_bytes == 0

    @property
    def messages(self) -> tuple[str, ...]:
        """One line per kind of loss (empty when complete)."""
        out = []
        if self.rejected_points:
            why = f" (latest: {self.last_rejection})" if self.last_rejection else ""
            out.append(f"{self.rejected_points} point(s) refused for good, not stored{why}")
        if self.pending_bytes:
            out.append(
                f"{self.pending_bytes} bytes only spooled, not yet stored: {self.pending_where}"
            )
        return tuple(out)

    def since(self, earlier: DeliveryReport) -> DeliveryReport:
        """Return the points rejected after ``earlier``, with the pending bytes of now.

        Parameters
        ----------
        earlier : DeliveryReport
            A report taken before.

        Returns
        -------
        DeliveryReport
        """
        rejected = self.rejected_points - earlier.rejected_points
        return DeliveryReport(
            rejected,
            self.pending_bytes,
            self.last_rejection if rejected else "",
            self.pending_where,
        )


class Rejections:
    """Thread-safe tally of the points a store refused for good, and why (the latest).

    Every store counts refusals here, so that :meth:`TimeSeriesStore.delivery` reports
    them and each is logged once, the same way, whichever store refused it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0
        self._last = ""

    def add(self, n_points: int, message: str) -> None:
        """Count ``n_points`` refused for ``message`` (one line) and log it as an error.

        Parameters
        ----------
        n_points : int
            Points refused.
        message : str
            Which points and why, with what to do.
        """
        with self._lock:
            self._count += n_points
            self._last = message
        logger.error("%s; not stored, the other points go on.", message)

    @property
    def count(self) -> int:
        """Points refused so far."""
        return self._count

    def report(self, pending_bytes: int = 0, pending_where: str = "") -> DeliveryReport:
        """A delivery report of the refusals so far and the given pending bytes.

        Parameters
        ----------
        pending_bytes : int
            Bytes still only in a local spool.
        pending_where : str
            Where they wait.

        Returns
        -------
        DeliveryReport
        """
        with self._lock:
            return DeliveryReport(self._count, pending_bytes, self._last, pending_where)


def check_ns(name: str, value: int | None) -> int | None:
    """Return a timestamp bound as int (None stays None), or raise :class:`StoreError`."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise StoreError(
            f"{name} must be an int of nanoseconds since the Unix epoch, got {value!r}."
        )
    return int(value)


@dataclass(frozen=True, slots=True)
class ReadQuery:
    """The arguments of :meth:`TimeSeriesStore.read`, checked once for every backend.

    Parameters
    ----------
    measurement : str
        Measurement name, in the schema.
    tags : dict of str to str
        Tag values to match exactly; ``""`` selects series without that tag.
    start_ns, stop_ns : int or None
        Half-open time range; None leaves that side open.
    fields : list of str or None
        Fields to return, each once, in the order asked; None for all.
    """

    measurement: str
    tags: dict[str, str]
    start_ns: int | None
    stop_ns: int | None
    fields: list[str] | None


def read_query(
    measurement: str,
    tags: Mapping[str, str] | None,
    start_ns: int | None,
    stop_ns: int | None,
    fields: Iterable[str] | None,
) -> ReadQuery:
    """Check the arguments of :meth:`TimeSeriesStore.read`; raise :class:`StoreError` if wrong.

    Parameters
    ----------
    measurement, tags, start_ns, stop_ns, fields
        As for :meth:`TimeSeriesStore.read`.

    Returns
    -------
    ReadQuery
    """
    check_measurement(measurement)
    tag_filter = dict(tags or {})
    for key, value in tag_filter.items():
        if key not in TAG_KEYS or not isinstance(value, str):
            raise StoreError(
                f"Cannot filter on tag {key!r} = {value!r}: tag keys are "
                f"{', '.join(TAG_KEYS)} and values are strings."
            )
    if isinstance(fields, str):
        raise StoreError(f"fields must be a list of field names, got the string {fields!r}.")
    return ReadQuery(
        measurement,
        tag_filter,
        check_ns("start_ns", start_ns),
        check_ns("stop_ns", stop_ns),
        None if fields is None else list(dict.fromkeys(fields)),
    )


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
            Tag values that must match exactly; ``""`` matches series without that tag
            (as ``WHERE device = ''`` does in InfluxQL).
        start_ns, stop_ns : int, optional
            Keep points with ``start_ns <= time_ns < stop_ns``.
        fields : iterable of str, optional
            Fields to return (all by default).

        Returns
        -------
        pandas.DataFrame
            Column ``time_ns`` (int64), then one str column per tag key that any returned
            series carries (``""`` for a series without it), then one column per field;
            sorted by time (ties in series order). A row per point: a point written twice
            appears once, each field holding its latest non-missing value. Rows where all
            requested fields are missing are omitted. Missing values are NaN in float
            columns, ``pd.NA`` in int (``Int64``) and bool (``boolean``) columns that have
            gaps, ``None`` in str columns. Unknown fields give no rows, like InfluxQL.

        Raises
        ------
        StoreError
            If the measurement is not in the schema, a tag key unknown or its value not a
            str, ``fields`` a single string, or a bound not an int.
        """
        return self._read(read_query(measurement, tags, start_ns, stop_ns, fields))

    @abc.abstractmethod
    def _read(self, query: ReadQuery) -> pd.DataFrame:
        """Run a read whose arguments :meth:`read` has checked; return what it returns."""

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

    def delivery(self) -> DeliveryReport:
        """Report what was written but is not stored for good (nothing, for a sync store).

        Returns
        -------
        DeliveryReport
        """
        return DeliveryReport()

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
