"""Building blocks: causal filters and buffers do not depend on how the input is cut."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.signal as sps
from hypothesis import given, settings
from hypothesis import strategies as st

from affectstream.signal._base import Buffer, CausalFilter
from affectstream.signal.hrv import screen_intervals

SOS = sps.butter(4, (1.0, 45.0), "bandpass", fs=256.0, output="sos")


def _signal(seed: int, n: int = 3000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).cumsum(axis=0)
    x[500:620, 1] = np.nan  # a gap on one channel
    x[1500:1510] = np.nan  # a gap on all channels
    return x


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 5),
    cuts=st.lists(st.integers(1, 2999), min_size=0, max_size=12, unique=True),
)
def test_causal_filter_output_does_not_depend_on_block_boundaries(
    seed: int, cuts: list[int]
) -> None:
    x = _signal(seed)
    whole = CausalFilter(SOS, 3)(x)
    chunked = CausalFilter(SOS, 3)
    edges = [0, *sorted(cuts), len(x)]
    parts = [chunked(x[a:b]) for a, b in itertools.pairwise(edges)]
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_causal_filter_writes_into_a_given_array_the_values_it_returns() -> None:
    # A finite stretch (the all-channels fast path) then one with gaps (per channel).
    x = _signal(2)
    plain = CausalFilter(SOS, 3)
    into = CausalFilter(SOS, 3)
    for part in (x[:400], x[400:]):
        rows = np.full((len(part), 6), -1.0)
        returned = into(part, out=rows[:, :3])  # a strided half, as EEG keeps it
        assert np.shares_memory(returned, rows)
        np.testing.assert_array_equal(rows[:, :3], plain(part))
        assert (rows[:, 3:] == -1.0).all()  # nothing written past the given columns


def test_causal_filter_gives_nan_for_gaps_and_restarts_after() -> None:
    x = _signal(1)
    y = CausalFilter(SOS, 3)(x)
    assert np.isnan(y[500:620, 1]).all() and np.isfinite(y[620:1500, 1]).all()
    assert np.isfinite(y[500:620, 0]).all()
    # after the gap the filter starts in steady state: no step response from zero
    restart = CausalFilter(SOS, 3)(x[1510:])
    np.testing.assert_allclose(y[1510:], restart)


@given(
    sizes=st.lists(st.integers(1, 700), min_size=1, max_size=20),
    trims=st.lists(st.integers(0, 4000), min_size=1, max_size=20),
)
def test_buffer_returns_what_was_appended_by_absolute_position(
    sizes: list[int], trims: list[int]
) -> None:
    buffer = Buffer(2)
    written = np.empty((0, 2))
    for size, trim in zip(sizes, trims * len(sizes), strict=False):
        rows = np.column_stack((np.arange(size) + len(written), -np.arange(size) - len(written)))
        buffer.append(rows.astype(float))
        written = np.vstack((written, rows))
        buffer.trim(min(trim, buffer.stop))
        lo = buffer.start
        np.testing.assert_array_equal(buffer.view(lo, buffer.stop), written[lo:])
    before = buffer.get(buffer.start - 3, buffer.start + 1)
    assert np.isnan(before[:3]).all()


def test_screen_intervals_rejects_missed_and_extra_beats() -> None:
    rr = np.array([800, 810, 790, 1600, 805, 400, 395, 800, 2500, 250.0])
    valid = screen_intervals(rr, [])
    # 1600 (missed beat), 400/395 (extra beat split), 2500 and 250 (implausible)
    assert valid.tolist() == [True, True, True, False, True, False, False, True, False, False]


def test_screen_intervals_follows_a_real_change_of_rhythm() -> None:
    rr = np.array([1000.0] * 5 + [700.0] * 6)
    valid = screen_intervals(rr, [])
    assert valid[:5].all() and not valid[5] and valid[-3:].all()


@pytest.mark.parametrize("burst", [5_000, 60_000])
def test_buffer_gives_back_the_room_of_a_burst(burst: int) -> None:
    """A device that catches up after a stall delivers ``burst`` rows at once; once they are
    trimmed, the array shrinks back to what the steady rows need (not the burst's peak)."""
    held, chunk = 2_000, 64  # a window's rows kept, rows per steady block
    buffer = Buffer(3)
    position = 0

    def step(n: int) -> None:
        nonlocal position
        buffer.append(np.full((n, 3), float(position)))
        position += n
        buffer.trim(max(0, position - held))

    for _ in range(100):
        step(chunk)
    steady = buffer.capacity
    buffer.append(np.zeros((burst, 3)))  # the burst, held until the extractor catches up
    position += burst
    assert buffer.capacity >= held + burst
    buffer.trim(position - held)
    for _ in range(100):
        step(chunk)
        assert buffer.capacity <= max(4 * (buffer.stop - buffer.start), Buffer.MIN_ROWS)
    assert buffer.capacity <= max(steady, 4 * (held + chunk))
    np.testing.assert_array_equal(buffer.view(position - 1, position), [[position - chunk] * 3])
