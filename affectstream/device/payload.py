"""Byte layouts that several device protocols share: packed 24-bit integers.

The EDA band sends uint24 little-endian, the Polar H10's PMD ECG int24 little-endian, the
Ganglion int24 big-endian and the Muse PPG uint24 big-endian: one decoder serves all four.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import NDArray

_SIGN_BIT = 1 << 23


def int24(
    data: bytes | bytearray | memoryview | NDArray[np.uint8],
    byteorder: Literal["little", "big"],
    *,
    signed: bool,
) -> NDArray[np.int64]:
    """Decode consecutive 3-byte integers.

    Parameters
    ----------
    data : bytes-like or ndarray of uint8, shape (..., 3 * n)
        The packed integers; along the last axis, a whole number of 3-byte groups.
    byteorder : {"little", "big"}
        Byte order within each integer.
    signed : bool
        Two's complement (int24) rather than unsigned (uint24).

    Returns
    -------
    ndarray of int64, shape (..., n)
    """
    octets = data if isinstance(data, np.ndarray) else np.frombuffer(data, dtype=np.uint8)
    groups = octets.reshape(*octets.shape[:-1], -1, 3).astype(np.int64)
    high, low = (0, 2) if byteorder == "big" else (2, 0)
    value = (groups[..., high] << 16) | (groups[..., 1] << 8) | groups[..., low]
    if signed:
        value = np.where(value & _SIGN_BIT, value - (1 << 24), value)
    return value
