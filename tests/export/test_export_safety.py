"""Exports never overwrite silently, never merge two streams or participants, and fail
with one line and no partial files."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from affectstream.cli import main
from affectstream.export.staging import STAGING_PREFIX
from affectstream.store import EmbeddedStore, SeriesBatch

T0_NS = 1_764_064_800 * 10**9
N = 100


def _hr_store(path: Path, sessions: dict[str, str], streams: tuple[str, ...] = ("h10/hr",)) -> None:
    """Sessions (id -> participant) of N heart-rate points per stream; values tell them apart."""
    with EmbeddedStore(path) as store:
        for k, (session, participant) in enumerate(sessions.items()):
            for j, stream in enumerate(streams):
                store.write(
                    [
                        SeriesBatch(
                            "raw_eda",
                            {"participant": participant, "session": session, "stream": stream,
                             "device": stream.split("/")[0]},
                            T0_NS + k * 10**12 + np.arange(N, dtype=np.int64) * 250_000_000,
                            {"eda": 1000.0 * k + 100.0 * j + np.arange(N, dtype=np.float64)},
                        ),
                        SeriesBatch(
                            "events", {"participant": participant, "session": session},
                            np.array([T0_NS + k * 10**12], dtype=np.int64),
                            {"kind": np.array(["marker"], dtype=object),
                             "label": np.array([f"start {session}"], dtype=object)},
                        ),
                    ]
                )  # fmt: skip


def _export(store: Path, out: Path, *args: str) -> int:
    return main(["export", *args, "--store", str(store), "--out", str(out), "--no-progress"])


def _json(capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    result: dict[str, object] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    return result


def _contents(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_second_export_into_the_same_out_is_refused_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, out = tmp_path / "store", tmp_path / "out"
    _hr_store(store, {"s1": "P1"})
    assert _export(store, out, "s1", "--format", "csv") == 0
    first = _contents(out)
    assert "s1/csv_manifest.json" in first  # one folder per session
    capsys.readouterr()
    assert _export(store, out, "s1", "--format", "csv") == 2
    err = capsys.readouterr().err
    assert "--force" in err and "Traceback" not in err
    assert _contents(out) == first
    assert _export(store, out, "s1", "--format", "csv", "--force") == 0
    assert set(_contents(out)) == set(first)


def test_sessions_exported_into_one_out_keep_their_own_folders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, out = tmp_path / "store", tmp_path / "out"
    _hr_store(store, {"s1": "P1", "s2": "P1", "s3": "P2"})
    assert _export(store, out, "s1", "--format", "csv") == 0
    assert _export(store, out, "s2", "--format", "csv") == 0
    for session in ("s1", "s2"):
        manifest = json.loads((out / session / "csv_manifest.json").read_text())
        assert manifest["session"] == session
        events = pd.read_csv(out / session / "events.csv")
        assert events["label"].tolist() == [f"start {session}"]
    capsys.readouterr()

    # --participant: every session of one participant, nothing of the others.
    assert _export(store, tmp_path / "p1", "--participant", "P1", "--format", "parquet",
                   "--json") == 0  # fmt: skip
    result = _json(capsys)
    exports = result["exports"]
    assert isinstance(exports, list)
    assert [e["session"] for e in exports] == ["s1", "s2"]
    assert sorted(p.name for p in (tmp_path / "p1").iterdir()) == ["s1", "s2"]
    # --all: every session.
    assert _export(store, tmp_path / "all", "--all", "--format", "csv") == 0
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == ["s1", "s2", "s3"]
    capsys.readouterr()
    # Choosing nothing, two ways at once, or a participant with no session: one line each.
    assert _export(store, tmp_path / "x", "--format", "csv") == 2
    assert _export(store, tmp_path / "x", "s1", "--all", "--format", "csv") == 2
    assert _export(store, tmp_path / "x", "--participant", "P9", "--format", "csv") == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 3 and "Traceback" not in err
    assert not (tmp_path / "x").exists()


def test_streams_whose_names_clean_to_one_file_name_stay_apart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, out = tmp_path / "store", tmp_path / "out"
    streams = ("dev a/eda", "dev-a/eda")
    _hr_store(store, {"s1": "P1"}, streams)
    for fmt in ("csv", "parquet"):
        assert _export(store, out / fmt, "s1", "--format", fmt) == 0
        files = sorted((out / fmt / "s1").glob(f"raw_eda_*.{fmt}"))
        assert len(files) == 2
        read = pd.read_csv if fmt == "csv" else pd.read_parquet
        frames = {str(f["stream"].iloc[0]): f for f in map(read, files)}
        assert set(frames) == set(streams)
        for j, stream in enumerate(streams):
            assert len(frames[stream]) == N
            assert (frames[stream]["stream"] == stream).all()
            np.testing.assert_array_equal(frames[stream]["eda"], 100.0 * j + np.arange(N))


def test_session_ids_that_clean_to_one_folder_name_stay_apart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, out = tmp_path / "store", tmp_path / "out"
    # Both ids are valid (affectstream.ids); file names drop the trailing '.'.
    _hr_store(store, {"X-1.": "P1", "X-1": "P1"})
    assert _export(store, out, "--all", "--format", "csv") == 0
    assert _export(store, tmp_path / "one-by-one", "X-1", "--format", "csv") == 0
    assert _export(store, tmp_path / "one-by-one", "X-1.", "--format", "csv") == 0
    for root in (out, tmp_path / "one-by-one"):
        manifests = [json.loads(p.read_text()) for p in root.glob("*/csv_manifest.json")]
        assert sorted(m["session"] for m in manifests) == ["X-1", "X-1."]


def test_bids_participant_ids_with_one_label_are_not_merged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, out = tmp_path / "store", tmp_path / "bids"
    _hr_store(store, {"a1": "X-1", "b1": "X_1"})
    assert _export(store, out, "a1", "--format", "bids") == 0
    before = _contents(out)
    capsys.readouterr()
    assert _export(store, out, "b1", "--format", "bids") == 2
    err = capsys.readouterr().err
    assert "'X-1'" in err and "'X_1'" in err and "sub-X1" in err
    assert _contents(out) == before
    participants = pd.read_csv(out / "participants.tsv", sep="\t")
    assert participants["affectstream_id"].tolist() == ["X-1"]
    # The same session again: refused without --force, replaced with it.
    assert _export(store, out, "a1", "--format", "bids") == 2
    assert "--force" in capsys.readouterr().err
    assert _export(store, out, "a1", "--format", "bids", "--force") == 0


def test_out_that_is_a_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "store"
    _hr_store(store, {"s1": "P1"})
    blocker = tmp_path / "a-file"
    blocker.write_text("keep me")
    for fmt in ("csv", "bids"):
        assert _export(store, blocker, "s1", "--format", fmt) == 2
        err = capsys.readouterr().err
        assert err.startswith("error:") and len(err.strip().splitlines()) == 1, err
        assert "--out" in err
    assert blocker.read_text() == "keep me"


def test_a_name_too_long_for_the_file_system_is_one_line_and_leaves_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, out = tmp_path / "store", tmp_path / "bids"
    _hr_store(store, {"s1": "P" * 5000})
    assert _export(store, out, "s1", "--format", "bids") == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "too long" in err, err
    assert not out.exists()  # created for this export, removed again


def test_a_disk_full_while_moving_files_in_removes_what_was_moved(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A FAKE full disk (no way to fill a real one here): the third rename fails."""
    store, out = tmp_path / "store", tmp_path / "out"
    _hr_store(store, {"s1": "P1"})
    real_replace = os.replace
    calls = {"n": 0}

    def full_on_third(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(errno.ENOSPC, "No space left on device", str(dst))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", full_on_third)
    assert _export(store, out, "s1", "--format", "csv") == 2
    err = capsys.readouterr().err
    assert "disk is full" in err and len(err.strip().splitlines()) == 1
    assert calls["n"] == 3
    assert not out.exists() or not any(out.rglob("*"))  # no partial export, no staging
    assert not list(tmp_path.rglob(f"{STAGING_PREFIX}*"))


def test_bids_sessions_get_short_numbered_labels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, out = tmp_path / "store", tmp_path / "bids"
    ids = {"P01-20261125T100000Z-ab12": "P01", "P01-20261126T100000Z-cd34": "P01",
           "P02-20261125T110000Z-ef56": "P02"}  # fmt: skip
    _hr_store(store, ids)
    assert _export(store, out, "--all", "--format", "bids") == 0
    assert sorted(p.name for p in (out / "sub-P01").iterdir() if p.is_dir()) == ["ses-1", "ses-2"]
    assert [p.name for p in (out / "sub-P02").iterdir() if p.is_dir()] == ["ses-1"]
    sessions = pd.read_csv(out / "sub-P01" / "sub-P01_sessions.tsv", sep="\t")
    assert dict(zip(sessions["session_id"], sessions["affectstream_id"], strict=True)) == {
        "ses-1": "P01-20261125T100000Z-ab12", "ses-2": "P01-20261126T100000Z-cd34"
    }  # fmt: skip
    # A session exported again keeps its label (and needs --force).
    assert _export(store, out, "P01-20261126T100000Z-cd34", "--format", "bids") == 2
    assert _export(store, out, "P01-20261126T100000Z-cd34", "--format", "bids", "--force") == 0
    assert sorted(p.name for p in (out / "sub-P01").iterdir() if p.is_dir()) == ["ses-1", "ses-2"]
