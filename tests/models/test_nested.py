"""Nested selection: the context span is chosen inside each training fold."""

from __future__ import annotations

import numpy as np

from affectstream.models.nested import nested_cross_validate, select_context, with_context
from affectstream.models.synthetic import synthetic_feature_frame
from affectstream.models.training import DATASET_SETTINGS, evaluate_frame


def test_selection_never_looks_at_held_out_participants() -> None:
    frame = synthetic_feature_frame(5, 60, seed=5, arousal_effect=1.5)
    train = sorted(set(frame["subject"]))[:4]
    held_out = ~frame["subject"].isin(train)
    tables = {s: with_context(frame, s) for s in (0.0, 30.0)}
    span, scores = select_context(tables, train, target="arousal", normalization="baseline")
    # Scramble the held-out participant's labels: the choice and the scores cannot move.
    scrambled = {}
    for s, t in tables.items():
        t = t.copy()
        t.loc[held_out, "arousal"] = 1.0 - t.loc[held_out, "arousal"]
        scrambled[s] = t
    again, scores_again = select_context(
        scrambled, train, target="arousal", normalization="baseline"
    )
    assert span == again and scores == scores_again
    assert set(scores) == {0.0, 30.0} and all(0.0 <= v <= 1.0 for v in scores.values())


def test_nested_evaluation_reports_each_folds_choice() -> None:
    frame = synthetic_feature_frame(5, 60, seed=6, arousal_effect=2.0)
    results = nested_cross_validate(
        frame, (0.0, 30.0), kinds=("lightgbm",), normalization="baseline"
    )
    res = results["lightgbm"]
    assert res["cv"] == "nested leave-one-subject-out"
    assert len(res["selected"]) == 5
    assert {v["context_seconds"] for v in res["selected"].values()} <= {0.0, 30.0}
    p, _ = res["oof"]
    scored = np.isfinite(frame["arousal"]) & ~frame["reference"]
    assert np.isfinite(p[scored.to_numpy()]).all()
    assert res["balanced_accuracy"] > 0.7  # a 2-SD effect is found

    report = evaluate_frame(
        frame,
        DATASET_SETTINGS["synthetic"],
        kinds=("lightgbm",),
        chance=False,
        context_candidates=(0.0, 30.0),
    )
    assert report["cv"] == "nested leave-one-subject-out"
    assert "as_live" in report["baselines"]
