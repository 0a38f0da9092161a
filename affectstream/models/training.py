"""End-to-end runs behind ``affectstream train`` and ``affectstream evaluate``."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from affectstream.errors import ConfigError
from affectstream.models.bundle import ModelBundle, save_bundle
from affectstream.models.card import Caveat
from affectstream.models.card import model_card as model_card
from affectstream.models.crossprotocol import COMMON_RATE
from affectstream.models.datasets import Recording, load_dataset
from affectstream.models.estimators import SVM_MAX_TRAIN_ROWS as SVM_MAX_TRAIN_ROWS
from affectstream.models.estimators import AffectClassifier
from affectstream.models.evaluation import Progress as Progress
from affectstream.models.evaluation import evaluate_frame as evaluate_frame
from affectstream.models.evaluation import plot_report
from affectstream.models.evaluation import score_bundle as score_bundle
from affectstream.models.feature_sets import feature_set, select_features
from affectstream.models.features import add_context_features, protocol_features
from affectstream.models.scoring import scored_subjects
from affectstream.signal.columns import feature_columns

# evaluate_frame, score_bundle, model_card and SVM_MAX_TRAIN_ROWS moved to their own
# modules; they stay importable from here for the CLI and older callers.

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatasetSettings:
    """How a dataset is windowed and which target it labels.

    ``line_freq`` is the mains frequency (Hz) of the recordings' notch filters.
    """

    target: str
    window: float
    step: float
    baseline_seconds: float
    description: str
    modalities: tuple[str, ...]
    normalization: str = "running"
    caveats: tuple[str | Caveat, ...] = ()
    target_balanced_accuracy: float | None = None
    context_seconds: float = 0.0
    line_freq: float = 50.0


#: Where each wrist protocol's 1-Hz heart rate (the ``hr`` stream) comes from.
HR_SOURCES = {
    "stress-predict": "the E4's HR.csv (computed by the device from its BVP)",
    "noneeg": "a finger pulse oximeter",
    "wesad-e4": "the E4's HR.csv (computed by the device from its BVP)",
}

#: Windowing per dataset. EEG sessions are short (eegmat: 60 s of arithmetic), hence 10-s
#: windows; the wearable datasets use the signal layer's 60 s / 5 s default.
#: ``baseline_seconds``: the rest period at session start used as the participant's reference
#: (``baseline``) or as the warm-up of the running statistics (``running``); never scored.
#: Stress-Predict's protocol starts with at least 552 s of rest for every participant.
#: ``context_seconds``: also give the model the mean of each feature over the participant's
#: windows ending in the last that many seconds (:class:`~affectstream.models.features.
#: ContextMean`; causal). Stress blocks last minutes, one 60-s window sees one.
DATASET_SETTINGS: dict[str, DatasetSettings] = {
    "stress-predict": DatasetSettings(
        "arousal",
        60.0,
        5.0,
        480.0,
        "stress tasks (1) vs baseline/relaxation (0), Empatica E4",
        ("ppg", "eda", "temp", "acc"),
        caveats=(
            Caveat(
                "HRV comes from the wrist BVP (E4 IBI is too sparse to use); wrist-PPG HRV is "
                "noisy, so most of the signal is EDA, heart rate, movement and temperature.",
                frozenset({"hrv"}),
            ),
            Caveat(
                "The stress tasks include talking (interview): part of what the model sees is "
                "speech-related movement, not stress alone.",
                frozenset({"acc"}),
            ),
            Caveat(
                "The stress tasks include hyperventilation, which moves heart rate and EDA by "
                "breathing, not by stress alone.",
                frozenset({"hr", "hrv", "eda"}),
            ),
            "Relaxation after a task is labelled 0 while the body is still recovering.",
            "The 120-s context span was picked among a few variants after seeing their "
            "leave-one-subject-out scores, which flatters the number above; docs/models.md "
            "gives the nested estimate (span chosen inside each training fold).",
        ),
        target_balanced_accuracy=0.80,
        context_seconds=120.0,
    ),
    "noneeg": DatasetSettings(
        "arousal",
        60.0,
        5.0,
        240.0,
        "cognitive and emotional stress (1) vs relaxation (0), Affectiva Q wrist + oximeter",
        ("eda", "temp", "acc", "hr"),
        caveats=(
            "Physical stress (walking/jogging) and the ~40-s emotional cue are not scored.",
            Caveat(
                "Heart rate comes from a finger pulse oximeter at 1 Hz; there is no BVP or IBI.",
                frozenset({"hr", "hrv"}),
            ),
            "The phase order is the same for everyone, so the protocol clock is informative.",
        ),
    ),
    "wesad-e4": DatasetSettings(
        "arousal",
        60.0,
        5.0,
        240.0,
        "TSST stress (1) vs baseline (0), Empatica E4 export with SAM per condition",
        ("ppg", "eda", "temp", "acc", "hr"),
    ),
    "eegmat": DatasetSettings(
        "arousal",
        10.0,
        2.0,
        60.0,
        "mental arithmetic (1) vs rest (0), Muse-like EEG channels",
        ("eeg",),
        # z against the participant's own rest: a headband's amplitudes differ from a cap's.
        "baseline_z",
        caveats=(
            "Muse-like channels are approximations: AF7 = mean(Fp1, F7), AF8 = mean(Fp2, F8), "
            "TP9 = T5, TP10 = T6 of a 10-20 cap with its own reference, not a Muse headband.",
            "Rest always precedes arithmetic in eegmat, so slow drifts over the session "
            "(electrodes, fatigue) are confounded with the task; the reference is the first "
            "60 s of rest.",
            "Arithmetic vs rest is cognitive load; treat it as arousal/workload, not emotion.",
            "baseline_z was chosen over baseline after comparing both on these leave-one-"
            "subject-out scores (not nested): pooled 0.808 vs 0.785 but worst participant "
            "0.400 vs 0.538 (a 60-s rest gives a noisy spread); it was kept because a "
            "headband's amplitudes differ from the cap's (docs/models.md, Muse-like EEG).",
        ),
    ),
    "wesad": DatasetSettings(
        "arousal",
        60.0,
        5.0,
        240.0,
        "TSST stress (1) vs baseline (0)",
        ("ppg", "eda", "temp", "acc"),
    ),
    "deap": DatasetSettings(
        "valence", 10.0, 2.0, 0.0, "self-reported valence > 5 per trial", ("eeg", "ppg")
    ),
    "synthetic": DatasetSettings(
        "arousal", 60.0, 5.0, 240.0, "synthetic generator", ("rr", "eda", "temp", "acc", "eeg")
    ),
}


def build_features(
    dataset: str,
    data: Path | str,
    *,
    subjects: Sequence[str] | None = None,
    trust_pickle: bool = False,
    recordings: Sequence[Recording] | None = None,
    settings: DatasetSettings | None = None,
    progress: Progress | None = None,
    common_rate: float | None = None,
    cache_dir: Path | str | None = None,
) -> tuple[pd.DataFrame, list[Recording], DatasetSettings]:
    """Load a dataset and compute its labelled feature table.

    Parameters
    ----------
    dataset : str
        Dataset name.
    data : path
        Dataset folder.
    subjects : sequence of str, optional
        Restrict to these subjects.
    trust_pickle : bool
        Needed for WESAD and DEAP.
    recordings : sequence of Recording, optional
        Use these instead of loading (tests, synthetic data).
    settings : DatasetSettings, optional
        Override the dataset's windowing (e.g. a bundle's).
    progress : callable, optional
        ``progress(stage, done, total)``.
    common_rate : float, optional
        Bring EDA and temperature to this rate first
        (:func:`~affectstream.models.crossprotocol.to_common_rate`).
    cache_dir : path, optional
        Keep the window features (before context columns) as parquet here, keyed by the
        dataset, folder, subjects, windowing, modalities, rate, package version and feature code
        (:mod:`affectstream.models.feature_cache`); a later
        run with the same key reads them instead of recomputing. The recordings are then
        not loaded and the returned list is empty.

    Returns
    -------
    frame, recordings, settings
    """
    from affectstream.models.feature_cache import cache_key, cached_recording_features

    settings = settings or DATASET_SETTINGS[dataset]
    loaded: list[Recording] = list(recordings) if recordings is not None else []

    def tick(done: int, total: int) -> None:
        if progress:
            progress("features", done, total)

    def compute() -> pd.DataFrame:
        if not loaded:
            loaded.extend(load_dataset(dataset, data, subjects, trust_pickle=trust_pickle))
        return protocol_features(
            loaded,
            window=settings.window,
            step=settings.step,
            baseline_seconds=settings.baseline_seconds,
            modalities=settings.modalities,
            common_rate=common_rate,
            line_freq=settings.line_freq,
            progress=tick,
        )

    key = cache_key(
        dataset=dataset,
        data=str(Path(data).resolve()) if recordings is None else "given recordings",
        subjects=sorted(subjects) if subjects else None,
        window=settings.window,
        step=settings.step,
        baseline_seconds=settings.baseline_seconds,
        modalities=sorted(settings.modalities),
        common_rate=common_rate,
        line_freq=settings.line_freq,
    )
    cache = Path(cache_dir) if cache_dir is not None and recordings is None else None
    frame = cached_recording_features(cache, key, compute)
    recordings = loaded
    if settings.context_seconds > 0:
        frame = add_context_features(frame, settings.context_seconds)
    return frame, list(recordings), settings


def bundle_settings(bundle: ModelBundle, dataset: str) -> DatasetSettings:
    """The dataset's settings with the bundle's windowing and reference period.

    Parameters
    ----------
    bundle : ModelBundle
        Loaded bundle.
    dataset : str
        Dataset to score.

    Returns
    -------
    DatasetSettings
    """
    provenance = bundle.meta.get("provenance", {})
    pooled = len(provenance.get("datasets", [])) > 1
    return dataclasses.replace(
        DATASET_SETTINGS[dataset],
        # A bundle trained on pooled protocols reads the modalities they share.
        modalities=(
            tuple(provenance["modalities"])
            if pooled and provenance.get("modalities")
            else DATASET_SETTINGS[dataset].modalities
        ),
        window=float(bundle.meta["window"]["window"]),
        step=float(bundle.meta["window"]["step"]),
        baseline_seconds=float(bundle.meta["normalization"]["baseline_seconds"]),
        normalization=str(bundle.meta["normalization"]["method"]),
        context_seconds=float(bundle.meta.get("context", {}).get("seconds", 0.0)),
        line_freq=float(bundle.meta["window"].get("line_freq", 50.0)),
    )


def training_table(
    datasets: Sequence[str],
    datas: Sequence[Path | str],
    *,
    subjects: Sequence[str] | None = None,
    trust_pickle: bool = False,
    recordings: Sequence[Recording] | None = None,
    line_freq: float | None = None,
    context_candidates: Sequence[float] | None = None,
    progress: Progress | None = None,
    cache_dir: Path | str | None = None,
) -> tuple[pd.DataFrame, list[Recording], DatasetSettings]:
    """The feature table ``train`` fits: one dataset's, or several protocols pooled.

    Several datasets are pooled on what their devices share
    (:func:`~affectstream.models.crossprotocol.shared_frames`: shared modalities, EDA at a
    common rate, the shortest reference period, no context columns unless nested), with
    subjects prefixed ``"<dataset>:"``.

    Parameters
    ----------
    datasets, datas : sequence
        Dataset names and their folders (same length).
    subjects, trust_pickle, recordings, line_freq, context_candidates, progress, cache_dir
        As for :func:`train`.

    Returns
    -------
    frame, recordings, settings
    """
    if len(datasets) != len(datas):
        raise ConfigError(
            f"{len(datasets)} datasets ({', '.join(datasets)}) but {len(datas)} --data "
            "folders: give one folder per dataset, in the same order."
        )
    base = DATASET_SETTINGS[datasets[0]]
    if line_freq is not None:
        base = dataclasses.replace(base, line_freq=float(line_freq))
    if context_candidates:
        base = dataclasses.replace(base, context_seconds=0.0)
    if len(datasets) == 1:
        return build_features(
            datasets[0],
            datas[0],
            subjects=subjects,
            trust_pickle=trust_pickle,
            recordings=recordings,
            settings=base,
            progress=progress,
            cache_dir=cache_dir,
        )
    from affectstream.models.crossprotocol import SHARED_MODALITIES, pool_frames, shared_frames

    frames, shared, reference = shared_frames(
        dict(zip(datasets, datas, strict=True)),
        cache_dir=cache_dir,
        trust_pickle=trust_pickle,
        subjects=subjects,
        progress=progress,
    )
    pooled = pool_frames(frames)
    pooled = pooled.drop(columns=[c for c in feature_columns(pooled) if c not in shared])
    settings = dataclasses.replace(
        base,
        baseline_seconds=reference,
        modalities=SHARED_MODALITIES,
        context_seconds=0.0,
        description="pooled: " + "; ".join(DATASET_SETTINGS[d].description for d in datasets),
        caveats=(
            f"Trained on {' + '.join(datasets)} pooled, on the features both devices give "
            f"({', '.join(SHARED_MODALITIES)}; EDA and temperature averaged to "
            f"{COMMON_RATE:g} Hz, as live sessions average them for this model).",
            "Validated on: participants held out of the pooled protocols (the evaluation "
            "below), and, as a recipe, trained on one protocol and scored on the other "
            "(docs/models.md, levers). Not validated on: any third protocol, device or "
            "population, or a live session; both protocols are lab stress tasks of healthy "
            "adults against rest.",
            Caveat(
                "Heart rate (`hr_mean`) is the mean over the window of a 1-Hz heart-rate "
                "stream: "
                + ", ".join(f"{d}: {HR_SOURCES[d]}" for d in datasets if d in HR_SOURCES)
                + "; live, a heart-rate strap's or a replayed E4's 1-Hz heart rate (not RR "
                "intervals or ECG).",
                frozenset({"hr"}),
            ),
            # The protocols' caveats, each naming its protocol; the card drops those about
            # feature families the bundle does not use. The context span is not pooled.
            *(
                Caveat(f"{d}: {c}", c.families) if isinstance(c, Caveat) else f"{d}: {c}"
                for d in datasets
                for c in DATASET_SETTINGS[d].caveats
                if "context span" not in str(c)
            ),
        ),
        target_balanced_accuracy=None,
    )
    return pooled, [], settings


def train(
    dataset: str | Sequence[str],
    data: Path | str | Sequence[Path | str],
    out: Path | str,
    *,
    name: str | None = None,
    normalization: str | None = None,
    n_splits: int | None = None,
    subjects: Sequence[str] | None = None,
    trust_pickle: bool = False,
    recordings: Sequence[Recording] | None = None,
    command: str = "",
    seed: int = 0,
    line_freq: float | None = None,
    progress: Progress | None = None,
    context_candidates: Sequence[float] | None = None,
    cache_dir: Path | str | None = None,
    features: str | None = None,
    monotone: bool = False,
) -> tuple[Path, dict[str, Any]]:
    """Evaluate subject-wise, fit both models on everyone, and write a bundle with its card.

    Parameters
    ----------
    dataset : str or sequence of str
        Dataset name; several are pooled (:func:`training_table`).
    data : path or sequence of path
        Dataset folder(s), one per dataset.
    out : path
        Bundle folder to write.
    name : str, optional
        Bundle name; default the folder name.
    normalization : str, optional
        Per-participant normalisation; default the dataset's.
    n_splits : int, optional
        GroupKFold splits for the card's evaluation; default leave-one-subject-out.
    subjects : sequence of str, optional
        Restrict to these subjects.
    trust_pickle : bool
        Needed for WESAD and DEAP.
    recordings : sequence of Recording, optional
        Use these instead of loading.
    command : str
        Command line, for provenance.
    seed : int
        Seed.
    line_freq : float, optional
        Mains frequency (50 or 60 Hz) of the recordings' notch filters; default the
        dataset's (:attr:`DatasetSettings.line_freq`). Written into the bundle.
    progress : callable, optional
        ``progress(stage, done, total)``.
    context_candidates : sequence of float, optional
        Choose the context span among these: inside each training fold for the card's
        evaluation (nested), then by inner CV over all participants for the bundle.
    cache_dir : path, optional
        Feature cache (see :func:`build_features`).
    features : str, optional
        A named feature subset (:data:`~affectstream.models.feature_sets.FEATURE_SETS`);
        default every feature the data give.
    monotone : bool
        Monotone LightGBM (:class:`~affectstream.models.estimators.AffectClassifier`).

    Returns
    -------
    path, report
    """
    started = time.perf_counter()
    datasets = [dataset] if isinstance(dataset, str) else list(dataset)
    datas = [data] if isinstance(data, (str, Path)) else list(data)
    frame, recs, settings = training_table(
        datasets,
        datas,
        subjects=subjects,
        trust_pickle=trust_pickle,
        recordings=recordings,
        line_freq=line_freq,
        context_candidates=context_candidates,
        progress=progress,
        cache_dir=cache_dir,
    )
    subset = feature_set(features) if features else None
    if subset is not None:
        frame = select_features(frame, subset)
    dataset = "+".join(datasets)
    normalization = normalization or settings.normalization
    report = evaluate_frame(
        frame,
        settings,
        normalization=normalization,
        n_splits=n_splits,
        seed=seed,
        progress=progress,
        context_candidates=context_candidates,
        monotone=monotone,
    )
    report.pop("_predictions")
    report["feature_set"] = features or "all"
    if context_candidates:
        from affectstream.models.nested import select_context, with_context

        everyone = scored_subjects(frame, settings.target)
        span, inner = select_context(
            {float(c): with_context(frame, float(c)) for c in context_candidates},
            everyone,
            target=settings.target,
            normalization=normalization,
            seed=seed,
            monotone=monotone,
        )
        report["context_selection"] = {"chosen_seconds": span, "inner_balanced_accuracy": inner}
        frame = with_context(frame, span)
        settings = dataclasses.replace(settings, context_seconds=span)
        report["context_seconds"] = span
    if progress:
        progress("final fit", 0, 2)
    fit_start = time.perf_counter()
    lgb_model = AffectClassifier(
        "lightgbm",
        settings.target,
        normalization=normalization,
        random_state=seed,
        monotone=monotone,
    ).fit(frame)
    lgb_seconds = time.perf_counter() - fit_start
    fit_start = time.perf_counter()
    svm_model = AffectClassifier(
        "svm",
        settings.target,
        normalization=normalization,
        features=lgb_model.features_,
        max_train_rows=SVM_MAX_TRAIN_ROWS,
        random_state=seed,
    ).fit(frame)
    svm_seconds = time.perf_counter() - fit_start
    if progress:
        progress("final fit", 2, 2)
    out = Path(out)
    name = name or out.name
    train_subjects = scored_subjects(frame, settings.target)
    if not recs:  # features came from the cache: read the files again for provenance
        for each, folder in zip(datasets, datas, strict=True):
            recs += load_dataset(each, folder, subjects, trust_pickle=trust_pickle)
    files = sorted(
        {
            Path(f).name if "stress-predict" not in datasets else str(Path(*Path(f).parts[-2:]))
            for r in recs
            for f in r.files
        }
    )
    provenance = {
        "dataset": dataset,
        "datasets": datasets,
        "data": str(datas[0]) if len(datas) == 1 else [str(d) for d in datas],
        "feature_set": features or "all",
        "monotone": monotone,
        # How the features were made, so `evaluate --model` rebuilds them the same way.
        "modalities": list(settings.modalities),
        "common_rate": COMMON_RATE if len(datasets) > 1 else None,
        "subjects": train_subjects,
        "files": files,
        "command": command,
        "n_windows": len(frame),
        "n_train_windows": lgb_model.n_train_windows_,
        "fit_seconds": {"lightgbm": lgb_seconds, "svm": svm_seconds},
    }
    elapsed = time.perf_counter() - started
    card = model_card(
        name=name,
        dataset=dataset,
        settings=settings,
        report=report,
        subjects=train_subjects,
        n_train_windows=lgb_model.n_train_windows_,
        features=lgb_model.features_,
        command=command,
        normalization=normalization,
        elapsed=elapsed,
    )
    path = save_bundle(
        out,
        name=name,
        lightgbm=lgb_model,
        svm=svm_model,
        window={"window": settings.window, "step": settings.step, "line_freq": settings.line_freq},
        baseline_seconds=settings.baseline_seconds,
        context_seconds=settings.context_seconds,
        provenance=provenance,
        evaluation=report,
        card=card,
    )
    return path, report


def write_plot(report: dict[str, Any], path: Path, title: str) -> Path:
    """Write the evaluation PNG for a report from :func:`evaluate_frame` or :func:`score_bundle`.

    Parameters
    ----------
    report : dict
    path : path
    title : str

    Returns
    -------
    Path
    """
    return plot_report(report["models"], Path(path), title)
