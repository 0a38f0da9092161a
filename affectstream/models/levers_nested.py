"""Levers chosen by nested selection across two protocols, scored as live.

Each :class:`~affectstream.models.lever_variants.Variant` is one recipe (window length,
per-participant input, feature set, model kind, training filter, Non-EEG training
contrast; the pool is :data:`~affectstream.models.lever_variants.VARIANTS`). The selection
metric is the worst of three as-live balanced accuracies: within Stress-Predict (held-out
participants), Stress-Predict → Non-EEG and Non-EEG → Stress-Predict.

**Nesting.** Both protocols' participants are split into :data:`OUTER_SPLITS` folds (each
fold holds out about a quarter of each protocol). Inside an outer fold only the remaining
participants are used to choose: every variant is scored by the same three numbers on them
(Stress-Predict within by ``GroupKFold(3)``, the two directions train on one protocol's
remaining participants and score the other's), and the variant with the best worst is
picked. The outer numbers then come from the picked variant only: fitted on the remaining
Stress-Predict participants it scores the held-out Stress-Predict participants (within) and
the held-out Non-EEG participants (SP → Non-EEG); fitted on the remaining Non-EEG
participants it scores the held-out Stress-Predict ones (Non-EEG → SP). No held-out
participant influences any choice. Every variant's own outer numbers (the same fits, not
nested) are reported beside it for the table.

Run: ``python -m affectstream.models.levers_nested --cache-dir .affectstream/cache --work
levers4 --out levers4.json`` (features for the 30/60/120-s windows come from the feature
cache; each variant's predictions are kept in ``--work`` so a rerun only fits new ones).
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
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import GroupKFold

from affectstream.models.crossprotocol import COMMON_RATE
from affectstream.models.lever_compare import (
    SETTINGS,
    markdown,
    nested_outer,
    paired_worst_difference,
    tabulate,
)
from affectstream.models.lever_fit import fit_predict
from affectstream.models.lever_transforms import (
    NONEEG_LABELS,
    noneeg_phase_at_end,
    noneeg_training_labels,
    settled_training,
)
from affectstream.models.lever_variants import CANDIDATES, PHASIC, VARIANTS, Variant, prepare
from affectstream.models.levers import (
    BASELINE_SECONDS,
    Lever,
    grouped_predictions,
    live_rows,
    live_scores,
)
from affectstream.models.scoring import scored_subjects

logger = logging.getLogger(__name__)

#: Outer participant folds (per protocol, paired by index).
OUTER_SPLITS = 4
#: Inner folds of the within-Stress-Predict score used for selection.
INNER_SPLITS = 3
TARGET = "arousal"
SP, NE = "stress-predict", "noneeg"


def outer_folds(units: Sequence[str], k: int = OUTER_SPLITS) -> list[np.ndarray[Any, Any]]:
    """Held-out participants per outer fold: sorted, dealt round-robin (deterministic)."""
    ordered = np.asarray(sorted(units))
    return [ordered[i::k] for i in range(k)]


def _bal(frame: pd.DataFrame, p: np.ndarray[Any, Any], t: np.ndarray[Any, Any]) -> float:
    y, p, t, _ = live_rows(frame, p, t, TARGET)
    return float(balanced_accuracy_score(y, (p >= t).astype(int)))


def run_variant(
    tables: dict[str, pd.DataFrame], v: Variant, ne_phases: np.ndarray[Any, Any]
) -> dict[str, Any]:
    """Inner scores and outer predictions of one variant in every outer fold.

    Parameters
    ----------
    tables : dict
        ``stress-predict`` and ``noneeg`` shared tables at ``v.window``.
    v : Variant
    ne_phases : ndarray of str
        Non-EEG phase at each window end (for ``noneeg_labels``).

    Returns
    -------
    dict
        ``inner``: per fold the three inner scores; ``outer``: per setting the concatenated
        held-out ``y``, ``p``, ``threshold``, ``subject`` and ``fold``.
    """
    sp, cols, norm = prepare(tables[SP], v)
    ne, _, _ = prepare(tables[NE], v)
    sp_train = settled_training(sp, TARGET, window=v.window, settle=v.settle)
    ne_train = settled_training(
        noneeg_training_labels(ne, ne_phases, v.noneeg_labels, TARGET),
        TARGET,
        window=v.window,
        settle=v.settle,
    )
    setup = v.setup(cols, norm, TARGET)
    sp_subj = sp["subject"].astype(str).to_numpy()
    ne_subj = ne["subject"].astype(str).to_numpy()
    outer: dict[str, list[Any]] = {s: [] for s in SETTINGS}
    inner = []
    for fold, (sp_out, ne_out) in enumerate(
        zip(
            outer_folds(scored_subjects(sp, TARGET)),
            outer_folds(scored_subjects(ne, TARGET)),
            strict=True,
        )
    ):
        sp_in_rows, ne_in_rows = ~np.isin(sp_subj, sp_out), ~np.isin(ne_subj, ne_out)
        # Inner: Stress-Predict within by GroupKFold(3) over the remaining participants.
        units = np.asarray(scored_subjects(sp[sp_in_rows], TARGET))
        p_in, t_in = np.full(len(sp), np.nan), np.full(len(sp), np.nan)
        for tr, te in GroupKFold(n_splits=INNER_SPLITS).split(units, groups=units):
            test = np.isin(sp_subj, units[te])
            p_in[test], t_in[test] = fit_predict(
                v.kind, sp_train[np.isin(sp_subj, units[tr])], sp[test], setup
            )
        # One fit on the remaining participants of each protocol scores both the inner
        # cross direction and the outer held-out participants.
        targets_sp = pd.concat([ne[ne_in_rows], sp[~sp_in_rows], ne[~ne_in_rows]])
        p_a, t_a = fit_predict(v.kind, sp_train[sp_in_rows], targets_sp, setup)
        targets_ne = pd.concat([sp[sp_in_rows], sp[~sp_in_rows]])
        p_b, t_b = fit_predict(v.kind, ne_train[ne_in_rows], targets_ne, setup)
        n1, n2 = int(ne_in_rows.sum()), int((~sp_in_rows).sum())
        n3 = int(sp_in_rows.sum())
        inner.append(
            {
                "SP within": _bal(sp[sp_in_rows], p_in[sp_in_rows], t_in[sp_in_rows]),
                "SP -> Non-EEG": _bal(ne[ne_in_rows], p_a[:n1], t_a[:n1]),
                "Non-EEG -> SP": _bal(sp[sp_in_rows], p_b[:n3], t_b[:n3]),
            }
        )
        parts = {
            "SP within": (sp[~sp_in_rows], p_a[n1 : n1 + n2], t_a[n1 : n1 + n2]),
            "SP -> Non-EEG": (ne[~ne_in_rows], p_a[n1 + n2 :], t_a[n1 + n2 :]),
            "Non-EEG -> SP": (sp[~sp_in_rows], p_b[n3:], t_b[n3:]),
        }
        for setting, (frame, p, t) in parts.items():
            y, pp, tt, ss = live_rows(frame, p, t, TARGET)
            outer[setting].append((y, pp, tt, ss, np.full(y.size, fold)))
        logger.info("%s fold %d inner %s", v.name, fold, inner[-1])
    return {
        "inner": inner,
        "outer": {s: [np.concatenate(a) for a in zip(*outer[s], strict=True)] for s in SETTINGS},
    }


def _save(path: Path, run: dict[str, Any]) -> None:
    arrays = {f"{s}|{i}": a for s in SETTINGS for i, a in enumerate(run["outer"][s])}
    np.savez(path, inner=np.asarray(json.dumps(run["inner"])), **arrays)


def _load(path: Path) -> dict[str, Any]:
    with np.load(path, allow_pickle=False) as z:
        outer = {s: [z[f"{s}|{i}"] for i in range(5)] for s in SETTINGS}
        return {"inner": json.loads(str(z["inner"])), "outer": outer}


def _tables(
    window: float, eda_rate: float | None, data: dict[str, str], cache_dir: str
) -> dict[str, pd.DataFrame]:
    """Shared-modality tables of both protocols at one window length and EDA rate (cached)."""
    from affectstream.models.crossprotocol import SHARED_MODALITIES
    from affectstream.models.training import DATASET_SETTINGS, build_features

    return {
        name: build_features(
            name,
            folder,
            settings=dataclasses.replace(
                DATASET_SETTINGS[name],
                window=window,
                step=5.0,
                baseline_seconds=BASELINE_SECONDS,
                modalities=SHARED_MODALITIES,
                context_seconds=0.0,
            ),
            common_rate=eda_rate,
            cache_dir=cache_dir,
        )[0]
        for name, folder in data.items()
    }


def pooled_label_check(
    tables: dict[str, pd.DataFrame], phases: np.ndarray[Any, Any], splits: int = 8
) -> dict[str, Any]:
    """The shipped recipe trained on both protocols under each Non-EEG training contrast.

    ``GroupKFold(splits)`` over the pooled participants (as :mod:`.levers`' pooled setting),
    scored as live per protocol with the standard labels.

    Parameters
    ----------
    tables : dict
        The 60-s shared tables.
    phases : ndarray of str
        Non-EEG phase at each window end.
    splits : int
        Participant folds.

    Returns
    -------
    dict
        Contrast → ``both -> <protocol>`` → balanced accuracy, AUROC, worst participant.
    """
    from affectstream.models.crossprotocol import pool_frames

    lever = Lever("shipped", PHASIC, "baseline_z", monotone=True)
    scored = pool_frames(tables)
    out: dict[str, Any] = {}
    for contrast in NONEEG_LABELS:
        train = dict(tables)
        train[NE] = noneeg_training_labels(tables[NE], phases, contrast, TARGET)
        p, t = grouped_predictions(pool_frames(train), lever, list(PHASIC), TARGET, splits)
        out[contrast] = {}
        for name in tables:
            sel = scored["subject"].str.startswith(name + ":").to_numpy()
            part = scored[sel].reset_index(drop=True)
            out[contrast][f"both -> {name}"] = live_scores(part, p[sel], t[sel], TARGET)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: run (or reuse) every variant, then print the nested table."""
    parser = argparse.ArgumentParser(prog="python -m affectstream.models.levers_nested")
    parser.add_argument("--data-sp", default="../shared/data/stress-predict")
    parser.add_argument("--data-noneeg", default="../shared/data/noneeg")
    parser.add_argument("--cache-dir", default=".affectstream/cache")
    parser.add_argument("--work", default="levers4", help="folder for per-variant predictions")
    parser.add_argument("--only", nargs="*", help="variant names to run (default all)")
    parser.add_argument("--out", help="write the JSON table here")
    parser.add_argument(
        "--pooled-labels",
        action="store_true",
        help="instead: the shipped recipe trained on both protocols per Non-EEG contrast",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    data = {SP: args.data_sp, NE: args.data_noneeg}
    if args.pooled_labels:
        tables = _tables(60.0, COMMON_RATE, data, args.cache_dir)
        check = pooled_label_check(tables, noneeg_phase_at_end(tables[NE], data[NE]))
        if args.out:
            Path(args.out).write_text(json.dumps(check, indent=2, default=str))
        sys.stdout.write(json.dumps(check, indent=1, default=str) + "\n")
        return 0
    runs: dict[str, dict[str, Any]] = {}
    for v in VARIANTS:
        if args.only and v.name not in args.only:
            continue
        path = work / f"{v.key}.npz"
        if not path.is_file():
            tables = _tables(v.window, v.eda_rate, data, args.cache_dir)
            logger.info("variant %s", v.name)
            phases = noneeg_phase_at_end(tables[NE], data[NE])
            _save(path, run_variant(tables, v, phases))
        runs[v.name] = _load(path)
    table = tabulate(runs, CANDIDATES)
    shipped = VARIANTS[0].name
    if shipped in runs:
        best = max(CANDIDATES, key=lambda n: table["variants"].get(n, {"worst": -1.0})["worst"])
        table["versus_shipped"] = {
            f"best single ({best})": paired_worst_difference(
                runs[best]["outer"], runs[shipped]["outer"]
            ),
            "nested selection": paired_worst_difference(
                nested_outer(runs, CANDIDATES)[1], runs[shipped]["outer"]
            ),
        }
        sys.stdout.write(json.dumps(table["versus_shipped"], indent=1) + "\n")
    if args.out:
        Path(args.out).write_text(json.dumps(table, indent=2, default=str))
    sys.stdout.write(markdown(table) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
