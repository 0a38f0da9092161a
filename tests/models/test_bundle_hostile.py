"""Tampered, malformed and mislabelled bundles fail with one ModelError line, never
load silently and never take the process down."""

from __future__ import annotations

import hashlib
import json
import pickle
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from affectstream.errors import ModelError
from affectstream.models.bundle import BUNDLES_DIR, load_bundle

SHIPPED = BUNDLES_DIR / "stress-wrist"


def copy_bundle(tmp_path: Path, name: str = "b") -> Path:
    return Path(shutil.copytree(SHIPPED, tmp_path / name))


def rehash(path: Path, file: str) -> None:
    """Make bundle.json's checksum match the (altered) file, as an attacker would."""
    meta = json.loads((path / "bundle.json").read_text())
    meta["files"][file] = hashlib.sha256((path / file).read_bytes()).hexdigest()
    (path / "bundle.json").write_text(json.dumps(meta))


def edit_meta(path: Path, change: Callable[[dict[str, object]], None]) -> None:
    meta = json.loads((path / "bundle.json").read_text())
    change(meta)
    (path / "bundle.json").write_text(json.dumps(meta))


def test_bundle_without_checksums_is_refused(tmp_path: Path) -> None:
    path = copy_bundle(tmp_path)
    edit_meta(path, lambda meta: meta.pop("files"))
    text = (path / "lightgbm.txt").read_text().replace("leaf_value=-0.0", "leaf_value=9.0")
    (path / "lightgbm.txt").write_text(text)
    with pytest.raises(ModelError, match="no 'files' checksums"):
        load_bundle(path)


def test_bundle_with_one_checksum_missing_is_refused(tmp_path: Path) -> None:
    path = copy_bundle(tmp_path)
    edit_meta(path, lambda meta: meta["files"].pop("svm.skops"))  # type: ignore[attr-defined]
    with pytest.raises(ModelError, match=r"no SHA-256 for svm\.skops"):
        load_bundle(path)


# Each breaks LightGBM's parser in a way that aborted the process (checked by hand with
# lightgbm.Booster(model_str=...): "terminate called without an active exception").
# Regex edits of the first match (patterns, not the shipped model's exact numbers, so the
# test survives retraining).
MALFORMED = {
    "tree sizes": (r"tree_sizes=", "tree_sizes=9999 "),
    "feature index": (r"split_feature=\d+", "split_feature=999"),
    "child index": (r"left_child=(-?\d+)", "left_child=77"),
    "leaf count": (r"num_leaves=\d+\n", "num_leaves=40\n"),
    "number": (r"threshold=[-0-9.e]+", "threshold=abc"),
    "truncated": None,
}


def test_malformed_model_text_with_matching_checksum_fails_cleanly(tmp_path: Path) -> None:
    paths = []
    for name, edit in MALFORMED.items():
        path = copy_bundle(tmp_path, name.replace(" ", "-"))
        text = (path / "lightgbm.txt").read_text()
        if edit is None:
            text = text[: len(text) // 2]
        else:
            assert re.search(edit[0], text), name
            text = re.sub(edit[0], edit[1], text, count=1)
        (path / "lightgbm.txt").write_text(text)
        rehash(path, "lightgbm.txt")
        paths.append(str(path))
    # In a child process: an abort there is a failed test, not a dead test run.
    script = (
        "import sys\n"
        "from affectstream.errors import ModelError\n"
        "from affectstream.models.bundle import load_bundle\n"
        "for p in sys.argv[1:]:\n"
        "    try:\n"
        "        load_bundle(p)\n"
        "        print('LOADED', p)\n"
        "    except ModelError as e:\n"
        "        print('REFUSED', str(e).replace(chr(10), ' '))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, *paths], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == len(MALFORMED)
    assert all(
        line.startswith("REFUSED") and "not a valid LightGBM model" in line for line in lines
    )


def test_pickle_renamed_skops_is_a_model_error(tmp_path: Path) -> None:
    path = copy_bundle(tmp_path)
    (path / "svm.skops").write_bytes(pickle.dumps({"a": 1}))
    rehash(path, "svm.skops")
    with pytest.raises(ModelError, match="not a valid skops file"):
        load_bundle(path)


def test_array_inside_skops_is_a_model_error(tmp_path: Path) -> None:
    import skops.io as sio

    path = copy_bundle(tmp_path)
    sio.dump(np.zeros(3), path / "svm.skops")
    rehash(path, "svm.skops")
    with pytest.raises(ModelError, match="not a fitted classifier"):
        load_bundle(path)


def test_missing_features_is_a_model_error(tmp_path: Path) -> None:
    path = copy_bundle(tmp_path)
    edit_meta(path, lambda meta: meta.pop("features"))
    with pytest.raises(ModelError, match="no 'features' list"):
        load_bundle(path)


def test_shipped_bundles_match_the_manifest() -> None:
    from affectstream.models.bundle import MANIFEST, shipped_bundles, verify_shipped

    listed = json.loads(MANIFEST.read_text())
    assert {key.split("/")[0] for key in listed} == set(shipped_bundles())
    verify_shipped()


def test_altered_shipped_file_is_caught_by_the_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from affectstream.models import bundle_io as module

    bundles = Path(shutil.copytree(BUNDLES_DIR, tmp_path / "bundles"))
    monkeypatch.setattr(module, "BUNDLES_DIR", bundles)
    monkeypatch.setattr(module, "MANIFEST", bundles / "MANIFEST.json")
    assert load_bundle("stress-wrist").path == bundles / "stress-wrist"
    # Consistent with its own bundle.json (checksums redone), but not with the package.
    with (bundles / "stress-wrist" / "MODEL_CARD.md").open("a") as handle:
        handle.write("tampered\n")
    with pytest.raises(ModelError, match="differ from the package manifest"):
        load_bundle("stress-wrist")


def test_model_name_prefers_the_shipped_bundle_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    copy_bundle(tmp_path, "stress-wrist")  # a look-alike folder in the working directory
    monkeypatch.chdir(tmp_path)
    with caplog.at_level("WARNING"):
        loaded = load_bundle("stress-wrist")
    assert loaded.path == SHIPPED
    assert "using the shipped bundle" in caplog.text and "./stress-wrist" in caplog.text
    assert load_bundle("./stress-wrist").path == Path("./stress-wrist")
