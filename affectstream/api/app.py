"""The app factory: ``create_app(settings)`` builds the FastAPI app ``affectstream serve`` runs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from affectstream._version import __version__
from affectstream.api import db as dbm
from affectstream.api import service, session_ops
from affectstream.api.alerts import AlertEngine
from affectstream.api.bus import ReplicaBus, conninfo
from affectstream.api.dashboard import mount as mount_dashboard
from affectstream.api.deps import ServiceState
from affectstream.api.exports import ExportJobs, default_exports_dir
from affectstream.api.ingest_cursors import LocalCursors
from affectstream.api.live import LiveHub
from affectstream.api.routers import (
    admin,
    alerts,
    data,
    exports,
    ingest,
    live,
    sessions,
    studies,
    valence,
)
from affectstream.api.runner import SessionRunner
from affectstream.api.security import JwtVerifier
from affectstream.api.settings import Settings
from affectstream.errors import AffectstreamError, ConfigError, StoreError
from affectstream.store import default_store_path, open_store

logger = logging.getLogger(__name__)

_STATUS: list[tuple[type[Exception], int]] = [
    (service.NotFoundError, 404),
    (service.ForbiddenError, 403),
    (service.ConflictError, 409),
    (ConfigError, 422),
    (StoreError, 503),
    (AffectstreamError, 400),
]


def build_state(settings: Settings) -> ServiceState:
    """Open the metadata database (migrated to head), the store, the hub and the runner.

    Parameters
    ----------
    settings : Settings

    Returns
    -------
    ServiceState
    """
    engine = dbm.make_engine(settings.database_url)
    dbm.upgrade(engine)
    sessions = dbm.session_factory(engine)
    if settings.bootstrap_admin_key is not None:
        with sessions() as db:
            if service.bootstrap_admin(db, settings.bootstrap_admin_key.get_secret_value()):
                logger.info("created user 'admin' with the bootstrap key")
    store_url = settings.store or str(default_store_path())
    store = open_store(store_url)
    hub = LiveHub(settings.live_queue, settings.live_max_drops)

    def on_done(session_id: str, summary: dict[str, Any] | None, error: str) -> None:
        with sessions() as db:
            service.finish_session(db, session_id, summary, error)

    runner = SessionRunner(store, store_url, hub, on_done, lsl_out=settings.lsl_out)
    state = ServiceState(
        settings,
        engine,
        sessions,
        store,
        hub,
        runner,
        AlertEngine(sessions, runner, hub),
        ExportJobs(
            sessions,
            store,
            default_exports_dir(),
            shared=conninfo(settings.database_url) is not None,
        ),
    )
    with sessions() as db:
        service.mark_interrupted(db)
    jwt_parts = (settings.jwt_issuer, settings.jwt_audience, settings.jwt_jwks_url)
    if any(jwt_parts) and not all(jwt_parts):
        raise ConfigError(
            "JWT needs jwt_issuer, jwt_audience and jwt_jwks_url together; set all three "
            "(AFFECTSTREAM_API_JWT_*) or none."
        )
    if settings.jwt_issuer and settings.jwt_audience and settings.jwt_jwks_url:
        state.jwt_verifier = JwtVerifier(
            settings.jwt_issuer, settings.jwt_audience, settings.jwt_jwks_url
        )
    return state


def create_app(settings: Settings) -> FastAPI:
    """Build the app; nothing is opened until it starts (the lifespan).

    Parameters
    ----------
    settings : Settings

    Returns
    -------
    fastapi.FastAPI
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = build_state(settings)
        app.state.service = state
        dsn = conninfo(settings.database_url)
        if dsn is not None:  # PostgreSQL: replicas may share it (api/bus.py)
            state.bus = ReplicaBus(
                dsn,
                state.hub,
                on_ingest=lambda sid: _spawn(session_ops.take_handoff(state, sid)),
                on_stop=lambda sid: _spawn(state.runner.stop(sid)),
                on_rules=lambda study: _spawn(state.alerts.reload(study)),
            )
            await state.bus.start()
        else:  # one process takes each session's ingest: its cursors stay in memory
            state.cursors = LocalCursors(
                state.sessions, lambda sid: state.runner.live(sid) is not None
            )
        try:
            yield
        finally:
            await state.runner.stop_all()
            if state.cursors is not None:
                await state.cursors.close()
            if state.bus is not None:
                await state.bus.close()
            await state.alerts.close()
            await state.exports.close()
            state.store.close()
            state.engine.dispose()

    app = FastAPI(
        title="affectstream",
        version=__version__,
        summary="Wearable physiology to live arousal and valence estimates.",
        lifespan=lifespan,
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    for exc_type, code in _STATUS:
        app.add_exception_handler(exc_type, _handler(code))
    for module in (admin, studies, sessions, data, live, ingest, alerts, exports, valence):
        app.include_router(module.router)
    mount_dashboard(app)  # the web page at /ui and the reads it needs (dashboard.py)

    @app.get("/health", tags=["meta"])
    def health() -> dict[str, str]:
        """Liveness (no token needed; says nothing about data)."""
        return {"status": "ok", "version": __version__}

    return app


_background: set[asyncio.Task[Any]] = set()


def _spawn(coro: Coroutine[Any, Any, Any]) -> None:
    """Run ``coro`` as a task kept alive until it ends (bus callbacks)."""
    task = asyncio.get_running_loop().create_task(coro)
    _background.add(task)
    task.add_done_callback(_background.discard)


def _handler(code: int):  # type: ignore[no-untyped-def]
    async def handle(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=code)

    return handle
