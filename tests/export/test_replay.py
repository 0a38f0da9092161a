"""Replay: a recording through the live runtime gives the batch extractor's numbers."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from affectstream.cli import main
from affectstream.export import load_session, raw_blocks
from affectstream.io import read_recording
from affectstream.io.replay import chunk_blocks
from affectstream.models.bundle import load_bundle
from affectstream.runtime.replay import replay_blocks, session_rows
from affectstream.signal import WindowConfig, extract_features
from affectstream.signal.columns import feature_columns
from affectstream.store import EmbeddedStore
from affectstream.types import SampleBlock

from .conftest import SESSION, Built

WINDOW = WindowConfig(window=30.0, step=5.0)
#: Replays score with the shipped bundles that fit the recording; stress-wrist's EDA features
#: are computed at the rate it was trained on (docs/features.md), so the batch rows are too.
REPLAYED = dataclasses.replace(WINDOW, common_rate=load_bundle("stress-wrist").common_rate)


def assert_same_rows(replayed: pd.DataFrame, batch: pd.DataFrame) -> None:
    """Same windows and the same feature values (NaN where NaN); quality too."""
    assert len(batch) > 0
    np.testing.assert_allclose(replayed["t_end"], batch["t_end"], rtol=0, atol=1e-6)
    columns = feature_columns(batch)
    assert set(columns) <= set(replayed.columns)
    np.testing.assert_array_equal(replayed[columns].to_numpy(np.float64), batch[columns])
    quality = [c for c in batch.columns if c.startswith("quality_")]
    np.testing.assert_array_equal(replayed[quality].to_numpy(np.float64), batch[quality])


def replay_into(tmp_path: Path, blocks: list[SampleBlock], **options: object) -> pd.DataFrame:
    with EmbeddedStore(tmp_path / "replay", synchronous="normal") as store:
        summary = replay_blocks(
            blocks, store, session_id="replayed", window=WINDOW, own_windows=False, **options
        )
        assert summary["unflushed_samples"] == 0 and summary["backlog_drops"] == 0
        assert summary["feature_errors"] == {}
        return session_rows(store, "replayed")


def test_chunks_keep_every_sample_in_time_order(built: Built) -> None:
    blocks = list(built.blocks.values())
    chunks = chunk_blocks(blocks, 1.0)
    for block in blocks:
        mine = [c for c in chunks if c.stream == block.stream]
        np.testing.assert_array_equal(np.concatenate([c.t for c in mine]), block.t)
        assert sum((c.gaps for c in mine), ()) == block.gaps
    ends = [float(c.t[-1]) for c in chunks]
    assert ends == sorted(ends)


def test_file_replay_equals_batch_extraction(built: Built, tmp_path: Path) -> None:
    """A CSV (ECG + EDA with a time column) replayed as fast as possible."""
    ecg, eda = built.blocks["ecg"], built.blocks["eda"]
    path = tmp_path / "recording.csv"
    frame = pd.merge(
        pd.DataFrame({"time_ns": np.rint(ecg.t * 1e9).astype(np.int64), "ecg": ecg.values[:, 0]}),
        pd.DataFrame({"time_ns": np.rint(eda.t * 1e9).astype(np.int64), "eda": eda.values[:, 0]}),
        on="time_ns",
        how="outer",
    )
    frame.to_csv(path, index=False)
    blocks = read_recording(path)
    assert {b.modality: b.sfreq for b in blocks} == {"ecg": ecg.sfreq, "eda": eda.sfreq}
    batch = extract_features(blocks, REPLAYED)
    assert_same_rows(replay_into(tmp_path, blocks), batch)
    # And the file held the original signals: same features as the blocks it came from.
    assert_same_rows(batch, extract_features([ecg, eda], REPLAYED))


def test_stored_session_replay_equals_batch_extraction(built: Built, tmp_path: Path) -> None:
    """The stored session (EEG with a gap, ECG, EDA, RR) replayed at a pace."""
    with EmbeddedStore(built.store_path) as store:
        blocks = raw_blocks(load_session(store, SESSION))
    by_modality = {b.modality: b for b in blocks}
    eeg = by_modality["eeg"]
    assert [(g.n_samples, g.reason) for g in eeg.gaps] == [(built.gap.n_samples, built.gap.reason)]
    np.testing.assert_array_equal(eeg.values, built.blocks["eeg"].values)
    # The runtime takes HRV from the ECG, not the RR intervals; batch gets the same streams.
    batch = extract_features([by_modality[m] for m in ("ecg", "eda", "eeg")], REPLAYED)
    replayed = replay_into(tmp_path, blocks, speed=400.0)
    assert_same_rows(replayed, batch)
    original = extract_features([built.blocks[m] for m in ("ecg", "eda", "eeg")], REPLAYED)
    assert_same_rows(batch, original)


def test_cli_export_and_replay(
    built: Built, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = str(built.store_path)
    code = main(["export", SESSION, "--format", "parquet", "--out", str(tmp_path / "pq"),
                 "--store", store, "--no-progress", "--json"])  # fmt: skip
    assert code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["session"] == SESSION
    assert all(Path(p).is_file() for p in result["files"])

    assert main(["export", "nope", "--format", "csv", "--out", str(tmp_path / "x"),
                 "--store", store, "--no-progress"]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "'nope'" in err and SESSION in err

    rows_path = tmp_path / "rows.csv"
    code = main(["replay", SESSION, "--store", store, "--as-fast-as-possible", "--window", "30",
                 "--no-progress", "--json", "--out", str(rows_path)])  # fmt: skip
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["source_kind"] == "session" and not summary["saved"]
    assert summary["n_feature_rows"] == len(pd.read_csv(rows_path)) > 0
    assert summary["streams"]["muse-1/eeg"]["gaps"] == 1
    with EmbeddedStore(built.store_path) as check:
        assert [s.session for s in check.sessions()] == [SESSION]  # nothing saved


@pytest.mark.slow
def test_replay_estimates_are_the_live_estimators(built: Built, tmp_path: Path) -> None:
    """With a model bundle, the stored estimates equal LiveEstimator on the batch rows."""
    from affectstream.models.bundle import load_bundle
    from affectstream.runtime import LiveEstimator
    from affectstream.runtime.estimator import ensure_demo_bundle

    bundle = ensure_demo_bundle(tmp_path / "bundle")  # trained on synthetic data, ~10 s
    with EmbeddedStore(built.store_path) as store:
        blocks = raw_blocks(load_session(store, SESSION))
    feature_blocks = [b for b in blocks if b.modality in ("ecg", "eda", "eeg")]
    origin = min(float(b.t[0]) for b in blocks)
    with EmbeddedStore(tmp_path / "replay", synchronous="normal") as store:
        summary = replay_blocks(
            blocks,
            store,
            session_id="r",
            window=WINDOW,
            own_windows=False,
            bundle=str(bundle),
            baseline_end=origin + 40.0,
        )
        affect = store.read("affect", tags={"session": "r"})
    loaded = load_bundle(bundle)
    batch = extract_features(feature_blocks, WINDOW)
    records = pd.DataFrame(LiveEstimator([loaded], baseline_end=origin + 40.0).estimate(batch))
    assert summary["n_estimates"] == len(records) == len(affect) > 0
    assert set(affect["model"]) == {loaded.model_id}
    for column in ("arousal", "arousal_svm", "arousal_confidence", "valence"):
        np.testing.assert_allclose(affect[column], records[column].astype(float), rtol=1e-12)
    assert list(affect["arousal_high"]) == list(records["arousal_high"])


def test_saved_replay_spans_the_recording_not_the_wall_clock(
    built: Built, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 2011 recording replayed with --save: its session events lie in 2011."""
    eda = built.blocks["eda"]
    assert eda.sfreq is not None
    path = tmp_path / "eda-2011.csv"
    pd.DataFrame({"eda": eda.values[:, 0]}).to_csv(path, index=False)
    t0 = 1_300_000_000.25  # March 2011
    first, last = t0, t0 + (len(eda) - 1) / eda.sfreq
    store = str(tmp_path / "saved")
    code = main(["replay", str(path), "--sfreq", str(eda.sfreq), "--t0", str(t0),
                 "--unit", f"eda={eda.unit}", "--store", store, "--save",
                 "--session-id", "r2011", "--window", "30", "--no-progress", "--json"])  # fmt: skip
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["saved"] and summary["session"] == "r2011"
    with EmbeddedStore(tmp_path / "saved") as check:
        events = check.read("events", tags={"session": "r2011"})
    session_events = events[events["kind"] == "session"].set_index("label")["time_ns"]
    assert set(session_events.index) == {"start", "stop"}
    start, stop = session_events["start"] / 1e9, session_events["stop"] / 1e9
    period = 1.0 / eda.sfreq
    assert start == pytest.approx(first, abs=1e-6)
    assert last <= stop <= last + period + 1e-6
    # Every event of the saved session (gaps included) lies within the recording's span.
    times = events["time_ns"].to_numpy(np.int64) / 1e9
    assert ((times >= first - 1e-6) & (times <= last + period + 1e-6)).all()
