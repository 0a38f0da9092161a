"""A ``baseline_z`` bundle needs a reference spread: with too short a baseline it says so."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from affectstream.models.bundle import load_bundle
from affectstream.runtime.combine import combine
from affectstream.runtime.estimator import MIN_REFERENCE_WINDOWS, LiveEstimator

FEATURES = ["eda_phasic_std", "eda_scr_rate", "eda_tonic_mean", "hr_mean"]


def _rows(n: int, start: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(n)
    frame = pd.DataFrame(
        rng.normal([0.05, 2.0, 3.0, 70.0], [0.01, 1.0, 0.1, 2.0], size=(n, 4)), columns=FEATURES
    )
    frame.insert(0, "t_end", start + 5.0 * np.arange(n))
    return frame


def test_too_short_a_reference_gives_no_estimate_and_says_why() -> None:
    bundle = load_bundle("stress-wrist")
    assert bundle.normalizer.method == "baseline_z"
    rows = _rows(6)
    # Only the first window ends inside the baseline: one value has no spread.
    live = LiveEstimator([bundle], baseline_end=float(rows["t_end"].iloc[0]))
    records = live.estimate(rows)
    assert MIN_REFERENCE_WINDOWS == 2
    assert not records[0]["arousal_reference_final"]  # during the baseline: provisional
    for record in records[1:]:
        assert math.isnan(record["arousal"]) and record["arousal_confidence"] == 0.0
        assert not record["arousal_reference_final"]
        assert "reference too short (1 of its windows" in record["arousal_basis"]
    # Combined with another bundle, the basis carries the reason.
    fields = combine("arousal", [(bundle, records[-1])], top=3)
    assert math.isnan(fields["arousal"])
    assert fields["arousal_basis"] == records[-1]["arousal_basis"]


def test_two_reference_windows_are_enough() -> None:
    bundle = load_bundle("stress-wrist")
    rows = _rows(6)
    live = LiveEstimator([bundle], baseline_end=float(rows["t_end"].iloc[1]))
    records = live.estimate(rows)
    for record in records[2:]:
        assert 0.0 <= record["arousal"] <= 1.0
        assert record["arousal_reference_final"]
        assert "arousal_basis" not in record
