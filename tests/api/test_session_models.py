"""An ingest session runs every shipped model its declared devices fit, as ``record`` does.

A gateway declaring ``hr,eda,muse`` (heart-rate strap, EDA band, Muse) gets both shipped
arousal bundles, each on its own windows, combined per window (runtime/combine.py), with a
reference period long enough for both; ``hr,eda`` gets the wrist model only. The data are
the synthetic generator's labelled streams, sent through the real service's ingest
endpoint faster than real time: windows follow the data's own times, so only the amount of
data matters, and it is derived from what the models' references need. An emulated session
too short for a model's reference says so in its status while it runs.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from affectstream.cli import main
from affectstream.export.session import load_session
from affectstream.models.bundle import load_bundle
from affectstream.runtime.combine import bundle_key
from affectstream.runtime.estimator import (
    PROVISIONAL_REFERENCE_WEIGHT,
    choose_bundles,
)
from affectstream.runtime.reference import default_reference, reference_needs
from affectstream.runtime.replay import replay_bundle
from affectstream.store import open_store
from tests.api.conftest import Server, World
from tests.api.ingest_gateway import run_ingest

pytestmark = pytest.mark.slow


def _finite(values: pd.Series) -> np.ndarray:
    return np.isfinite(pd.to_numeric(values, errors="coerce").to_numpy(float))


def test_wrist_chest_and_eeg_gateway_gets_both_models_combined(
    server: Server,
    world: World,
    admin: httpx.Client,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    families = {"hr", "hrv", "eda", "eeg", "acc"}  # what hr, eda and muse give (demo_families)
    bundles = [load_bundle(p) for p in choose_bundles("arousal", families)]
    names = sorted(str(b.meta["name"]) for b in bundles)
    assert names == ["eeg-workload", "stress-wrist"]
    # Enough data for every model's reference to fill (two of its windows) and two steps
    # of estimates after that; far less than the session's reference period.
    needs = reference_needs(bundles)
    longest = max(needs, key=lambda n: n.seconds)
    step = max(float(b.meta["window"]["step"]) for b in bundles)
    seconds = longest.seconds + 2 * step
    reference = default_reference(bundles)
    assert reference is not None

    status, affect, settings = run_ingest(
        server, admin, world.participant_a, "hr,eda,muse", seconds
    )
    summary = status["summary"]
    # Both models ran, the session states the reference period they share, while running
    # and in the summary, and a replay of the stored session runs the same set.
    for text in (summary["model"], status["running"]["model"]):
        assert sorted(text.split("+")) == sorted(b.model_id for b in bundles)
    assert summary["reference_s"] == pytest.approx(reference[0])
    assert status["running"]["reference_s"] == pytest.approx(reference[0])
    assert reference[1] in summary["reference"]
    assert sorted(m.rsplit("/", 1)[-1] for m in settings["models"]) == names
    assert replay_bundle(settings) is None  # every bundle the devices feed, as live
    assert settings["own_windows"] is True  # each on the windows it was trained on
    # And the replay of the stored session does run them all, each on its own windows as
    # live: the same estimate of each model for the same windows.
    out = tmp_path / "replay.csv"
    code = main(["replay", status["id"], "--store", str(server.home / "store"), "--json",
                 "--no-progress", "--out", str(out)])  # fmt: skip
    replayed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and replayed["model"] == summary["model"]

    keys = {str(b.meta["name"]): f"arousal_by_{bundle_key(b)}" for b in bundles}
    again = pd.read_csv(out)
    for key in keys.values():
        live = affect.set_index(affect["time_ns"].astype("int64") // 1_000_000)[key]
        rerun = again.set_index(again["time_ns"].astype("int64") // 1_000_000)[key]
        both = live.index.intersection(rerun.index)
        print(
            "DBG",
            live.index[:5].tolist(),
            rerun.index[:5].tolist(),
            again.columns[:5].tolist(),
            again["time_ns"].head(3).tolist(),
        )
        assert len(both) >= len(live) - 1, (len(both), len(live))  # the same windows
        live, rerun = live[both].astype(float), rerun[both].astype(float)
        assert _finite(live).sum() >= 2, live.tolist()  # something to compare
        assert (np.isnan(live) == np.isnan(rerun)).all(), (live.tolist(), rerun.tolist())
        assert rerun.to_numpy() == pytest.approx(live.to_numpy(), abs=1e-6, nan_ok=True), key
    assert summary["n_estimates"] == len(affect) > 0
    # The data ended inside the reference period: the warning quotes the data's span, to
    # the last estimated window (from when the data starts, just after the session did),
    # not the few wall-clock seconds it took to send.
    late = [w for w in summary["warnings"] if "ended inside" in w]
    assert len(late) == 1, summary["warnings"]
    quoted = re.search(r"data \((\d+) s to its last estimated window\)", late[0])
    assert quoted is not None, late[0]
    last = float(affect["time_ns"].max()) / 1e9 - status["t0"]
    assert float(quoted.group(1)) == pytest.approx(last, abs=1.0)
    assert last > summary["duration_s"], "sent slower than real time: no test"
    for name, key in keys.items():
        assert _finite(affect[key]).any(), f"{name} never estimated: {affect[key].tolist()}"
    wrist, eeg = keys["stress-wrist"], keys["eeg-workload"]
    conf = {k: affect[f"{k}_confidence"].astype(float) for k in (wrist, eeg)}
    both = (conf[wrist] > 0) & (conf[eeg] > 0)
    assert both.any(), affect["arousal_basis"].tolist()[-3:]
    # Where both estimate: the confidence-weighted mean, between the two models'.
    for _, row in affect[both].iterrows():
        c1, c2 = row[f"{wrist}_confidence"], row[f"{eeg}_confidence"]
        assert row["arousal"] == pytest.approx((c1 * row[wrist] + c2 * row[eeg]) / (c1 + c2))
        assert row["arousal_confidence"] == pytest.approx((c1**2 + c2**2) / (c1 + c2))
        assert f"stress-wrist {row[wrist]:.2f} (weight {c1:.2f})" in row["arousal_basis"]
    # Before the wrist model's reference holds two of its windows, it is a missing part:
    # the EEG model estimates alone at half its confidence, and the basis says why.
    alone = (conf[wrist] == 0) & (conf[eeg] > 0)
    assert alone.any()
    for _, row in affect[alone].iterrows():
        assert row["arousal"] == pytest.approx(row[eeg])
        assert row["arousal_confidence"] == pytest.approx(row[f"{eeg}_confidence"] / 2)
        assert "stress-wrist: " in row["arousal_basis"]


def test_wrist_only_gateway_gets_the_wrist_model_and_nothing_missing(
    server: Server, world: World, admin: httpx.Client
) -> None:
    """``hr,eda`` fit the wrist model only: the EEG model is not part of the session (it
    covers none of its features), so no part is missing and the confidence is the wrist
    model's own (coverage x agreement x reference weight)."""
    (path,) = choose_bundles("arousal", {"hr", "hrv", "eda"})
    wrist = load_bundle(path)
    need = reference_needs([wrist])[0]
    seconds = need.seconds + 2 * float(wrist.meta["window"]["step"])

    status, affect, settings = run_ingest(server, admin, world.participant_a, "hr,eda", seconds)
    assert status["summary"]["model"] == wrist.model_id
    assert [m.rsplit("/", 1)[-1] for m in settings["models"]] == ["stress-wrist"]
    assert replay_bundle(settings) == settings["models"][0]
    assert not [c for c in affect.columns if c.startswith("arousal_by_")]
    estimating = affect[affect["arousal_confidence"].astype(float) > 0]
    assert len(estimating), affect["arousal_basis"].tolist()[-3:]
    for _, row in estimating.iterrows():
        assert row["arousal_coverage"] == 1.0  # hr_mean and the three EDA features
        agreement = 1.0 - abs(row["arousal"] - row["arousal_svm"])
        weight = 1.0 if row["arousal_reference_final"] else PROVISIONAL_REFERENCE_WEIGHT
        assert row["arousal_confidence"] == pytest.approx(agreement * weight)


def test_an_explicit_model_runs_alone_and_none_runs_none(
    server: Server, world: World, admin: httpx.Client
) -> None:
    for model, expected in (("eeg-workload", ["eeg-workload"]), ("none", [])):
        body = {
            "participant_id": world.participant_a,
            "kind": "ingest",
            "devices": "hr,eda,muse",
            "model": model,
        }
        created = admin.post("/sessions", json=body)
        assert created.status_code == 201, created.text
        session = created.json()["id"]
        admin.post(f"/sessions/{session}/stop")
        with open_store(server.home / "store") as store:
            settings = load_session(store, session).settings()
        assert [m.rsplit("/", 1)[-1] for m in settings["models"]] == expected
        assert replay_bundle(settings).rsplit("/", 1)[-1] == model  # a replay runs it too


def test_an_emulated_session_too_short_for_a_model_says_so_while_it_runs(
    world: World, admin: httpx.Client
) -> None:
    """The demo's rule (runtime/demo_protocol.py): a model whose reference the session's
    baseline cannot hold gives no estimate; the status names it and the duration that fits."""
    bundles = [load_bundle(p) for p in choose_bundles("arousal", {"hr", "hrv", "eda", "eeg"})]
    wrist = next(n for n in reference_needs(bundles) if n.name == "stress-wrist")
    duration = math.floor(wrist.min_duration) - 10
    body = {"participant_id": world.participant_a, "duration": duration, "devices": "hr,eda,muse"}
    created = admin.post("/sessions", json=body)
    assert created.status_code == 201, created.text
    session = created.json()["id"]
    try:
        live = admin.get(f"/sessions/{session}").json()["live"]
        assert sorted(live["model"].split("+")) == sorted(b.model_id for b in bundles)
        notes = [w for w in live["warnings"] if w.startswith("stress-wrist needs a")]
        assert len(notes) == 1, live["warnings"]
        assert f"--duration {math.ceil(wrist.min_duration)} or more" in notes[0]
        assert not any(w.startswith("eeg-workload") for w in live["warnings"])
    finally:
        admin.post(f"/sessions/{session}/stop")
