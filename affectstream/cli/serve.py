"""``affectstream serve``: the HTTP and WebSocket service (loopback by default).

Examples::

    AFFECTSTREAM_API_BOOTSTRAP_ADMIN_KEY=ask_... affectstream serve
    affectstream serve --config service.toml --port 8080
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from affectstream.cli._output import add_json_argument, emit_result, say

logger = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    """Add ``serve`` to ``subparsers`` (see :mod:`affectstream.cli`)."""
    parser = subparsers.add_parser(
        "serve",
        help="run the HTTP/WebSocket service (loopback by default)",
        description=(
            "Serve the REST and WebSocket API over the runtime and the store. Settings come "
            "from --config (TOML), AFFECTSTREAM_API_* variables and these flags. A "
            "non-loopback bind needs TLS or --insecure-public-bind."
        ),
    )
    parser.add_argument(
        "--config", metavar="TOML", help="settings file (or $AFFECTSTREAM_API_CONFIG)"
    )
    parser.add_argument("--host", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default 8000; 0: any free port)")
    parser.add_argument(
        "--store", metavar="PATH_OR_URL", help="time-series store (default embedded)"
    )
    parser.add_argument("--database-url", help="metadata database URL (default SQLite)")
    parser.add_argument("--tls-certfile", help="TLS certificate (PEM)")
    parser.add_argument("--tls-keyfile", help="TLS private key (PEM)")
    parser.add_argument(
        "--insecure-public-bind",
        action="store_true",
        default=None,
        help="allow a non-loopback bind without TLS (behind a TLS-terminating proxy only)",
    )
    parser.add_argument(
        "--lsl-out",
        action="store_true",
        default=None,
        help="publish every session's raw streams, features, estimates and events as LSL "
        "outlets (needs affectstream[lsl])",
    )
    add_json_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the settings and the app, check the bind, run uvicorn until stopped."""
    import uvicorn

    from affectstream.api.app import create_app
    from affectstream.api.settings import load_settings

    settings = load_settings(
        args.config,
        host=args.host,
        port=args.port,
        store=args.store,
        database_url=args.database_url,
        tls_certfile=args.tls_certfile,
        tls_keyfile=args.tls_keyfile,
        insecure_public_bind=args.insecure_public_bind,
        lsl_out=args.lsl_out,
    )
    settings.check_bind()
    scheme = "https" if settings.tls else "http"
    url = f"{scheme}://{settings.host}:{settings.port}"
    say(f"affectstream serve: {url} (docs at /docs, dashboard at /ui)")
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        ssl_certfile=settings.tls_certfile,
        ssl_keyfile=settings.tls_keyfile,
        log_level=logging.getLevelName(logging.getLogger().level).lower(),
        access_log=False,
    )
    emit_result(args, {"url": url, "docs": f"{url}/docs", "dashboard": f"{url}/ui"})
    return 0
