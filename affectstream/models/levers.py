"""Levers for a stress model that carries across protocols, measured the same way.

Each :class:`Lever` is one model variant (feature set, normalisation, LightGBM settings such
as monotone constraints). :func:`lever_scores` scores it, **as live** (every window after
the reference period, label at its end; LightGBM), in five settings on the shared-modality
feature tables of two protocols (:func:`~affectstream.models.crossprotocol.run_cross_protocol`'s
tables, read from its cache): leave-one-participant-out within each protocol, train on one and
score the other (both directions), and trained on both (``GroupKFold`` over the pooled
participants, scored per protocol). The worst of the four cross-protocol numbers is the
lever's headline: a model that carries must hold in every direction.

Run: ``python -m affectstream.models.levers --cache-dir .affectstream/cache`` (after one
``affectstream evaluate --dataset stress-predict ... --test-dataset noneeg ... --cache-dir``
has filled the cache). The table it prints is the one in docs/models.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold

from affectstream.models.baselines import live_mask, own_baseline_feature, summary
from affectstream.models.crossprotocol import pool_frames
from affectstream.models.feature_sets import COMPACT_FEATURES as COMPACT_FEATURES
from affectstream.models.feature_sets import (
    EDA_HR_FEATURES,
    EDA_HR_PHASIC_FEATURES,
    monotone_constraints,
)
from affectstream.models.feature_sets import RISING_WITH_STRESS as RISING_WITH_STRESS
from affectstream.models.lever_fit import LeverSetup, fit_predict

logger = logging.getLogger(__name__)

#: Reference period (s) at the start of each session in the lever tables.
BASELINE_SECONDS = 240.0


@dataclasses.dataclass(frozen=True)
class Lever:
    """One model variant.

    Parameters
    ----------
    name : str
        Table label.
    features : tuple of str or None
        Feature columns; ``None`` = every shared feature.
    normalization : str
        ``running`` / ``baseline`` / ``none`` (:class:`ParticipantNormalizer`).
    monotone : bool
        +1 constraints on :data:`RISING_WITH_STRESS`.
    own_z : bool
        Standardise every feature against the participant's own reference windows (mean
        and standard deviation, as the one-feature baseline does) before the model; the
        normaliser is then ``none``. Not yet a bundle normalisation (measured only).
    params : tuple of (str, value)
        Extra LightGBM settings.
    kind : str
        What is fitted (:data:`~affectstream.models.lever_fit.LEVER_KINDS`): a model, an
        ensemble, calibrated LightGBM, or one of the two baselines.
    """

    name: str
    features: tuple[str, ...] | None = None
    normalization: str = "running"
    monotone: bool = False
    own_z: bool = False
    params: tuple[tuple[str, Any], ...] = ()
    kind: str = "lightgbm"

    def lightgbm_params(self, features: Sequence[str]) -> dict[str, Any]:
        """LightGBM overrides for ``features`` (monotone constraints in feature order)."""
        params = dict(self.params)
        if self.monotone:
            params["monotone_constraints"] = monotone_constraints(features)
            params["monotone_constraints_method"] = "advanced"
        return params

    def setup(self, features: Sequence[str], target: str) -> LeverSetup:
        """What :func:`~affectstream.models.lever_fit.fit_predict` fits for ``features``."""
        return LeverSetup(features, target, self.normalization, self.lightgbm_params(features))


#: The levers measured for docs/models.md (each one idea; combinations where they help).
LEVERS = (
    Lever("shared, running (previous)"),
    Lever("shared, baseline", normalization="baseline"),
    Lever("compact, running", COMPACT_FEATURES),
    Lever("compact, baseline", COMPACT_FEATURES, "baseline"),
    Lever("compact, baseline, monotone", COMPACT_FEATURES, "baseline", monotone=True),
    Lever("compact, running, monotone", COMPACT_FEATURES, "running", monotone=True),
    Lever("compact, own-z", COMPACT_FEATURES, "none", own_z=True),
    Lever("compact, own-z, monotone", COMPACT_FEATURES, "none", monotone=True, own_z=True),
    Lever("shared, baseline_z", normalization="baseline_z"),
    Lever("compact, baseline_z, monotone", COMPACT_FEATURES, "baseline_z", monotone=True),
    Lever(
        "compact, baseline, monotone, stumps",
        COMPACT_FEATURES,
        "baseline",
        monotone=True,
        params=(("num_leaves", 2), ("n_estimators", 200)),
    ),
    # Round 3: what the held-out evidence points to (tonic EDA against the own rest, + HR),
    # simpler models, ensembles, calibration, and the two baselines in the same settings.
    Lever("baseline: one feature", EDA_HR_FEATURES, "none", kind="one_feature"),
    Lever("baseline: protocol clock", EDA_HR_FEATURES, "none", kind="protocol_clock"),
    Lever("eda-hr, own-z, logistic", EDA_HR_FEATURES, "none", own_z=True, kind="logistic"),
    Lever("eda-hr, own-z, monotone", EDA_HR_FEATURES, "none", monotone=True, own_z=True),
    Lever(
        "eda-hr-phasic, own-z, logistic",
        EDA_HR_PHASIC_FEATURES,
        "none",
        own_z=True,
        kind="logistic",
    ),
    Lever("compact, own-z, logistic", COMPACT_FEATURES, "none", own_z=True, kind="logistic"),
    Lever(
        "compact, own-z, lightgbm+logistic",
        COMPACT_FEATURES,
        "none",
        own_z=True,
        kind="lightgbm+logistic",
    ),
    Lever(
        "compact, own-z, lightgbm+svm", COMPACT_FEATURES, "none", own_z=True, kind="lightgbm+svm"
    ),
    Lever(
        "compact, own-z, lightgbm platt-calibrated",
        COMPACT_FEATURES,
        "none",
        own_z=True,
        kind="lightgbm-platt",
    ),
    Lever(
        "eda-hr-phasic, baseline_z, monotone",
        EDA_HR_PHASIC_FEATURES,
        "baseline_z",
        monotone=True,
    ),
)


def prepare(frame: pd.DataFrame, lever: Lever, features: Sequence[str]) -> pd.DataFrame:
    """The table the lever's model sees (own-reference z-scores when ``own_z``).

    Parameters
    ----------
    frame : pandas.DataFrame
        Feature table.
    lever : Lever
    features : sequence of str

    Returns
    -------
    pandas.DataFrame
    """
    if not lever.own_z:
        return frame
    out = frame.copy()
    for f in features:
        out[f] = own_baseline_feature(frame, f)
    return out


def live_rows(
    frame: pd.DataFrame, p: np.ndarray[Any, Any], t: np.ndarray[Any, Any], target: str
) -> tuple[np.ndarray[Any, Any], ...]:
    """The windows scored as live that have a prediction: label, p, threshold, participant.

    Parameters
    ----------
    frame : pandas.DataFrame
        Feature table (``<target>_end`` and ``subject`` columns).
    p, t : ndarray
        Probability and threshold per row of ``frame``.
    target : str
        Label column.

    Returns
    -------
    y, p, t, subject : ndarray
    """
    sel = live_mask(frame, target) & np.isfinite(p)
    y = frame[target + "_end"].to_numpy(dtype=np.float64)[sel].astype(int)
    return y, p[sel], t[sel], np.asarray(frame["subject"].astype(str).to_numpy()[sel], dtype=str)


def live_scores(
    frame: pd.DataFrame, p: np.ndarray[Any, Any], t: np.ndarray[Any, Any], target: str
) -> dict[str, Any]:
    """Balanced accuracy, AUROC and worst participant of :func:`live_rows`."""
    res = summary(*live_rows(frame, p, t, target))
    return {k: res[k] for k in ("balanced_accuracy", "auroc", "min_subject_balanced_accuracy")}


def grouped_predictions(
    frame: pd.DataFrame, lever: Lever, features: Sequence[str], target: str, n_splits: int
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Out-of-fold probabilities and thresholds with participants held out.

    Parameters
    ----------
    frame, lever, features
        As for :func:`prepare` (``features``: the model columns).
    target : str
        Label column.
    n_splits : int
        ``GroupKFold`` participant folds; 0 = leave one participant out.

    Returns
    -------
    p, threshold : ndarray
        NaN on rows of participants without a label.
    """
    subjects = frame["subject"].astype(str).to_numpy()
    labelled = np.isfinite(frame[target].to_numpy(dtype=np.float64))
    units = np.asarray(sorted(pd.unique(subjects[labelled])))
    k = units.size if n_splits <= 0 else min(n_splits, units.size)
    p, t = np.full(len(frame), np.nan), np.full(len(frame), np.nan)
    setup = lever.setup(features, target)
    for tr, te in GroupKFold(n_splits=k).split(units, groups=units):
        test = np.isin(subjects, units[te])
        p[test], t[test] = fit_predict(
            lever.kind, frame[np.isin(subjects, units[tr])], frame[test], setup
        )
    return p, t


def lever_scores(
    frames: dict[str, pd.DataFrame],
    lever: Lever,
    *,
    target: str = "arousal",
    features: Sequence[str],
    within_splits: int = 0,
    pooled_splits: int = 8,
) -> dict[str, Any]:
    """Score one lever as live: within each protocol, across both ways, and pooled.

    Parameters
    ----------
    frames : dict
        Exactly two protocols: name → feature table (same windowing and reference).
    lever : Lever
    target : str
        Label column.
    features : sequence of str
        The shared features (used when the lever names none).
    within_splits : int
        Participant folds within a protocol; 0 = leave one participant out.
    pooled_splits : int
        Participant folds of the pooled (both protocols) model.

    Returns
    -------
    dict
        ``"<name> LOSO"``, ``"<a> -> <b>"``, ``"both -> <name>"``: balanced accuracy, AUROC and
        worst participant as live; ``worst_across``: the lowest balanced accuracy among the
        cross-protocol and pooled settings.
    """
    cols = list(lever.features or features)
    tables = {name: prepare(frame, lever, cols) for name, frame in frames.items()}
    (a, fa), (b, fb) = tables.items()
    out: dict[str, Any] = {"lever": dataclasses.asdict(lever)}
    for name, frame in tables.items():
        p, t = grouped_predictions(frame, lever, cols, target, within_splits)
        out[f"{name} LOSO"] = live_scores(frame, p, t, target)
    for (n1, f1), (n2, f2) in (((a, fa), (b, fb)), ((b, fb), (a, fa))):
        p, thr = fit_predict(lever.kind, f1, f2, lever.setup(cols, target))
        out[f"{n1} -> {n2}"] = live_scores(f2, p, thr, target)
    pooled = pool_frames(tables)
    p, t = grouped_predictions(pooled, lever, cols, target, pooled_splits)
    for name in tables:
        sel = pooled["subject"].str.startswith(name + ":").to_numpy()
        part = pooled[sel].reset_index(drop=True)
        out[f"both -> {name}"] = live_scores(part, p[sel], t[sel], target)
    across = [k for k in out if "->" in k]
    out["worst_across"] = min(out[k]["balanced_accuracy"] for k in across)
    return out


def markdown(results: Sequence[dict[str, Any]]) -> str:
    """Lever table: balanced accuracy / AUROC as live per setting.

    Parameters
    ----------
    results : sequence of dict
        :func:`lever_scores` outputs.

    Returns
    -------
    str
    """
    keys = [k for k in results[0] if k not in ("lever", "worst_across")]
    lines = [
        "| lever | " + " | ".join(keys) + " | worst across |",
        "|---" * (len(keys) + 2) + "|",
    ]
    for r in results:
        cells = [f"{r[k]['balanced_accuracy']:.3f} / {r[k]['auroc']:.3f}" for k in keys]
        lines.append(
            f"| {r['lever']['name']} | " + " | ".join(cells) + f" | {r['worst_across']:.3f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: measure :data:`LEVERS` on the cached Stress-Predict and Non-EEG tables."""
    from affectstream.models.crossprotocol import shared_frames

    parser = argparse.ArgumentParser(prog="python -m affectstream.models.levers")
    parser.add_argument("--data-a", default="../shared/data/stress-predict")
    parser.add_argument("--data-b", default="../shared/data/noneeg")
    parser.add_argument("--cache-dir", default=".affectstream/cache")
    parser.add_argument("--only", nargs="*", help="lever names to run (default all)")
    parser.add_argument("--out", help="write the JSON results here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s")
    frames, features, _ = shared_frames(
        {"stress-predict": args.data_a, "noneeg": args.data_b},
        baseline_seconds=BASELINE_SECONDS,
        cache_dir=Path(args.cache_dir),
    )
    results = []
    for lever in LEVERS:
        if args.only and lever.name not in args.only:
            continue
        logger.info("lever %s", lever.name)
        results.append(lever_scores(frames, lever, features=features))
        logger.info("%s", json.dumps(results[-1], default=str))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2, default=str))
    sys.stdout.write(markdown(results) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
