"""A ``baseline_z`` bundle needs a reference spread: with too short a baseline it says so."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

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
    # During the baseline one window has no spread: no estimate, the reference is filling.
    assert math.isnan(records[0]["arousal"]) and records[0]["arousal_confidence"] == 0.0
    assert not records[0]["arousal_reference_final"]
    assert records[0]["arousal_basis"] == "stress-wrist: reference filling, 1 of 2 windows"
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


def test_the_reference_fills_during_the_baseline_then_estimates_provisionally() -> None:
    bundle = load_bundle("stress-wrist")
    rows = _rows(6)
    live = LiveEstimator([bundle], baseline_end=float(rows["t_end"].iloc[3]))
    records = live.estimate(rows)
    assert math.isnan(records[0]["arousal"]) and records[0]["arousal_confidence"] == 0.0
    assert "reference filling, 1 of 2" in records[0]["arousal_basis"]
    # From the second baseline window on: an estimate against the reference so far, flagged
    # provisional (half the confidence) until the baseline is over, then final.
    for record in records[1:4]:
        assert 0.0 <= record["arousal"] <= 1.0 and "arousal_basis" not in record
        assert not record["arousal_reference_final"]
    assert all(r["arousal_reference_final"] for r in records[4:])


def test_a_bundle_on_longer_windows_says_its_reference_is_filling_before_its_first_window() -> None:
    """Beside a 10-s bundle, the 60-s wrist bundle has no window for its first minute: during
    the baseline that is "reference filling, 0 of 2 60-s windows"; the combined confidence is
    the estimating bundle's, halved: one of the session's two models is missing."""
    wrist, eeg = load_bundle("stress-wrist"), load_bundle("eeg-workload")
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        rng.normal(1.0, 0.1, size=(4, len(eeg.features))), columns=list(eeg.features)
    )
    frame.insert(0, "t_end", 10.0 + 2.0 * np.arange(4))
    frame["w60s__t_end"] = math.nan  # the 60-s window is not complete yet (multiwindow.py)
    live = LiveEstimator([wrist, eeg], baseline_end=100.0, window=10.0, own_windows=True)
    records = live.estimate(frame)
    for record in records:
        assert "stress-wrist: reference filling, 0 of 2 60-s windows" in record["arousal_basis"]
        assert math.isnan(record["arousal_by_stress_wrist"])
    last = records[-1]
    assert last["arousal"] == last["arousal_by_eeg_workload"]
    assert last["arousal_confidence"] == pytest.approx(
        last["arousal_by_eeg_workload_confidence"] / 2
    )
