"""The same service on PostgreSQL (Debian's ``postgresql`` package): migration, the role
matrix and ingest exactly-once, against a real PostgreSQL started on a loopback port.

Skipped when PostgreSQL's ``initdb`` is not installed (scripts/test.sh installs it as root).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from affectstream.api.serve_process import ServeProcess
from affectstream.loopback import free_port
from tests.api.conftest import Server
from tests.api.test_ingest import test_resent_batch_lands_once_and_lost_batch_is_a_gap
from tests.api.test_roles import test_every_route_for_every_role

__all__ = [
    "test_every_route_for_every_role",
    "test_resent_batch_lands_once_and_lost_batch_is_a_gap",
]


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(candidates[-1]) if candidates else None


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A throw-away PostgreSQL cluster on a loopback port (run as user postgres when root)."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.skip("PostgreSQL is not installed: run scripts/test.sh as root (apt-get postgresql)")
    # Not under pytest's tmp folder: that is private to root, and initdb refuses to run as
    # root, so the cluster belongs to user postgres in a folder of its own.
    folder = Path(tempfile.mkdtemp(prefix="affectstream-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    data = folder / "data"
    subprocess.run(
        [*as_user, initdb, "-D", str(data), "-A", "trust", "-U", "affect"],
        check=True,
        capture_output=True,
    )
    options = f"-k {folder} -h 127.0.0.1 -p {port} -c fsync=off"
    subprocess.run(
        [
            *as_user,
            pg_ctl,
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(folder / "log"),
            "-w",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://affect@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*as_user, pg_ctl, "-D", str(data), "-m", "fast", "stop"], capture_output=True
        )
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, postgres_url: str) -> Iterator[Server]:
    """``affectstream serve`` with its metadata in PostgreSQL (overrides the SQLite one)."""
    home = tmp_path_factory.mktemp("pg-serve-home")
    with ServeProcess(home=home, database_url=postgres_url) as srv:
        yield srv


def test_audit_log_is_append_only_in_postgres(server: Server, postgres_url: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(postgres_url)
    try:
        with engine.begin() as connection:
            assert connection.execute(text("SELECT count(*) FROM audit_log")).scalar_one() > 0
        for statement in ("UPDATE audit_log SET action = 'x'", "DELETE FROM audit_log"):
            with pytest.raises(Exception, match="append-only"), engine.begin() as connection:
                connection.execute(text(statement))
    finally:
        engine.dispose()
