"""Signed webhook delivery with retries; every attempt's outcome lands in the delivery log.

A receiver verifies a call by recomputing
``HMAC-SHA256(secret, f"{X-Affectstream-Timestamp}." + body)`` and comparing it with the
``X-Affectstream-Signature: sha256=<hex>`` header in constant time (and should refuse a
timestamp far from its own clock, which stops replays). The secret is the one the service
returned once, when the rule was created.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Coroutine, Mapping
from typing import Any

import httpx
from sqlalchemy.orm import Session, sessionmaker

from affectstream.api.db import AlertDelivery

logger = logging.getLogger(__name__)

#: Attempts per delivery, and the first back-off (doubled after each failed attempt).
ATTEMPTS = 5
FIRST_BACKOFF_S = 0.5
#: Seconds one attempt may take.
TIMEOUT_S = 5.0
SIGNATURE_HEADER = "X-Affectstream-Signature"
TIMESTAMP_HEADER = "X-Affectstream-Timestamp"


def new_secret() -> str:
    """A fresh webhook signing secret.

    Returns
    -------
    str
    """
    return "whsec_" + secrets.token_urlsafe(32)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header value of ``body`` sent at ``timestamp``.

    Parameters
    ----------
    secret : str
    timestamp : int
        Unix seconds.
    body : bytes
        The exact request body.

    Returns
    -------
    str
        ``sha256=<hex digest>``.
    """
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


class WebhookSender:
    """Delivers alert payloads in background tasks, never blocking the caller.

    Parameters
    ----------
    sessions : sessionmaker
        The metadata database (the delivery log).
    """

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None

    def submit(self, delivery_id: int, url: str, secret: str, payload: Mapping[str, Any]) -> None:
        """Start delivering ``payload`` (event loop only).

        Parameters
        ----------
        delivery_id : int
            Its row in the delivery log.
        url, secret : str
        payload : mapping
        """
        self.track(self._deliver(delivery_id, url, secret, payload))

    def track(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` as a task that shutdown waits for (event loop only).

        Parameters
        ----------
        work : coroutine
        """
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(
        self, delivery_id: int, url: str, secret: str, payload: Mapping[str, Any]
    ) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=TIMEOUT_S, follow_redirects=False)
        body = json.dumps(payload, separators=(",", ":")).encode()
        backoff = FIRST_BACKOFF_S
        code: int | None = None
        error = ""
        for attempt in range(1, ATTEMPTS + 1):
            timestamp = int(time.time())
            headers = {
                "Content-Type": "application/json",
                TIMESTAMP_HEADER: str(timestamp),
                SIGNATURE_HEADER: sign(secret, timestamp, body),
            }
            try:
                response = await self._client.post(url, content=body, headers=headers)
                code, error = response.status_code, ""
                if 200 <= code < 300:
                    await asyncio.to_thread(
                        self._record, delivery_id, "delivered", attempt, code, ""
                    )
                    return
                error = f"HTTP {code}"
            except httpx.HTTPError as exc:
                code, error = None, f"{type(exc).__name__}: {exc}"[:500]
            status = "failed" if attempt == ATTEMPTS else "pending"
            await asyncio.to_thread(self._record, delivery_id, status, attempt, code, error)
            if attempt < ATTEMPTS:
                await asyncio.sleep(backoff)
                backoff *= 2
        logger.warning(
            "webhook delivery %d failed after %d attempts: %s", delivery_id, ATTEMPTS, error
        )

    def _record(
        self, delivery_id: int, status: str, attempts: int, code: int | None, error: str
    ) -> None:
        with self._sessions() as db:
            row = db.get(AlertDelivery, delivery_id)
            if row is None:  # its rule was deleted meanwhile
                return
            row.status, row.attempts, row.response_code, row.last_error = (
                status,
                attempts,
                code,
                error,
            )
            if status == "delivered":
                row.delivered_at = time.time()
            db.commit()

    async def close(self, timeout: float = 10.0) -> None:
        """Give running deliveries ``timeout`` seconds, then cancel them and close the client.

        Parameters
        ----------
        timeout : float
        """
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
            for task in pending:
                task.cancel()
        if self._client is not None:
            await self._client.aclose()
