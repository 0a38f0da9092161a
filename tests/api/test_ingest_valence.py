"""An ingest session gives a calibrated participant their personal valence model, as
``record`` and the emulated sessions do, also on devices no shipped arousal model reads
(valence alone); otherwise such devices run features only and say why; the summary's
reference warning counts data time, not the wall clock.

The personal models are written where the service reads them (``$AFFECTSTREAM_HOME/valence``,
the store API calibration uses) so the test needs no calibration sessions; the real
calibration path through the service is tests/api/test_valence_calibration.py. The data are
synthetic Muse-rate EEG sent through the real service's ingest endpoint faster than real time.
"""

from __future__ import annotations

import secrets

import httpx
import pandas as pd
import pytest

from affectstream.export.session import load_session
from affectstream.models.bundle import load_bundle
from affectstream.models.valence_store import save_personal_valence
from affectstream.runtime.demo import demo_families
from affectstream.runtime.estimator import choose_bundles, features_only_note
from affectstream.runtime.multiwindow import session_window
from affectstream.runtime.reference import default_reference
from affectstream.store import open_store
from tests.api.conftest import Server, World
from tests.api.ingest_gateway import run_ingest
from tests.valence_models import fitted_personal_valence

pytestmark = pytest.mark.slow


def _participant(admin: httpx.Client, study: int) -> tuple[int, str]:
    """A new participant with a pseudonym of its own (valence models are kept by pseudonym)."""
    pseudonym = f"P-val-{secrets.token_hex(4)}"
    created = admin.post(f"/studies/{study}/participants", json={"pseudonym": pseudonym})
    assert created.status_code == 201, created.text
    return int(created.json()["id"]), pseudonym


def _flags(affect: pd.DataFrame) -> set[bool]:
    return {bool(v) for v in affect["valence_calibrated"]}


def test_ingest_session_applies_the_participants_personal_valence_model(
    server: Server, world: World, admin: httpx.Client
) -> None:
    bundles = [load_bundle(p) for p in choose_bundles("arousal", demo_families(["muse"]))]
    window = session_window(bundles)
    reference = default_reference(bundles)
    assert reference is not None
    # Past the reference period by three steps of data; sent in far less wall time.
    seconds = reference[0] + 3 * window.step
    home = server.home / "valence"  # the service's valence_home()
    good, weak = fitted_personal_valence(True, window.window), fitted_personal_valence(False)
    assert good.calibrated_ and not weak.calibrated_
    runs = {}
    for name, model in (("calibrated", good), ("did not beat", weak), ("none", None)):
        participant, pseudonym = _participant(admin, world.study_a)
        if model is not None:
            save_personal_valence(pseudonym, model, sources=["test"], home=home)
        runs[name] = run_ingest(server, admin, participant, "muse", seconds)

    status, affect, _ = runs["calibrated"]
    assert len(affect) == status["summary"]["n_estimates"] > 0
    assert _flags(affect) == {True}
    acc = good.accuracy_
    for column, expected in (("valence_mae", acc["mae"]), ("valence_mae_own_mean",
                             acc["mae_own_mean"]), ("valence_mae_ci_low", acc["mae_ci95"][0]),
                             ("valence_mae_ci_high", acc["mae_ci95"][1])):  # fmt: skip
        assert affect[column].astype(float).to_numpy() == pytest.approx(expected), column
    assert all("leave-one-episode-out" in c for c in affect["valence_confidence"])
    ratings = affect["valence_rating"].astype(float)
    assert ratings.between(1.0, 9.0).all()

    # A stored model that did not beat the person's own mean rating is not applied.
    _, affect, _ = runs["did not beat"]
    assert len(affect) and _flags(affect) == {False}
    assert all("did not beat" in c for c in affect["valence_confidence"])
    assert affect["valence_mae"].astype(float).isna().all()
    # Nobody calibrated: the uncalibrated estimate, no accuracy to quote.
    _, affect, _ = runs["none"]
    assert len(affect) and _flags(affect) == {False}
    assert affect["valence_mae"].astype(float).isna().all()
    assert affect["valence_rating"].astype(float).isna().all()

    # The data went past the reference period in less wall-clock time than it: the summary
    # counts data time, so no "ended inside its reference period" warning.
    summary = status["summary"]
    assert summary["reference_s"] == pytest.approx(reference[0])
    assert summary["duration_s"] < reference[0], "sent slower than real time: no test"
    assert not [w for w in summary["warnings"] if "ended inside" in w], summary["warnings"]


def test_devices_no_model_reads_run_features_only_and_say_why(
    server: Server, world: World, admin: httpx.Client
) -> None:
    """A polar strap (RR intervals only) feeds no feature of any shipped arousal bundle: the
    ingest session stores features and quality only, and its status says why."""
    families = demo_families(["polar"])
    body = {"participant_id": world.participant_a, "kind": "ingest", "devices": "polar"}
    created = admin.post("/sessions", json=body)
    assert created.status_code == 201, created.text
    session = str(created.json()["id"])
    live = admin.get(f"/sessions/{session}").json()["live"]
    stopped = admin.post(f"/sessions/{session}/stop").json()
    assert live["model"] is None and live["warnings"] == [features_only_note(families)]
    assert stopped["summary"]["model"] is None
    assert features_only_note(families) in stopped["summary"]["warnings"]
    with open_store(server.home / "store") as store:
        assert load_session(store, session).settings()["models"] == []


def test_devices_no_arousal_model_reads_keep_a_calibrated_participants_valence(
    server: Server, world: World, admin: httpx.Client
) -> None:
    """A participant calibrated on a Polar strap alone (a personal model on HRV) keeps their
    calibrated valence on that strap: the estimates carry it without arousal, the stored
    settings name no arousal model and the warning says arousal is features only."""
    families = demo_families(["polar"])
    assert choose_bundles("arousal", families) == []  # no shipped arousal bundle reads it
    window = session_window([])
    good = fitted_personal_valence(True, window.window, "hrv_rmssd")
    assert good.calibrated_
    participant, pseudonym = _participant(admin, world.study_a)
    save_personal_valence(pseudonym, good, sources=["test"], home=server.home / "valence")
    status, affect, settings = run_ingest(
        server, admin, participant, "polar", window.window + 3 * window.step
    )
    note = features_only_note(families, valence_calibrated=True)
    assert status["running"]["warnings"] == [note] and status["running"]["model"] is None
    assert note in status["summary"]["warnings"] and status["summary"]["model"] is None
    assert settings["models"] == []
    # A personal valence model needs no reference period: none is stated (nothing provisional).
    assert status["summary"]["reference_s"] is None
    assert len(affect) == status["summary"]["n_estimates"] > 0
    assert _flags(affect) == {True}
    assert "arousal" not in affect.columns or affect["arousal"].astype(float).isna().all()
    assert affect["valence_mae"].astype(float).to_numpy() == pytest.approx(good.accuracy_["mae"])
    assert affect["valence_rating"].astype(float).between(1.0, 9.0).all()
