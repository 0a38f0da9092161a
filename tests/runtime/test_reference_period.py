"""A session without a protocol takes a reference period long enough for every model in it,
says which, and a replay of an all-modality recording gets estimates from every model."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console, Group

from affectstream.api.runner import status_payload
from affectstream.models.bundle import ModelBundle, load_bundle
from affectstream.models.synthetic import synthetic_recordings
from affectstream.runtime.estimator import BUNDLES_DIR, LiveEstimator, reference_seconds
from affectstream.runtime.protocol import ProtocolPhase, StudyProtocol
from affectstream.runtime.reference import LEAD_IN, default_reference, reference_needs
from affectstream.runtime.replay import replay_blocks, replay_bundle, session_rows
from affectstream.runtime.session import LiveSession, SessionConfig
from affectstream.runtime.view import render, snapshot_line
from affectstream.signal import WindowConfig
from affectstream.store import EmbeddedStore

ALL = ("rr", "eda", "temp", "acc", "eeg")


@pytest.fixture(scope="module")
def bundles() -> list[ModelBundle]:
    """Both shipped arousal bundles, EEG first (as the runtime orders them)."""
    return [load_bundle(BUNDLES_DIR / name) for name in ("eeg-workload", "stress-wrist")]


def _own(bundle: ModelBundle) -> float:
    return float(bundle.meta["normalization"]["baseline_seconds"])


def test_the_default_is_the_longest_any_model_asks_for(bundles: list[ModelBundle]) -> None:
    eeg = bundles[0]
    assert all(reference_seconds(b) > 0 for b in bundles)  # both baseline_z
    asks = {b.meta["name"]: max(_own(b), reference_seconds(b) + LEAD_IN) for b in bundles}
    longest = max(asks, key=lambda name: asks[name])
    found = default_reference(bundles)
    assert found is not None
    seconds, why = found
    assert seconds == pytest.approx(asks[longest])
    assert why.startswith(longest) and "longest of the session's models" in why
    # Every model's reference fits in it, whatever the order of the bundles.
    assert all(seconds >= n.seconds for n in reference_needs(bundles))
    assert default_reference(bundles[::-1]) == found
    # One model alone keeps its own setting (the previous rule, where it was enough).
    own = _own(eeg)
    assert default_reference([eeg]) == (own, f"eeg-workload's own {own:g}-s reference setting")


def test_a_need_longer_than_the_models_setting_wins(bundles: list[ModelBundle]) -> None:
    """eeg-workload forced onto 60-s windows needs two of them (65 s + lead-in), more than its
    own 60-s setting."""
    eeg = bundles[0]
    window = WindowConfig(window=60.0, step=5.0)
    need = reference_seconds(eeg, window) + LEAD_IN
    assert need > _own(eeg)
    assert default_reference([eeg], window, own_windows=False) == (
        need,
        f"eeg-workload's reference needs {need:g} s",
    )


def _period(
    store: EmbeddedStore, bundles: list[ModelBundle], config: SessionConfig
) -> tuple[float, str]:
    estimator = LiveEstimator(
        bundles, baseline_end=None, window=config.window.window, own_windows=True
    )
    return LiveSession(store, config, estimator).reference_period()


def test_a_protocol_or_a_set_length_still_wins(tmp_path: Path, bundles: list[ModelBundle]) -> None:
    default = default_reference(bundles)
    assert default is not None
    window = WindowConfig(window=10.0, step=2.0)
    protocol = StudyProtocol([ProtocolPhase("baseline", 90.0), ProtocolPhase("task", 60.0)])
    with EmbeddedStore(tmp_path / "store") as store:
        assert _period(store, bundles, SessionConfig(window=window)) == default
        with_protocol = SessionConfig(window=window, protocol=protocol)
        assert _period(store, bundles, with_protocol) == (90.0, "the protocol's baseline phase")
        set_length = SessionConfig(window=window, baseline_seconds=30.0)
        assert _period(store, bundles, set_length) == (30.0, "set for this session")
        # Without models there is nothing to normalise: one window, said so.
        alone = LiveSession(store, SessionConfig(window=window), None)
        assert alone.reference_period()[0] == window.window
        assert alone.reference_in_use() is None


@pytest.mark.slow
def test_an_all_modality_replay_gets_the_wrist_model_from_its_reference(
    tmp_path: Path, bundles: list[ModelBundle]
) -> None:
    """No protocol, every modality: the wrist model estimates after its second window and,
    once the default reference is over, on every window with a frozen (final) reference."""
    default = default_reference(bundles)
    assert default is not None
    seconds = default[0]
    wrist_window = float(bundles[1].meta["window"]["window"])
    duration = seconds + 3 * wrist_window
    (recording,) = synthetic_recordings(1, seed=72, duration=duration, eeg_rate=256.0)
    blocks = [b for b in recording.blocks if b.modality in ALL]
    with EmbeddedStore(tmp_path / "store", synchronous="normal") as store:
        summary = replay_blocks(blocks, store, participant=recording.subject)
        rows = session_rows(store, str(summary["session"]))
    assert summary["reference_s"] == pytest.approx(seconds)
    assert "eeg-workload" in summary["model"] and "stress-wrist" in summary["model"]
    origin = min(float(b.t[0]) for b in blocks)
    after = rows[rows["t_end"].to_numpy() > origin + seconds + 1e-6]
    wrist = pd.to_numeric(after["arousal_by_stress_wrist"], errors="coerce").to_numpy(float)
    assert len(after) > 0 and np.isfinite(wrist).all()
    assert ((wrist >= 0) & (wrist <= 1)).all()
    assert after["arousal_basis"].str.contains("stress-wrist 0.", regex=False).all()
    # Final reference: the combined confidence is not halved as a provisional one would be,
    # so after the reference it is above what the same rows had during it, on average.
    during = rows[rows["t_end"].to_numpy() <= origin + seconds]
    assert after["arousal_confidence"].mean() > during["arousal_confidence"].mean()
    # A stored session's baseline phase (what `replay SESSION` passes) wins, and is named.
    phase_end = seconds / 2
    with EmbeddedStore(tmp_path / "phase", synchronous="normal") as store:
        phased = replay_blocks(blocks, store, baseline_end=origin + phase_end)
    assert phased["reference_s"] == pytest.approx(phase_end)
    assert phased["reference"] == (
        f"reference period: first {phase_end:g} s (the recorded session's baseline phase)"
    )


def test_the_live_status_says_the_reference_period(
    tmp_path: Path, bundles: list[ModelBundle]
) -> None:
    """The snapshot (live view, service status) names the period; the one-line view says the
    reference is still being taken while it runs, and nothing once it is over."""
    default = default_reference(bundles)
    assert default is not None
    seconds, why = default
    window = WindowConfig(window=10.0, step=2.0)
    estimator = LiveEstimator(bundles, baseline_end=None, window=window.window, own_windows=True)
    with EmbeddedStore(tmp_path / "store") as store:
        snapshot = LiveSession(store, SessionConfig(window=window), estimator).snapshot()
    assert snapshot.reference == f"reference period: first {seconds:g} s ({why})"
    assert snapshot.reference_s == seconds
    assert snapshot.reference in plain(render(snapshot))
    assert status_payload(snapshot)["reference"] == snapshot.reference
    assert status_payload(snapshot)["reference_s"] == seconds
    during = dataclasses.replace(snapshot, elapsed=seconds / 2)
    assert f"reference until {seconds:g}s" in snapshot_line(during)
    after = dataclasses.replace(snapshot, elapsed=seconds + 1)
    assert "reference until" not in snapshot_line(after)


def plain(group: Group) -> str:
    """A rich renderable as plain text."""
    console = Console(width=400, record=True, file=io.StringIO())
    console.print(group)
    return console.export_text()


def test_a_callers_reference_is_reported_even_from_time_zero(
    tmp_path: Path, bundles: list[ModelBundle]
) -> None:
    """A recording that starts at t = 0 with a baseline end given by the caller (a replay
    of a recorded phase) reports that end, not the default."""
    end = 30.0
    estimator = LiveEstimator(bundles, baseline_end=end, window=10.0, own_windows=True)
    with EmbeddedStore(tmp_path / "store") as store:
        session = LiveSession(store, SessionConfig(window=WindowConfig(window=10.0)), estimator)
        session.started_at = 0.0
        seconds, why = session.reference_in_use() or (None, "")
    assert seconds == end and why != session.reference_period()[1]


def test_a_stored_session_that_ran_several_models_is_replayed_with_them_all(
    tmp_path: Path, bundles: list[ModelBundle]
) -> None:
    estimator = LiveEstimator(bundles, baseline_end=None, window=10.0, own_windows=True)
    with EmbeddedStore(tmp_path / "store") as store:
        settings = LiveSession(store, SessionConfig(), estimator).settings()
    assert len(settings["models"]) == len(bundles) and settings["model"] == settings["models"][0]
    assert replay_bundle(settings) is None  # every bundle the devices feed, as live
    assert replay_bundle({**settings, "models": settings["models"][:1]}) == settings["model"]
    assert replay_bundle(settings, "stress-wrist") == "stress-wrist"
    assert replay_bundle({}) is None
