"""The runtime's defensive check: a block whose times do not strictly increase is counted.

The device layer stamps every stream strictly increasing (tests/device/test_beat_times.py,
tests/device/test_clock.py); these blocks are built by hand to break that on purpose.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from affectstream.runtime import LiveSession
from affectstream.store import EmbeddedStore
from affectstream.types import UNITS, SampleBlock


def _eda(t: list[float], first_index: int) -> SampleBlock:
    n = len(t)
    return SampleBlock(
        "band/eda",
        "eda",
        ("eda",),
        UNITS["eda"],
        4.0,
        np.asarray(t, dtype=np.float64),
        np.ones((n, 1)),
        np.arange(first_index, first_index + n, dtype=np.int64),
        (),
        "band",
    )


def test_blocks_going_back_or_tied_are_counted(tmp_path: Path) -> None:
    with EmbeddedStore(tmp_path / "store", synchronous="normal") as store:
        session = LiveSession(store)
        session.submit(_eda([10.0, 10.25, 10.5], 0))
        session.submit(_eda([10.75, 11.0], 3))
        assert session.unordered_blocks == 0
        session.submit(_eda([10.9, 11.15], 5))  # starts before the previous block's end
        session.submit(_eda([11.5, 11.5], 7))  # a tie inside the block
        assert session.unordered_blocks == 2
        assert session.summary()["unordered_blocks"] == 2
