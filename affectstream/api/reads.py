"""Time-range reads of a session's measurements from the time-series store."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy.orm import Session

from affectstream.api.access import NotFoundError, check
from affectstream.api.live import json_safe
from affectstream.api.schemas import SeriesOut
from affectstream.api.security import Principal, audit
from affectstream.api.studies import get_session
from affectstream.store import TimeSeriesStore
from affectstream.types import UNITS


@dataclass(frozen=True)
class SeriesQuery:
    """Which points of a measurement a read returns.

    Parameters
    ----------
    start_ns, stop_ns : int, optional
        Half-open range, ns since the epoch.
    limit, offset : int
        Page of the (decimated) rows.
    every : int
        Keep every ``every``-th point (decimation of raw samples).
    """

    start_ns: int | None
    stop_ns: int | None
    limit: int
    offset: int
    every: int = 1


def read_series(
    store: TimeSeriesStore, session_id: str, measurement: str, query: SeriesQuery
) -> tuple[list[dict[str, Any]], int]:
    """Points of one measurement of a session in a time range, as JSON-ready rows.

    Parameters
    ----------
    store : TimeSeriesStore
    session_id, measurement : str
    query : SeriesQuery
        Range, page and decimation.

    Returns
    -------
    rows : list of dict
    total : int
        Rows in the range after decimation.
    """
    frame: pd.DataFrame = store.read(
        measurement, tags={"session": session_id}, start_ns=query.start_ns, stop_ns=query.stop_ns
    )
    if query.every > 1:
        frame = frame.iloc[:: query.every]
    total = len(frame)
    page = frame.iloc[query.offset : query.offset + query.limit]
    page = page.drop(columns=[c for c in ("session", "participant") if c in page.columns])
    rows = [
        {k: (None if v is pd.NA else v) for k, v in record.items()}
        for record in page.astype(object).where(page.notna(), None).to_dict("records")
    ]
    return json_safe(rows), total


def raw_measurements(store: TimeSeriesStore, session_id: str) -> list[str]:
    """The ``raw_<modality>`` measurements a session has.

    Returns
    -------
    list of str
    """
    return sorted({m for m, _ in store.series(session_id) if m.startswith("raw_")})


_READ_ACTION = {
    "affect": "estimates:read",
    "features": "features:read",
    "quality": "estimates:read",
}


def series(
    store: TimeSeriesStore,
    db: Session,
    principal: Principal,
    session_id: str,
    measurement: str,
    query: SeriesQuery,
) -> SeriesOut:
    """A time-range read of one measurement of a session, access-checked (raw: audited).

    Returns
    -------
    SeriesOut
    """
    check(principal, _READ_ACTION.get(measurement, "raw:read"))
    get_session(db, principal, session_id)
    if measurement.startswith("raw_"):
        modality = measurement.removeprefix("raw_")
        if modality not in UNITS:
            raise NotFoundError(f"No modality {modality!r}: use one of {', '.join(UNITS)}.")
        audit(
            db,
            principal,
            "read_raw",
            f"session/{session_id}/{measurement}",
            f"start_ns={query.start_ns} stop_ns={query.stop_ns} every={query.every} "
            f"offset={query.offset} limit={query.limit}",
        )
        db.commit()
    rows, total = read_series(store, session_id, measurement, query)
    return SeriesOut(
        measurement=measurement,
        total=total,
        limit=query.limit,
        offset=query.offset,
        every=query.every,
        rows=rows,
    )
