"""A session with wrist, chest and EEG devices uses every present modality: each shipped
bundle on its own window length, combined by what each could see (docs/runtime.md)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from affectstream.models.bundle import load_bundle, shipped_bundles
from affectstream.models.synthetic import synthetic_labelled_recording
from affectstream.runtime import Session
from affectstream.runtime.combine import combine
from affectstream.runtime.demo import demo_families
from affectstream.runtime.estimator import (
    BUNDLES_DIR,
    MIN_COVERAGE,
    choose_bundle,
    choose_bundles,
    features_only_note,
    resolve_arousal_bundles,
)
from affectstream.runtime.multiwindow import MultiWindowExtractor, window_prefix
from affectstream.runtime.reference import LEAD_IN, reference_needs
from affectstream.runtime.replay import session_rows
from affectstream.signal import StreamingExtractor, WindowConfig
from affectstream.signal.columns import feature_family
from affectstream.store import open_store
from affectstream.types import SampleBlock


def _chunk(block: SampleBlock, start: int, stop: int) -> SampleBlock:
    """Samples ``start:stop`` of a block, as a device would deliver them."""
    return dataclasses.replace(
        block,
        t=block.t[start:stop],
        values=block.values[start:stop],
        index=block.index[start:stop],
        gaps=(),
    )


SHORT, LONG = WindowConfig(window=10.0, step=2.0), WindowConfig(window=60.0, step=5.0)


def _extract(
    blocks: list[SampleBlock], *, announce_first: bool = False
) -> tuple[MultiWindowExtractor, list[dict[str, Any]], list[dict[str, Any]]]:
    """Rows of a 10-s + 60-s :class:`MultiWindowExtractor`, and of a 60-s extractor alone.

    ``announce_first``: every block is announced before any is pushed, as a replay declares
    its whole streams."""
    multi, alone = MultiWindowExtractor(SHORT, [LONG]), StreamingExtractor(LONG)
    rows: list[dict[str, Any]] = []
    long_rows: list[dict[str, Any]] = []
    for block in blocks if announce_first else []:
        multi.announce(block)
        alone.announce(block)
    for block in blocks:
        if not announce_first:
            multi.announce(block)
            alone.announce(block)
        rows += multi.push_rows(block)
        long_rows += alone.push_rows(block)
    return multi, rows, long_rows


def test_longer_windows_ride_along_causally_and_match_their_own_extractor() -> None:
    recording = synthetic_labelled_recording("M", duration=200.0, modalities=("eda", "temp"))
    blocks = sorted(
        (_chunk(b, i, i + 40) for b in recording.blocks for i in range(0, len(b), 40)),
        key=lambda b: float(b.t[0]),
    )
    multi, rows, long_rows = _extract(blocks)
    prefix = window_prefix(60.0)
    assert prefix + "eda_tonic_mean" in multi.columns and "eda_tonic_mean" in multi.columns
    by_end = {float(r["t_end"]): r for r in long_rows}
    seen = 0
    for row in rows:
        source = row[prefix + "t_end"]
        if isinstance(source, float) and math.isnan(source):
            continue
        assert source <= row["t_end"] + 1e-9  # never a window from the future
        assert row[prefix + "eda_tonic_mean"] == by_end[source]["eda_tonic_mean"]
        seen += 1
    assert seen > 10
    # Before the first 60-s window is complete, the long columns are missing, not made up.
    assert all(math.isnan(r[prefix + "t_end"]) for r in rows if r["t_end"] < rows[0]["t_end"] + 45)


def test_longer_windows_survive_a_replay_sized_push() -> None:
    """A replay pushes minutes of data per call; the longer window's rows of that push must
    all still be there for the primary rows (a fixed 64-row buffer dropped them, and with
    them stress-wrist's reference in all-modality replays)."""
    recording = synthetic_labelled_recording("M", duration=600.0, modalities=("eda", "temp"))
    _, rows, long_rows = _extract(list(recording.blocks), announce_first=True)  # whole streams
    ends = np.array(sorted(float(r["t_end"]) for r in long_rows))
    assert len(ends) > 64 and len(rows) > len(ends)
    prefix = window_prefix(LONG.window)
    for row in rows:
        done = ends[ends <= float(row["t_end"]) + 1e-9]
        got = float(row[prefix + "t_end"])
        if done.size:
            assert got == pytest.approx(done[-1])  # the latest longer window, every time
        else:
            assert math.isnan(got)


def _fields(p: float, conf: float, coverage: float) -> dict[str, Any]:
    return {"arousal": p, "arousal_svm": p, "arousal_confidence": conf,
            "arousal_coverage": coverage, "arousal_calibrated": True,
            "arousal_reference_final": True, "arousal_top1": "eda_tonic_mean:+0.4"}  # fmt: skip


def test_combination_weights_by_confidence_and_names_what_is_missing() -> None:
    wrist = load_bundle(BUNDLES_DIR / "stress-wrist")
    eeg = load_bundle(BUNDLES_DIR / "eeg-workload")
    both = combine("arousal", [(wrist, _fields(0.8, 0.6, 0.9)), (eeg, _fields(0.2, 0.2, 1.0))], 3)
    assert both["arousal"] == pytest.approx((0.6 * 0.8 + 0.2 * 0.2) / 0.8)
    assert both["arousal_confidence"] == pytest.approx((0.6**2 + 0.2**2) / 0.8)
    assert both["arousal_by_stress_wrist"] == 0.8 and both["arousal_by_eeg_workload"] == 0.2
    assert both["arousal_top1"] == "eda_tonic_mean:+0.4"  # from the heavier bundle
    # The EEG headband drops out: its bundle has no input, the wrist carries on alone, and the
    # confidence says one of the two models is missing (half the wrist's, not 0).
    no_eeg = combine("arousal", [(wrist, _fields(0.8, 0.6, 0.9)), (eeg, _fields(0.5, 0.0, 0.0))], 3)
    assert no_eeg["arousal"] == pytest.approx(0.8)
    assert no_eeg["arousal_confidence"] == pytest.approx(0.6 / 2)
    assert "eeg-workload: no input" in no_eeg["arousal_basis"]
    assert no_eeg["arousal_coverage"] < both["arousal_coverage"]
    # The 60-s window is not complete yet: said so, not averaged in.
    early = combine("arousal", [(wrist, {}), (eeg, _fields(0.3, 0.5, 1.0))], 3)
    assert early["arousal"] == pytest.approx(0.3) and "no window yet" in early["arousal_basis"]


def test_wrist_chest_and_eeg_choose_both_shipped_bundles() -> None:
    names = [p.name for p in choose_bundles("arousal", {"hr", "hrv", "eda", "eeg", "acc", "temp"})]
    assert sorted(names) == ["eeg-workload", "stress-wrist"]
    assert [p.name for p in choose_bundles("arousal", {"eeg", "acc"})] == ["eeg-workload"]


def test_a_bundle_that_reads_none_of_the_devices_features_does_not_run() -> None:
    """A polar strap gives RR intervals only (``hrv``): no shipped arousal bundle reads any
    of its features, so the session runs features only and says why in one line; a bundle
    the user names runs anyway, and one that reads some of the features is still the
    fallback below MIN_COVERAGE."""
    families_of = {  # each shipped arousal bundle's features, as families
        name: [feature_family(f) for f in bundle.features]
        for name in shipped_bundles()
        if (bundle := load_bundle(BUNDLES_DIR / name)).target == "arousal"
    }
    polar = demo_families(["polar"])
    assert families_of and all(not (set(f) & polar) for f in families_of.values())
    assert resolve_arousal_bundles(None, polar, allow_demo=False) == []
    assert choose_bundle("arousal", polar) is None  # the single chooser's rule too
    note = features_only_note(polar)
    assert "\n" not in note and "features and quality only" in note
    for name, families in families_of.items():
        assert f"{name} reads {'/'.join(sorted(set(families)))}" in note
    named = resolve_arousal_bundles("eeg-workload", polar, allow_demo=False)
    assert [p.name for p in named] == ["eeg-workload"]
    # A heart-rate strap (hr, hrv) gives part of the wrist model's features: below
    # MIN_COVERAGE, yet more than none, so that one runs alone (degraded, as before).
    strap = demo_families(["hr"])
    share = {n: sum(f in strap for f in fs) / len(fs) for n, fs in families_of.items()}
    best = max(share, key=lambda n: share[n])
    assert 0 < share[best] < MIN_COVERAGE
    assert [p.name for p in resolve_arousal_bundles(None, strap, allow_demo=False)] == [best]


@pytest.mark.slow
def test_emulated_wrist_chest_and_eeg_session_uses_both_models(
    tmp_path: Path, runtime_home: Path
) -> None:
    """Over the emulated BLE stack, without a protocol: the reference period is long enough
    for every model (not eeg-workload's 60 s alone), so the 60-s wrist model (``baseline_z``,
    two reference windows) joins once its second window is in, and the stored estimates
    carry it. The duration is the wrist model's need (``reference_needs``) plus two steps."""
    bundles = [load_bundle(BUNDLES_DIR / n) for n in ("eeg-workload", "stress-wrist")]
    wrist = next(n for n in reference_needs(bundles) if n.name == "stress-wrist")
    step = float(bundles[1].meta["window"]["step"])
    # Each model asks for its own setting or its reference's need, whichever is longer.
    needs = {n.name: n.seconds for n in reference_needs(bundles)}
    expected = max(
        max(float(b.meta["normalization"]["baseline_seconds"]), needs[b.meta["name"]])
        for b in bundles
    )
    seen: list[Any] = []
    session = Session(emulate="hr,eda,muse", duration=wrist.seconds + 2 * step,
                      store=tmp_path / "s", on_estimate=seen.append)  # fmt: skip
    summary = session.run_sync()
    assert summary["reference_s"] == pytest.approx(expected)
    assert summary["reference"].startswith(f"reference period: first {expected:g} s")
    # The session ended inside that reference: said, not hidden.
    assert any("ended inside its" in w for w in summary["warnings"])
    assert summary["n_estimates"] == len(seen) > 10
    early = seen[0].fields
    assert "stress-wrist: reference filling, 0 of 2 60-s windows" in early["arousal_basis"]
    with open_store(summary["store"]) as store:
        rows = session_rows(store, summary["session"])
    wrist_p = pd.to_numeric(rows["arousal_by_stress_wrist"], errors="coerce").to_numpy(float)
    joined = np.isfinite(wrist_p)
    assert joined.any(), rows["arousal_basis"].tolist()[-3:]
    # Its estimates are probabilities, named in the basis beside the EEG model's, and the
    # combined estimate is between the two models' (a confidence-weighted mean).
    last = rows[joined].iloc[-1]
    assert 0.0 <= last["arousal_by_stress_wrist"] <= 1.0
    assert "stress-wrist 0." in last["arousal_basis"] and "eeg-workload" in last["arousal_basis"]
    pair = sorted([last["arousal_by_stress_wrist"], last["arousal_by_eeg_workload"]])
    assert pair[0] - 1e-9 <= last["arousal"] <= pair[1] + 1e-9
    # Not before its second 60-s window could have ended.
    start = float(rows["t_end"].min()) - float(bundles[0].meta["window"]["window"])
    first = float(rows.loc[joined, "t_end"].min())
    assert first - start >= wrist.seconds - LEAD_IN - 1e-6


@pytest.mark.slow
def test_replay_runs_every_fitting_bundle_and_the_combination_is_scored() -> None:
    """``replay`` takes the live multi-bundle path (no --model: every bundle that fits);
    the combination's as-live score is measured (runtime/combine_eval.py)."""
    from affectstream.models.synthetic import synthetic_recordings
    from affectstream.runtime.combine_eval import session_scores

    recordings = synthetic_recordings(1, seed=71, duration=420.0, eeg_rate=256.0)
    every = session_scores(recordings, ("rr", "eda", "temp", "acc", "eeg"))
    assert "stress-wrist" in every["model"] and "eeg-workload" in every["model"]
    assert {"arousal", "arousal_by_stress_wrist", "arousal_by_eeg_workload"} <= set(every)
    # Every combined estimate reached the store: before the 60-s wrist window, rows with no
    # arousal_high once turned the whole batch's column float and the store refused it.
    assert every["arousal"]["n_windows"] == every["arousal_by_eeg_workload"]["n_windows"]
    # The generator raises arousal in every modality: the combination must rank it.
    assert every["arousal"]["auroc"] > 0.7
    eeg_only = session_scores(recordings, ("eeg",))
    assert eeg_only["model"].startswith("eeg-workload") and "stress-wrist" not in eeg_only["model"]


def test_affect_batches_keep_bool_fields_bool_when_some_rows_lack_them() -> None:
    from affectstream.runtime.session_compute import bool_complete_groups, records_batch

    records = [
        {"t_end": 1.0, "arousal": float("nan")},
        {"t_end": 2.0, "arousal": 0.7, "arousal_high": True},
        {"t_end": 3.0, "arousal": 0.2, "arousal_high": False},
    ]
    groups = bool_complete_groups(records)
    assert [len(g) for g in groups] == [1, 2]
    assert [r for g in groups for r in g] == records
    batch = records_batch(groups[1], {"session": "s"})
    assert batch.fields["arousal_high"].dtype == bool
