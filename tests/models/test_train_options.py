"""``train`` by command: pooled protocols, named feature sets, monotone LightGBM."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from affectstream.cli import main
from affectstream.errors import ConfigError
from affectstream.models.bundle import load_bundle
from affectstream.models.estimators import AffectClassifier
from affectstream.models.feature_sets import (
    EDA_HR_FEATURES,
    RISING_WITH_STRESS,
    feature_set,
    select_features,
)
from affectstream.models.synthetic import synthetic_feature_frame
from affectstream.signal.columns import feature_columns
from tests.models.test_wrist_protocols import write_two_protocols


def test_select_features_keeps_the_set_and_its_context_columns() -> None:
    frame = synthetic_feature_frame(2, 20, seed=61)
    frame["eda_tonic_mean_ctx120s"] = frame["eda_tonic_mean"]
    kept = select_features(frame, ("eda_tonic_mean", "temp_mean"))
    assert feature_columns(kept) == ["eda_tonic_mean", "eda_tonic_mean_ctx120s", "temp_mean"]
    assert {"subject", "reference", "t_end", "arousal"} <= set(kept.columns)
    with pytest.raises(ConfigError, match="--features"):
        select_features(frame, ("eeg_alpha_rel",))
    with pytest.raises(ConfigError, match="compact"):
        feature_set("nope")


def test_monotone_lightgbm_cannot_learn_the_falling_direction() -> None:
    # Labels that *fall* with tonic EDA: unconstrained LightGBM learns that direction,
    # monotone LightGBM may only rise with it.
    rng = np.random.default_rng(62)
    n = 600
    x = rng.normal(size=n)
    frame = pd.DataFrame(
        {
            "eda_tonic_mean": x,
            "temp_mean": rng.normal(size=n),
            "subject": np.repeat(["a", "b", "c"], n // 3),
            "reference": False,
            "t_end": np.tile(np.arange(n // 3, dtype=float), 3),
            "arousal": (x < 0).astype(float),
        }
    )
    free = AffectClassifier("lightgbm", normalization="none").fit(frame)
    tied = AffectClassifier("lightgbm", normalization="none", monotone=True).fit(frame)
    # Sweep tonic EDA with the other feature held fixed.
    grid = frame.iloc[:50].copy()
    grid["eda_tonic_mean"] = np.linspace(-2, 2, 50)
    grid["temp_mean"] = 0.0
    p_free, p_tied = free.predict_proba(grid)[:, 1], tied.predict_proba(grid)[:, 1]
    assert p_free[0] - p_free[-1] > 0.5  # learned "falls with EDA"
    assert np.all(np.diff(p_tied) >= -1e-12)  # may not fall
    assert "eda_tonic_mean" in RISING_WITH_STRESS


@pytest.mark.slow
def test_train_pools_two_protocols_on_a_feature_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stress, noneeg = write_two_protocols(tmp_path)
    out = tmp_path / "pooled"
    argv = ["train", "--dataset", "stress-predict,noneeg", "--data", str(stress), str(noneeg)]
    argv += ["--features", "eda-hr", "--monotone", "--folds", "3", "--out", str(out), "--json"]
    assert main([*argv, "--cache-dir", str(tmp_path / "cache")]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["n_subjects"] == 6
    bundle = load_bundle(out)
    # Only what the set names and both writers' devices give (their tiny EDA may not be).
    assert bundle.features and set(bundle.features) <= set(EDA_HR_FEATURES)
    assert bundle.meta["name"] == "pooled"  # the folder's name, not the last dataset's
    provenance = bundle.meta["provenance"]
    assert provenance["datasets"] == ["stress-predict", "noneeg"]
    assert provenance["monotone"] is True and provenance["feature_set"] == "eda-hr"
    assert {s.split(":")[0] for s in provenance["subjects"]} == {"stress-predict", "noneeg"}
    # `evaluate --model` rebuilds the features the pooled bundle was trained on.
    from affectstream.models.crossprotocol import COMMON_RATE, SHARED_MODALITIES
    from affectstream.models.training import bundle_settings

    assert bundle_settings(bundle, "stress-predict").modalities == SHARED_MODALITIES
    assert provenance["common_rate"] == COMMON_RATE
    card = (out / "MODEL_CARD.md").read_text()
    assert "stress-predict,noneeg" in card and "monotone" in card and "eda-hr" in card
    assert "Not validated on" in card and "2 lab protocols" in card
    assert "context span" not in card  # Stress-Predict's caveat about features it lacks


def test_train_needs_one_folder_per_dataset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["train", "--dataset", "stress-predict,noneeg", "--data", str(tmp_path)]
    assert main([*argv, "--out", str(tmp_path / "o")]) == 2
    assert "one folder per dataset" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse refuses it, naming the known datasets
        main(["train", "--dataset", "stress-predict,bogus", "--data", "x", "--out", "o"])
    assert "unknown dataset bogus" in capsys.readouterr().err
