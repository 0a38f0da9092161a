"""Read commands open the embedded store read-only and refuse a path with no store.

The archived study is on a file system mounted read-only for the test (root can write
through file permissions, not through a read-only mount); skipped where mounting is not
permitted.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from affectstream.cli import main
from affectstream.errors import StoreError
from affectstream.store import EmbeddedStore, open_store
from affectstream.store.base import SeriesBatch

T0 = 1_700_000_000_000_000_000


def write_session(path: Path, session: str = "S-01") -> None:
    t = T0 + np.arange(50, dtype=np.int64) * 1_000_000_000
    tags = {"participant": "P-01", "session": session}
    with EmbeddedStore(path) as store:
        store.write(
            [
                SeriesBatch("features", tags, t, {"eda_tonic_mean": np.linspace(1, 2, 50)}),
                SeriesBatch("events", tags, t[:1], {"label": np.array(["start"], dtype=object)}),
            ]
        )


def digest(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


@pytest.fixture
def archive(tmp_path: Path) -> Iterator[Path]:
    """A store on a read-only mount."""
    mount = tmp_path / "archive"
    mount.mkdir()
    run = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if run.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({run.stderr.strip()}); needs root")
    try:
        write_session(mount / "store")
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        yield mount / "store"
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_archived_store_lists_shows_and_exports(
    archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = digest(archive)
    assert main(["store", "--store", str(archive), "ls", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [s["session"] for s in listed["sessions"]] == ["S-01"]
    assert main(["store", "--store", str(archive), "show", "S-01"]) == 0
    capsys.readouterr()
    out = tmp_path / "export"
    code = main(["export", "S-01", "--format", "csv", "--out", str(out), "--store", str(archive),
                 "--no-progress"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert any(out.rglob("*.csv"))
    assert digest(archive) == before


def test_writing_a_read_only_store_is_refused(tmp_path: Path) -> None:
    write_session(tmp_path / "store")
    with open_store(str(tmp_path / "store"), read_only=True) as store:
        assert [s.session for s in store.sessions()] == ["S-01"]
        with pytest.raises(StoreError, match="read-only"):
            store.delete_session("S-01")


COMMANDS = [
    ["store", "--store", "{store}", "ls"],
    ["store", "--store", "{store}", "show", "S-01"],
    ["export", "S-01", "--format", "csv", "--out", "o", "--store", "{store}"],
]


@pytest.mark.parametrize("command", COMMANDS)
def test_a_mistyped_store_path_is_refused_not_created(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    typo = tmp_path / "stroe"
    assert main([c.format(store=typo) for c in command]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: No affectstream store at") and str(typo) in err[-1]
    assert not typo.exists()


def test_a_file_that_is_not_a_store_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import sqlite3

    other = tmp_path / "other.db"
    with sqlite3.connect(other) as connection:
        connection.execute("CREATE TABLE t (x)")
    assert main(["store", "--store", str(other), "ls"]) == 2
    assert "not an affectstream store" in capsys.readouterr().err
