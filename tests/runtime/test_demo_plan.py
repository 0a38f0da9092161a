"""The demo's protocol makes room for every model's reference (docs/runtime.md, ``demo``)."""

from __future__ import annotations

import pytest

from affectstream.models.bundle import load_bundle
from affectstream.runtime.demo import (
    BASELINE_SHARE,
    DEMO_DURATION,
    DEMO_LEAD_IN,
    demo_baseline,
    demo_script,
    reference_needs,
)
from affectstream.runtime.estimator import MIN_REFERENCE_WINDOWS, reference_seconds
from affectstream.runtime.view import estimate_text
from affectstream.signal import WindowConfig


def _expected_need(name: str) -> float:
    """Seconds a shipped bundle's reference needs, from its own metadata."""
    trained = load_bundle(name).meta["window"]
    return trained["window"] + (MIN_REFERENCE_WINDOWS - 1) * trained["step"] + DEMO_LEAD_IN


def test_reference_needs_come_from_each_bundles_windows() -> None:
    bundles = [load_bundle("stress-wrist"), load_bundle("eeg-workload")]
    needs = {n.name: n for n in reference_needs(bundles)}
    assert needs["stress-wrist"].seconds == pytest.approx(_expected_need("stress-wrist"))
    assert needs["eeg-workload"].seconds == pytest.approx(_expected_need("eeg-workload"))
    assert needs["stress-wrist"].window == load_bundle("stress-wrist").meta["window"]["window"]
    # On one window for all (--window), the need follows that window.
    window = WindowConfig(window=6.0, step=1.0)
    assert reference_seconds(bundles[0], window) == 6.0 + (MIN_REFERENCE_WINDOWS - 1) * 1.0
    # Windows end on multiples of the step: a 45-s window every 10 s ends first at 50 s.
    window = WindowConfig(window=45.0, step=10.0)
    assert reference_seconds(bundles[0], window) == 50.0 + (MIN_REFERENCE_WINDOWS - 1) * 10.0


def test_the_default_demo_baseline_holds_the_wrist_models_reference() -> None:
    bundles = [load_bundle("stress-wrist"), load_bundle("eeg-workload")]
    needs = reference_needs(bundles)
    wrist = next(n for n in needs if n.name == "stress-wrist")
    baseline, notes = demo_baseline(DEMO_DURATION, needs)
    assert baseline == pytest.approx(wrist.seconds) and notes == []
    # After the baseline at least one whole 60-s window of task (stress, then recovery).
    assert DEMO_DURATION - baseline >= wrist.window
    _, protocol = demo_script(DEMO_DURATION, baseline)
    assert [p.name for p in protocol.phases] == ["baseline", "stress", "recovery"]
    assert protocol.baseline_end() == pytest.approx(baseline)
    assert protocol.duration == pytest.approx(DEMO_DURATION)
    # The shortest demo that holds it, and one second shorter: 40 % and a note that says
    # which model is left out and what duration lets it join.
    assert demo_baseline(wrist.min_duration, needs) == (pytest.approx(wrist.seconds), [])
    shorter = wrist.min_duration - 1
    baseline, notes = demo_baseline(shorter, needs)
    assert baseline == pytest.approx(BASELINE_SHARE * shorter)
    assert len(notes) == 1 and notes[0].startswith("stress-wrist needs a")
    assert f"--duration {wrist.min_duration:g} or more" in notes[0]
    # Long sessions keep their 40 % baseline.
    assert demo_baseline(600.0, needs)[0] == pytest.approx(BASELINE_SHARE * 600.0)


def test_the_live_line_names_each_model_and_why_one_gives_nothing() -> None:
    record = {
        "arousal": 0.2,
        "arousal_confidence": 0.3,
        "arousal_reference_final": False,
        "arousal_basis": (
            "eeg-workload 0.20 (weight 0.60); stress-wrist: reference filling, 1 of 2 60-s windows"
        ),
    }
    text = estimate_text(record)
    assert "models: eeg-workload 0.20" in text
    assert "stress-wrist: reference filling, 1 of 2 60-s windows" in text
