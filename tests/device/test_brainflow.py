"""BrainFlow boards as a source: board specs, counter gap accounting, and ``record
--brainflow`` end to end through BrainFlow's real board library (its synthetic board, and
its playback board replaying a file made from a real EEG recording; no hardware)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from affectstream.cli import main
from affectstream.device.brainflow import BrainFlowSource, board_streams, parse_board
from affectstream.errors import ConfigError
from affectstream.store import open_store
from affectstream.types import SampleBlock

board_shim = pytest.importorskip(
    "brainflow.board_shim", reason="pip install 'affectstream[brainflow]'"
)
data_filter = pytest.importorskip("brainflow.data_filter")
BoardIds = board_shim.BoardIds
SYNTHETIC = int(BoardIds.SYNTHETIC_BOARD.value)
DESCR = board_shim.BoardShim.get_board_descr(SYNTHETIC)


def test_board_specs_name_boards_and_their_parameters() -> None:
    assert parse_board("synthetic").board_id == SYNTHETIC
    assert parse_board("SYNTHETIC_BOARD").board_id == SYNTHETIC
    assert parse_board(str(SYNTHETIC)).board_id == SYNTHETIC
    spec = parse_board("playback_file_board:file=/tmp/x.csv, master_board=synthetic,timeout=3")
    assert spec.board_id == int(BoardIds.PLAYBACK_FILE_BOARD.value)
    assert spec.params == {"file": "/tmp/x.csv", "master_board": SYNTHETIC, "timeout": 3}
    assert spec.descr_id == SYNTHETIC
    for bad, says in [
        ("no_such_board", "unknown board"),
        ("synthetic:serial=/dev/tty0", "BrainFlow input parameter"),
        ("synthetic:timeout", "param=value"),
        ("synthetic:timeout=soon", "whole number"),
    ]:
        with pytest.raises(ConfigError, match=says):
            parse_board(bad)


def test_streams_follow_the_board_description_without_sharing_rows() -> None:
    streams = {s.modality: s for s in board_streams(DESCR, "dev")}
    # The synthetic board lists rows 1-16 as EEG, ECG, EMG and EOG alike: EEG claims them.
    assert "ecg" not in streams
    assert streams["eeg"].rows == list(DESCR["eeg_channels"])
    assert streams["eeg"].channels == tuple(DESCR["eeg_names"].split(","))
    assert streams["eda"].rows == list(DESCR["eda_channels"])
    assert streams["acc"].rows == list(DESCR["accel_channels"])
    rows = [r for s in streams.values() for r in s.rows]
    assert len(rows) == len(set(rows))


def _rows(counter: np.ndarray, arrival: np.ndarray) -> np.ndarray:
    data = np.zeros((DESCR["num_rows"], len(counter)))
    data[DESCR["package_num_channel"]] = counter
    data[DESCR["timestamp_channel"]] = arrival
    for k, row in enumerate(DESCR["eeg_channels"]):
        data[row] = np.arange(len(counter)) + 1000 * k
    return data


def test_counter_jumps_become_gaps_and_wraps_do_not() -> None:
    blocks: list[SampleBlock] = []
    source = BrainFlowSource("synthetic", on_block=blocks.append)
    sfreq = float(DESCR["sampling_rate"])
    # 250 samples with the counter wrapping at 256, then 7 samples lost, then 50 more.
    first = (np.arange(250) + 200) % 256
    source.deliver(_rows(first, 1000.0 + np.arange(250) / sfreq))
    second = (first[-1] + 8 + np.arange(50)) % 256
    source.deliver(_rows(second, 1000.0 + (257 + np.arange(50)) / sfreq))
    eeg = [b for b in blocks if b.modality == "eeg"]
    assert [len(b.t) for b in eeg] == [250, 57]
    assert eeg[0].gaps == () and np.array_equal(eeg[0].index, np.arange(250))
    (gap,) = eeg[1].gaps
    assert (gap.first_index, gap.n_samples) == (250, 7)
    assert np.isnan(eeg[1].values[:7]).all() and not np.isnan(eeg[1].values[7:]).any()
    assert np.array_equal(eeg[1].index, np.arange(250, 307))
    assert np.all(np.diff(np.concatenate([b.t for b in eeg])) > 0)
    stats = source.stats()["brainflow-synthetic/eeg"]
    assert (stats.samples_received, stats.gap_samples, stats.samples_expected) == (300, 7, 307)
    assert stats.gaps == 1
    (state,) = source.device_states()
    n_streams = len(source.streams)
    assert (state.gaps, state.gap_samples) == (n_streams, 7 * n_streams)


def test_marker_row_values_become_markers_at_their_sample_times() -> None:
    marks: list[tuple[str, float]] = []
    blocks: list[SampleBlock] = []
    source = BrainFlowSource(
        "synthetic", on_block=blocks.append, on_marker=lambda *m: marks.append(m)
    )
    data = _rows(np.arange(100) % 256, 10.0 + np.arange(100) / 250.0)
    data[DESCR["marker_channel"], [20, 70]] = [3, 4.5]
    source.deliver(data)
    eeg = next(b for b in blocks if b.modality == "eeg")
    assert marks == [("3", eeg.t[20]), ("4.5", eeg.t[70])]


def test_a_silence_longer_than_the_counter_is_sized_by_the_host_clock() -> None:
    blocks: list[SampleBlock] = []
    source = BrainFlowSource("synthetic", on_block=blocks.append)
    sfreq = float(DESCR["sampling_rate"])
    source.deliver(_rows(np.arange(100) % 256, 50.0 + np.arange(100) / sfreq))
    # 3 s of silence (750 samples: the counter wrapped about three times), then 10 samples.
    lost = int(3 * sfreq)
    source.deliver(
        _rows((100 + lost + np.arange(10)) % 256, 50.0 + (100 + lost + np.arange(10)) / sfreq)
    )
    gap = next(g for b in blocks for g in b.gaps if b.modality == "eeg")
    assert gap.n_samples == lost


def _recording(shared_data: Path | None, n: int) -> np.ndarray:
    """µV values for 4 EEG channels: a real eegmat recording, else a seeded sine mix."""
    if shared_data is None:
        t = np.arange(n) / 250.0
        rng = np.random.default_rng(3)
        return np.stack(
            [20 * np.sin(2 * np.pi * f * t) + rng.normal(0, 5, n) for f in (6, 10, 14, 20)], 1
        )
    mne = pytest.importorskip("mne")
    raw = mne.io.read_raw_edf(
        shared_data / "eegmat" / "data" / "Subject00_2.edf",
        include=["EEG Fp1", "EEG Fp2", "EEG T5", "EEG T6"], preload=True, verbose="error",
    )  # fmt: skip
    raw.resample(250.0, verbose="error")  # the synthetic board's rate, which playback keeps
    return raw.get_data()[:, :n].T * 1e6


@pytest.mark.slow
def test_record_brainflow_playback_stores_the_file_as_played(
    shared_data_or_none: Path | None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    n, hole = 1000, 40  # 4 s at 250 Hz; 40 rows left out of the file: a counter jump
    values = _recording(shared_data_or_none, n)
    data = np.zeros((DESCR["num_rows"], n))
    data[DESCR["package_num_channel"]] = np.arange(n) % 256
    data[DESCR["timestamp_channel"]] = 1.7e9 + np.arange(n) / 250.0
    for k, row in enumerate(DESCR["eeg_channels"][:4]):
        data[row] = values[:, k]
    kept = np.r_[0:500, 500 + hole : n]
    path = tmp_path / "board.csv"
    data_filter.DataFilter.write_file(np.ascontiguousarray(data[:, kept]), str(path), "w")
    played = data_filter.DataFilter.read_file(str(path))  # what the board will replay
    store = tmp_path / "store"
    code = main([
        "record", "--brainflow", f"playback_file_board:file={path},master_board=synthetic",
        "--duration", "7", "--no-markers", "--store", f"file://{store}", "--json",
    ])  # fmt: skip
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0, summary
    entry = summary["streams"]["brainflow-synthetic/eeg"]
    assert entry["samples_received"] == len(kept)
    assert entry["gap_samples"] == hole
    names = [c.lower() for c in DESCR["eeg_names"].split(",")[:4]]
    with open_store(f"file://{store}") as opened:
        raw = opened.read("raw_eeg", tags={"session": summary["session"]})
        events = opened.read("events", tags={"session": summary["session"]})
    # Every row the board played, in order, as it played it (lost rows are not stored).
    stored = raw[names].to_numpy(dtype=np.float64)
    assert np.array_equal(stored, played[DESCR["eeg_channels"][:4]].T)
    # The 40 rows left out are one counter-jump gap, where they were left out.
    gaps = events[(events["kind"] == "gap") & (events["stream"] == "brainflow-synthetic/eeg")]
    assert gaps["n_samples"].tolist() == [hole] and gaps["first_index"].tolist() == [500]


@pytest.mark.slow
def test_record_brainflow_synthetic_board_stores_every_stream_it_lays_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    code = main(["record", "--brainflow", "synthetic", "--duration", "5", "--no-markers",
                 "--store", f"file://{store}", "--json"])  # fmt: skip
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0, summary
    expected = {f"brainflow-synthetic/{s.modality}" for s in board_streams(DESCR, "x")}
    assert set(summary["streams"]) == expected
    for entry in summary["streams"].values():
        assert entry["samples_received"] > 0
        assert entry["samples_received"] + entry["gap_samples"] == entry["samples_expected"]
        assert entry["stored"] == entry["samples_received"]
    with open_store(f"file://{store}") as opened:
        eeg = opened.read("raw_eeg", tags={"session": summary["session"]})
    names = [c.lower() for c in DESCR["eeg_names"].split(",")]
    assert set(names) <= set(eeg.columns)
    assert len(eeg) == summary["streams"]["brainflow-synthetic/eeg"]["samples_received"]
    # Rows sit one sample period apart on the host clock (the counter's grid, fitted).
    step = np.median(np.diff(eeg["time_ns"].to_numpy())) / 1e9
    assert step == pytest.approx(1 / DESCR["sampling_rate"], rel=0.02)
