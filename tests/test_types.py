"""SampleBlock.rows: the one way to take consecutive rows of a block (replay, split_block)."""

from __future__ import annotations

import dataclasses

import numpy as np

from affectstream.signal.synthetic import split_block
from affectstream.types import Gap, SampleBlock


def _block_with_gap() -> SampleBlock:
    block = SampleBlock.regular("dev/eda", "eda", ("EDA",), np.arange(10.0), 4.0, 100.0)
    # Two samples (device indices 5 and 6) announced missing, as NaN rows plus a gap.
    values = block.values.copy()
    values[5:7] = np.nan
    gap = Gap(stream=block.stream, first_index=5, n_samples=2, t_start=101.25, t_end=101.5)
    return dataclasses.replace(block, values=values, gaps=(gap,))


def test_rows_keep_the_samples_and_only_the_gaps_that_begin_inside() -> None:
    block = _block_with_gap()
    head, tail = block.rows(0, 5), block.rows(5, 10)
    assert np.array_equal(head.index, block.index[:5])
    assert np.array_equal(tail.t, block.t[5:])
    assert np.array_equal(tail.values, block.values[5:], equal_nan=True)
    assert head.gaps == ()
    assert tail.gaps == block.gaps
    assert (head.stream, head.unit, head.sfreq) == (block.stream, block.unit, block.sfreq)
    empty = block.rows(3, 3)
    assert len(empty) == 0 and empty.gaps == ()


def test_split_block_chunks_rejoin_to_the_block_with_each_gap_once() -> None:
    block = _block_with_gap()
    chunks = split_block(block, [3, 4])
    assert [len(c) for c in chunks] == [3, 4, 3]
    joined = SampleBlock.concat(chunks)
    assert np.array_equal(joined.values, block.values, equal_nan=True)
    assert joined.gaps == block.gaps
