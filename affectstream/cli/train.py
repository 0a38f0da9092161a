"""``affectstream train``: fit both models on a dataset and write a bundle with its card."""

from __future__ import annotations

import argparse
import shlex
from typing import Any

from affectstream.cli._line_freq import add_line_freq_argument
from affectstream.cli._output import add_json_argument, emit_result, say


def _folds(text: str) -> int:
    """argparse type of ``--folds``: an int of at least 2 (one fold has no test subjects)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 2:
        raise argparse.ArgumentTypeError(
            f"{value} folds cannot cross-validate: give 2 or more, or omit --folds to leave "
            "one subject out"
        )
    return value


def _dataset_list(text: str) -> list[str]:
    """argparse type of ``train --dataset``: one dataset name, or several joined by commas."""
    from affectstream.models._names import DATASETS

    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in DATASETS]
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"unknown dataset {', '.join(unknown) or repr(text)}: choose from "
            f"{', '.join(DATASETS)} (several joined by commas to pool them)"
        )
    if len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"dataset named twice in {text!r}")
    return names


def add_dataset_arguments(parser: argparse.ArgumentParser, *, pooled: bool = False) -> None:
    """Add the options shared by ``train`` and ``evaluate``: which data, how to normalise.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The sub-command's parser.
    pooled : bool
        ``--dataset`` may name several datasets (comma-separated) and ``--data`` then takes
        one folder per dataset (``train``).
    """
    from affectstream.models._names import DATASETS, NORMALIZATIONS

    if pooled:
        parser.add_argument(
            "--dataset",
            required=True,
            type=_dataset_list,
            metavar="NAME[,NAME...]",
            help=(
                f"which dataset layout --data holds ({', '.join(DATASETS)}; see "
                "docs/models.md); several joined by commas are pooled on the features "
                "their devices share"
            ),
        )
        parser.add_argument(
            "--data", required=True, nargs="+", help="dataset folder, one per dataset"
        )
    else:
        parser.add_argument(
            "--dataset",
            required=True,
            choices=DATASETS,
            help="which dataset layout --data holds (see docs/models.md for each)",
        )
        parser.add_argument("--data", required=True, help="dataset folder")
    parser.add_argument(
        "--normalization",
        default=None,
        choices=NORMALIZATIONS,
        help="per-participant normalisation (default: the dataset's; see docs/models.md)",
    )
    parser.add_argument(
        "--folds",
        type=_folds,
        default=None,
        help="GroupKFold splits, at least 2 (default: leave one subject out)",
    )
    parser.add_argument("--subjects", nargs="*", help="restrict to these subjects")
    add_line_freq_argument(
        parser, " of the recordings, Hz (default: the dataset's, or the bundle's)"
    )
    parser.add_argument(
        "--nested-context",
        nargs="+",
        type=float,
        metavar="SECONDS",
        help="choose the context span among these (0 = none) inside each training fold",
    )
    parser.add_argument(
        "--cache-dir",
        help="keep window features as parquet here and reuse them (e.g. .affectstream/cache)",
    )
    parser.add_argument(
        "--trust-pickle",
        action="store_true",
        help="allow loading pickle-based datasets (WESAD, DEAP): only for trusted files",
    )


def register(subparsers: Any) -> None:
    """Add ``train`` to ``subparsers`` (see :mod:`affectstream.cli`)."""
    parser = subparsers.add_parser(
        "train",
        help="train LightGBM + SVM on a dataset and write a model bundle",
        description=(
            "Extract windowed features from a dataset, evaluate subject-wise, fit LightGBM and "
            "an SVM on every subject and write a model bundle (models, feature list, window "
            "settings, model card) to --out, usable as --model by record, replay and demo. "
            "Example: affectstream train --dataset stress-predict --data "
            "../shared/data/stress-predict --out ./my-bundle. See docs/models.md."
        ),
    )
    add_dataset_arguments(parser, pooled=True)
    from affectstream.models.feature_sets import FEATURE_SETS

    parser.add_argument(
        "--features",
        choices=tuple(FEATURE_SETS),
        default=None,
        help="named feature subset (default all; see docs/models.md, feature sets)",
    )
    parser.add_argument(
        "--monotone",
        action="store_true",
        help="LightGBM output may only rise with tonic/phasic EDA, SCR rate and heart rate",
    )
    parser.add_argument("--out", required=True, help="bundle folder to write")
    parser.add_argument("--name", help="bundle name (default: the folder name)")
    add_json_argument(parser)
    parser.set_defaults(func=run)


def _command_line(args: argparse.Namespace) -> str:
    """The command as typed, rebuilt from the parsed options (for the model card)."""
    parts = ["affectstream", "train", "--dataset", ",".join(args.dataset), "--data", *args.data]
    parts += ["--out", args.out]
    if args.features:
        parts += ["--features", args.features]
    if args.monotone:
        parts.append("--monotone")
    if args.name:
        parts += ["--name", args.name]
    if args.normalization:
        parts += ["--normalization", args.normalization]
    if args.folds:
        parts += ["--folds", str(args.folds)]
    if args.subjects:
        parts += ["--subjects", *args.subjects]
    if args.trust_pickle:
        parts.append("--trust-pickle")
    if args.nested_context:
        parts += ["--nested-context", *(f"{c:g}" for c in args.nested_context)]
    return shlex.join(parts)


def run(args: argparse.Namespace) -> int:
    """Train, evaluate and write the bundle; print a JSON summary last."""
    from affectstream.cli._output import progress_bars
    from affectstream.models.card import format_score
    from affectstream.models.training import train

    command = _command_line(args)
    with progress_bars() as progress:
        path, report = train(
            args.dataset,
            args.data,
            args.out,
            name=args.name,
            normalization=args.normalization,
            n_splits=args.folds,
            subjects=args.subjects,
            trust_pickle=args.trust_pickle,
            line_freq=args.line_freq,
            command=command,
            progress=progress,
            context_candidates=args.nested_context,
            cache_dir=args.cache_dir,
            features=args.features,
            monotone=args.monotone,
        )
    say(f"bundle written to {path}")
    say(
        f"subject-wise {report['cv']}: balanced accuracy "
        f"{format_score(report['balanced_accuracy'])}, "
        f"AUROC {format_score(report['auroc'])} ({report['n_subjects']} subjects, "
        f"{report['n_windows']} windows)"
    )
    summary = {
        k: report[k]
        for k in ("balanced_accuracy", "macro_f1", "auroc", "brier", "n_subjects", "n_windows")
    }
    summary.update(
        {
            "bundle": str(path),
            "cv": report["cv"],
            "target": report["target"],
            "svm": {
                k: report["models"]["svm"][k] for k in ("balanced_accuracy", "macro_f1", "auroc")
            },
            "chance": report.get("chance"),
        }
    )
    emit_result(args, summary)
    return 0
