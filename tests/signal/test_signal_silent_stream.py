"""A stream that goes silent: rows go on without it (bounded wait), and it resumes cleanly."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from affectstream.errors import ConfigError
from affectstream.signal import StreamingExtractor, WindowConfig, extract_features
from affectstream.signal.eda import SCR_SEGMENT
from affectstream.signal.synthetic import (
    rr_events,
    split_block,
    synthetic_recording,
    synthetic_rr,
)
from affectstream.types import SampleBlock

T0 = 1_700_000_000.0
CONFIG = WindowConfig(origin=T0)  # 60-s windows every 5 s, max_lag 30 s
EDA_FEATURES = ["eda_tonic_mean", "eda_phasic_std", "eda_scr_count"]


def _without(block: SampleBlock, start: float, stop: float) -> SampleBlock:
    """``block`` minus its samples in [start, stop) s after T0 (device indices jump)."""
    rel = block.t - T0
    keep = (rel < start) | (rel >= stop)
    return SampleBlock(
        stream=block.stream,
        modality=block.modality,
        channels=block.channels,
        unit=block.unit,
        sfreq=block.sfreq,
        t=block.t[keep],
        values=block.values[keep],
        index=block.index[keep],
    )


def _one_second_chunks(blocks: list[SampleBlock]) -> list[SampleBlock]:
    """Blocks cut into 1-s deliveries, in arrival order (time of their last sample)."""
    chunks = [c for b in blocks for c in split_block(b, [round(b.sfreq or 1)])]
    return sorted(chunks, key=lambda c: float(c.t[-1]))


def _stream(
    blocks: list[SampleBlock], config: WindowConfig = CONFIG, *, expect: bool = False
) -> tuple[pd.DataFrame, list[float]]:
    """Push 1-s chunks, then flush; also how far the rows lag the data after each push.

    With ``expect``, as a replay does: every stream is registered up front and after each
    chunk the extractor learns where that stream's next sample is (inf after its last).
    """
    extractor = StreamingExtractor(config)
    parts, lags, last_end = [], [], -np.inf
    whole = {b.stream: b for b in blocks}
    if expect:
        for block in blocks:
            extractor.register(block)
            parts.append(extractor._frame(extractor.expect(block.stream, float(block.t[0]))))
    for chunk in _one_second_chunks(blocks):
        part = extractor.push(chunk)
        if expect:
            block = whole[chunk.stream]
            i = int(np.searchsorted(block.t, chunk.t[-1], side="right"))
            if i < len(block):
                later = extractor.expect(chunk.stream, float(block.t[i]), int(block.index[i]))
            else:
                later = extractor.expect(chunk.stream, np.inf)
            part = pd.concat([part, extractor._frame(later)], ignore_index=True)
        parts.append(part)
        if len(part):
            last_end = float(part["t_end"].iloc[-1])
        if np.isfinite(last_end):
            lags.append(float(chunk.t[-1]) - last_end)
    parts.append(extractor.flush())
    return pd.concat([p for p in parts if len(p)], ignore_index=True), lags


def _covered(block: SampleBlock, t_end: pd.Series, window: float) -> np.ndarray:
    """Fraction of each window [t_end - window, t_end) holding samples of ``block``."""
    t = np.sort(block.t)
    inside = np.searchsorted(t, t_end.to_numpy(), side="left") - np.searchsorted(
        t, t_end.to_numpy() - window, side="left"
    )
    assert block.sfreq is not None
    return np.asarray(inside / (window * block.sfreq))


@pytest.mark.parametrize("silent", ["eda", "ecg"])
def test_rows_go_on_while_a_stream_is_silent_and_it_resumes(silent: str) -> None:
    ecg, eda, _ = synthetic_recording(5, seed=31).blocks
    hole = (100.0, 200.0)  # the device is off for 100 s, longer than max_lag and a window
    gapped = {"ecg": ecg, "eda": eda}
    gapped[silent] = _without(gapped[silent], *hole)
    other = "eda" if silent == "ecg" else "ecg"
    family = {"ecg": "hrv", "eda": "eda"}[silent]
    streamed, lags = _stream([gapped["ecg"], gapped["eda"]])

    # Every window of the grid exactly once, in order.
    expected_ends = T0 + np.arange(60.0, 300.0 + 1e-9, CONFIG.step)
    np.testing.assert_allclose(streamed["t_end"], expected_ends)
    # Rows never waited for the silent stream longer than max_lag plus the usual look-ahead
    # (ECG beats confirmed a segment plus margin later, blocks gathered for one step).
    assert CONFIG.max_lag is not None
    bound = CONFIG.max_lag + CONFIG.beat_segment + CONFIG.beat_margin + 2 * CONFIG.step + 1.0
    assert max(lags) <= bound
    assert max(lags) > CONFIG.max_lag  # it did wait max_lag before giving up

    t_rel = streamed["t_end"] - T0
    uncovered = (t_rel - CONFIG.window >= hole[0]) & (t_rel <= hole[1])
    full = (t_rel <= hole[0]) | (t_rel - CONFIG.window >= hole[1])
    assert uncovered.sum() == (hole[1] - hole[0] - CONFIG.window) / CONFIG.step + 1
    assert (streamed.loc[uncovered, f"quality_{family}"] == 0).all()
    assert not streamed.loc[uncovered, f"usable_{family}"].any()
    features = [c for c in streamed.columns if c.startswith(f"{family}_")]
    assert streamed.loc[uncovered, features].isna().all().all()
    # Before the hole and once it has left the window, the family is back to normal.
    assert streamed.loc[full, f"usable_{family}"].all()
    assert streamed.loc[full & (t_rel > hole[1]), features[0]].notna().all()
    # The other stream was never disturbed.
    other_family = {"ecg": "hrv", "eda": "eda"}[other]
    assert streamed[f"usable_{other_family}"].all()
    if silent == "eda":  # EDA quality is the share of good samples: the covered share here
        covered = _covered(gapped["eda"], streamed["t_end"], CONFIG.window)
        np.testing.assert_allclose(streamed["quality_eda"], covered, atol=2 / (64 * 60))

    # The batch path on the same data gives exactly the same rows.
    batch = extract_features([gapped["ecg"], gapped["eda"]], CONFIG)
    pd.testing.assert_frame_equal(streamed, batch, check_exact=True)


@pytest.mark.parametrize("silent", ["eda", "ecg"])
def test_a_stream_that_stops_early_streams_as_in_batch(silent: str) -> None:
    ecg, eda, _ = synthetic_recording(4, seed=32).blocks
    blocks = {"ecg": ecg, "eda": eda}
    blocks[silent] = _without(blocks[silent], 90.0, 1e9)
    streamed, lags = _stream([blocks["ecg"], blocks["eda"]])
    batch = extract_features([blocks["ecg"], blocks["eda"]], CONFIG)
    pd.testing.assert_frame_equal(streamed, batch, check_exact=True)
    family = {"ecg": "hrv", "eda": "eda"}[silent]
    late = streamed["t_end"] - T0 - CONFIG.window >= 90.0
    assert late.any() and not streamed.loc[late, f"usable_{family}"].any()
    assert CONFIG.max_lag is not None
    assert max(lags) <= CONFIG.max_lag + CONFIG.beat_segment + CONFIG.beat_margin + 11.0


def test_without_max_lag_rows_wait_for_the_silent_stream() -> None:
    ecg, eda, _ = synthetic_recording(4, seed=33).blocks
    gapped = _without(eda, 100.0, 220.0)
    config = WindowConfig(origin=T0, max_lag=None)
    streamed, lags = _stream([ecg, gapped], config)
    assert max(lags) >= 220.0 - 100.0 - config.step  # held back for the whole silence
    pd.testing.assert_frame_equal(streamed, extract_features([ecg, gapped], config))


@pytest.mark.parametrize("gapped", ["ecg", "eda", "eeg"])
def test_rows_go_through_a_gap_the_source_announced(gapped: str) -> None:
    """Told where a stream's next sample is (a replay knows), rows go through its 120-s
    device gap with the usual look-ahead instead of waiting for it, and are the batch rows."""
    blocks = {b.modality: b for b in synthetic_recording(4, seed=33).blocks}
    blocks[gapped] = _without(blocks[gapped], 100.0, 220.0)
    config = WindowConfig(origin=T0, max_lag=None)
    told, lags = _stream(list(blocks.values()), config, expect=True)
    batch = extract_features(list(blocks.values()), config)
    pd.testing.assert_frame_equal(told, batch, check_exact=True)
    assert max(lags) <= config.beat_segment + config.beat_margin + 2 * config.step
    family = {"ecg": "hrv", "eda": "eda", "eeg": "eeg"}[gapped]
    t_rel = told["t_end"] - T0
    inside = (t_rel - config.window >= 100.0) & (t_rel <= 220.0)
    assert inside.any() and not told.loc[inside, f"usable_{family}"].any()


def test_late_data_of_a_paused_stream_is_dropped_for_features_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """EDA delivered ~45 s late in one burst: rows did not wait; later rows use its data."""
    ecg, eda, _ = synthetic_recording(4, seed=34).blocks
    extractor = StreamingExtractor(CONFIG)
    chunks = _one_second_chunks([ecg, eda])
    # EDA held back from mid-segment (SCR segments of SCR_SEGMENT = 0.25 s, 16 samples)
    late_from, late_to = 104.125, 145.0
    eda_chunks = split_block(eda, [64, 40, 56])  # one chunk ends at 104.125 s
    chunks = sorted([c for c in chunks if c.modality != "eda"] + eda_chunks, key=lambda c: c.t[-1])
    held = [c for c in eda_chunks if late_from <= c.t[0] - T0 < late_to]
    assert held and held[0].t[0] - T0 == pytest.approx(late_from)
    while_paused: list[pd.DataFrame] = []
    after: list[pd.DataFrame] = []
    with caplog.at_level(logging.INFO, logger="affectstream.signal"):
        for chunk in chunks:
            if any(chunk is h for h in held):
                continue
            if chunk.modality == "eda" and chunk.t[0] - T0 >= late_to and held:
                for late in held:  # the burst arrives just before the live data
                    after.append(extractor.push(late))
                held = []
            (after if not held else while_paused).append(extractor.push(chunk))
        after.append(extractor.flush())
    paused = pd.concat([p for p in while_paused if len(p)], ignore_index=True)
    resumed = pd.concat([p for p in after if len(p)], ignore_index=True)
    frame = pd.concat([paused, resumed], ignore_index=True)
    np.testing.assert_allclose(frame["t_end"], T0 + np.arange(60.0, 240.0 + 1e-9, 5.0))
    assert "silent" in caplog.text and "resumed" in caplog.text
    assert frame["usable_hrv"].all()

    def share(t_end: pd.Series, lo: float, hi: float) -> np.ndarray:
        """Share of each window [t_end - 60, t_end) inside [lo, hi) s after T0."""
        rel = (t_end - T0).to_numpy()
        return np.clip(np.minimum(rel, hi) - np.maximum(rel - 60.0, lo), 0.0, None) / 60.0

    tol = 2 / (64 * 60)
    # Rows emitted while EDA was paused had only its data before the hold-up ...
    assert (paused["t_end"] - T0 > late_from).any()
    expected = share(paused["t_end"], 0.0, late_from)
    np.testing.assert_allclose(paused["quality_eda"], expected, atol=tol)
    # ... later rows have the late data, except the rest of the segment drained at the pause.
    drained_to = np.ceil(late_from / SCR_SEGMENT) * SCR_SEGMENT
    assert drained_to > late_from
    expected = 1.0 - share(resumed["t_end"], late_from, drained_to)
    np.testing.assert_allclose(resumed["quality_eda"], expected, atol=tol)
    assert resumed["usable_eda"].all()


def test_max_lag_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="max_lag"):
        WindowConfig(max_lag=0.0)


def test_a_registered_stream_that_starts_late_makes_no_other_stream_silent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A stream declared up front (register, as replay does) whose data begin 200 s in has
    delivered nothing: it must not count as the newest data and pause the streams that do."""
    ecg, eda, _ = synthetic_recording(5, seed=34).blocks
    ecg = _without(ecg, 0.0, 200.0)
    extractor = StreamingExtractor(CONFIG)
    extractor.register(eda)
    extractor.register(ecg)
    assert CONFIG.max_lag is not None and float(ecg.t[0]) - T0 > CONFIG.max_lag + 100.0
    with caplog.at_level(logging.WARNING, logger="affectstream.signal.extractor"):
        for chunk in _one_second_chunks([eda.rows(0, int(100 * (eda.sfreq or 1)))]):
            extractor.push(chunk)
    assert "silent" not in caplog.text
    assert not any(p.paused for p in extractor._processors.values())


def test_rows_go_on_after_a_stream_said_to_have_ended() -> None:
    """Data time only (max_lag None, as replay): once the source says the EDA has ended
    (expect inf after its last sample), rows go on with the ECG instead of waiting for the
    final flush, and they are the batch rows."""
    ecg, eda, _ = synthetic_recording(5, seed=35).blocks
    stop = 100.0
    eda = _without(eda, stop, 1e9)
    config = WindowConfig(origin=T0, max_lag=None)
    ends = T0 + np.arange(config.window, 300.0 + 1e-9, config.step)
    # Windows whose end the ECG has confirmed beats past, by its last sample.
    look_ahead = config.beat_segment + config.beat_margin + config.step
    confirmed = int(np.count_nonzero(ends <= float(ecg.t[-1]) - look_ahead))
    waiting = int(np.count_nonzero(ends <= T0 + stop))

    held, _ = _stream([ecg, eda], config)
    streamed, _ = _stream([ecg, eda], config, expect=True)
    batch = extract_features([ecg, eda], config)
    pd.testing.assert_frame_equal(streamed, batch, check_exact=True)
    pd.testing.assert_frame_equal(held, batch, check_exact=True)

    def before_flush(blocks: list[SampleBlock], expect: bool) -> int:
        extractor = StreamingExtractor(config)
        for block in blocks:
            extractor.register(block)
        n = 0
        for chunk in _one_second_chunks(blocks):
            n += len(extractor.push_rows(chunk))
            if expect and chunk.stream == eda.stream and chunk.t[-1] == eda.t[-1]:
                n += len(extractor.expect(eda.stream, np.inf))
        return n

    assert before_flush([ecg, eda], expect=False) <= waiting  # the stall being fixed
    assert before_flush([ecg, eda], expect=True) >= confirmed > waiting + 20
    late = streamed["t_end"] - T0 - config.window >= stop
    assert late.any() and not streamed.loc[late, "usable_eda"].any()
    assert streamed["usable_hrv"].all()


def test_rows_go_through_an_event_stream_gap_the_source_announced() -> None:
    """Heart beats (RR events) stop for 100 s: told when the next beat comes, rows go on
    through the gap instead of waiting for it, and they are the batch rows."""
    rng = np.random.default_rng(36)
    _, eda, _ = synthetic_recording(5, seed=36).blocks
    beats = synthetic_rr(300.0, rng)
    gap = (120.0, 220.0)
    rr = rr_events(beats, T0, keep=~((beats > gap[0]) & (beats < gap[1])))
    config = WindowConfig(origin=T0, max_lag=None)
    held, held_lags = _stream([rr, eda], config)
    streamed, lags = _stream([rr, eda], config, expect=True)
    batch = extract_features([rr, eda], config)
    pd.testing.assert_frame_equal(streamed, batch, check_exact=True)
    pd.testing.assert_frame_equal(held, batch, check_exact=True)
    assert max(held_lags) >= gap[1] - gap[0] - config.step  # waited for the next beat
    # Told, rows lag the data by EDA's SCR look-ahead and the gathering step, no more.
    assert max(lags) <= config.step + SCR_SEGMENT + 2.0
