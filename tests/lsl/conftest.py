"""LSL tests run on loopback only, with the liblsl configuration shipped beside them
(each test module skips when pylsl is not installed)."""

from __future__ import annotations

import os
from pathlib import Path

# Before pylsl loads liblsl: the library reads its configuration once.
os.environ.setdefault("LSLAPICFG", str(Path(__file__).with_name("lsl_api.cfg")))
