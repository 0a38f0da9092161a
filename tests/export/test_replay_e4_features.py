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


@pytest.mark.shared_data
def test_e4_replay_features_equal_the_training_table(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = shared_data / "stress-predict"
    frames, _, _ = shared_frames({"stress-predict": data}, subjects=["S02"])
    train = frames["stress-predict"]
    rows = tmp_path / "rows.csv"
    code = main(["replay", str(data / "Raw_data" / "S02"), "--as-fast-as-possible",
                 "--window", "60", "--step", "5", "--modalities", "eda,hr,rr",
                 "--model", "none", "--no-progress", "--json", "--out", str(rows)])  # fmt: skip
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    # Both heart streams are there; hr_mean comes from HR.csv, HRV from the IBI file.
    assert summary["feature_streams"]["hr"].endswith("/hr")
    assert summary["feature_streams"]["hrv"].endswith("/rr")
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
