"""The demo at the shortest length its protocol gives the wrist model room for: every model
the devices cover contributes, read back from the stored estimates (emulated devices over
bleak + bumble, the real runtime, the embedded store)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from affectstream.cli import main
from affectstream.models.bundle import load_bundle
from affectstream.runtime.demo import DEMO_LEAD_IN, demo_families, reference_needs
from affectstream.runtime.estimator import choose_bundles
from affectstream.store import open_store


@pytest.mark.slow
def test_the_wrist_model_joins_once_its_reference_is_full(
    tmp_path: Path, runtime_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = choose_bundles("arousal", demo_families(["hr", "polar", "eda", "muse"]))
    bundles = [load_bundle(p) for p in paths]
    names = sorted(str(b.meta["name"]) for b in bundles)
    if names != ["eeg-workload", "stress-wrist"]:
        pytest.skip(f"the shipped bundles that fit the demo are {names}")
    wrist = next(n for n in reference_needs(bundles) if n.name == "stress-wrist")
    duration = wrist.min_duration  # the shortest demo whose baseline holds its reference
    store_path = tmp_path / "store"
    code = main(["demo", "--duration", f"{duration:g}", "--store", str(store_path), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    summary = json.loads(captured.out.strip().splitlines()[-1])
    assert summary["protocol"][0] == {"name": "baseline", "duration_s": wrist.seconds}
    assert not summary["warnings"]  # no model is left out
    with open_store(store_path) as store:
        tags = {"session": summary["session"]}
        affect = store.read("affect", tags=tags)
        events = store.read("events", tags=tags)
    assert (affect["model"] == "+".join(b.model_id for b in bundles)).all()
    phases = events[events["kind"] == "phase"].set_index("label")["time_ns"]
    baseline_end = phases["stress"]
    wrist_weight = affect["arousal_by_stress_wrist_confidence"].to_numpy()
    eeg_weight = affect["arousal_by_eeg_workload_confidence"].to_numpy()
    after = (affect["time_ns"] > baseline_end).to_numpy()
    # After the baseline both models estimate and are combined (most windows: the coverage
    # check may reject some; it rejected none in the runs measured).
    both = (wrist_weight > 0) & (eeg_weight > 0)
    assert both[after].mean() >= 0.8, affect.loc[after, "arousal_basis"].tolist()
    assert affect.loc[after & both, "arousal_basis"].str.contains(r"stress-wrist 0\.\d\d").all()
    for phase in ("stress", "recovery"):
        in_phase = (affect["time_ns"] >= phases[phase]).to_numpy() & after
        assert (wrist_weight[in_phase] > 0).any(), phase
    assert not affect["arousal_basis"].str.contains("reference too short").any()
    # Before its reference holds two windows it says so, window by window, with no estimate;
    # the combined confidence is the EEG model's, halved for the missing wrist model.
    basis = affect["arousal_basis"]
    filling = basis.str.contains("stress-wrist: reference filling").to_numpy()
    assert basis.str.contains("stress-wrist: reference filling, 0 of 2 60-s windows").any()
    assert basis.str.contains("stress-wrist: reference filling, 1 of 2 60-s windows").any()
    assert np.isnan(affect.loc[filling, "arousal_by_stress_wrist"]).all()
    assert (affect.loc[filling, "time_ns"] <= baseline_end).all()
    eeg_only = filling & (eeg_weight > 0)
    assert eeg_only.sum() > 5
    np.testing.assert_allclose(
        affect.loc[eeg_only, "arousal_confidence"], eeg_weight[eeg_only] / 2, rtol=1e-9
    )
    # The first wrist estimate comes with its second 60-s window (60 + 5 s after the first
    # sample, the windows' origin: the first 10-s row ends one window after it), on the next
    # primary row, inside the baseline (provisional until the baseline ends).
    origin = affect["time_ns"].min() / 1e9 - summary["window_s"]
    first_wrist = affect.loc[wrist_weight > 0, "time_ns"].min() / 1e9
    second_window = wrist.seconds - DEMO_LEAD_IN
    assert second_window <= first_wrist - origin <= second_window + summary["step_s"] + 1e-6
    assert first_wrist <= baseline_end / 1e9
