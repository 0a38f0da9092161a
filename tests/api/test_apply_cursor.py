"""The sequence-cursor rule of ingest, on its own (no server needed for a pure function)."""

from __future__ import annotations

import numpy as np

from affectstream.api.ingest import apply_cursor, new_cursor
from affectstream.types import SampleBlock


def _block(first: int, n: int) -> SampleBlock:
    index = np.arange(first, first + n, dtype=np.int64)
    return SampleBlock(
        "band/eda", "eda", ("eda",), "µS", 4.0, 1000.0 + index / 4.0, np.ones((n, 1)), index
    )


def test_a_stream_starts_at_its_first_sample_even_after_an_empty_block() -> None:
    cursor = new_cursor("S1", "band/eda")
    kept, accepted = apply_cursor(cursor, _block(500, 0))
    assert kept is None and accepted.gap_samples == 0
    kept, accepted = apply_cursor(cursor, _block(500, 10))
    assert kept is not None and len(kept) == 10
    assert accepted.gap_samples == 0  # not a gap of 500 samples
    assert cursor.next_seq == 510 and cursor.received == 10


def test_after_the_first_sample_a_skipped_range_is_a_gap_and_a_resend_a_duplicate() -> None:
    cursor = new_cursor("S1", "band/eda")
    apply_cursor(cursor, _block(100, 10))
    _, lost = apply_cursor(cursor, _block(120, 5))  # 110..119 never came
    assert lost.gap_samples == 10
    kept, again = apply_cursor(cursor, _block(120, 5))
    assert kept is None and again.duplicates == 5
    assert cursor.next_seq == 125 and cursor.received == 15 and cursor.duplicates == 5
