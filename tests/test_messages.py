"""Messages for people: no numpy reprs, no credentials, one line."""

from __future__ import annotations

import numpy as np

from affectstream.cli import plain_message
from affectstream.errors import ConfigError


def test_numpy_scalars_print_as_plain_numbers() -> None:
    value, count = np.float64(0.5), np.int64(3)
    exc = ConfigError(f"window {value!r} with {count!r} rows from http://u:pw@h")
    assert plain_message(exc) == "window 0.5 with 3 rows from http://u:***@h"
