"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_path() -> Path:
    """Return where the real recordings are (``../shared/data`` or $AFFECTSTREAM_SHARED_DATA)."""
    override = os.environ.get("AFFECTSTREAM_SHARED_DATA")
    return Path(override) if override else REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real recordings folder; tests using it skip when it is absent (fresh clones)."""
    path = shared_data_path()
    if not (path / "README.md").is_file():
        pytest.skip(f"real recordings not found at {path} (set AFFECTSTREAM_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def shared_data_or_none() -> Path | None:
    """The real recordings folder, or None: for tests that fall back to synthetic data."""
    path = shared_data_path()
    return path if (path / "README.md").is_file() else None


@pytest.fixture(scope="session", autouse=True)
def private_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Keep every test (and the CLI subprocesses it starts) out of the user's ~/.affectstream."""
    home = tmp_path_factory.mktemp("home")
    before = os.environ.get("AFFECTSTREAM_HOME")
    os.environ["AFFECTSTREAM_HOME"] = str(home)
    try:
        yield home
    finally:
        if before is None:
            os.environ.pop("AFFECTSTREAM_HOME", None)
        else:
            os.environ["AFFECTSTREAM_HOME"] = before
