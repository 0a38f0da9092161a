"""Estimates, features and raw samples of a session by time range; model bundles."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from affectstream.api import service
from affectstream.api.deps import DbDep, Offset, PrincipalDep, StateDep
from affectstream.api.etag import NOT_MODIFIED, etagged
from affectstream.api.schemas import ModelCard, ModelOut, SeriesOut, SessionId

router = APIRouter(tags=["data"])
Start = Annotated[
    int | None, Query(ge=0, le=2**63 - 1, description="ns since the epoch, inclusive")
]
Stop = Annotated[int | None, Query(ge=0, le=2**63 - 1, description="ns since the epoch, exclusive")]
Limit = Annotated[int, Query(ge=1, le=100_000)]


def _query(
    start_ns: Start = None, stop_ns: Stop = None, limit: Limit = 1000, offset: Offset = 0
) -> service.SeriesQuery:
    return service.SeriesQuery(start_ns, stop_ns, limit, offset)


def _raw_query(
    start_ns: Start = None,
    stop_ns: Stop = None,
    limit: Limit = 10_000,
    offset: Offset = 0,
    every: Annotated[int, Query(ge=1, le=100_000, description="keep every n-th sample")] = 1,
) -> service.SeriesQuery:
    return service.SeriesQuery(start_ns, stop_ns, limit, offset, every)


# The range and page of a read, as query parameters (raw reads page more and may decimate).
SeriesQueryDep = Annotated[service.SeriesQuery, Depends(_query)]
RawQueryDep = Annotated[service.SeriesQuery, Depends(_raw_query)]


@router.get("/sessions/{session_id}/estimates")
def estimates(
    session_id: SessionId, state: StateDep, db: DbDep, who: PrincipalDep, query: SeriesQueryDep
) -> SeriesOut:
    """Arousal/valence estimates (with confidence and top contributions) in a time range."""
    return service.series(state.store, db, who, session_id, "affect", query)


@router.get("/sessions/{session_id}/features")
def features(
    session_id: SessionId,
    state: StateDep,
    db: DbDep,
    who: PrincipalDep,
    query: SeriesQueryDep,
    measurement: Annotated[str, Query(pattern="^(features|quality)$")] = "features",
) -> SeriesOut:
    """Window features (or quality indices) in a time range."""
    return service.series(state.store, db, who, session_id, measurement, query)


@router.get("/sessions/{session_id}/raw/{modality}")
def raw(
    session_id: SessionId,
    modality: Annotated[str, "ecg, eeg, eda..."],
    state: StateDep,
    db: DbDep,
    who: PrincipalDep,
    query: RawQueryDep,
) -> SeriesOut:
    """Raw samples of one modality (decimated with ``every``); audited; not for viewers."""
    return service.series(state.store, db, who, session_id, f"raw_{modality}", query)


@router.get("/models", response_model=list[ModelOut], responses=NOT_MODIFIED)
def list_models(request: Request, who: PrincipalDep) -> Response:
    """Shipped model bundles."""
    models = [ModelOut.model_validate(m) for m in service.models(who)]
    return etagged(request, models, list[ModelOut])


@router.get("/models/{name}", response_model=ModelCard, responses=NOT_MODIFIED)
def model_card(request: Request, name: str, who: PrincipalDep) -> Response:
    """A shipped model bundle with its model card."""
    return etagged(request, ModelCard.model_validate(service.model_card(who, name)))
