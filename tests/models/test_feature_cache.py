"""The feature cache key follows the feature code: the same code and settings read the
cached table, a change to the code that computes features makes the table be recomputed."""

from __future__ import annotations

import ast
import types
from pathlib import Path

import pandas as pd
import pytest

import affectstream
from affectstream.models import feature_cache, training
from affectstream.models.feature_cache import (
    FEATURE_CODE,
    PACKAGE_ROOT,
    cache_key,
    code_fingerprint,
    feature_code_files,
    feature_code_fingerprint,
)
from affectstream.models.training import DatasetSettings, build_features

#: Cheap synthetic windowing: EDA only, 60-s windows every 30 s.
SETTINGS = DatasetSettings("arousal", 60.0, 30.0, 240.0, "synthetic generator", ("eda",))


def test_the_fingerprint_follows_the_contents_of_the_files(tmp_path: Path) -> None:
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("x = 1\n")
    b.write_text("y = 2\n")
    first = code_fingerprint([a, b], root=tmp_path)
    assert code_fingerprint([b, a], root=tmp_path) == first  # order does not matter
    a.write_text("x = 2\n")
    changed = code_fingerprint([a, b], root=tmp_path)
    assert changed != first
    a.write_text("x = 1\n")
    assert code_fingerprint([a, b], root=tmp_path) == first  # same code, same value
    # Moving code from one file to another is a change too (paths are part of the hash).
    b.rename(tmp_path / "c.py")
    assert code_fingerprint([a, tmp_path / "c.py"], root=tmp_path) != first


def _module_file(module: str) -> Path | None:
    """The source file of a package module (``None``: not a module, e.g. an imported name)."""
    path = PACKAGE_ROOT.joinpath(*module.split(".")[1:])
    for candidate in (path / "__init__.py", path.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _import_closure(roots: set[str]) -> dict[str, Path]:
    """Every package module the roots import, directly or not, at any place in the file
    (lazy imports inside functions included): module name -> source file."""
    seen: dict[str, Path] = {}
    stack = sorted(roots)
    while stack:
        module = stack.pop()
        path = _module_file(module)
        if path is None or module in seen:
            continue
        seen[module] = path
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                stack += [a.name for a in node.names if a.name.startswith("affectstream")]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the importing module's package
                    parent = package.rsplit(".", node.level - 1)[0]
                    base = f"{parent}.{base}" if base else parent
                if base.startswith("affectstream"):
                    stack += [base] + [f"{base}.{a.name}" for a in node.names]
    return seen


def _cached_table_roots() -> set[str]:
    """Modules of the package functions ``build_features`` computes a cached table with:
    the globals its nested ``compute`` calls (so a new call there is followed too)."""
    compute = next(
        c
        for c in training.build_features.__code__.co_consts
        if isinstance(c, types.CodeType) and c.co_name == "compute"
    )
    used = [getattr(training, name, None) for name in compute.co_names]
    return {
        f.__module__
        for f in used
        if callable(f) and getattr(f, "__module__", "").startswith("affectstream")
    }


def test_the_feature_code_covers_every_module_a_cached_table_depends_on() -> None:
    """Every module imported (at any depth) by the code that computes a cached feature table
    is in FEATURE_CODE, so an edit to any of them gives new cache keys."""
    files = {p.relative_to(PACKAGE_ROOT).as_posix() for p in feature_code_files()}
    for pattern in FEATURE_CODE:  # every pattern names something (no silent constant)
        assert any(Path(f).match(pattern) for f in files), pattern
    roots = _cached_table_roots()
    assert {"affectstream.models.datasets", "affectstream.models.features"} <= roots, roots
    closure = _import_closure(roots | {"affectstream.signal"})
    needed = {p.relative_to(PACKAGE_ROOT).as_posix() for p in closure.values()}
    assert len(needed) > 10 and "signal/extractor.py" in needed  # the walk follows imports
    assert needed - files == set(), "not fingerprinted by FEATURE_CODE"
    assert feature_code_fingerprint() == code_fingerprint(feature_code_files())
    assert Path(affectstream.__file__).resolve().parent == PACKAGE_ROOT


def _build(tmp_path: Path) -> tuple[pd.DataFrame, int]:
    """The synthetic feature table through the cache, and how many recordings were loaded
    (0 when it came from the cache)."""
    frame, loaded, _ = build_features(
        "synthetic", tmp_path / "data", settings=SETTINGS, cache_dir=tmp_path / "cache"
    )
    return frame, len(loaded)


def test_a_feature_code_change_invalidates_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, loaded = _build(tmp_path)
    assert loaded > 0 and len(first) > 0  # computed
    again, loaded = _build(tmp_path)
    assert loaded == 0  # same code, same settings: read from the cache
    pd.testing.assert_frame_equal(again, first)
    files = list((tmp_path / "cache").glob("*.parquet"))
    assert len(files) == 1
    # An edit to the feature code (simulated: another fingerprint) gives another key...
    before = cache_key(dataset="synthetic")
    monkeypatch.setattr(feature_cache, "feature_code_fingerprint", lambda: "edited")
    assert cache_key(dataset="synthetic") != before
    # ... so the table is computed again, into a second file.
    _, loaded = _build(tmp_path)
    assert loaded > 0
    assert len(list((tmp_path / "cache").glob("*.parquet"))) == 2
