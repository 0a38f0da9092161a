"""Turn in-memory signal types into store batches (used by the live runtime and exports)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from affectstream.errors import StoreError
from affectstream.store.base import RAW_PREFIX, SeriesBatch, check_measurement
from affectstream.types import FloatArray, Gap, SampleBlock

logger = logging.getLogger(__name__)

#: ``kind`` field of the event written for each :class:`~affectstream.types.Gap`.
GAP_EVENT_KIND = "gap"


def seconds_to_ns(t: FloatArray | float) -> NDArray[np.int64]:
    """Convert host time in float seconds to int64 nanoseconds, rounded to the nearest ns.

    Parameters
    ----------
    t : float or ndarray of float
        Seconds since the Unix epoch.

    Returns
    -------
    ndarray of int64
        Float64 seconds near the present are exact to about 0.2 µs, so rounding, not
        truncation, keeps a 256 Hz grid on its nominal nanoseconds where it can.
    """
    seconds = np.asarray(t, dtype=np.float64)
    if not np.all(np.isfinite(seconds)):
        raise StoreError("Timestamps must be finite seconds; found NaN or infinity.")
    return np.rint(seconds * 1e9).astype(np.int64)


def blocks_to_batches(
    blocks: Iterable[SampleBlock], *, participant: str = "", session: str = ""
) -> list[SeriesBatch]:
    """Turn sample blocks into ``raw_<modality>`` batches plus ``events`` batches for gaps.

    Consecutive blocks of one stream are joined into one batch. Channel names become
    lowercase field names. Rows where every channel is NaN (the rows that stand for
    missing samples) are not written; each :class:`~affectstream.types.Gap` is written as
    an ``events`` point at the gap's start with ``kind="gap"``, ``label`` = the reason,
    and int fields ``n_samples`` and ``first_index``.

    Parameters
    ----------
    blocks : iterable of SampleBlock
        Blocks of one or more streams.
    participant : str
        Pseudonymous participant id (tag).
    session : str
        Session id (tag).

    Returns
    -------
    list of SeriesBatch
        Tagged with ``participant``, ``session``, ``device`` (when the block names one)
        and ``stream``.
    """
    grouped: dict[tuple[str, str, tuple[str, ...], str], list[SampleBlock]] = {}
    for block in blocks:
        key = (block.stream, block.modality, block.channels, block.device)
        grouped.setdefault(key, []).append(block)
    batches: list[SeriesBatch] = []
    for (stream, modality, channels, device), parts in grouped.items():
        measurement = check_measurement(RAW_PREFIX + modality.lower())
        names = [channel.lower() for channel in channels]
        if len(set(names)) != len(names):
            raise StoreError(
                f"Stream {stream!r} has channels {list(channels)} that collide once "
                "lowercased; give its channels distinct names."
            )
        tags = {"participant": participant, "session": session, "device": device}
        tags["stream"] = stream
        times = np.concatenate([block.t for block in parts])
        values = np.concatenate([block.values for block in parts])
        keep = ~np.all(np.isnan(values), axis=1)
        if keep.any():  # zero-row blocks may carry only gaps
            batches.append(
                SeriesBatch(
                    measurement,
                    tags,
                    seconds_to_ns(times[keep]),
                    {name: values[keep, i] for i, name in enumerate(names)},
                )
            )
        gaps = [gap for block in parts for gap in block.gaps]
        if gaps:
            batches.append(_gap_events(gaps, tags))
    return batches


def _gap_events(gaps: list[Gap], tags: dict[str, str]) -> SeriesBatch:
    """Gaps of one stream as an ``events`` batch."""
    return SeriesBatch(
        "events",
        tags,
        seconds_to_ns(np.array([gap.t_start for gap in gaps])),
        {
            "kind": np.array([GAP_EVENT_KIND] * len(gaps), dtype=object),
            "label": np.array([gap.reason for gap in gaps], dtype=object),
            "n_samples": np.array([gap.n_samples for gap in gaps], dtype=np.int64),
            "first_index": np.array([gap.first_index for gap in gaps], dtype=np.int64),
        },
    )


def event_batch(
    tags: Mapping[str, str],
    t: float,
    kind: str,
    label: str,
    detail: str = "",
    values: Mapping[str, float] | None = None,
) -> SeriesBatch:
    """One ``events`` point (a marker, phase, self-report...) as a batch.

    Parameters
    ----------
    tags : mapping
        ``participant`` and ``session`` tags.
    t : float
        Event time, seconds since the epoch.
    kind, label, detail : str
        The event's string fields.
    values : mapping of str to float, optional
        Numeric fields (e.g. a self-report's ratings).

    Returns
    -------
    SeriesBatch
    """
    fields: dict[str, Any] = {
        "kind": np.array([kind], dtype=object),
        "label": np.array([label], dtype=object),
        "detail": np.array([detail], dtype=object),
    }
    for name, value in (values or {}).items():
        fields[name] = np.array([value], dtype=np.float64)
    return SeriesBatch("events", dict(tags), seconds_to_ns(np.array([t])), fields)
