"""A replayed E4 export gives the stress-wrist features exactly as its training table does:
heart rate from the E4's 1-Hz HR.csv (bpm), not from its IBI file, EDA in µS at 4 Hz."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from affectstream.cli import main
from affectstream.models.bundle import load_bundle
from affectstream.models.crossprotocol import shared_frames
from affectstream.models.datasets import read_e4_folder
from affectstream.signal import WindowConfig, extract_features

WINDOW = WindowConfig(window=60.0, step=5.0)


@pytest.mark.shared_data
def test_e4_replay_features_equal_the_training_table(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = shared_data / "stress-predict"
    frames, _, _ = shared_frames({"stress-predict": data}, subjects=["S02"])
    train = frames["stress-predict"]
    rows = tmp_path / "rows.csv"
    # With the IBI stream, whose sparse events start 10 min in: replay judges streams by data
    # time only, so it no longer pauses EDA and HR as "silent" under CPU load (issue 12).
    code = main(["replay", str(data / "Raw_data" / "S02"), "--as-fast-as-possible",
                 "--window", "60", "--step", "5", "--modalities", "eda,hr,rr",
                 "--model", "none", "--no-progress", "--json", "--out", str(rows)])  # fmt: skip
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["feature_streams"]["hr"].endswith("/hr")
    live = pd.read_csv(rows)
    both = train.merge(live, on="t_end", suffixes=("_train", "_live"))
    assert len(both) == len(train) == len(live) > 600
    hr_csv = np.loadtxt(data / "Raw_data" / "S02" / "HR.csv", skiprows=2)
    for feature in load_bundle("stress-wrist").features:
        a = both[f"{feature}_train"].to_numpy(dtype=float)
        b = both[f"{feature}_live"].to_numpy(dtype=float)
        assert np.isfinite(a).mean() > 0.9, feature
        np.testing.assert_allclose(b, a, rtol=1e-9, equal_nan=True, err_msg=feature)
    # In bpm, within HR.csv's own range (not IBI seconds, not the IBI-derived hrv_mean_hr).
    assert hr_csv.min() <= both["hr_mean_live"].min() <= both["hr_mean_live"].max() <= hr_csv.max()
    # With the IBI file's RR stream there too, hr_mean still comes from HR.csv (RR feeds HRV).
    blocks = read_e4_folder(data / "Raw_data" / "S02")
    with_rr = extract_features([b for b in blocks if b.modality in ("hr", "rr")], WINDOW)
    hr_only = extract_features([b for b in blocks if b.modality == "hr"], WINDOW)
    assert "hrv_mean_hr" in with_rr.columns
    np.testing.assert_array_equal(with_rr["hr_mean"], hr_only["hr_mean"])
    # The replay's HRV (from the IBI file) is the batch extractor's.
    batch = extract_features([b for b in blocks if b.modality in ("eda", "hr", "rr")], WINDOW)
    hrv = [c for c in batch.columns if c.startswith(("hrv_", "quality_", "usable_"))]
    assert len(live) == len(batch) and "hrv_rmssd" in hrv
    np.testing.assert_allclose(
        live[hrv].to_numpy(dtype=float), batch[hrv].to_numpy(dtype=float), rtol=1e-9
    )
