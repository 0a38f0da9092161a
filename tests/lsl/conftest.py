"""LSL tests run on loopback only, with the liblsl configuration shipped beside them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Before pylsl loads liblsl: the library reads its configuration once.
os.environ.setdefault("LSLAPICFG", str(Path(__file__).with_name("lsl_api.cfg")))

pylsl = pytest.importorskip("pylsl", reason="pip install 'affectstream[lsl]'")
