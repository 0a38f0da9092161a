"""EDA/temperature at a common rate: block means by device index, the same in batch and live."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pandas as pd
import pytest

from affectstream.errors import ConfigError, SignalError
from affectstream.signal import StreamingExtractor, WindowConfig, extract_features
from affectstream.signal.rate import RateReducer, reduce_block, stream_reducer
from affectstream.signal.synthetic import split_block, synthetic_eda
from affectstream.types import SampleBlock

T0 = 1_700_000_000.0
CUTS = [[1], [7], [8], [5, 64, 3, 1, 33], [250, 1, 1]]


def _eda(duration: float, sfreq: float, seed: int = 3) -> SampleBlock:
    eda, _, _ = synthetic_eda(duration, sfreq, np.random.default_rng(seed), mean_interval=12.0)
    return SampleBlock.regular("band/eda", "eda", ("EDA",), eda, sfreq, T0, first_index=1000)


def _temp(duration: float, sfreq: float) -> SampleBlock:
    n = int(duration * sfreq)
    temp = 32.0 + 0.5 * np.sin(np.arange(n) / sfreq / 40.0)
    return SampleBlock.regular("band/temp", "temp", ("TEMP",), temp, sfreq, T0, first_index=1000)


def _with_gaps(block: SampleBlock) -> SampleBlock:
    """Lose samples 303-340 (a device index jump over 4 whole groups of 8, cutting 2) and
    mark 100-102 and 2001 NaN (a bad reading)."""
    keep = np.ones(len(block), dtype=bool)
    keep[303:341] = False
    values = block.values.copy()
    values[[100, 101, 102, 2001]] = np.nan
    return dataclasses.replace(block, t=block.t[keep], values=values[keep], index=block.index[keep])


def _expected_means(block: SampleBlock, k: int) -> tuple[np.ndarray, np.ndarray]:
    """From the input alone: NaN-filled by device index, reshaped into groups of k, averaged.

    Returns the group numbers that have at least one sample, and their means.
    """
    pos = block.index - block.index[0]
    full = np.full(int(pos[-1]) + 1, np.nan)
    full[pos] = block.values[:, 0]
    present = np.zeros(full.size, dtype=bool)
    present[pos] = True
    n = (full.size // k) * k
    means = full[:n].reshape(-1, k).mean(axis=1)
    has = present[:n].reshape(-1, k).any(axis=1)
    return np.flatnonzero(has), means[has]


def _push_all(reducer: RateReducer, block: SampleBlock, cut: list[int]) -> SampleBlock:
    parts = [reducer.push(chunk) for chunk in split_block(block, cut)]
    return SampleBlock.concat([p for p in parts if len(p)])


def test_reduce_block_is_the_mean_of_each_k_samples_timed_at_the_first() -> None:
    block = _eda(100.0, 32.0)
    slow = reduce_block(block, 4.0)
    assert slow.sfreq == 4.0 and len(slow) == len(block) // 8
    np.testing.assert_array_equal(slow.values[:, 0], block.values[:, 0].reshape(-1, 8).mean(1))
    np.testing.assert_array_equal(slow.t, block.t[::8])
    np.testing.assert_array_equal(slow.index, np.arange(len(block) // 8))


@pytest.mark.parametrize("cut", CUTS)
@pytest.mark.parametrize("gaps", [False, True])
def test_streamed_groups_do_not_depend_on_the_cut(cut: list[int], gaps: bool) -> None:
    block = _eda(90.0, 32.0)
    block = _with_gaps(block) if gaps else block
    whole = reduce_block(block, 4.0)
    groups, means = _expected_means(block, 8)
    np.testing.assert_array_equal(whole.index, groups)
    np.testing.assert_array_equal(whole.values[:, 0], means)
    reducer = stream_reducer(block, 4.0)
    assert reducer is not None
    streamed = _push_all(reducer, block, cut)
    np.testing.assert_array_equal(streamed.values, whole.values)
    np.testing.assert_array_equal(streamed.index, whole.index)
    np.testing.assert_array_equal(streamed.t, whole.t)


def test_a_group_cut_by_a_gap_is_nan_and_a_lost_group_is_left_out() -> None:
    block = _with_gaps(_eda(90.0, 32.0))
    slow = reduce_block(block, 4.0)
    # Samples 303-340 lost: group 37 (296-303) has 7 of 8, groups 38-41 none, 42 (336-343)
    # has 3 of 8; samples 100-102 (group 12) and 2001 (group 250) are NaN.
    assert not {38, 39, 40, 41} & set(slow.index.tolist())
    nan_groups = slow.index[np.isnan(slow.values[:, 0])].tolist()
    assert nan_groups == [12, 37, 42, 250]
    # The time of a group whose first sample was lost is where the rate puts it.
    assert slow.t[slow.index == 42][0] == pytest.approx(T0 + 42 * 8 / 32.0)


def test_skip_closes_the_held_group_a_gap_cut_short() -> None:
    block = _eda(10.0, 32.0)
    reducer = stream_reducer(block, 4.0)
    assert reducer is not None
    first = reducer.push(block.rows(0, 13))  # group 0 complete, 5 samples of group 1 held
    assert first.index.tolist() == [0]
    assert reducer.skip(int(block.index[15])) is None  # still inside group 1
    closed = reducer.skip(int(block.index[40]))
    assert closed is not None and closed.index.tolist() == [1]
    assert np.isnan(closed.values).all()


def test_rates_that_are_not_an_integer_multiple_keep_their_own_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="affectstream.signal.rate"):
        assert stream_reducer(_eda(20.0, 10.0), 4.0) is None
        assert "not an integer multiple" in caplog.text and "10 Hz" in caplog.text
        caplog.clear()
        assert stream_reducer(_eda(20.0, 4.0), 4.0) is None  # already there: silent
        assert stream_reducer(_eda(20.0, 32.0), 4.0) is not None
        assert caplog.text == ""
    acc = SampleBlock.regular("band/acc", "acc", ("x", "y", "z"), np.ones((64, 3)), 32.0, T0)
    assert reduce_block(acc, 4.0) is acc  # only EDA and temperature are averaged


def test_window_config_rejects_a_non_positive_common_rate() -> None:
    with pytest.raises(ConfigError, match="common_rate"):
        WindowConfig(common_rate=0.0)


def _streamed(blocks: list[SampleBlock], config: WindowConfig, cut: list[int]) -> pd.DataFrame:
    extractor = StreamingExtractor(config, origin=T0)
    # Chunks of about the same duration in every stream, as devices deliver them live.
    fastest = max(b.sfreq or 1.0 for b in blocks)
    sizes = {b.stream: [max(1, round(c * (b.sfreq or 1.0) / fastest)) for c in cut] for b in blocks}
    chunks = [c for b in blocks for c in split_block(b, sizes[b.stream])]
    chunks.sort(key=lambda c: float(c.t[0]))
    parts = [extractor.push(c) for c in chunks]
    parts.append(extractor.flush())
    return pd.concat([p for p in parts if len(p)], ignore_index=True)


@pytest.mark.parametrize("cut", CUTS)
@pytest.mark.parametrize("gaps", [False, True])
def test_live_rows_at_the_common_rate_equal_the_batch_rows(cut: list[int], gaps: bool) -> None:
    eda = _eda(240.0, 32.0)
    blocks = [_with_gaps(eda) if gaps else eda, _temp(240.0, 8.0)]
    config = WindowConfig(origin=T0, common_rate=4.0)
    batch = extract_features(blocks, config)
    # ... which is the extractor run on the streams averaged beforehand (to_common_rate).
    averaged = extract_features([reduce_block(b, 4.0) for b in blocks], WindowConfig(origin=T0))
    pd.testing.assert_frame_equal(batch, averaged, check_exact=True)
    pd.testing.assert_frame_equal(_streamed(blocks, config, cut), batch, check_exact=True)
    # And it is not what the 32-Hz stream gives: the setting changes the features.
    native = extract_features(blocks, WindowConfig(origin=T0))
    assert not np.allclose(native["eda_phasic_std"], batch["eda_phasic_std"], equal_nan=True)


def test_expect_fills_a_gap_at_the_common_rate_as_the_batch_does() -> None:
    """A replay says where the next sample is (expect): rows through the gap complete at once."""
    block = _with_gaps(_eda(240.0, 32.0))
    config = WindowConfig(origin=T0, common_rate=4.0, max_lag=None)
    batch = extract_features([block], config)
    extractor = StreamingExtractor(config, origin=T0)
    rows: list[dict[str, object]] = []
    for chunk in split_block(block, [13]):
        rows += extractor.push_rows(chunk)
        nxt = int(np.searchsorted(block.index, chunk.index[-1], side="right"))
        if nxt < len(block):
            rows += extractor.expect(block.stream, float(block.t[nxt]), int(block.index[nxt]))
    rows += extractor.expect(block.stream, float("inf"))
    assert rows and not len(extractor.flush())
    streamed = pd.DataFrame(rows, columns=extractor.columns)
    pd.testing.assert_frame_equal(streamed, batch, check_exact=True)


def test_an_off_rate_stream_is_featured_at_its_own_rate() -> None:
    block = _eda(240.0, 10.0)
    with_rate = extract_features([block], WindowConfig(origin=T0, common_rate=4.0))
    pd.testing.assert_frame_equal(with_rate, extract_features([block], WindowConfig(origin=T0)))


def test_streamed_rows_equal_the_training_tables_to_common_rate() -> None:
    """The live extractor under a 4-Hz bundle == training's `to_common_rate` then features."""
    from affectstream.models.crossprotocol import to_common_rate
    from affectstream.models.recording import Recording

    blocks = [_with_gaps(_eda(240.0, 32.0)), _temp(240.0, 8.0)]
    labels = pd.DataFrame({"t": [T0], "arousal": [0.0]})
    (averaged,) = to_common_rate([Recording("S1", tuple(blocks), labels, dataset="x")], 4.0)
    assert [b.sfreq for b in averaged.blocks] == [4.0, 4.0]
    training = extract_features(list(averaged.blocks), WindowConfig(origin=T0))
    live = _streamed(blocks, WindowConfig(origin=T0, common_rate=4.0), [5, 64, 3, 1, 33])
    pd.testing.assert_frame_equal(live, training, check_exact=True)


def test_indices_that_go_back_are_an_error_as_at_the_stream_rate() -> None:
    block = _eda(10.0, 32.0)
    reducer = stream_reducer(block, 4.0)
    assert reducer is not None
    reducer.push(block.rows(0, 20))
    with pytest.raises(SignalError, match="must increase"):
        reducer.push(block.rows(15, 30))
