"""``affectstream demo --serve``: the demo session run by the service, watched in the browser.

The service (the same app ``affectstream serve`` runs) starts on a free loopback port with
a throw-away metadata database and a fresh admin key; the demo study, participant and
emulated session are created through its API, so the dashboard, the live push and the store
all see it exactly as they would any session. It serves until Ctrl-C (or SIGTERM).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from affectstream.cli._output import say
from affectstream.loopback import free_port

#: Seconds to wait for the service to come up.
START_TIMEOUT = 60.0


async def _serve(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    import httpx
    import uvicorn

    from affectstream.api.app import create_app
    from affectstream.api.security import new_key_text
    from affectstream.api.settings import load_settings

    key = new_key_text()
    port = args.port or free_port()
    settings = load_settings(
        None,
        host="127.0.0.1",
        port=port,
        store=args.store,
        database_url=f"sqlite:///{folder / 'demo-service.sqlite'}",
        bootstrap_admin_key=key,
    )
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_level="warning", access_log=False
    )

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield  # the demo handles SIGINT/SIGTERM itself: it stops the session first

    server = Server(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    serving = asyncio.create_task(server.serve())
    url = f"http://127.0.0.1:{port}"
    try:
        async with asyncio.timeout(START_TIMEOUT):
            while not server.started:
                if serving.done():
                    serving.result()  # raises what stopped it
                    raise RuntimeError(f"the service on {url} stopped while starting")
                await asyncio.sleep(0.05)
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60.0) as api:
            session = await _start_session(api, args)
            say(f"dashboard: {url}/ui   API: {url}/docs")
            say(f"admin key (this demo's throw-away database only): {key}")
            say(f"session {session} runs {args.duration:g} s; Ctrl-C stops the service")
            await stop.wait()
            row = (await api.get(f"/sessions/{session}")).json()
            if row["status"] == "running":
                await api.post(f"/sessions/{session}/stop")
                row = (await api.get(f"/sessions/{session}")).json()
    finally:
        server.should_exit = True
        await serving
    summary: dict[str, Any] = row.get("summary") or {}
    return {"url": url, "session": session, "status": row["status"], **summary}


async def _start_session(api: Any, args: argparse.Namespace) -> str:
    study = await api.post("/studies", json={"name": "demo"})
    study.raise_for_status()
    participant = await api.post(
        f"/studies/{study.json()['id']}/participants",
        json={"pseudonym": args.participant or "demo"},
    )
    participant.raise_for_status()
    body = {
        "participant_id": participant.json()["id"],
        "kind": "emulated",
        "duration": args.duration,
        "seed": args.seed,
    }
    created = await api.post("/sessions", json=body)
    created.raise_for_status()
    return str(created.json()["id"])


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Serve the demo until Ctrl-C.

    Returns the URL, the session id, its status and its summary.
    """
    with tempfile.TemporaryDirectory(prefix="affectstream-demo-") as folder:
        return asyncio.run(_serve(args, Path(folder)))
