"""``affectstream serve`` as a child process on a free loopback port.

The one launcher of the service as a process: ``bench api`` and the test suite
(``tests/api/conftest.py``) both start it through :class:`ServeProcess`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Self

import httpx

from affectstream.api.security import new_key_text
from affectstream.errors import AffectstreamError
from affectstream.loopback import free_port

#: Seconds to wait for ``/health``.
READY_TIMEOUT = 90.0


class ServeProcess:
    """Run ``affectstream serve`` in a child process until the context ends.

    Parameters
    ----------
    store : str, optional
        ``--store`` (default: the embedded store in ``home``).
    database_url : str, optional
        ``--database-url`` (default: SQLite in ``home``).
    home : Path, optional
        ``AFFECTSTREAM_HOME`` (default: a temporary folder removed at the end).
    admin_key : str, optional
        The bootstrap admin key (default: a fresh one).
    env : dict, optional
        More environment variables (``AFFECTSTREAM_API_*`` settings); they win over the
        defaults set here.
    extra : sequence of str, optional
        More ``affectstream serve`` arguments (``--lsl-out`` ...).
    """

    def __init__(
        self,
        store: str | None = None,
        database_url: str | None = None,
        *,
        home: Path | None = None,
        admin_key: str | None = None,
        env: dict[str, str] | None = None,
        extra: Sequence[str] = (),
    ) -> None:
        self.store = store
        self.database_url = database_url
        self.admin_key = admin_key or new_key_text()
        self.env = dict(env or {})
        self.extra = list(extra)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.home = home
        self.url = ""
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The service's process id."""
        if self._process is None:
            raise AffectstreamError("The service is not running.")
        return self._process.pid

    @property
    def log(self) -> Path:
        """The service's combined output (``serve.log`` in its home)."""
        if self.home is None:
            raise AffectstreamError("The service has no home folder before it starts.")
        return self.home / "serve.log"

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the service's output (for failure messages).

        Parameters
        ----------
        chars : int
            How much of the end.

        Returns
        -------
        str
        """
        return self.log.read_text(errors="replace")[-chars:]

    def client(self, key: str | None = None, timeout: float = 60.0) -> httpx.Client:
        """An HTTP client of the service sending ``key`` as the bearer token.

        Parameters
        ----------
        key : str, optional
            API key or token; none sends no ``Authorization`` header.
        timeout : float
            Seconds per request.

        Returns
        -------
        httpx.Client
        """
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def start(self) -> Self:
        """Start the service and wait until ``/health`` answers.

        Returns
        -------
        ServeProcess
        """
        if self.home is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="affectstream-serve-")
            self.home = Path(self._tmp.name)
        self.home.mkdir(parents=True, exist_ok=True)
        port = free_port()
        argv = [sys.executable, "-m", "affectstream", "serve", "--port", str(port)]
        if self.store:
            argv += ["--store", self.store]
        if self.database_url:
            argv += ["--database-url", self.database_url]
        argv += self.extra
        environ = {
            **os.environ,
            "AFFECTSTREAM_HOME": str(self.home),
            "AFFECTSTREAM_API_BOOTSTRAP_ADMIN_KEY": self.admin_key,
            "AFFECTSTREAM_API_MAX_RUNNING_SESSIONS": "1000",
            **self.env,
        }
        with open(self.log, "ab") as out:
            self._process = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, env=environ, start_new_session=True
            )
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline and self._process.poll() is None:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/health", timeout=1.0).status_code == 200:
                    return self
            time.sleep(0.1)
        tail = self.log_tail()
        self.stop()
        raise AffectstreamError(f"affectstream serve did not come up on {self.url}:\n{tail}")

    def stop(self) -> None:
        """SIGTERM (uvicorn's graceful stop; sessions flush), SIGKILL after 60 s."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
