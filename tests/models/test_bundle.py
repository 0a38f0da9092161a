"""Bundles: save/load round trip, live path equals batch path, mismatches fail clearly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from affectstream._version import __version__
from affectstream.errors import ConfigError, FeatureMismatchError, ModelError
from affectstream.models.bundle import ModelBundle, load_bundle, save_bundle
from affectstream.models.estimators import AffectClassifier
from affectstream.models.synthetic import synthetic_feature_frame
from affectstream.runtime import LiveEstimator


def _write(
    tmp_path: Path, normalization: str = "running"
) -> tuple[Path, AffectClassifier, AffectClassifier]:
    frame = synthetic_feature_frame(6, 100, seed=21, missing_modality_rate=0.1)
    lgb_model = AffectClassifier("lightgbm", normalization=normalization).fit(frame)
    svm_model = AffectClassifier("svm", normalization=normalization).fit(frame)
    path = save_bundle(
        tmp_path / "bundle",
        name="test-bundle",
        lightgbm=lgb_model,
        svm=svm_model,
        window={"window": 60.0, "step": 5.0},
        baseline_seconds=60.0 + 5.0 * 19,  # the frame's 20 reference windows
        provenance={"dataset": "synthetic", "subjects": lgb_model.subjects_},
        evaluation={},
        card="# card\n",
    )
    return path, lgb_model, svm_model


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path, _, _ = _write(tmp_path_factory.mktemp("bundle"))
    return path


def test_round_trip_gives_identical_predictions(tmp_path: Path) -> None:
    path, lgb_model, svm_model = _write(tmp_path)
    assert sorted(p.name for p in path.iterdir()) == [
        "MODEL_CARD.md",
        "bundle.json",
        "lightgbm.txt",
        "svm.skops",
    ]
    bundle = load_bundle(path)
    unseen = synthetic_feature_frame(3, 100, seed=22, missing_modality_rate=0.1)
    scored = bundle.predict_frame(unseen)
    np.testing.assert_array_equal(scored["probability"], lgb_model.predict_proba(unseen)[:, 1])
    np.testing.assert_array_equal(scored["probability_svm"], svm_model.predict_proba(unseen)[:, 1])
    assert bundle.features == lgb_model.features_


def live_records(bundle: ModelBundle, frame: pd.DataFrame) -> list[dict[str, object]]:
    """The product's live path: LiveEstimator fed the table's windows one by one, in time
    order, with the baseline ending at the last window the table marks ``reference``."""
    baseline_end = float(frame.loc[frame["reference"], "t_end"].max())
    live = LiveEstimator([bundle], baseline_end=baseline_end, top=5)
    return [live.estimate(frame.iloc[[i]])[0] for i in range(len(frame))]


def test_live_estimator_matches_batch_scoring(bundle_dir: Path) -> None:
    bundle = load_bundle(bundle_dir)
    frame = synthetic_feature_frame(1, 60, seed=23, missing_modality_rate=0.2)
    batch = bundle.predict_frame(frame)
    records = live_records(bundle, frame[["t_end", "reference", *bundle.features]])
    reference = frame["reference"].to_numpy()
    target = bundle.target
    live_p = [r[target] for r, ref in zip(records, reference, strict=True) if not ref]
    np.testing.assert_allclose(live_p, batch["probability"].to_numpy()[~reference], rtol=1e-12)
    first = next(r for r, ref in zip(records, reference, strict=True) if not ref)
    assert first[f"{target}_calibrated"] is False
    assert all(first[f"{target}_top{k}"] for k in range(1, 6))
    row = frame.iloc[-1]
    center = np.zeros(len(bundle.features))
    full = bundle.estimate(row[bundle.features].to_dict(), center)
    fast = bundle.estimate(row[bundle.features].to_dict(), center, with_svm=False)
    assert fast.probability == full.probability and np.isnan(fast.probability_svm)


def test_absent_modality_is_missing_not_an_error(bundle_dir: Path) -> None:
    bundle = load_bundle(bundle_dir)
    frame = synthetic_feature_frame(2, 40, seed=24).drop(columns=["eda_tonic_mean"])
    scored = bundle.predict_frame(frame)
    assert np.isfinite(scored["probability"]).all()


def test_partial_family_is_a_feature_mismatch(bundle_dir: Path) -> None:
    bundle = load_bundle(bundle_dir)
    frame = synthetic_feature_frame(2, 40, seed=25).drop(columns=["hrv_rmssd"])
    with pytest.raises(FeatureMismatchError, match="hrv_rmssd"):
        bundle.predict_frame(frame)


def test_expected_feature_list_is_checked(bundle_dir: Path) -> None:
    bundle = load_bundle(bundle_dir)
    with pytest.raises(FeatureMismatchError, match="only in bundle"):
        load_bundle(bundle_dir, expected_features=bundle.features[:-1])
    load_bundle(bundle_dir, expected_features=bundle.features)


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_version_mismatch(bundle_dir: Path, tmp_path: Path) -> None:
    path = _copy(bundle_dir, tmp_path / "old")
    meta = json.loads((path / "bundle.json").read_text())
    meta["versions"]["affectstream"] = "0.0.0-other"
    (path / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(FeatureMismatchError, match=f"0.0.0-other, this is {__version__}"):
        load_bundle(path)
    assert load_bundle(path, allow_version_mismatch=True).features == meta["features"]


def test_feature_list_that_does_not_match_the_booster(bundle_dir: Path, tmp_path: Path) -> None:
    path = _copy(bundle_dir, tmp_path / "renamed")
    meta = json.loads((path / "bundle.json").read_text())
    meta["features"] = list(reversed(meta["features"]))
    (path / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(FeatureMismatchError, match="do not belong together"):
        load_bundle(path)


def test_altered_model_file_is_refused(bundle_dir: Path, tmp_path: Path) -> None:
    path = _copy(bundle_dir, tmp_path / "altered")
    with (path / "lightgbm.txt").open("a") as handle:
        handle.write("\n")
    with pytest.raises(ModelError, match="missing or altered"):
        load_bundle(path)


def test_untrusted_skops_types_are_refused(bundle_dir: Path, tmp_path: Path) -> None:
    import hashlib

    import skops.io as sio

    from affectstream.models.normalize import ParticipantNormalizer

    path = _copy(bundle_dir, tmp_path / "untrusted")
    # Any type outside skops' defaults and our list, e.g. one of our own classes.
    sio.dump(ParticipantNormalizer(features=("a",)), path / "svm.skops")
    meta = json.loads((path / "bundle.json").read_text())
    meta["files"]["svm.skops"] = hashlib.sha256((path / "svm.skops").read_bytes()).hexdigest()
    (path / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="outside the trusted list"):
        load_bundle(path)


def test_unknown_bundle_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="No model bundle"):
        load_bundle(tmp_path / "nothing-here")


def test_corrupt_bundle_json(bundle_dir: Path, tmp_path: Path) -> None:
    path = _copy(bundle_dir, tmp_path / "corrupt")
    (path / "bundle.json").write_text("{not json")
    with pytest.raises(ModelError, match=r"Corrupt bundle\.json"):
        load_bundle(path)


def test_baseline_bundle_live_path(tmp_path: Path) -> None:
    path, lgb_model, _ = _write(tmp_path, normalization="baseline")
    bundle = load_bundle(path)
    frame = synthetic_feature_frame(1, 50, seed=26)
    records = live_records(bundle, frame)
    ref = frame["reference"].to_numpy()
    # Reference windows are estimated against the baseline so far, flagged provisional.
    assert [r[f"{bundle.target}_reference_final"] for r in records] == (~ref).tolist()
    got = np.array([r[bundle.target] for r, in_ref in zip(records, ref, strict=True) if not in_ref])
    np.testing.assert_allclose(got, lgb_model.predict_proba(frame)[~ref, 1], rtol=1e-12)
    assert isinstance(bundle.predict_frame(frame), pd.DataFrame)
