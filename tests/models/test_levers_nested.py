"""Round-4 levers: causal per-participant inputs, training filters, nested selection."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from affectstream.models.lever_compare import (
    SETTINGS,
    markdown,
    nested_outer,
    paired_worst_difference,
    tabulate,
)
from affectstream.models.lever_transforms import (
    Z_CLIP,
    causal_rank,
    noneeg_training_labels,
    settled_training,
    trailing_z,
)
from affectstream.models.lever_variants import Variant
from affectstream.models.levers_nested import NE, SP, outer_folds, run_variant
from affectstream.models.synthetic import synthetic_feature_frame


def _session(values: list[float], *, subject: str = "P1", n_reference: int = 4) -> pd.DataFrame:
    n = len(values)
    return pd.DataFrame(
        {
            "subject": subject,
            "t_end": 60.0 + 5.0 * np.arange(n),
            "reference": np.arange(n) < n_reference,
            "x": values,
        }
    )


def test_trailing_z_is_causal_and_adapts_to_a_new_level() -> None:
    rng = np.random.default_rng(0)
    values = list(rng.normal(0.0, 1.0, 60)) + list(rng.normal(8.0, 1.0, 120))
    frame = _session(values, n_reference=20)
    z = trailing_z(frame, "x", seconds=300.0)
    # Right after the step the trailing reference is still the old level: large z ...
    assert z[62] > 3.0
    # ... 300 s (60 windows) later the reference has moved to the new level: z back near 0.
    assert abs(np.median(z[140:])) < 1.0
    assert np.nanmax(np.abs(z)) <= Z_CLIP
    # Causal: changing later windows leaves earlier values unchanged.
    later = frame.copy()
    later.loc[100:, "x"] = -50.0
    np.testing.assert_array_equal(trailing_z(later, "x", seconds=300.0)[:100], z[:100])


def test_causal_rank_is_a_percentile_of_the_participant_so_far() -> None:
    frame = pd.concat(
        [_session([1.0, 2.0, 3.0, 0.5]), _session([10.0, 5.0], subject="P2")], ignore_index=True
    )
    r = causal_rank(frame, "x")
    # (below + equal/2 + 0.5) / (seen + 1): first window 0.5; each new maximum ranks high.
    np.testing.assert_allclose(r[:4], [0.5, 1.5 / 2, 2.5 / 3, 0.5 / 4])
    # Participants do not mix: P2's second window is below its own first only.
    np.testing.assert_allclose(r[4:], [0.5, 0.5 / 2])
    # Any increasing transform of the input gives the same ranks (device gain cancels).
    gained = frame.assign(x=np.exp(frame["x"]))
    np.testing.assert_allclose(causal_rank(gained, "x"), r)


def test_settled_training_blanks_windows_that_start_soon_after_a_label_change() -> None:
    t_end = 60.0 + 5.0 * np.arange(100)
    end = np.where(t_end >= 300.0, 1.0, 0.0)
    frame = pd.DataFrame(
        {"subject": "P", "t_end": t_end, "reference": False, "arousal": end, "arousal_end": end}
    )
    out = settled_training(frame, "arousal", window=60.0, settle=30.0)
    kept = np.isfinite(out["arousal"].to_numpy())
    # Label changes at 300 s: a window is kept once it starts >= 330 s (ends >= 390 s).
    np.testing.assert_array_equal(kept, (t_end < 300.0) | (t_end - 60.0 >= 330.0))
    assert settled_training(frame, "arousal", window=60.0, settle=0.0) is frame
    assert frame["arousal"].notna().all()  # the input table is not changed


def test_noneeg_label_variants_drop_only_the_named_phases() -> None:
    phases = np.array(
        ["Relax", "PhysicalStress", "Relax", "Relax", "CognitiveStress", "Relax", "EmotionalStress"]
    )
    y = np.array([0.0, np.nan, 0.0, 0.0, 1.0, 0.0, 1.0])
    frame = pd.DataFrame(
        {"subject": "S", "t_end": np.arange(7.0), "reference": False, "arousal": y}
    )
    cognitive = noneeg_training_labels(frame, phases, "cognitive", "arousal")["arousal"]
    assert cognitive.isna().tolist() == [False, True, False, False, False, False, True]
    post = noneeg_training_labels(frame, phases, "no-post-physical", "arousal")["arousal"]
    assert post.isna().tolist() == [False, True, True, True, False, False, False]
    assert noneeg_training_labels(frame, phases, "cognitive+emotional", "arousal") is frame


def test_outer_folds_partition_the_participants() -> None:
    units = [f"S{i:02d}" for i in range(10)]
    folds = outer_folds(units, 4)
    assert sorted(np.concatenate(folds).tolist()) == units
    assert [len(f) for f in folds] == [3, 3, 2, 2]


def _tables(effect: float, seed: int) -> dict[str, pd.DataFrame]:
    out = {}
    for i, (name, n) in enumerate(((SP, 8), (NE, 4))):
        frame = synthetic_feature_frame(n, 60, seed=seed + i, arousal_effect=effect)
        frame["subject"] = f"{name}-" + frame["subject"].astype(str)
        out[name] = frame
    return out


@pytest.mark.parametrize("inputs", ["baseline_z", "own+trailing"])
def test_nested_selection_picks_by_inner_scores_and_scores_only_held_out_people(
    inputs: str,
) -> None:
    features = ("eda_tonic_mean", "hrv_mean_hr")
    tables = _tables(1.5, 60)
    phases = np.full(len(tables[NE]), "Relax")
    good = Variant("good", features, inputs=inputs, trailing_seconds=120.0)
    run_good = run_variant(tables, good, phases)
    # A variant fitted on shuffled labels cannot carry anything.
    null_tables = {k: v.copy() for k, v in tables.items()}
    rng = np.random.default_rng(1)
    for frame in null_tables.values():
        frame["arousal"] = rng.permutation(frame["arousal"].to_numpy())
    run_null = run_variant(null_tables, Variant("null", features), phases)
    table = tabulate({"null": run_null, "good": run_good})
    assert table["variants"]["good"]["worst"] > 0.65
    # Each fold picks the variant whose inner worst is higher, so "good" every time.
    assert table["nested"]["chosen"] == ["good"] * 4
    for s in SETTINGS:
        assert (
            table["nested"][s]["balanced_accuracy"]
            == table["variants"]["good"][s]["balanced_accuracy"]
        )
    # Every labelled participant is scored exactly once per setting, in its own outer fold.
    subjects, fold = run_good["outer"]["SP within"][3:5]
    assert set(subjects) == {s for s in tables[SP]["subject"].unique()}
    for s in set(subjects):
        assert np.unique(fold[subjects == s]).size == 1
    assert "nested selection" in markdown(table)
    # A variant outside the candidates (a baseline) is never chosen, however well it scores.
    assert nested_outer({"null": run_null, "good": run_good}, ["null"])[0] == ["null"] * 4
    # Paired participant bootstrap: a recipe against itself differs by exactly 0; the
    # carrying recipe beats the shuffled one on the worst setting, interval above 0.
    same = paired_worst_difference(run_good["outer"], run_good["outer"], n_boot=200)
    assert same["difference"] == 0.0 and same["ci95"] == [0.0, 0.0]
    gap = paired_worst_difference(nested_outer({"good": run_good})[1], run_null["outer"])
    expected = table["variants"]["good"]["worst"] - table["variants"]["null"]["worst"]
    assert np.isclose(gap["difference"], expected)
    assert gap["ci95"][0] > 0.0


def test_pooled_label_check_scores_each_contrast_on_both_protocols() -> None:
    from affectstream.models.levers_nested import pooled_label_check

    tables = _tables(1.5, 70)
    for frame in tables.values():  # the shipped recipe's features, from the generator's
        frame["eda_phasic_std"] = frame["eda_tonic_mean"]
        frame["eda_scr_rate"] = frame["eda_tonic_mean"]
        frame["hr_mean"] = frame["hrv_mean_hr"]
    # No physical-stress phase: dropping the relax after it changes nothing.
    phases = np.full(len(tables[NE]), "Relax", dtype=object)
    out = pooled_label_check(tables, phases, splits=3)
    assert set(out) == {"cognitive+emotional", "cognitive", "no-post-physical"}
    assert out["no-post-physical"] == out["cognitive+emotional"]
    for row in out.values():
        assert set(row) == {f"both -> {SP}", f"both -> {NE}"}
        assert row[f"both -> {SP}"]["balanced_accuracy"] > 0.6


def test_paired_difference_draws_one_list_of_people_for_both_stress_predict_settings() -> None:
    """A participant scored in one Stress-Predict setting but not the other (no finite
    prediction there) still lines up: both settings resample the same people."""

    def arrays(subjects: list[str], hit: bool) -> list[np.ndarray]:
        y = np.tile([0, 1], len(subjects))
        p = (y if hit else 1 - y).astype(float)
        return [y, p, np.full(y.size, 0.5), np.repeat(subjects, 2)]

    good = {
        "SP within": arrays(["A", "B"], True),
        "Non-EEG -> SP": arrays(["A", "B", "C"], True),
        "SP -> Non-EEG": arrays(["N1", "N2"], True),
    }
    bad = {s: arrays(list(np.unique(v[3])), False) for s, v in good.items()}
    gap = paired_worst_difference(good, bad, n_boot=50)
    # Every prediction right against every one wrong: balanced accuracy 1 vs 0 everywhere.
    assert gap["difference"] == 1.0
    assert gap["ci95"] == [1.0, 1.0]
