"""Valence calibration in sessions: self-reports after calibration blocks, the fit at the
session's end, the stored personal model applied live, re-calibration and deletion."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from affectstream.errors import ConfigError
from affectstream.models.bundle import ModelBundle
from affectstream.models.valence import CalibrationBlock
from affectstream.models.valence_store import load_personal_valence, personal_valence_path
from affectstream.runtime import Session
from affectstream.runtime.calibration import (
    SELF_REPORT_KIND,
    CalibrationPrompter,
    calibration_blocks,
    load_self_reports,
    parse_answer,
)
from affectstream.runtime.protocol import protocol_from_dict
from affectstream.runtime.valence_live import LiveValence
from affectstream.store import open_store
from tests.valence_models import fitted_personal_valence

T0 = 1_700_000_000.0


def _events(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    frame["time_ns"] = (frame.pop("t") * 1e9).astype(np.int64)
    return frame


def test_reports_rate_the_named_or_latest_unrated_calibration_block() -> None:
    events = _events(
        [
            {"t": T0, "kind": "phase", "label": "baseline"},
            {"t": T0 + 60, "kind": "phase", "label": "happy", "calibration": 1.0},
            {"t": T0 + 120, "kind": "phase", "label": "sad", "calibration": 1.0},
            # The prompt for "happy" was answered late, naming it.
            {"t": T0 + 125, "kind": SELF_REPORT_KIND, "label": "self-report", "detail": "happy",
             "valence": 8.0, "arousal": 4.0},
            {"t": T0 + 180, "kind": "phase", "label": "rest"},
            # The service's format: ratings in the label, block not named.
            {"t": T0 + 182, "kind": SELF_REPORT_KIND, "label": "arousal=2 valence=3"},
            {"t": T0 + 190, "kind": "phase", "label": "scary", "calibration": 1.0},
            {"t": T0 + 195, "kind": "marker", "label": "door slammed"},
        ]
    )  # fmt: skip
    blocks = calibration_blocks(events, T0 + 250)
    assert blocks == [
        CalibrationBlock(T0 + 60, T0 + 120, 8.0, 4.0, "happy"),
        CalibrationBlock(T0 + 120, T0 + 180, 3.0, 2.0, "sad"),
    ]  # "scary" was never rated: left out


def test_prompter_answers_from_file_or_prompt_and_knows_what_is_missing() -> None:
    marked: list[tuple[str, dict[str, Any]]] = []
    questions: list[str] = []

    def mark(label: str, **kw: Any) -> None:
        marked.append((label, kw))

    prompter = CalibrationPrompter(
        mark, ["a", "b", "c"], answers={"a": (7.0, 3.0)}, ask=questions.append
    )
    for name in ("baseline", "a", "b", "c"):
        prompter.on_event("event", {"kind": "phase", "label": name})
    # "a" came from the file; "b" ended when "c" started: asked.
    assert [kw["detail"] for _, kw in marked] == ["a"]
    assert "'b'" in questions[-1]
    assert prompter.answer_line("nonsense") and "Not understood" in questions[-2]
    assert prompter.answer_line("2 4")
    assert marked[-1][1]["values"] == {"valence": 2.0, "arousal": 4.0}
    assert marked[-1][1]["kind"] == SELF_REPORT_KIND and marked[-1][1]["detail"] == "b"
    assert not prompter.answer_line("a marker")  # nothing pending: it is a marker
    prompter.on_event("event", {"kind": "session", "label": "stop"})
    assert prompter.reported == ["a", "b"] and prompter.missing == ["c"]


def test_answers_and_files_are_checked(tmp_path: Path) -> None:
    assert parse_answer("7 3") == (7.0, 3.0)
    assert parse_answer("v=2, a=8") == (2.0, 8.0)
    assert parse_answer("0 3") is None and parse_answer("hello") is None
    good = tmp_path / "r.json"
    good.write_text(json.dumps({"sad": {"valence": 2, "arousal": 3}}))
    assert load_self_reports(good) == {"sad": (2.0, 3.0)}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"sad": {"valence": 12, "arousal": 3}}))
    with pytest.raises(ConfigError, match="must be 1-9"):
        load_self_reports(bad)
    with pytest.raises(ConfigError, match="Cannot read"):
        load_self_reports(tmp_path / "missing.json")
    with pytest.raises(ConfigError, match="calibration must be true or false"):
        protocol_from_dict({"phases": [{"name": "x", "duration": 5, "calibration": "yes"}]})


def test_live_valence_applies_a_calibrated_model_with_its_accuracy() -> None:
    model = fitted_personal_valence(calibrated=True)
    assert model.calibrated_
    live = LiveValence(model, window=10.0)
    out = [live.fields(pd.Series({"eeg_faa": 2.0}), T0 + 5.0 * k, None) for k in range(60)]
    last = out[-1]
    assert last["valence_calibrated"] is True and last["valence"] > 0.9
    acc = model.accuracy_
    assert last["valence_mae"] == pytest.approx(acc["mae"])
    assert last["valence_mae_ci_low"] <= last["valence_mae"] <= last["valence_mae_ci_high"]
    assert last["valence_mae_own_mean"] == pytest.approx(acc["mae_own_mean"])
    assert "leave-one-episode-out" in last["valence_confidence"]
    assert out[0]["valence"] < 0.6  # smoothed: starts near "don't know", not at the extreme


def test_live_valence_stays_uncalibrated_when_the_model_did_not_beat_the_mean() -> None:
    model = fitted_personal_valence(calibrated=False)
    assert not model.calibrated_
    fields = LiveValence(model, window=10.0).fields(pd.Series({"eeg_faa": 1.0}), T0, None)
    assert fields["valence_calibrated"] is False and math.isnan(fields["valence_mae"])
    assert "did not beat" in fields["valence_confidence"]
    other_window = LiveValence(fitted_personal_valence(calibrated=True), window=60.0)
    fields = other_window.fields(pd.Series({"eeg_faa": 1.0}), T0, None)
    assert fields["valence_calibrated"] is False and "10-s windows" in fields["valence_confidence"]


def test_uncalibrated_valence_never_swings_with_extreme_asymmetry() -> None:
    """Wildly alternating frontal asymmetry after the baseline: no 0.00 -> 0.98 swing."""
    live = LiveValence()
    rng = np.random.default_rng(0)
    baseline_end = T0 + 60.0
    values = []
    for k in range(200):
        t = T0 + 5.0 * k
        faa = rng.normal(0, 0.1) if t <= baseline_end else (50.0 if k % 2 else -50.0)
        values.append(live.fields(pd.Series({"eeg_faa": faa}), t, baseline_end)["valence"])
    v = np.array(values)
    assert v.min() >= 0.5 - 0.15 - 1e-9 and v.max() <= 0.5 + 0.15 + 1e-9
    assert np.abs(np.diff(v)).max() < 0.05


PROTOCOL = {
    "phases": [
        {"name": "baseline", "duration": 7},
        *[
            {"name": name, "duration": 7, "calibration": True}
            for name in ("happy-1", "sad-1", "happy-2", "sad-2")
        ],
        {"name": "rest", "duration": 3},
    ]
}
RATINGS = {"happy-1": (8.0, 4.0), "sad-1": (2.0, 3.0), "happy-2": (7.0, 5.0), "sad-2": (3.0, 7.0)}


@pytest.mark.slow
def test_session_calibrates_and_the_next_session_uses_it(
    tmp_path: Path, runtime_home: Path, arousal_bundle: ModelBundle,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """Emulated devices over the emulated BLE stack: blocks rated from a mapping and from
    code, the model fitted at the end, stored with its card, and applied next time."""
    from affectstream.signal import WindowConfig

    monkeypatch.setenv("AFFECTSTREAM_HOME", str(tmp_path / "home"))
    protocol = tmp_path / "calibration.json"
    protocol.write_text(json.dumps(PROTOCOL))
    window = WindowConfig(window=4.0, step=1.0)
    store = tmp_path / "store"
    answers = {k: v for k, v in RATINGS.items() if k != "sad-2"}
    bundle = str(arousal_bundle.path)
    session = Session(emulate="muse", participant="P07", protocol=protocol, store=store,
                      model=bundle, window=window, self_reports=answers)  # fmt: skip

    def rate_from_code(estimate: Any) -> None:
        # The last block is rated from code, as an app would after showing a SAM form.
        if session._live is not None and not getattr(rate_from_code, "done", False):
            snapshot = session._live.snapshot()
            if snapshot.phase is not None and snapshot.phase.name == "rest":
                rate_from_code.done = True  # type: ignore[attr-defined]
                session.self_report(valence=3.0, arousal=7.0, block="sad-2")

    session.on_estimate = rate_from_code
    summary = session.run_sync()
    result = summary["valence_calibration"]
    assert result["rated"] == ["happy-1", "sad-1", "happy-2"]
    with open_store(summary["store"]) as opened:
        events = opened.read("events", tags={"session": summary["session"]})
    reports = events[events["kind"] == SELF_REPORT_KIND].sort_values("time_ns")
    assert reports["detail"].tolist() == ["happy-1", "sad-1", "happy-2", "sad-2"]
    assert result["status"] in {"calibrated", "uncalibrated"}, result
    assert result["accuracy"]["n_episodes"] == 4
    assert [e["rating"] for e in result["episodes"]] == [8.0, 2.0, 7.0, 3.0]
    folder = personal_valence_path("P07")
    assert Path(result["path"]) == folder and (folder / "card.md").is_file()
    stored = load_personal_valence("P07")
    assert stored is not None and stored.window_ == 4.0

    # Next session of P07: the stored model decides what every estimate says.
    seen: list[Any] = []
    again = Session(emulate="muse", participant="P07", duration=8, store=store,
                    model=bundle, window=window, on_estimate=seen.append)  # fmt: skip
    again.run_sync()
    assert seen
    flags = {e.fields["valence_calibrated"] for e in seen}
    assert flags == {stored.calibrated_}
    if not stored.calibrated_:
        assert all("did not beat" in e.fields["valence_confidence"] for e in seen)


def test_a_calibrated_participant_keeps_personal_valence_without_an_arousal_model(
    runtime_home: Path,
) -> None:
    """Devices no shipped arousal bundle reads (a Polar strap: RR intervals only) still give
    a participant calibrated on them their personal valence: ``for_session`` with no bundles
    returns a bundle-less estimator whose rows carry calibrated valence and no arousal; with
    nothing calibrated to apply it is None (features only), and the warning says which."""
    from affectstream.models.valence_store import save_personal_valence
    from affectstream.runtime.demo import demo_families
    from affectstream.runtime.estimator import LiveEstimator, features_only_note

    window = 60.0
    models = {
        "P-hrv-good": fitted_personal_valence(True, window, "hrv_rmssd"),
        "P-hrv-weak": fitted_personal_valence(False, window, "hrv_rmssd"),
        "P-hrv-other-window": fitted_personal_valence(True, 10.0, "hrv_rmssd"),
    }
    for participant, model in models.items():
        save_personal_valence(participant, model, sources=["test"])
    estimator = LiveEstimator.for_session([], "P-hrv-good", window, own_windows=True)
    assert estimator is not None and estimator.bundles == [] and estimator.valence_calibrated
    estimator.baseline_end = T0
    # A steady feature the model reads as pleasant: the smoothed rating climbs towards its
    # prediction from the midpoint.
    rows = pd.DataFrame({"t_end": T0 + 10.0 + 5.0 * np.arange(3), "hrv_rmssd": 2.0})
    out = estimator.estimate(rows)
    assert len(out) == 3 and all(r["valence_calibrated"] is True for r in out)
    assert all("arousal" not in r for r in out)
    predicted = float(models["P-hrv-good"].predict_rating(rows)[0])
    ratings = [r["valence_rating"] for r in out]
    assert predicted > 6.0 and 5.0 < ratings[0] < ratings[1] < ratings[2] <= predicted
    for participant in ("P-hrv-weak", "P-hrv-other-window", "P-never-calibrated"):
        assert LiveEstimator.for_session([], participant, window, own_windows=True) is None, (
            participant
        )
    polar = demo_families(["polar"])
    calibrated = features_only_note(polar, valence_calibrated=True)
    assert "\n" not in calibrated and "valence from the participant's personal" in calibrated
    assert "arousal" in calibrated and "valence" not in features_only_note(polar)
