"""Model cards carry only the caveats that hold for the bundle's features."""

from __future__ import annotations

from affectstream.models.bundle import BUNDLES_DIR, load_bundle
from affectstream.models.card import Caveat, applicable_caveats
from affectstream.models.training import DATASET_SETTINGS


def test_caveats_about_unused_feature_families_are_dropped() -> None:
    caveats = ["always", Caveat("about movement", frozenset({"acc"}))]
    assert applicable_caveats(caveats, ["eda_tonic_mean", "hr_mean"]) == ["always"]
    assert applicable_caveats(caveats, ["acc_mag_std"]) == ["always", "about movement"]


def test_a_wrist_eda_hr_bundle_gets_no_movement_or_hrv_caveat() -> None:
    features = load_bundle("stress-wrist").features
    texts = applicable_caveats(DATASET_SETTINGS["stress-predict"].caveats, features)
    assert not any("movement" in t or "HRV" in t for t in texts)
    assert any("hyperventilation" in t for t in texts)  # breathing moves HR and EDA


def test_the_shipped_stress_wrist_card_states_what_holds_for_it() -> None:
    card = (BUNDLES_DIR / "stress-wrist" / "MODEL_CARD.md").read_text()
    limitations = card[card.index("## Limitations") : card.index("## Provenance")]
    assert "speech-related movement" not in limitations  # it has no movement feature
    # Heart rate: each protocol's source named, not "an oximeter" for all of it.
    assert "\n- Heart rate comes from a finger pulse oximeter" not in limitations
    assert "noneeg: Heart rate comes from a finger pulse oximeter" in limitations
    assert "stress-predict: the E4's HR.csv" in limitations
