"""Train on one protocol, score unchanged on another, on the features both devices share.

Two wrist protocols differ in device (E4 EDA at 4 Hz vs Affectiva Q at 8 Hz; BVP/IBI vs a
1 Hz oximeter heart rate), in tasks and in timing. A model that learned stress rather than
the protocol should carry across. :func:`cross_protocol` fits LightGBM and the SVM on every
participant of the training protocol, using only feature columns present in both tables,
and scores them on the other protocol with the same as-live scoring, protocol-clock and
one-feature baselines as every evaluation (:mod:`affectstream.models.baselines`).

Feature tables are cached as parquet
(:func:`~affectstream.models.feature_cache.cached_recording_features`, keyed by the settings
and the feature code) so repeated experiments do not recompute them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from affectstream.errors import ModelError
from affectstream.models.baselines import leave_one_subject_out, protocol_report, with_ensemble
from affectstream.models.datasets import Recording
from affectstream.models.estimators import AffectClassifier
from affectstream.models.evaluation import metrics, scored_mask
from affectstream.models.feature_cache import cache_key as cache_key
from affectstream.models.feature_cache import (
    cached_recording_features as cached_recording_features,
)
from affectstream.models.features import protocol_features as protocol_features  # public here
from affectstream.models.scoring import scored_subjects
from affectstream.signal.columns import feature_columns
from affectstream.signal.rate import reduce_block

logger = logging.getLogger(__name__)

#: Modalities both wrist protocols have: EDA, skin temperature, movement, heart rate.
SHARED_MODALITIES = ("eda", "temp", "acc", "hr")
#: The rate EDA and temperature are brought to before features (the E4's 4 Hz).
COMMON_RATE = 4.0
#: A shared feature must be present in at least this share of each table's windows.
MIN_COVERAGE = 0.5


def to_common_rate(recordings: Sequence[Recording], rate: float = COMMON_RATE) -> list[Recording]:
    """Average EDA and temperature down to ``rate`` Hz where they are an integer multiple.

    Parameters
    ----------
    recordings : sequence of Recording
        Sessions.
    rate : float
        Target rate.

    Returns
    -------
    list of Recording
        Copies with ``eda`` / ``temp`` blocks at ``rate`` (block means of ``k`` samples,
        timed at the first sample of each group; :func:`~affectstream.signal.rate.reduce_block`,
        the averaging live sessions run through ``WindowConfig.common_rate``); other blocks
        unchanged.
    """

    return [rec.map_blocks(lambda b: reduce_block(b, rate)) for rec in recordings]


def pool_frames(frames: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Stack feature tables of several datasets, subjects prefixed ``"<dataset>:"``.

    Parameters
    ----------
    frames : mapping of str to pandas.DataFrame
        Dataset name -> its feature table (with a ``subject`` column).

    Returns
    -------
    pandas.DataFrame
        One table with a fresh index; subject ids stay distinct across datasets.
    """
    parts = []
    for name, frame in frames.items():
        part = frame.copy()
        part["subject"] = name + ":" + part["subject"].astype(str)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def shared_features(*frames: pd.DataFrame, min_coverage: float = MIN_COVERAGE) -> list[str]:
    """Feature columns present (non-missing in ``min_coverage`` of windows) in every table.

    Parameters
    ----------
    *frames : pandas.DataFrame
        Feature tables.
    min_coverage : float
        Required share of finite values per table.

    Returns
    -------
    list of str
    """
    common = set(feature_columns(frames[0]))
    for frame in frames[1:]:
        common &= set(feature_columns(frame))
    keep = [
        c
        for c in sorted(common)
        if all(np.isfinite(f[c].to_numpy(dtype=np.float64)).mean() >= min_coverage for f in frames)
    ]
    if not keep:
        raise ModelError(
            "The two datasets share no feature present in at least "
            f"{min_coverage:.0%} of windows; check that both carry EDA, temperature, "
            "movement or heart rate."
        )
    return keep


def cross_protocol(
    train: pd.DataFrame,
    test: pd.DataFrame,
    *,
    target: str = "arousal",
    normalization: str = "running",
    features: Sequence[str] | None = None,
    svm_max_train_rows: int = 3000,
    seed: int = 0,
) -> dict[str, Any]:
    """Fit on every participant of ``train``; score unchanged on every participant of ``test``.

    Parameters
    ----------
    train, test : pandas.DataFrame
        Feature tables of two protocols (same windowing and reference period).
    target : str
        Label column.
    normalization : str
        Per-participant normalisation.
    features : sequence of str, optional
        Default :func:`shared_features` of the two tables.
    svm_max_train_rows : int
        SVM training thinning.
    seed : int
        Seed.

    Returns
    -------
    dict
        Per model :func:`~affectstream.models.evaluation.metrics` on the test protocol
        (``models``), ``baselines`` (as live, protocol clock and one feature fitted
        leave-one-participant-out on the test protocol itself, with intervals and margins),
        ``features`` and the subjects on each side.
    """
    features = list(features) if features is not None else shared_features(train, test)
    scored = scored_mask(test, target)
    if not scored.any():
        raise ModelError(f"The test dataset has no labelled {target} windows to score.")
    y = test[target].to_numpy(dtype=np.float64)
    subjects = test["subject"].astype(str).to_numpy()
    models: dict[str, dict[str, Any]] = {}
    oof: dict[str, tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]] = {}
    for kind in ("lightgbm", "svm"):
        model = AffectClassifier(
            kind,
            target,
            normalization=normalization,
            features=features,
            max_train_rows=svm_max_train_rows if kind == "svm" else None,
            random_state=seed,
        ).fit(train)
        p = model.predict_proba(test)[:, 1]
        models[kind] = metrics(y[scored].astype(int), p[scored], model.threshold_, subjects[scored])
        oof[kind] = (p, np.full(len(test), model.threshold_))
    baselines = protocol_report(
        test, target, with_ensemble(oof), leave_one_subject_out(test, target), seed=seed
    )
    primary = models["lightgbm"]
    return {
        **{k: primary[k] for k in ("balanced_accuracy", "auroc", "n_subjects", "n_windows")},
        "primary_model": "lightgbm",
        "target": target,
        "normalization": normalization,
        "features": features,
        "train_subjects": sorted(map(str, pd.unique(train["subject"]))),
        "test_subjects": sorted(map(str, pd.unique(test["subject"]))),
        "models": models,
        "baselines": baselines,
    }


#: Outer folds of the pooled (both protocols) evaluation; participants of both are split.
POOLED_SPLITS = 8


def pooled_protocols(
    frames: dict[str, pd.DataFrame],
    *,
    target: str = "arousal",
    normalization: str = "running",
    features: Sequence[str] | None = None,
    n_splits: int = POOLED_SPLITS,
    seed: int = 0,
) -> dict[str, Any]:
    """Train on participants of every protocol, score held-out participants of each.

    Participants (prefixed by their dataset) are split by ``GroupKFold(n_splits)``; the
    LightGBM trained on the other folds' participants of all protocols scores each held-out
    participant. Results are reported per protocol with the same baselines as every
    evaluation (fitted leave-one-participant-out within that protocol).

    Parameters
    ----------
    frames : dict
        Dataset name → feature table (same windowing).
    target, normalization : str
        As for the estimators.
    features : sequence of str, optional
        Default :func:`shared_features`.
    n_splits : int
        Outer folds.
    seed : int
        Seed.

    Returns
    -------
    dict
        Dataset name → ``balanced_accuracy``, ``auroc``, ``n_subjects`` and ``baselines``.
    """
    from sklearn.model_selection import GroupKFold

    features = list(features) if features is not None else shared_features(*frames.values())
    pooled = pool_frames(frames)
    subjects = pooled["subject"].to_numpy()
    units = np.asarray(scored_subjects(pooled, target))
    p = np.full(len(pooled), np.nan)
    threshold = np.full(len(pooled), np.nan)
    for tr, te in GroupKFold(n_splits=min(n_splits, units.size)).split(units, groups=units):
        model = AffectClassifier(
            "lightgbm", target, normalization=normalization, features=features, random_state=seed
        ).fit(pooled[np.isin(subjects, units[tr])])
        test = np.isin(subjects, units[te])
        p[test] = model.predict_proba(pooled[test])[:, 1]
        threshold[test] = model.threshold_
    out: dict[str, Any] = {"cv": f"group-{n_splits}-fold over both protocols' participants"}
    for name in frames:
        sel = np.char.startswith(subjects.astype(str), name + ":")
        part = pooled[sel].reset_index(drop=True)
        scored = scored_mask(part, target)
        y = part[target].to_numpy(dtype=np.float64)[scored].astype(int)
        res = metrics(y, p[sel][scored], threshold[sel][scored], part["subject"].to_numpy()[scored])
        out[name] = {
            "balanced_accuracy": res["balanced_accuracy"],
            "auroc": res["auroc"],
            "n_subjects": res["n_subjects"],
            "baselines": protocol_report(
                part,
                target,
                {"lightgbm": (p[sel], threshold[sel])},
                leave_one_subject_out(part, target),
                seed=seed,
            ),
        }
    return out


def shared_frames(
    datasets: Mapping[str, Path | str],
    *,
    baseline_seconds: float | None = None,
    common_rate: float | None = COMMON_RATE,
    cache_dir: Path | str | None = None,
    trust_pickle: bool = False,
    subjects: Sequence[str] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> tuple[dict[str, pd.DataFrame], list[str], float]:
    """Feature tables of several protocols on their shared modalities, windows and reference.

    Every table uses the first dataset's window and step, :data:`SHARED_MODALITIES`, EDA and
    temperature at ``common_rate``, no context columns, and the same reference period.

    Parameters
    ----------
    datasets : mapping of str to path
        Dataset name → folder, in order (the first sets the windowing).
    baseline_seconds : float, optional
        Reference period; default the shortest of the datasets' own.
    common_rate : float or None
        EDA/temperature rate (:func:`to_common_rate`).
    cache_dir : path, optional
        Feature cache folder.
    trust_pickle : bool
        For pickle-based datasets.
    subjects : sequence of str, optional
        Restrict every dataset to these subjects.
    progress : callable, optional
        ``progress(stage, done, total)``.

    Returns
    -------
    frames, features, baseline_seconds
        Name → table; the feature columns every table has (:func:`shared_features`); the
        reference period used.

    Raises
    ------
    ModelError
        When the datasets label different targets.
    """
    import dataclasses

    from affectstream.models.training import DATASET_SETTINGS, build_features

    settings = {name: DATASET_SETTINGS[name] for name in datasets}
    first = next(iter(settings.values()))
    targets = {name: s.target for name, s in settings.items()}
    if len(set(targets.values())) > 1:
        raise ModelError(
            f"These datasets label different targets ({targets}); pooling or crossing "
            "protocols needs the same target."
        )
    reference = baseline_seconds or min(s.baseline_seconds for s in settings.values())
    frames = {}
    for name, data in datasets.items():
        shared = dataclasses.replace(
            settings[name],
            window=first.window,
            step=first.step,
            baseline_seconds=reference,
            modalities=SHARED_MODALITIES,
            context_seconds=0.0,
        )
        frames[name], _, _ = build_features(
            name,
            data,
            subjects=subjects,
            settings=shared,
            common_rate=common_rate,
            cache_dir=cache_dir,
            trust_pickle=trust_pickle,
            progress=progress,
        )
    return frames, shared_features(*frames.values()), reference


def run_cross_protocol(
    dataset_a: str,
    data_a: Path | str,
    dataset_b: str,
    data_b: Path | str,
    *,
    normalization: str = "running",
    baseline_seconds: float | None = None,
    common_rate: float | None = COMMON_RATE,
    cache_dir: Path | str | None = None,
    trust_pickle: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """Cross-protocol evaluation in both directions, on the shared modalities and features.

    Parameters
    ----------
    dataset_a, dataset_b : str
        Dataset names (:data:`~affectstream.models._names.DATASETS`).
    data_a, data_b : path
        Their folders.
    normalization : str
        Per-participant normalisation (the same on both sides).
    baseline_seconds, common_rate, cache_dir, trust_pickle, progress
        As for :func:`shared_frames` (the reference period defaults to the shorter of the
        two datasets' own).

    Returns
    -------
    dict
        ``"A->B"`` and ``"B->A"`` results of :func:`cross_protocol`, ``pooled``
        (:func:`pooled_protocols`: trained on both, held-out participants of each), plus
        the settings.
    """
    from affectstream.models.training import DATASET_SETTINGS

    first = DATASET_SETTINGS[dataset_a]
    frames, features, reference = shared_frames(
        {dataset_a: data_a, dataset_b: data_b},
        baseline_seconds=baseline_seconds,
        common_rate=common_rate,
        cache_dir=cache_dir,
        trust_pickle=trust_pickle,
        progress=progress,
    )
    out: dict[str, Any] = {
        "mode": "cross-protocol",
        "target": first.target,
        "normalization": normalization,
        "baseline_seconds": reference,
        "window": {"window": first.window, "step": first.step},
        "modalities": list(SHARED_MODALITIES),
        "common_rate": common_rate,
        "features": features,
    }
    for train_name, test_name in ((dataset_a, dataset_b), (dataset_b, dataset_a)):
        if progress:
            progress(f"{train_name} -> {test_name}", 0, 1)
        result = cross_protocol(
            frames[train_name],
            frames[test_name],
            target=first.target,
            normalization=normalization,
            features=features,
        )
        result.pop("features")
        out[f"{train_name}->{test_name}"] = result
        if progress:
            progress(f"{train_name} -> {test_name}", 1, 1)
    if progress:
        progress("pooled", 0, 1)
    out["pooled"] = pooled_protocols(
        frames, target=first.target, normalization=normalization, features=features
    )
    if progress:
        progress("pooled", 1, 1)
    return out
