"""Counter unwrapping, gaps and overflow in the supervisor's per-stream state (no BLE)."""

from __future__ import annotations

import asyncio

import numpy as np

from affectstream.device.driver import Frame
from affectstream.device.profiles import get_profile
from affectstream.device.stream_state import StreamState
from affectstream.device.supervisor import Supervisor

EDA = get_profile("eda").stream("eda")  # counter modulus 65536, 32 Hz nominal


def _frame(counter: int, n: int = 5, value: float = 1.0) -> Frame:
    return Frame("eda", np.full((n, 1), value), counter)


def test_counter_wrap_at_65535_is_not_a_gap() -> None:
    state = StreamState(EDA, "band/eda", "band")
    blocks = [state.ingest(_frame(c), 100.0 + i * 0.2) for i, c in enumerate((65530, 65535, 4))]
    assert all(b is not None and not b.gaps for b in blocks)
    index = np.concatenate([b.index for b in blocks if b is not None])
    np.testing.assert_array_equal(index, np.arange(15))
    assert state.stats.gap_samples == 0 and state.stats.samples_expected == 15


def test_counter_jump_becomes_nan_rows_and_a_gap() -> None:
    state = StreamState(EDA, "band/eda", "band")
    state.ingest(_frame(65534), 100.0)
    block = state.ingest(_frame((65534 + 5 + 7) % 65536), 100.5)  # 7 samples lost over the wrap
    assert block is not None
    assert np.isnan(block.values[:7]).all() and not np.isnan(block.values[7:]).any()
    (gap,) = block.gaps
    assert (gap.first_index, gap.n_samples, gap.reason) == (5, 7, "counter_jump")
    assert gap.t_start <= gap.t_end < block.t[7]
    assert state.stats.gap_samples == 7


def test_disconnect_longer_than_the_counter_period_uses_host_time() -> None:
    # At 32 Hz the 16-bit counter wraps every 2048 s; a 3000 s outage wraps it once more.
    state = StreamState(EDA, "band/eda", "band")
    state.ingest(_frame(100), 1000.0)
    state.pending_reason = "disconnect"
    lost = 3000 * 32
    block = state.ingest(_frame((105 + lost) % 65536), 1000.0 + 3000.0)
    assert block is not None
    assert block.gaps[0].n_samples == lost and block.gaps[0].reason == "disconnect"


def test_duplicates_are_dropped() -> None:
    state = StreamState(EDA, "band/eda", "band")
    state.ingest(_frame(0), 10.0)
    assert state.ingest(_frame(0), 10.1) is None
    block = state.ingest(_frame(3), 10.2)  # 2 of 5 samples already seen
    assert block is not None and len(block) == 3
    assert state.stats.duplicates == 5 + 2


def test_event_stream_without_counter() -> None:
    state = StreamState(get_profile("hr").stream("rr"), "strap/rr", "strap")
    first = state.ingest(Frame("rr", np.array([[800.0], [810.0]]), None), 5.0)
    state.pending_reason = "disconnect"
    second = state.ingest(Frame("rr", np.array([[790.0]]), None), 9.0)
    assert first is not None and second is not None
    assert second.index.tolist() == [2]
    (gap,) = second.gaps
    assert (gap.n_samples, gap.t_start, gap.t_end) == (0, 5.0, 9.0)
    assert state.stats.samples_expected == state.stats.samples_received == 3


async def test_full_queue_turns_into_an_overflow_gap() -> None:
    sup = Supervisor(["AA:BB:CC:DD:EE:FF"], queue_size=1)
    state = StreamState(EDA, "band/eda", "band")
    for i in range(3):
        block = state.ingest(_frame(5 * i), 50.0 + i)
        assert block is not None
        sup._deliver(state, block)
    assert state.stats.overflow_samples == 10  # blocks 2 and 3 did not fit
    delivered = sup.blocks.get_nowait()
    assert delivered.index.tolist() == list(range(5))
    block = state.ingest(_frame(15), 54.0)
    assert block is not None
    sup._deliver(state, block)
    recovered = sup.blocks.get_nowait()
    assert recovered.index.tolist() == list(range(5, 20))
    (gap,) = recovered.gaps
    assert (gap.first_index, gap.n_samples, gap.reason) == (5, 10, "overflow")
    assert np.isnan(recovered.values[:10]).all()
    await asyncio.sleep(0)


def test_reconnect_backoff_doubles_is_bounded_and_jittered() -> None:
    sup = Supervisor(["AA:BB:CC:DD:EE:FF"], backoff_initial=0.25, backoff_max=8.0)
    for attempt in range(12):
        ceiling = min(8.0, 0.25 * 2**attempt)
        delays = [sup.backoff_delay(attempt) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1  # jittered
    assert sup.backoff_delay(10_000) <= 8.0


def test_saturated_runs_after_a_counter_jump_and_a_duplicate_overlap() -> None:
    """Saturated runs map to the right rows when lost samples precede them and when the
    frame's first samples were already received (and are dropped with their mask)."""
    state = StreamState(EDA, "band/eda", "band")
    state.ingest(_frame(0), 100.0)  # samples 0-4
    mask = np.array([True, False, False, True, True, False])
    values = np.where(mask, np.nan, 1.0)[:, None]
    # Device samples 8-13: 5-7 lost, then runs at 8 and 11-12.
    block = state.ingest(Frame("eda", values, 8, saturated=mask), 100.3)
    assert block is not None
    lost = [g for g in block.gaps if g.reason == "counter_jump"]
    runs = [(g.first_index, g.n_samples) for g in block.gaps if g.reason == "saturated"]
    assert [(g.first_index, g.n_samples) for g in lost] == [(5, 3)]
    assert runs == [(8, 1), (11, 2)]
    # Device samples 12-15 again overlap 12-13; only 14-15 (saturated at 15) are new.
    overlap = np.array([True, False, False, True])
    again = Frame("eda", np.where(overlap, np.nan, 1.0)[:, None], 12, saturated=overlap)
    block = state.ingest(again, 100.4)
    assert block is not None
    assert [(g.first_index, g.n_samples, g.reason) for g in block.gaps] == [(15, 1, "saturated")]
    assert block.t[-1] == block.gaps[0].t_start == block.gaps[0].t_end
    stats = state.stats
    assert stats.saturated_samples == 4 and stats.gap_samples == 3 and stats.duplicates == 2
    assert stats.samples_received + stats.gap_samples == stats.samples_expected == 16
