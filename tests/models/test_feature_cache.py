"""The feature cache key follows the feature code: the same code and settings read the
cached table, a change to the code that computes features makes the table be recomputed."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import affectstream
from affectstream.models import feature_cache
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


def test_the_feature_code_covers_the_modules_that_compute_features() -> None:
    files = {p.relative_to(PACKAGE_ROOT).as_posix() for p in feature_code_files()}
    for pattern in FEATURE_CODE:  # every pattern names something (no silent constant)
        assert any(Path(f).match(pattern) for f in files), pattern
    from affectstream.models import features, stress_predict
    from affectstream.signal import eda, extractor, hrv

    for module in (eda, hrv, extractor, features, stress_predict):
        assert Path(module.__file__ or "").resolve().relative_to(PACKAGE_ROOT).as_posix() in files
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
