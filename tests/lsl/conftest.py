"""LSL tests run on loopback only, with the liblsl configuration shipped beside them
(each test module skips when pylsl is not installed)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

# Before pylsl loads liblsl: the library reads its configuration once.
os.environ.setdefault("LSLAPICFG", str(Path(__file__).with_name("lsl_api.cfg")))


@pytest.fixture
def lsl_tag() -> str:
    """A suffix unique to this test, for every LSL stream name, source id and session id.

    LSL discovery is machine-wide: two suites on one machine (two worktrees, a CI run) that
    both open an outlet named ``LabEEG`` would resolve each other's streams.
    """
    return uuid.uuid4().hex[:8]
