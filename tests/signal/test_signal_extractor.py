"""The windowing engine: batch and streaming agree; rows aligned; bad input is rejected."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from affectstream.errors import SignalError
from affectstream.signal import StreamingExtractor, WindowConfig, extract_features
from affectstream.signal._base import RATE_CHECK_SPAN_S
from affectstream.signal.synthetic import split_block, synthetic_recording
from affectstream.types import SampleBlock

T0 = 1_700_000_000.0


def _wrist_blocks(duration: float, seed: int) -> list[SampleBlock]:
    """TEMP 4 Hz, ACC 32 Hz and RR events, as from an E4 or a strap."""
    rng = np.random.default_rng(seed)
    temp = 32.0 + 0.002 * np.arange(int(duration * 4)) / 4 + rng.normal(0, 0.01, int(duration * 4))
    acc = np.column_stack(
        (
            rng.normal(0, 0.05, int(duration * 32)),
            rng.normal(0, 0.05, int(duration * 32)),
            1.0 + rng.normal(0, 0.05, int(duration * 32)),
        )
    )
    beats = np.cumsum(0.8 + 0.05 * rng.standard_normal(int(duration / 0.8)))
    beats = beats[beats < duration]
    rr = np.diff(beats) * 1000.0
    return [
        SampleBlock.regular("w/temp", "temp", ("TEMP",), temp, 4.0, T0),
        SampleBlock.regular("w/acc", "acc", ("x", "y", "z"), acc, 32.0, T0),
        SampleBlock(
            stream="w/rr",
            modality="rr",
            channels=("RR",),
            unit="ms",
            sfreq=None,
            t=T0 + beats[1:],
            values=rr[:, None],
            index=np.arange(rr.size, dtype=np.int64),
        ),
    ]


def _stream(
    blocks: list[SampleBlock], sizes: list[list[int]], origin: float, min_chunk: float | None = None
) -> pd.DataFrame:
    """Push the blocks cut into irregular chunks, interleaved in time order, then flush."""
    extractor = StreamingExtractor(WindowConfig(), origin=origin, min_chunk=min_chunk)
    chunks = [c for block, s in zip(blocks, sizes, strict=True) for c in split_block(block, s)]
    chunks.sort(key=lambda c: float(c.t[0]))
    parts = [extractor.push(c) for c in chunks]
    parts.append(extractor.flush())
    return pd.concat([p for p in parts if len(p)], ignore_index=True)


@pytest.mark.parametrize("min_chunk", [None, 0.0])
def test_batch_and_streaming_agree_exactly_on_irregular_chunks(min_chunk: float | None) -> None:
    recording = synthetic_recording(4, seed=11)
    blocks = recording.blocks + _wrist_blocks(240.0, seed=11)[:2]
    batch = extract_features(blocks)
    sizes = [[73, 130, 7, 400], [5, 64, 33], [12, 256, 1000, 3], [1, 9], [32, 17]]
    streamed = _stream(blocks, sizes, origin=T0, min_chunk=min_chunk)
    assert list(streamed.columns) == list(batch.columns)
    pd.testing.assert_frame_equal(streamed, batch, check_exact=True)
    assert len(batch) == (240 - 60) // 5 + 1
    assert batch.filter(like="usable_").all().all()


def test_batch_and_streaming_agree_for_event_streams() -> None:
    blocks = _wrist_blocks(200.0, seed=24)
    batch = extract_features(blocks, WindowConfig(origin=T0))
    streamed = _stream(blocks, [[3, 50], [17, 100], [1, 2, 7]], origin=T0)
    pd.testing.assert_frame_equal(streamed, batch, check_exact=True)
    assert batch["hrv_rmssd"].notna().all()


def test_rows_are_aligned_on_the_step_grid_and_columns_grouped_by_family() -> None:
    recording = synthetic_recording(2, seed=12)
    frame = extract_features(recording.blocks)
    np.testing.assert_allclose(np.diff(frame["t_end"]), 5.0)
    assert frame["t_end"].iloc[0] == pytest.approx(T0 + 60.0)
    cols = list(frame.columns)
    assert cols[0] == "t_end"
    assert cols.index("quality_hrv") < cols.index("eda_tonic_mean") < cols.index("quality_eeg")
    assert frame["usable_hrv"].dtype == bool
    for family in ("hrv", "eda", "eeg"):
        assert frame[f"quality_{family}"].between(0, 1).all()


def test_missing_modality_has_no_columns() -> None:
    recording = synthetic_recording(2, seed=13)
    frame = extract_features(recording.blocks[:1])
    assert "quality_hrv" in frame.columns
    assert not any(c.startswith(("eda_", "eeg_", "quality_eda")) for c in frame.columns)


def test_a_stream_that_stops_early_gives_nan_and_unusable_rows() -> None:
    recording = synthetic_recording(3, seed=14)
    ecg, eda, eeg = recording.blocks
    short_eda = split_block(eda, [64 * 90])[0]  # EDA stops after 90 s
    frame = extract_features([ecg, short_eda, eeg])
    late = frame["t_end"] - T0 > 150
    assert (~frame.loc[late, "usable_eda"]).all()
    assert frame.loc[late, "eda_tonic_mean"].isna().all()
    assert frame.loc[late, "usable_hrv"].all()


def test_reasons_explain_unusable_windows() -> None:
    recording = synthetic_recording(3, seed=15)
    ecg, eda, _ = recording.blocks
    short_eda = split_block(eda, [64 * 90])[0]
    frame = extract_features([ecg, short_eda], WindowConfig(reasons=True))
    assert frame["reason_hrv"].eq("").all()
    assert frame["reason_eda"].iloc[-1] != ""


def test_device_index_gap_becomes_nan_rows_not_shifted_data() -> None:
    recording = synthetic_recording(3, seed=16)
    eda = recording.blocks[1]
    keep = np.ones(len(eda), dtype=bool)
    keep[64 * 100 : 64 * 110] = False  # ten seconds never arrived; indices jump
    gapped = SampleBlock(
        stream=eda.stream,
        modality="eda",
        channels=eda.channels,
        unit="µS",
        sfreq=64.0,
        t=eda.t[keep],
        values=eda.values[keep],
        index=eda.index[keep],
    )
    full = extract_features([eda])
    frame = extract_features([gapped])
    assert len(frame) == len(full)
    hit = (frame["t_end"] - T0 > 100) & (frame["t_end"] - T0 - 60 < 110)
    assert (frame.loc[hit, "quality_eda"] < 0.95).all()
    assert (frame.loc[~hit, "quality_eda"] == full.loc[~hit, "quality_eda"]).all()


def test_recording_shorter_than_a_window_is_an_error() -> None:
    recording = synthetic_recording(0.5, seed=17)
    with pytest.raises(SignalError, match="shorter than one window"):
        extract_features(recording.blocks)


def test_no_samples_is_an_error() -> None:
    with pytest.raises(SignalError, match="no samples"):
        extract_features([])


def test_sampling_rate_that_contradicts_the_timestamps_is_an_error() -> None:
    recording = synthetic_recording(1.5, seed=18)
    eda = recording.blocks[1]
    wrong = SampleBlock(
        stream=eda.stream,
        modality="eda",
        channels=eda.channels,
        unit="µS",
        sfreq=32.0,
        t=eda.t,
        values=eda.values,
        index=eda.index,
    )
    with pytest.raises(SignalError, match="sfreq is 32 Hz"):
        extract_features([wrong])


def test_a_wrong_sfreq_in_small_live_blocks_is_an_error_within_the_check_span() -> None:
    recording = synthetic_recording(1.5, seed=18)
    eda = recording.blocks[1]  # 64 Hz, declared 32 below
    wrong = dataclasses.replace(eda, sfreq=32.0)
    extractor = StreamingExtractor()
    pushed = 0
    with pytest.raises(SignalError, match="32 Hz"):  # the rate or the drift check
        for chunk in split_block(wrong, [16]):
            pushed += len(chunk)
            extractor.push(chunk)
    # Raised within a few seconds by the drift check, not at the end of the file.
    assert pushed <= RATE_CHECK_SPAN_S * 32 + 16


def test_packets_stamped_closer_than_a_period_after_a_burst_keep_their_rows() -> None:
    # device/clock.py may stamp the packets after a burst half a period apart (never
    # backwards); rows are placed by device index, so features must not change.
    recording = synthetic_recording(3, seed=21)
    eda = recording.blocks[1]
    chunks = split_block(eda, [13])
    squeezed = []
    for k, chunk in enumerate(chunks):
        if 400 <= k < 410:  # ~80 s in: ten packets stamped 0.5/sfreq apart
            start = float(squeezed[-1].t[-1])
            t = start + 0.5 / eda.sfreq * np.arange(1, len(chunk) + 1)
            chunk = dataclasses.replace(chunk, t=t)
        squeezed.append(chunk)
    # min_chunk=0: every packet is processed as it comes, as a live session may.
    plain = StreamingExtractor(origin=float(eda.t[0]), min_chunk=0.0)
    moved = StreamingExtractor(origin=float(eda.t[0]), min_chunk=0.0)
    a = [plain.push(c) for c in chunks] + [plain.flush()]
    b = [moved.push(c) for c in squeezed] + [moved.flush()]
    got = pd.concat([x for x in b if len(x)], ignore_index=True)
    want = pd.concat([x for x in a if len(x)], ignore_index=True)
    assert len(want) > 0
    pd.testing.assert_frame_equal(got, want, check_exact=True)


def test_timestamps_going_back_are_an_error() -> None:
    recording = synthetic_recording(1.5, seed=19)
    eda = recording.blocks[1]
    t = eda.t.copy()
    t[100] = t[98]
    broken = SampleBlock(
        stream=eda.stream,
        modality="eda",
        channels=eda.channels,
        unit="µS",
        sfreq=64.0,
        t=t,
        values=eda.values,
        index=eda.index,
    )
    with pytest.raises(SignalError, match="timestamps must increase"):
        extract_features([broken])


def test_a_time_jump_without_an_index_jump_is_an_error() -> None:
    recording = synthetic_recording(1.5, seed=20)
    first, second = split_block(recording.blocks[1], [64 * 30, 10**9])
    shifted = SampleBlock(
        stream=second.stream,
        modality="eda",
        channels=second.channels,
        unit="µS",
        sfreq=64.0,
        t=second.t + 20.0,
        values=second.values,
        index=second.index,
    )
    extractor = StreamingExtractor()
    extractor.push(first)
    with pytest.raises(SignalError, match="contradicts the timestamps"):
        extractor.push(shifted)


def test_ecg_is_preferred_to_rr_and_the_other_stream_ignored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    recording = synthetic_recording(2, seed=21)
    ecg = recording.blocks[0]
    rr = _wrist_blocks(120.0, seed=21)[2]  # a different heart: its mean NN differs
    alone = extract_features([ecg])
    with caplog.at_level("WARNING"):
        both = extract_features([rr, ecg])
    pd.testing.assert_frame_equal(both, alone)
    assert "w/rr" in caplog.text and "ignored" in caplog.text


def test_unknown_modalities_are_ignored() -> None:
    recording = synthetic_recording(1.5, seed=22)
    battery = SampleBlock.regular("b", "battery", ("level",), np.full(90, 80.0), 1.0, T0)
    frame = extract_features([recording.blocks[1], battery])
    assert not any("battery" in c for c in frame.columns)


def test_wrist_features_match_direct_computation() -> None:
    blocks = _wrist_blocks(180.0, seed=23)
    frame = extract_features(blocks)
    temp, acc, _ = blocks
    row = frame.iloc[-1]
    t_end = row["t_end"]
    inside = (temp.t >= t_end - 60) & (temp.t < t_end)
    assert row["temp_mean"] == pytest.approx(temp.values[inside, 0].mean())
    assert row["temp_slope"] == pytest.approx(0.002, rel=0.3)
    inside = (acc.t >= t_end - 60) & (acc.t < t_end)
    magnitude = np.linalg.norm(acc.values[inside], axis=1)
    assert row["acc_mag_mean"] == pytest.approx(magnitude.mean())
    assert row["acc_mag_std"] == pytest.approx(magnitude.std(ddof=1))


def test_acc_in_raw_e4_counts_is_rejected_with_advice() -> None:
    acc = np.tile([0.0, 0.0, 64.0], (32 * 70, 1))
    block = SampleBlock.regular("w/acc", "acc", ("x", "y", "z"), acc, 32.0, T0)
    with pytest.raises(SignalError, match="divide by 64"):
        extract_features([block])
