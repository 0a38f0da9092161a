"""AffectClassifier keeps scikit-learn's estimator contract and its training results.

The estimator checks run on plain matrices (one participant, no reference rows), so they use
the normalisations that need no reference period. The subject-wise cross-validation is
compared against scikit-learn's own ``cross_val_predict`` with ``LeaveOneGroupOut`` and
against a LightGBM pipeline assembled here, not through AffectClassifier.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import LeaveOneGroupOut, cross_val_predict
from sklearn.utils.estimator_checks import parametrize_with_checks

from affectstream.errors import ConfigError
from affectstream.models.estimators import (
    LIGHTGBM_PARAMS,
    AffectClassifier,
    min_child_samples,
)
from affectstream.models.evaluation import cross_validate_by_subject, scored_mask
from affectstream.models.normalize import ParticipantNormalizer
from affectstream.models.synthetic import synthetic_feature_frame
from affectstream.signal.columns import feature_columns

#: Causal running statistics make a window's score depend on the windows before it, so a
#: reordered or partial matrix scores differently: by design, not a bug.
_RUNNING_ORDER = "running normalisation is causal: scores depend on the preceding windows"


def _expected_failures(estimator: AffectClassifier) -> dict[str, str]:
    if estimator.normalization == "running":
        return {
            "check_methods_sample_order_invariance": _RUNNING_ORDER,
            "check_methods_subset_invariance": _RUNNING_ORDER,
        }
    return {}


@parametrize_with_checks(
    [
        AffectClassifier(normalization="none"),
        AffectClassifier("svm", normalization="none"),
        AffectClassifier(normalization="running"),
    ],
    expected_failed_checks=_expected_failures,
)
def test_scikit_learn_estimator_checks(estimator: Any, check: Any) -> None:
    check(estimator)


def test_clone_and_params_round_trip() -> None:
    features = ["hrv_mean_hr", "eda_tonic_mean"]
    model = AffectClassifier("svm", "valence", normalization="running", features=features)
    params = model.get_params()
    assert params["kind"] == "svm" and params["target"] == "valence"
    assert params["features"] is features  # stored as given, not copied
    copy = clone(model.set_params(max_train_rows=500, kind="lightgbm"))
    assert copy.get_params() == model.get_params()
    assert copy.max_train_rows == 500 and copy.kind == "lightgbm"
    with pytest.raises(ConfigError, match="normalization"):
        AffectClassifier(normalization="zscore").fit(synthetic_feature_frame(3, 40, seed=1))


@pytest.mark.parametrize("kind", ["lightgbm", "svm"])
def test_subject_cv_equals_scikit_learn_cross_val_predict(kind: str) -> None:
    frame = synthetic_feature_frame(4, 60, seed=5, arousal_effect=1.0)
    ours = cross_validate_by_subject(frame, kind=kind, normalization="baseline", seed=2)
    p_ours = ours["oof"][0]
    # Labels come from the table's arousal column (y=None), groups from its subject column.
    theirs = cross_val_predict(
        AffectClassifier(kind, normalization="baseline", random_state=2),
        frame,
        groups=frame["subject"],
        cv=LeaveOneGroupOut(),
        method="predict_proba",
    )
    np.testing.assert_array_equal(p_ours, theirs[:, 1])
    assert ours["cv"] == "leave-one-subject-out" and ours["n_subjects"] == 4


def test_lightgbm_results_equal_an_independent_pipeline() -> None:
    import lightgbm as lgb

    frame = synthetic_feature_frame(4, 60, seed=6, arousal_effect=1.0)
    result = cross_validate_by_subject(frame, kind="lightgbm", normalization="running", seed=4)
    features = feature_columns(frame)
    subjects = frame["subject"].astype(str).to_numpy()
    expected = np.full(len(frame), np.nan)
    for train_idx, test_idx in LeaveOneGroupOut().split(frame, groups=subjects):
        train, test = frame.iloc[train_idx], frame.iloc[test_idx]
        normalizer = ParticipantNormalizer(features=tuple(features), method="running").fit(train)
        rows = scored_mask(train, "arousal")
        model = lgb.LGBMClassifier(
            **{
                **LIGHTGBM_PARAMS,
                "min_child_samples": min_child_samples(int(rows.sum())),
                "random_state": 4,
            }
        )
        model.fit(
            normalizer.transform(train)[rows],
            train["arousal"].to_numpy()[rows].astype(int),
            feature_name=features,
        )
        expected[test_idx] = model.booster_.predict(normalizer.transform(test))
    assert result["predictions"].shape[0] == int(scored_mask(frame, "arousal").sum())
    np.testing.assert_allclose(result["oof"][0], expected, rtol=1e-12, atol=0)


def test_labels_may_be_given_as_y_with_any_two_names() -> None:
    frame = synthetic_feature_frame(4, 60, seed=7, arousal_effect=1.5)
    names = np.where(frame["arousal"].to_numpy() == 1, "high", "calm").astype(object)
    names[~np.isfinite(frame["arousal"].to_numpy())] = None  # unlabelled windows
    by_name = AffectClassifier(random_state=1).fit(frame.drop(columns="arousal"), names)
    by_column = AffectClassifier(random_state=1).fit(frame)
    assert list(by_name.classes_) == ["calm", "high"]
    np.testing.assert_array_equal(by_name.predict_proba(frame), by_column.predict_proba(frame))
    np.testing.assert_array_equal(
        by_name.predict(frame), np.where(by_column.predict(frame) == 1, "high", "calm")
    )


def test_normaliser_clones_and_old_cross_validate_name_warns() -> None:
    normalizer = ParticipantNormalizer(("hrv_mean_hr",), method="running", halflife=60.0)
    assert clone(normalizer).get_params() == normalizer.get_params()
    from affectstream.models import evaluation

    frame = synthetic_feature_frame(3, 40, seed=8, arousal_effect=1.0)
    with pytest.warns(DeprecationWarning, match="cross_validate_by_subject"):
        old = evaluation.cross_validate(frame, n_splits=3)
    new = cross_validate_by_subject(frame, n_splits=3)
    np.testing.assert_array_equal(old["oof"][0], new["oof"][0])
