"""A replay does not apply the participant's personal valence model (a session records no
identity for it, and the one stored now may have been refitted, even on that session): its
valence is the uncalibrated estimate and, when the participant has a calibrated model, the
summary says so (docs/export.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from affectstream.export.session import load_session
from affectstream.models.valence_store import save_personal_valence
from affectstream.runtime.replay import REPLAY_NO_VALENCE_NOTE, REPLAY_VALENCE_NOTE, replay_blocks
from affectstream.store import EmbeddedStore
from affectstream.types import SampleBlock
from tests.export.test_layouts import muse_eeg
from tests.valence_models import fitted_personal_valence

T0 = 1.7e9


def test_replay_valence_is_uncalibrated_and_says_so_for_a_calibrated_participant(
    tmp_path: Path,
) -> None:
    model = fitted_personal_valence(True, 10.0)  # eeg-workload's 10-s windows, as live
    assert model.calibrated_
    save_personal_valence("P-replay-cal", model, sources=["test"])
    eeg = SampleBlock.regular(
        "m/eeg", "eeg", ("TP9", "AF7", "AF8", "TP10"), muse_eeg(60.0, seed=5), 256.0, T0
    )
    with EmbeddedStore(tmp_path / "store") as store:
        summaries = {
            who: replay_blocks([eeg], store, participant=who, session_id=f"S-{who}")
            for who in ("P-replay-cal", "P-replay-none")
        }
        affect = {who: load_session(store, f"S-{who}").tables["affect"] for who in summaries}
    calibrated, nobody = summaries["P-replay-cal"], summaries["P-replay-none"]
    assert calibrated["n_estimates"] == len(affect["P-replay-cal"]) > 0
    assert REPLAY_VALENCE_NOTE in calibrated["warnings"]
    assert REPLAY_VALENCE_NOTE not in nobody["warnings"]
    for rows in affect.values():
        assert not rows["valence_calibrated"].astype(bool).any()
        assert np.isnan(rows["valence_mae"].astype(float)).all()


def test_a_features_only_replay_of_a_calibrated_participant_says_it_has_no_valence(
    tmp_path: Path,
) -> None:
    """Devices no arousal model reads: live, a calibrated participant gets valence alone; the
    replay applies no personal model, so it has no valence at all, and says that."""
    save_personal_valence("P-replay-strap", fitted_personal_valence(True, 10.0), sources=["test"])
    rng = np.random.default_rng(3)
    temp = SampleBlock.regular(
        "w/temp", "temp", ("temp",), 33.0 + 0.01 * rng.standard_normal((240, 1)), 4.0, T0
    )
    with EmbeddedStore(tmp_path / "store") as store:
        summary = replay_blocks([temp], store, participant="P-replay-strap", session_id="S-t")
        assert not len(load_session(store, "S-t").tables.get("affect", []))
    assert summary["n_estimates"] == 0
    assert REPLAY_NO_VALENCE_NOTE in summary["warnings"]
    assert REPLAY_VALENCE_NOTE not in summary["warnings"]
