"""A bundle that reads the session's windows needs its reference counted in the session's
step, not the step it was trained with (a 60-s model trained every 5 s, on ``--window 60
--step 10``: its second window ends at 70 s, not 65 s, so the reference period is 75 s with
the 5-s lead-in, not 70 s; every period below includes the lead-in)."""

from __future__ import annotations

import copy
import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest

from affectstream.models.bundle import ModelBundle, load_bundle
from affectstream.runtime import Session
from affectstream.runtime.estimator import (
    BUNDLES_DIR,
    MIN_REFERENCE_WINDOWS,
    LiveEstimator,
    reference_seconds,
)
from affectstream.runtime.multiwindow import bundle_window
from affectstream.runtime.reference import LEAD_IN, default_reference, reference_needs
from affectstream.runtime.session import LiveSession, SessionConfig
from affectstream.signal import WindowConfig
from affectstream.store import EmbeddedStore


@pytest.fixture(scope="module")
def wrist() -> ModelBundle:
    return load_bundle(BUNDLES_DIR / "stress-wrist")


@pytest.fixture(scope="module")
def custom(wrist: ModelBundle) -> ModelBundle:
    """stress-wrist's fitted parts with no reference setting of its own (a custom bundle):
    the session's reference is then what its windows need."""
    meta = copy.deepcopy(wrist.meta)
    meta["normalization"]["baseline_seconds"] = None
    return ModelBundle(meta, wrist.booster, wrist.svm)


@pytest.fixture(scope="module")
def eeg() -> ModelBundle:
    return load_bundle(BUNDLES_DIR / "eeg-workload")


def _need(window: float, step: float) -> float:
    """Seconds until MIN_REFERENCE_WINDOWS windows have ended (ends on multiples of the step)."""
    return (math.ceil(window / step) + MIN_REFERENCE_WINDOWS - 1) * step


def test_a_bundle_on_the_sessions_windows_counts_the_sessions_step(
    tmp_path: Path, custom: ModelBundle
) -> None:
    wrist = custom
    trained = wrist.meta["window"]
    session = WindowConfig(window=float(trained["window"]), step=2 * float(trained["step"]))
    # Same length as trained: the bundle reads the session's rows, at the session's step.
    assert bundle_window(wrist, session, own_windows=True) == session
    expected = _need(session.window, session.step) + LEAD_IN
    assert expected > _need(trained["window"], trained["step"]) + LEAD_IN  # the old plan
    (need,) = reference_needs([wrist], session, own_windows=True)
    assert need.seconds == pytest.approx(expected)
    estimator = LiveEstimator([wrist], baseline_end=None, window=session.window, own_windows=True)
    with EmbeddedStore(tmp_path / "store") as store:
        seconds, why = LiveSession(
            store, SessionConfig(window=session), estimator
        ).reference_period()
    assert seconds == pytest.approx(expected)
    assert default_reference([wrist], session, own_windows=True) == (seconds, why)


def test_a_bundle_on_its_own_windows_keeps_its_trained_step(
    wrist: ModelBundle, eeg: ModelBundle
) -> None:
    """The demo with ``--step 10``: eeg-workload (10-s windows) reads the session's 10-s
    windows every 10 s; stress-wrist (60 s) reads its own windows at its trained 5-s step."""
    session = WindowConfig(window=float(eeg.meta["window"]["window"]), step=10.0)
    needs = {n.name: n for n in reference_needs([wrist, eeg], session, own_windows=True)}
    assert needs["eeg-workload"].seconds == pytest.approx(_need(session.window, 10.0) + LEAD_IN)
    trained = wrist.meta["window"]
    assert needs["stress-wrist"].seconds == pytest.approx(
        _need(trained["window"], trained["step"]) + LEAD_IN
    )
    assert needs["stress-wrist"].window == trained["window"]
    own = bundle_window(wrist, session, own_windows=True)
    assert (own.window, own.step) == (trained["window"], trained["step"])
    assert own.line_freq == session.line_freq  # the session's other settings carry over
    # One window for all (own_windows=False): both on the session's windows.
    shared = {n.name: n for n in reference_needs([wrist, eeg], session, own_windows=False)}
    assert shared["stress-wrist"].seconds == pytest.approx(
        reference_seconds(wrist, session) + LEAD_IN
    )


@pytest.mark.slow
def test_an_emulated_session_on_a_coarser_step_gets_its_reference(
    tmp_path: Path, runtime_home: Path
) -> None:
    """Over the emulated BLE stack, a custom 60-s ``baseline_z`` bundle on 60-s windows every
    10 s: the default reference period holds two of its windows, so it estimates after the
    reference instead of saying "reference too short" (it did with the 70-s plan: the trained
    step's second window at 65 s plus the 5-s lead-in)."""
    folder = tmp_path / "custom-wrist"
    shutil.copytree(BUNDLES_DIR / "stress-wrist", folder)
    meta = json.loads((folder / "bundle.json").read_text())
    meta["normalization"]["baseline_seconds"] = None
    (folder / "bundle.json").write_text(json.dumps(meta))
    window = WindowConfig(window=60.0, step=10.0)
    need = _need(window.window, window.step) + LEAD_IN
    seen: list[Any] = []
    session = Session(emulate="hr,eda", duration=need + 2 * window.step, model=folder,
                      window=window, store=tmp_path / "s", on_estimate=seen.append)  # fmt: skip
    summary = session.run_sync()
    bases = [str(e.fields.get("arousal_basis", "")) for e in seen]
    assert not any("too short" in b for b in bases), bases
    # Estimates on a final (frozen) reference once the reference period is over.
    final = [e for e in seen if e.fields.get("arousal_reference_final")]
    assert final and all(e.arousal is not None and 0.0 <= e.arousal <= 1.0 for e in final)
    assert summary["reference_s"] == pytest.approx(need)  # 75 s; the trained step gave 70 s
