"""The shared 24-bit integer decoder against Python's own int.from_bytes."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pytest

from affectstream.device.payload import int24

#: Edge values of both ranges: zero, the sign boundary, the extremes.
WORDS = (0, 1, 0x7FFFFF, 0x800000, 0xFFFFFF, 0x123456)


@pytest.mark.parametrize("byteorder", ["little", "big"])
@pytest.mark.parametrize("signed", [False, True])
def test_int24_matches_int_from_bytes(byteorder: Literal["little", "big"], signed: bool) -> None:
    packed = b"".join(w.to_bytes(3, byteorder) for w in WORDS)
    expected = [int.from_bytes(w.to_bytes(3, byteorder), byteorder, signed=signed) for w in WORDS]
    assert int24(packed, byteorder, signed=signed).tolist() == expected
    # Rows of packets (as the Muse PPG unpacks them) decode row by row.
    rows = np.frombuffer(packed * 2, dtype=np.uint8).reshape(2, -1)
    assert int24(rows, byteorder, signed=signed).tolist() == [expected, expected]
