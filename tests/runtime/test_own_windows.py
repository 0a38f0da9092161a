"""One rule for which windows each model reads (``multiwindow.reads_own_windows``).

Unless a window is asked for, every model reads the windows it was trained on; a session
stores the outcome (``own_windows``) and a replay of it reads the same windows, unless
``--window`` asks for one window for all. A bundle's ``running`` normalisation counts its
half-life in the windows it reads here, not in its trained step. The live-versus-replay
comparison of a multi-model session is in tests/api/test_session_models.py.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from affectstream.models.bundle import ModelBundle, load_bundle
from affectstream.models.normalize import RunningStats
from affectstream.runtime.estimator import LiveEstimator
from affectstream.runtime.multiwindow import bundle_window, reads_own_windows, trained_window
from affectstream.runtime.reference import reference_needs
from affectstream.runtime.replay import replay_blocks, replay_own_windows
from affectstream.runtime.session import LiveSession, SessionConfig
from affectstream.signal import WindowConfig
from affectstream.store import EmbeddedStore


def _running(halflife: float) -> ModelBundle:
    """``stress-wrist`` with ``running`` normalisation (a copy; the shipped one is untouched)."""
    bundle = copy.copy(load_bundle("stress-wrist"))
    meta = copy.deepcopy(bundle.meta)
    meta["normalization"] = {"method": "running", "halflife": halflife}
    object.__setattr__(bundle, "meta", meta)
    return bundle


def test_the_rule_and_what_a_replay_reads() -> None:
    assert reads_own_windows(None) is True
    assert reads_own_windows(WindowConfig(window=30.0)) is False
    assert reads_own_windows(30.0) is False
    # A replay: --window for all, else the stored session's, else (files, sessions stored
    # before they said) each model its own.
    assert replay_own_windows({"own_windows": True}, window=30.0) is False
    assert replay_own_windows({"own_windows": False}) is False
    assert replay_own_windows({"own_windows": True}) is True
    assert replay_own_windows({}) is True


def test_a_session_stores_which_windows_its_models_read(tmp_path: Path) -> None:
    wrist, eeg = load_bundle("stress-wrist"), load_bundle("eeg-workload")
    window = WindowConfig(window=10.0, step=2.0)
    with EmbeddedStore(tmp_path) as store:
        for own in (True, False):
            estimator = LiveEstimator([eeg, wrist], baseline_end=None, window=10.0, own_windows=own)
            assert estimator.own_windows is own
            session = LiveSession(store, SessionConfig(window=window), estimator)
            assert session.settings()["own_windows"] is own
            # The reference is planned on the windows the models read.
            planned = reference_needs([eeg, wrist], window, own_windows=own)
            reads = bundle_window(wrist, window, own_windows=own)
            assert reads == (trained_window(wrist, window) if own else window)
            assert max(n.window for n in planned) == reads.window


def test_own_windows_has_no_default_where_a_window_is_given() -> None:
    wrist = load_bundle("stress-wrist")
    window = WindowConfig(window=10.0, step=2.0)
    with pytest.raises(TypeError, match="own_windows"):
        LiveEstimator([wrist], baseline_end=None, window=10.0)
    with pytest.raises(TypeError, match="own_windows"):
        reference_needs([wrist], window)
    with pytest.raises(TypeError, match="own_windows"):
        replay_blocks([], None, window=window)  # type: ignore[arg-type]


@pytest.mark.parametrize("step", [1.0, 5.0])
def test_running_normalisation_counts_its_halflife_in_the_session_step(step: float) -> None:
    """A ``running`` bundle on the session's windows at ``step`` s: its half-life in windows
    is ``halflife / step``, not ``halflife / trained step`` (5 s)."""
    halflife = 5.0
    bundle = _running(halflife)
    trained = trained_window(bundle)
    session = WindowConfig(window=trained.window, step=step)
    rng = np.random.default_rng(0)
    n = 12
    values = rng.uniform(0.5, 1.5, (n, len(bundle.features))) * [0.01, 2.0, 0.5, 70.0]
    rows = pd.DataFrame(values, columns=bundle.features)
    rows.insert(0, "t_end", trained.window + step * np.arange(n))
    estimator = LiveEstimator([bundle], baseline_end=None, window=session.window, own_windows=True)
    estimator.bind_session(session)
    got = [r["arousal"] for r in estimator.estimate(rows)]

    def expected(step_s: float) -> list[float]:
        stats = RunningStats(len(bundle.features), max(1.0, halflife / step_s))
        out = []
        for x in values:
            center, scale = stats.update(x)
            features = dict(zip(bundle.features, x, strict=True))
            out.append(bundle.estimate(features, center, scale).probability)
        return out

    assert got == pytest.approx(expected(step))
    if step != trained.step:
        # The trained step's half-life gives other estimates: the test can tell them apart.
        assert got != pytest.approx(expected(trained.step))
