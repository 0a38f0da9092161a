"""A replay does not apply the participant's personal valence model (a session records no
identity for it, and the one stored now may have been refitted, even on that session): its
valence is the uncalibrated estimate and, when the participant has a calibrated model, the
summary says so (docs/export.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from affectstream.export.session import load_session
from affectstream.models.valence_store import save_personal_valence
from affectstream.runtime.replay import REPLAY_VALENCE_NOTE, replay_blocks
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
