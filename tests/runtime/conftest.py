"""Fixtures of the runtime tests: a private AFFECTSTREAM_HOME and an arousal model bundle."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from affectstream.models.bundle import ModelBundle, load_bundle
from affectstream.runtime.demo import demo_families
from affectstream.runtime.estimator import choose_bundle, ensure_demo_bundle


@pytest.fixture(scope="session")
def runtime_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """AFFECTSTREAM_HOME in a temporary folder for the whole session (the demo's cached
    synthetic model is trained there once when no bundle is shipped)."""
    home = tmp_path_factory.mktemp("affectstream-home")
    before = os.environ.get("AFFECTSTREAM_HOME")
    os.environ["AFFECTSTREAM_HOME"] = str(home)
    try:
        yield home
    finally:
        if before is None:
            os.environ.pop("AFFECTSTREAM_HOME", None)
        else:
            os.environ["AFFECTSTREAM_HOME"] = before


@pytest.fixture(scope="session")
def arousal_bundle(runtime_home: Path) -> ModelBundle:
    """The shipped arousal bundle that fits the emulated devices, else the demo bundle."""
    families = demo_families(["hr", "polar", "eda", "muse"])
    path = choose_bundle("arousal", families) or ensure_demo_bundle()
    return load_bundle(path, allow_version_mismatch=True)
