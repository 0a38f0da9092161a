"""``affectstream evaluate``: subject-wise cross-validation, or score an existing bundle."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from affectstream.cli._output import add_json_argument, emit_result, progress_bars, say
from affectstream.cli.train import add_dataset_arguments
from affectstream.models._names import DATASETS

if TYPE_CHECKING:  # the models load only when the command runs, so --help stays fast
    from affectstream.models.training import DatasetSettings


def register(subparsers: Any) -> None:
    """Add ``evaluate`` to ``subparsers`` (see :mod:`affectstream.cli`)."""
    parser = subparsers.add_parser(
        "evaluate",
        help="subject-wise cross-validation, or score a bundle on other participants",
        description=(
            "Without --model: cross-validate LightGBM and the SVM on a dataset with subjects "
            "held out (leave one subject out, or --folds), with a shuffled-label chance check. "
            "With --model: score that bundle unchanged on the dataset's participants. "
            "Example: affectstream evaluate --dataset stress-predict --data "
            "../shared/data/stress-predict --report report.json --plot report.png. "
            "See docs/models.md."
        ),
    )
    add_dataset_arguments(parser)
    parser.add_argument(
        "--model",
        help="bundle folder or shipped bundle name: score it unchanged instead of cross-validating",
    )
    parser.add_argument(
        "--test-dataset",
        choices=DATASETS,
        help="cross-protocol: train on --dataset, score unchanged on this one, and back",
    )
    parser.add_argument("--test-data", help="folder of --test-dataset")
    parser.add_argument(
        "--target",
        choices=("arousal", "valence"),
        default="arousal",
        help="valence: score the per-person valence calibration on each participant's rated "
        "episodes (leave one episode out vs their own mean rating; wesad-e4, synthetic)",
    )
    parser.add_argument("--no-chance", action="store_true", help="skip the shuffled-label check")
    parser.add_argument(
        "--shuffles",
        type=int,
        default=5,
        help="--target valence: shuffled-rating refits per person in the chance check",
    )
    parser.add_argument("--report", help="write the full JSON report here")
    parser.add_argument("--plot", help="write the PNG plot here")
    parser.add_argument(
        "--allow-version-mismatch",
        action="store_true",
        help="score a bundle written by another affectstream version",
    )
    add_json_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the evaluation and print one JSON object last."""
    from affectstream.cli._output import _jsonable
    from affectstream.models.bundle import load_bundle
    from affectstream.models.card import format_score
    from affectstream.models.evaluation import evaluate_frame, score_bundle
    from affectstream.models.training import (
        DATASET_SETTINGS,
        build_features,
        bundle_settings,
        write_plot,
    )

    if args.target == "valence":
        return _valence(args)
    if args.test_dataset:
        return _cross_protocol(args)
    with progress_bars() as progress:
        if args.model:
            bundle = load_bundle(args.model, allow_version_mismatch=args.allow_version_mismatch)
            # Features exactly as the bundle was trained: its windows and reference period.
            frame, _, settings = build_features(
                args.dataset,
                args.data,
                subjects=args.subjects,
                trust_pickle=args.trust_pickle,
                settings=_with_line_freq(bundle_settings(bundle, args.dataset), args.line_freq),
                progress=progress,
                cache_dir=args.cache_dir,
                # Pooled bundles were trained on EDA/temperature at a common rate.
                common_rate=bundle.common_rate,
            )
            report = score_bundle(bundle, frame, dataset=args.dataset)
            report["model"] = bundle.model_id
            report["mode"] = "bundle"
        else:
            settings = _with_line_freq(DATASET_SETTINGS[args.dataset], args.line_freq)
            if args.nested_context:  # the span is chosen per fold: no fixed context columns
                settings = dataclasses.replace(settings, context_seconds=0.0)
            frame, _, settings = build_features(
                args.dataset,
                args.data,
                subjects=args.subjects,
                trust_pickle=args.trust_pickle,
                settings=settings,
                progress=progress,
                cache_dir=args.cache_dir,
            )
            report = evaluate_frame(
                frame,
                settings,
                normalization=args.normalization,
                n_splits=args.folds,
                chance=not args.no_chance,
                progress=progress,
                context_candidates=args.nested_context,
            )
            report.pop("_predictions")
            report["mode"] = "cross-validation"
    report["dataset"] = args.dataset
    if args.report:
        Path(args.report).write_text(json.dumps(_jsonable(report), indent=1, sort_keys=True))
        say(f"report written to {args.report}")
    if args.plot:
        write_plot(report, Path(args.plot), f"{args.dataset}: {report.get('mode')}")
        say(f"plot written to {args.plot}")
    summary = {k: v for k, v in report.items() if k != "models"}
    summary["models"] = {
        kind: {
            k: res[k]
            for k in (
                "balanced_accuracy",
                "macro_f1",
                "auroc",
                "brier",
                "spread",
                "confusion_matrix",
            )
        }
        for kind, res in report["models"].items()
    }
    summary["baselines"] = baseline_summary(report["baselines"])
    for kind, scores in summary["models"].items():
        say(
            f"{kind}: balanced accuracy {format_score(scores['balanced_accuracy'])}, "
            f"macro F1 {format_score(scores['macro_f1'])}, AUROC {format_score(scores['auroc'])}"
        )
    emit_result(args, summary)
    return 0


def baseline_summary(baselines: dict[str, Any]) -> dict[str, Any]:
    """The headline of a baselines report: each scorer's numbers and interval, and margins.

    Parameters
    ----------
    baselines : dict
        From :func:`affectstream.models.baselines.protocol_report`.

    Returns
    -------
    dict
    """
    out: dict[str, Any] = {}
    for mode in ("windowed", "as_live"):
        out[mode] = {
            name: {
                "balanced_accuracy": res["balanced_accuracy"],
                "auroc": res["auroc"],
                "ci95_balanced_accuracy": res["ci"]["balanced_accuracy"],
                "ci95_auroc": res["ci"]["auroc"],
                "min_subject_balanced_accuracy": res["min_subject_balanced_accuracy"],
            }
            for name, res in baselines.get(mode, {}).items()
        }
    out["margins_as_live"] = baselines.get("margins_as_live", {})
    return out


def _cross_protocol(args: argparse.Namespace) -> int:
    """Train on ``--dataset``, score on ``--test-dataset``, and the other way round."""
    from affectstream.cli._output import _jsonable
    from affectstream.errors import ConfigError
    from affectstream.models.crossprotocol import run_cross_protocol

    if not args.test_data:
        raise ConfigError("--test-dataset needs --test-data pointing at its folder.")
    with progress_bars() as progress:
        report = run_cross_protocol(
            args.dataset,
            args.data,
            args.test_dataset,
            args.test_data,
            normalization=args.normalization or "running",
            cache_dir=args.cache_dir,
            trust_pickle=args.trust_pickle,
            progress=progress,
        )
    if args.report:
        Path(args.report).write_text(json.dumps(_jsonable(report), indent=1, sort_keys=True))
        say(f"report written to {args.report}")
    summary = {k: v for k, v in report.items() if "->" not in k and k != "pooled"}
    summary["pooled"] = {
        name: {
            "balanced_accuracy": res["balanced_accuracy"],
            "auroc": res["auroc"],
            "n_subjects": res["n_subjects"],
            "baselines": baseline_summary(res["baselines"]),
        }
        for name, res in report["pooled"].items()
        if name != "cv"
    }
    for direction in (k for k in report if "->" in k):
        res = report[direction]
        summary[direction] = {
            "balanced_accuracy": res["balanced_accuracy"],
            "auroc": res["auroc"],
            "n_subjects": res["n_subjects"],
            "svm": {k: res["models"]["svm"][k] for k in ("balanced_accuracy", "auroc")},
            "baselines": baseline_summary(res["baselines"]),
        }
    emit_result(args, summary)
    return 0


def _valence(args: argparse.Namespace) -> int:
    """Score the personal valence calibration on every participant of the dataset."""
    from affectstream.cli._output import _jsonable
    from affectstream.errors import ConfigError
    from affectstream.models.training import DATASET_SETTINGS, build_features
    from affectstream.models.valence_eval import evaluate_personal_valence

    if args.dataset not in ("wesad-e4", "synthetic") or args.model or args.test_dataset:
        raise ConfigError(
            "--target valence scores the personal calibration on datasets with ratings per "
            "episode: --dataset wesad-e4 or synthetic, without --model/--test-dataset."
        )
    if args.shuffles < 0:
        raise ConfigError(f"--shuffles must be 0 or more, got {args.shuffles}.")
    settings = _with_line_freq(DATASET_SETTINGS[args.dataset], args.line_freq)
    with progress_bars() as progress:
        # No cache: the rated episodes come from the recordings themselves.
        frame, recordings, settings = build_features(
            args.dataset, args.data, subjects=args.subjects, settings=settings, progress=progress
        )
    report = evaluate_personal_valence(frame, recordings, settings.window, shuffles=args.shuffles)
    report["dataset"] = args.dataset
    report["window"] = settings.window
    if args.report:
        Path(args.report).write_text(json.dumps(_jsonable(report), indent=1, sort_keys=True))
        say(f"report written to {args.report}")
    for key in ("calibration", "diagnostic"):
        res = report[key]
        if res.get("n_people"):
            say(
                f"{key}: {res['n_calibrated']}/{res['n_people']} people calibrated; held-out "
                f"error {res['mae']:.2f} vs own mean {res['mae_own_mean']:.2f} SAM points"
            )
        else:
            say(f"{key}: nobody's episodes allow it")
    chance = report["chance"]
    say(
        f"chance ({chance['shuffled_fits']} shuffled-rating fits): "
        f"{chance['false_calibration_rate']:.2f} pass "
        f"({chance['false_calibration_rate_interval_only']:.2f} by the interval alone)"
    )
    emit_result(args, {k: v for k, v in report.items() if k != "people"})
    return 0


def _with_line_freq(settings: DatasetSettings, line_freq: float | None) -> DatasetSettings:
    """``settings`` with the mains frequency given on the command line, if any."""
    return (
        settings if line_freq is None else dataclasses.replace(settings, line_freq=float(line_freq))
    )
