"""The EDA-rate skew measurement: a 32-Hz band skews stress-wrist's features at its own rate;
the live path computes exactly what the bundle was trained on."""

from __future__ import annotations

import numpy as np

from affectstream.models.bundle_io import load_bundle, resolve_bundle
from affectstream.runtime.rate_skew import emulated_wrist, measure_rate_skew


def test_the_live_path_has_no_rate_skew_and_the_own_rate_has() -> None:
    bundle = load_bundle(resolve_bundle("stress-wrist"), allow_version_mismatch=True)
    recordings = [emulated_wrist(seed, 8.0) for seed in (1, 2)]
    eda = recordings[0].blocks[0]
    assert (eda.modality, eda.sfreq) == ("eda", 32.0)
    result = measure_rate_skew(recordings, bundle, baseline_seconds=120.0)
    assert result["common_rate"] == result["live_common_rate"] == 4.0
    # 8 min, 60-s windows every 5 s: (480 - 60) / 5 + 1 windows per wearer.
    assert result["windows"] == 2 * ((480 - 60) // 5 + 1)
    own, live = result["own_rate"], result["live"]
    for feature in bundle.features:
        # The live path: the same numbers as training, in every window.
        assert live["features"][feature]["max_abs"] == 0.0, feature
        assert live["features"][feature]["missing_mismatch"] == 0, feature
        assert live["features"][feature]["n"] > 0.9 * result["windows"], feature
    assert live["arousal"]["max_abs_diff"] == 0.0 and live["arousal"]["decisions_flipped"] == 0
    # At the band's own rate only the EDA features differ (heart rate is not averaged).
    assert own["features"]["hr_mean"]["max_abs"] == 0.0
    for feature in ("eda_scr_rate", "eda_phasic_std", "eda_tonic_mean"):
        assert own["features"][feature]["max_abs"] > 0.0, feature
    assert np.isfinite(own["arousal"]["median_abs_diff"]) and own["arousal"]["max_abs_diff"] > 0
