"""Subject-wise evaluation: leave-one-subject-out cross-validation, the chance check, and
the scoring of a fixed bundle; the metrics themselves are in :mod:`affectstream.models.scoring`."""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold, LeaveOneGroupOut

from affectstream.errors import ConfigError, ModelError
from affectstream.models.baselines import leave_one_subject_out, protocol_report, with_ensemble
from affectstream.models.estimators import SVM_MAX_TRAIN_ROWS, AffectClassifier
from affectstream.models.scoring import metrics, plot_report, reliability_bins, scored_mask

if TYPE_CHECKING:
    from affectstream.models.bundle import ModelBundle
    from affectstream.models.training import DatasetSettings

__all__ = [
    "CVOptions",
    "Progress",
    "chance_check",
    "cross_validate_by_subject",
    "evaluate_frame",
    "metrics",
    "plot_report",
    "reliability_bins",
    "score_bundle",
    "scored_mask",
    "shuffle_within_subject",
]

logger = logging.getLogger(__name__)

#: ``progress(stage, done, total)``: what a long evaluation or training run reports.
Progress = Callable[[str, int, int], None]


def shuffle_within_subject(frame: pd.DataFrame, target: str, seed: int = 0) -> pd.DataFrame:
    """Permute the scored labels among each subject's own windows (the chance check).

    Parameters
    ----------
    frame : pandas.DataFrame
        Feature table.
    target : str
        Label column.
    seed : int
        Random seed.

    Returns
    -------
    pandas.DataFrame
        A copy whose labels keep each subject's class balance but no link to physiology.
    """
    rng = np.random.default_rng(seed)
    out = frame.copy()
    scored = scored_mask(frame, target)
    y = out[target].to_numpy(dtype=np.float64).copy()
    subjects = out["subject"].to_numpy()
    for s in pd.unique(subjects):
        rows = np.flatnonzero(scored & (subjects == s))
        y[rows] = rng.permutation(y[rows])
    out[target] = y
    return out


def cross_validate_by_subject(
    frame: pd.DataFrame,
    *,
    kind: str = "lightgbm",
    target: str = "arousal",
    normalization: str = "baseline",
    n_splits: int | None = None,
    max_train_rows: int | None = None,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    monotone: bool = False,
) -> dict[str, Any]:
    """Subject-wise cross-validation of one estimator.

    Parameters
    ----------
    frame : pandas.DataFrame
        Feature table of several subjects.
    kind, target, normalization : str
        See :class:`~affectstream.models.estimators.AffectClassifier`.
    n_splits : int, optional
        ``None``: leave one subject out; otherwise ``GroupKFold(n_splits)`` (faster).
    max_train_rows : int, optional
        Thin training windows (see AffectClassifier).
    seed : int
        Seed for the estimator.
    progress : callable, optional
        ``progress(done, total)`` after each fold.
    monotone : bool
        Monotone LightGBM (see :class:`~affectstream.models.estimators.AffectClassifier`).

    Returns
    -------
    dict
        :func:`metrics` plus ``cv``, ``kind``, ``target``, ``normalization``,
        ``train_seconds``, the out-of-fold ``predictions`` frame of the scored windows, and
        (not JSON; pop them) ``oof``: (probability, threshold) for every row of ``frame``,
        and ``folds``: (train subjects, test subjects) per fold.
    """
    scored = scored_mask(frame, target)
    subjects = frame["subject"].astype(str).to_numpy()
    usable = sorted(pd.unique(subjects[scored]))
    if len(usable) < 2:
        raise ModelError(
            f"Subject-wise evaluation needs labelled {target} windows from at least two "
            f"subjects; found {[str(u) for u in usable]}."
        )
    if n_splits is not None and not 2 <= n_splits <= len(usable):
        raise ConfigError(
            f"--folds {n_splits}: subject-wise cross-validation needs 2 to {len(usable)} "
            f"folds here ({len(usable)} subjects with labels); omit it to leave one "
            "subject out."
        )
    splitter: Any = LeaveOneGroupOut() if n_splits is None else GroupKFold(n_splits=n_splits)
    units = np.asarray(usable)
    folds = list(splitter.split(units, groups=units))
    p = np.full(len(frame), np.nan)
    threshold = np.full(len(frame), np.nan)
    train_seconds = 0.0
    for done, (train_idx, test_idx) in enumerate(folds, start=1):
        train_rows = np.isin(subjects, units[train_idx])
        test_rows = np.isin(subjects, units[test_idx])
        start = time.perf_counter()
        model = AffectClassifier(
            kind,
            target,
            normalization=normalization,
            max_train_rows=max_train_rows,
            random_state=seed,
            monotone=monotone,
        ).fit(frame[train_rows])
        train_seconds += time.perf_counter() - start
        test = frame[test_rows]
        p[test_rows] = model.predict_proba(test)[:, 1]
        threshold[test_rows] = model.threshold_
        if progress:
            progress(done, len(folds))
    y = frame[target].to_numpy(dtype=np.float64)
    result = metrics(y[scored].astype(int), p[scored], threshold[scored], subjects[scored])
    result.update(
        {
            "cv": "leave-one-subject-out" if n_splits is None else f"group-{n_splits}-fold",
            "kind": kind,
            "target": target,
            "normalization": normalization,
            "train_seconds": train_seconds,
            "predictions": pd.DataFrame(
                {
                    "subject": subjects[scored],
                    "t_end": frame["t_end"].to_numpy()[scored],
                    "y": y[scored].astype(int),
                    "p": p[scored],
                    "threshold": threshold[scored],
                }
            ),
            "oof": (p, threshold),
            "folds": [(units[tr], units[te]) for tr, te in folds],
        }
    )
    return result


def cross_validate(frame: pd.DataFrame, **kwargs: Any) -> dict[str, Any]:
    """Deprecated name of :func:`cross_validate_by_subject` (it clashed with scikit-learn's).

    Parameters
    ----------
    frame : pandas.DataFrame
    **kwargs
        As in :func:`cross_validate_by_subject`.

    Returns
    -------
    dict
    """
    warnings.warn(
        "affectstream.models.evaluation.cross_validate is now cross_validate_by_subject",
        DeprecationWarning,
        stacklevel=2,
    )
    return cross_validate_by_subject(frame, **kwargs)


class CVOptions(TypedDict, total=False):
    """Options of :func:`cross_validate_by_subject` that :func:`chance_check` passes on."""

    kind: str
    normalization: str
    n_splits: int | None
    max_train_rows: int | None
    monotone: bool


def chance_check(
    frame: pd.DataFrame,
    *,
    target: str = "arousal",
    seed: int = 0,
    **options: Unpack[CVOptions],
) -> dict[str, float]:
    """Run :func:`cross_validate_by_subject` on labels shuffled within subject; expect about 0.5.

    Parameters
    ----------
    frame : pandas.DataFrame
        Feature table.
    target : str
        Label column (shuffled).
    seed : int
        Seed of the shuffle and of the estimator.
    **options
        :class:`CVOptions`, as in :func:`cross_validate_by_subject`.

    Returns
    -------
    dict
        ``balanced_accuracy`` and ``auroc`` of the shuffled run.
    """
    shuffled = shuffle_within_subject(frame, target, seed=seed)
    result = cross_validate_by_subject(shuffled, target=target, seed=seed, **options)
    return {"balanced_accuracy": result["balanced_accuracy"], "auroc": result["auroc"]}


def _fold_progress(progress: Progress | None, stage: str) -> Callable[[int, int], None] | None:
    if progress is None:
        return None
    return lambda done, total: progress(stage, done, total)


def evaluate_frame(
    frame: pd.DataFrame,
    settings: DatasetSettings,
    *,
    normalization: str | None = None,
    n_splits: int | None = None,
    kinds: Sequence[str] = ("lightgbm", "svm"),
    chance: bool = True,
    seed: int = 0,
    progress: Progress | None = None,
    context_candidates: Sequence[float] | None = None,
    monotone: bool = False,
) -> dict[str, Any]:
    """Subject-wise cross-validation of both estimators plus the chance check.

    Parameters
    ----------
    frame : pandas.DataFrame
        Feature table.
    settings : DatasetSettings
        Target and windowing.
    normalization : str, optional
        Per-participant normalisation; default the dataset's (:data:`DATASET_SETTINGS`).
    n_splits : int, optional
        ``None`` for leave-one-subject-out, else GroupKFold.
    kinds : sequence of str
        Estimators to evaluate.
    chance : bool
        Also run the LightGBM chance check (labels shuffled within subject).
    seed : int
        Seed.
    progress : callable, optional
        ``progress(stage, done, total)``.
    context_candidates : sequence of float, optional
        Choose the context span among these inside each training fold
        (:func:`~affectstream.models.nested.nested_cross_validate`); ``frame`` must then
        have no context columns.
    monotone : bool
        Monotone LightGBM (see :class:`~affectstream.models.estimators.AffectClassifier`).

    Returns
    -------
    dict
        Top-level metrics of LightGBM (the primary model), ``models`` with each estimator's
        full results, ``baselines`` (as live, protocol clock, one feature, intervals),
        ``chance``, ``n_subjects``, ``n_windows``.
    """
    normalization = normalization or settings.normalization
    results: dict[str, dict[str, Any]] = {}
    predictions = {}
    oof: dict[str, tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]] = {}
    folds: list[tuple[Any, Any]] = []
    nested: dict[str, dict[str, Any]] = {}
    if context_candidates:
        from affectstream.models.nested import nested_cross_validate

        nested = nested_cross_validate(
            frame,
            context_candidates,
            kinds=kinds,
            target=settings.target,
            normalization=normalization,
            n_splits=n_splits,
            max_train_rows={"svm": SVM_MAX_TRAIN_ROWS},
            seed=seed,
            progress=_fold_progress(progress, "nested cv"),
            monotone=monotone,
        )
    for kind in kinds:
        if nested:
            res = nested[kind]
            oof[kind] = res.pop("oof")
            folds = res.pop("folds")
            results[kind] = res
            continue
        res = cross_validate_by_subject(
            frame,
            kind=kind,
            target=settings.target,
            normalization=normalization,
            n_splits=n_splits,
            max_train_rows=SVM_MAX_TRAIN_ROWS if kind == "svm" else None,
            seed=seed,
            progress=_fold_progress(progress, f"cv {kind}"),
            monotone=monotone,
        )
        predictions[kind] = res.pop("predictions")
        oof[kind] = res.pop("oof")
        folds = res.pop("folds")
        results[kind] = res
    primary = results[kinds[0]]
    report: dict[str, Any] = {
        key: primary[key]
        for key in ("balanced_accuracy", "macro_f1", "auroc", "brier", "n_subjects", "n_windows")
    }
    report.update(
        {
            "primary_model": kinds[0],
            "target": settings.target,
            "cv": primary["cv"],
            "normalization": normalization,
            "window": {
                "window": settings.window,
                "step": settings.step,
                "line_freq": settings.line_freq,
            },
            "baseline_seconds": settings.baseline_seconds,
            "context_seconds": settings.context_seconds,
            "monotone": monotone,
            "models": results,
            "baselines": protocol_report(
                frame, settings.target, with_ensemble(oof), folds, seed=seed
            ),
        }
    )
    if chance:
        if progress:
            progress("chance check", 0, 1)
        report["chance"] = chance_check(
            frame,
            kind=kinds[0],
            target=settings.target,
            normalization=normalization,
            n_splits=n_splits if n_splits is not None else min(5, primary["n_subjects"]),
            seed=seed,
            monotone=monotone,
        )
        if progress:
            progress("chance check", 1, 1)
    report["_predictions"] = predictions
    return report


def score_bundle(
    bundle: ModelBundle,
    frame: pd.DataFrame,
    target: str | None = None,
    dataset: str | None = None,
) -> dict[str, Any]:
    """Score an existing bundle, unchanged, on a labelled feature table.

    Parameters
    ----------
    bundle : ModelBundle
        Loaded bundle.
    frame : pandas.DataFrame
        Feature table of participants the bundle was not trained on.
    target : str, optional
        Label column; default the bundle's target.
    dataset : str, optional
        Dataset name, to flag participants the bundle was trained on.

    Returns
    -------
    dict
        :func:`~affectstream.models.evaluation.metrics` of the LightGBM model at the
        top level, ``models`` for both, and ``trained_on_scored_subjects`` (should be empty).
    """
    target = target or bundle.target
    scored = scored_mask(frame, target)
    if not scored.any():
        raise ModelError(f"No labelled {target} windows outside the reference period to score.")
    provenance = bundle.meta["provenance"]
    overlap: list[str] = []
    pooled = provenance.get("datasets", [])
    if dataset is not None and (provenance.get("dataset") == dataset or dataset in pooled):
        # A pooled bundle names its participants "<dataset>:<subject>".
        prefix = f"{dataset}:" if len(pooled) > 1 else ""
        trained = {str(s).removeprefix(prefix) for s in provenance.get("subjects", [])}
        overlap = sorted(trained & set(map(str, frame["subject"])))
        if overlap:
            logger.warning("Scoring participants the bundle was trained on: %s", overlap)
    z = bundle.normalized(frame)
    p_lgb, p_svm = bundle.predict_normalized(z)
    y = frame[target].to_numpy(dtype=np.float64)[scored].astype(int)
    subjects = frame["subject"].astype(str).to_numpy()[scored]
    thresholds = bundle.meta["thresholds"]
    # The bundle is fixed; the baselines are fitted leave-one-participant-out on these people.
    baselines = protocol_report(
        frame,
        target,
        with_ensemble(
            {
                "lightgbm": (p_lgb, np.full(len(frame), thresholds["lightgbm"])),
                "svm": (p_svm, np.full(len(frame), thresholds["svm"])),
            }
        ),
        leave_one_subject_out(frame, target),
    )
    models = {
        "lightgbm": metrics(y, p_lgb[scored], thresholds["lightgbm"], subjects),
        "svm": metrics(y, p_svm[scored], thresholds["svm"], subjects),
    }
    report = {
        key: models["lightgbm"][key]
        for key in ("balanced_accuracy", "macro_f1", "auroc", "brier", "n_subjects", "n_windows")
    }
    report.update(
        {
            "primary_model": "lightgbm",
            "target": target,
            "models": models,
            "trained_on_scored_subjects": overlap,
            "baselines": baselines,
        }
    )
    return report
