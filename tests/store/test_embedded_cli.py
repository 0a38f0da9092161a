"""``affectstream store ls|show|rm`` on a real embedded store."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from affectstream.cli import main
from affectstream.store import EmbeddedStore, SeriesBatch


def _last_json(capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    output = capsys.readouterr().out.strip().splitlines()
    result: dict[str, object] = json.loads(output[-1])
    return result


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    path = tmp_path / "store"
    with EmbeddedStore(path) as store:
        for session, offset in (("s1", 0), ("s2", 10**12)):
            times = offset + np.arange(50, dtype=np.int64) * 10**9
            store.write(
                [
                    SeriesBatch(
                        "raw_hr",
                        {"participant": "p7", "session": session, "stream": "h10/hr"},
                        times,
                        {"hr": 60.0 + np.arange(50)},
                    ),
                    SeriesBatch(
                        "events",
                        {"participant": "p7", "session": session},
                        times[:2],
                        {"kind": np.array(["marker", "marker"], dtype=object)},
                    ),
                ]
            )
    return path


def test_ls_show_rm(store_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["store", "--store", str(store_path), "ls", "--json"]) == 0
    listing = _last_json(capsys)
    sessions = listing["sessions"]
    assert isinstance(sessions, list)
    assert [(s["session"], s["participant"], s["n_points"]) for s in sessions] == [
        ("s1", "p7", 52),
        ("s2", "p7", 52),
    ]
    assert sessions[0]["stop_ns"] - sessions[0]["start_ns"] == 49 * 10**9 + 1

    assert (
        main(
            [
                "store",
                "--store",
                str(store_path),
                "show",
                "s2",
                "--measurement",
                "raw_hr",
                "--limit",
                "3",
                "--json",
            ]
        )
        == 0
    )
    shown = _last_json(capsys)
    assert [s["measurement"] for s in shown["series"]] == ["events", "raw_hr"]  # type: ignore[union-attr]
    assert shown["n_rows"] == 50
    assert [p["hr"] for p in shown["points"]] == [60.0, 61.0, 62.0]  # type: ignore[union-attr]

    assert main(["store", "--store", str(store_path), "rm", "s1"]) == 2  # needs --yes
    assert "add --yes" in capsys.readouterr().err
    assert main(["store", "--store", str(store_path), "rm", "s1", "--yes", "--json"]) == 0
    assert _last_json(capsys) == {"deleted": "s1", "n_points": 52}
    assert main(["store", "--store", str(store_path), "show", "s1"]) == 2
    assert "No session 's1'" in capsys.readouterr().err
    with EmbeddedStore(store_path) as store:
        assert [info.session for info in store.sessions()] == ["s2"]


def test_default_store_is_under_affectstream_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AFFECTSTREAM_HOME", str(tmp_path))
    assert main(["store", "ls", "--json"]) == 0
    assert _last_json(capsys)["sessions"] == []
    assert (tmp_path / "store" / "store.sqlite").is_file()
