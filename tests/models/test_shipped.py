"""The bundles shipped inside the package load and accept the signal layer's features."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from affectstream.models.bundle import load_bundle, shipped_bundles
from affectstream.models.features import recording_features
from affectstream.models.synthetic import synthetic_labelled_recording
from affectstream.signal import WindowConfig

SHIPPED = {"stress-wrist": ("rr", "eda", "temp", "acc"), "eeg-workload": ("eeg",)}


def test_both_defaults_are_shipped() -> None:
    assert set(SHIPPED) <= set(shipped_bundles())


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_bundle_scores_signal_layer_features(name: str) -> None:
    bundle = load_bundle(name)
    card = (bundle.path / "MODEL_CARD.md").read_text()  # type: ignore[operator]
    assert bundle.meta["provenance"]["command"] in card
    assert f"--out affectstream/models/bundles/{name}" in bundle.meta["provenance"]["command"]
    # Every card shows the as-live score and the protocol clock beside the model.
    assert "| as live | lightgbm |" in card and "| as live | protocol_clock |" in card
    assert "as_live" in bundle.meta["evaluation"]["baselines"]
    window = bundle.meta["window"]
    recording = synthetic_labelled_recording(
        "NEW",
        seed=99,
        duration=bundle.meta["normalization"]["baseline_seconds"] + 240.0,
        modalities=SHIPPED[name],
        eeg_rate=256.0,
    )
    frame = recording_features(
        [recording],
        config=WindowConfig(window=window["window"], step=window["step"]),
        baseline_seconds=bundle.meta["normalization"]["baseline_seconds"],
    )
    scored = bundle.predict_frame(frame)
    later = ~frame["reference"].to_numpy()
    assert np.isfinite(scored["probability"].to_numpy()[later]).all()
    assert scored["contributions"].iloc[-1][0].feature in bundle.features


@pytest.mark.shared_data
def test_stress_bundle_on_a_real_recording(shared_data: Path) -> None:
    from affectstream.models.datasets import load_stress_predict

    bundle = load_bundle("stress-wrist")
    recording = load_stress_predict(shared_data / "stress-predict", ["S02"])[0]
    frame = recording_features(
        [recording],
        config=WindowConfig(window=60.0, step=5.0),
        baseline_seconds=bundle.meta["normalization"]["baseline_seconds"],
        modalities=("ppg", "eda", "temp", "acc"),
    )
    scored = bundle.predict_frame(frame)
    labelled = frame["arousal"].notna() & ~frame["reference"]
    p = scored["probability"][labelled]
    assert np.isfinite(p).all()
    # S02 was in the training set: this checks the real path works, not accuracy.
    assert p[frame["arousal"] == 1].mean() > p[frame["arousal"] == 0].mean()
