"""Levers chosen by nested selection across two protocols, scored as live.

Each :class:`Variant` is one recipe (window length, per-participant input, feature set,
model kind, training filter, Non-EEG training contrast). The selection metric is the worst
of three as-live balanced accuracies: within Stress-Predict (held-out participants),
Stress-Predict → Non-EEG and Non-EEG → Stress-Predict.

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

from affectstream.models.baselines import live_mask, own_baseline_feature
from affectstream.models.crossprotocol import COMMON_RATE
from affectstream.models.feature_sets import (
    EDA_HR_FEATURES,
    EDA_HR_PHASIC_FEATURES,
    RISING_WITH_STRESS,
)
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
    stacked,
)
from affectstream.models.scoring import scored_subjects

logger = logging.getLogger(__name__)

#: Outer participant folds (per protocol, paired by index).
OUTER_SPLITS = 4
#: Inner folds of the within-Stress-Predict score used for selection.
INNER_SPLITS = 3
#: Reference period (s) of the shared tables, as in :mod:`.levers`.
BASELINE_SECONDS = 240.0
TARGET = "arousal"
SP, NE = "stress-predict", "noneeg"


@dataclasses.dataclass(frozen=True)
class Variant:
    """One recipe.

    Parameters
    ----------
    name : str
        Table label.
    features : tuple of str
        Feature columns (shared-modality names).
    window : float
        Window length (s); 5-s step.
    inputs : str
        ``baseline_z`` (the bundle normaliser inside the model), ``own-z`` (z against the own
        rest), ``trailing`` (robust z against the own last ``trailing_seconds``), ``rank``
        (causal percentile), ``own+trailing`` or ``own+rank`` (own-z columns plus the other).
    trailing_seconds : float
        Span of the trailing reference.
    kind : str
        :data:`~affectstream.models.lever_fit.LEVER_KINDS` entry.
    monotone : bool
        LightGBM +1 constraints on :data:`RISING_WITH_STRESS` (and their transforms).
    settle : float
        Training windows must start this long after a label change (0 = all).
    noneeg_labels : str
        Non-EEG training contrast (:data:`~affectstream.models.lever_transforms.NONEEG_LABELS`).
    eda_rate : float or None
        EDA/temperature brought to this rate before features (the shared tables' 4 Hz);
        ``None`` keeps each device's own (Non-EEG 8 Hz).
    """

    name: str
    features: tuple[str, ...] = EDA_HR_PHASIC_FEATURES
    window: float = 60.0
    inputs: str = "baseline_z"
    trailing_seconds: float = 600.0
    kind: str = "lightgbm"
    monotone: bool = True
    settle: float = 0.0
    noneeg_labels: str = "cognitive+emotional"
    eda_rate: float | None = COMMON_RATE

    @property
    def key(self) -> str:
        """File-name-safe identifier."""
        return "".join(ch if ch.isalnum() else "-" for ch in self.name)


PHASIC = EDA_HR_PHASIC_FEATURES
#: The pool nested selection chooses from (the first is the shipped recipe).
VARIANTS = (
    Variant("shipped: eda-hr-phasic, baseline_z, monotone"),
    Variant("eda-hr-phasic, own-z, logistic", inputs="own-z", kind="logistic", monotone=False),
    Variant("trailing-z 300 s", inputs="trailing", trailing_seconds=300.0),
    Variant("trailing-z 600 s", inputs="trailing", trailing_seconds=600.0),
    Variant("own-z + trailing-z 600 s", inputs="own+trailing"),
    Variant("causal rank", inputs="rank"),
    Variant("causal rank, logistic", inputs="rank", kind="logistic", monotone=False),
    Variant("window 30 s", window=30.0),
    Variant("window 120 s", window=120.0),
    Variant("settled training 60 s", settle=60.0),
    Variant("settled training 120 s", settle=120.0),
    Variant("Non-EEG trained on cognitive only", noneeg_labels="cognitive"),
    Variant("Non-EEG without post-physical relax", noneeg_labels="no-post-physical"),
    Variant("svm, baseline_z", kind="svm", monotone=False),
    Variant("lightgbm+svm, baseline_z", kind="lightgbm+svm"),
    Variant(
        "eda-hr, own-z, logistic (2 features)",
        EDA_HR_FEATURES,
        inputs="own-z",
        kind="logistic",
        monotone=False,
    ),
    # Round 4b: combinations of what the first pass showed (rank inputs help within
    # Stress-Predict and Non-EEG -> SP; settled training and the Non-EEG contrast a little).
    Variant("own-z + causal rank", inputs="own+rank"),
    Variant("own-z + causal rank, logistic", inputs="own+rank", kind="logistic", monotone=False),
    Variant(
        "settled 60 s + Non-EEG without post-physical relax",
        settle=60.0,
        noneeg_labels="no-post-physical",
    ),
    Variant(
        "causal rank, settled 60 s, Non-EEG without post-physical relax",
        inputs="rank",
        settle=60.0,
        noneeg_labels="no-post-physical",
    ),
    Variant(
        "own-z + causal rank, settled 60 s, Non-EEG without post-physical relax",
        inputs="own+rank",
        settle=60.0,
        noneeg_labels="no-post-physical",
    ),
    Variant("causal rank, window 30 s", inputs="rank", window=30.0),
    Variant("EDA at each device's own rate (Non-EEG 8 Hz)", eda_rate=None),
    # The two baselines every evaluation reports, in the same folds (never chosen).
    Variant("baseline: one feature (own-rest tonic EDA)", kind="one_feature", monotone=False),
    Variant("baseline: protocol clock", kind="protocol_clock", monotone=False),
)
#: What nested selection may choose: every variant except the baselines.
CANDIDATES = tuple(v.name for v in VARIANTS if v.kind not in ("one_feature", "protocol_clock"))


#: Suffixes of the extra columns a combined input adds (``own+trailing``, ``own+rank``).
EXTRA_SUFFIX = {"own+trailing": "_trail", "own+rank": "_rank"}


def _base(column: str) -> str:
    for suffix in EXTRA_SUFFIX.values():
        column = column.removesuffix(suffix)
    return column


def prepare(frame: pd.DataFrame, v: Variant) -> tuple[pd.DataFrame, list[str], str]:
    """The table, model columns and normaliser a variant's model sees.

    Parameters
    ----------
    frame : pandas.DataFrame
        Shared-modality feature table of one protocol at ``v.window``.
    v : Variant

    Returns
    -------
    frame, columns, normalization
    """
    cols = list(v.features)
    if v.inputs == "baseline_z":
        return frame, cols, "baseline_z"
    if v.inputs == "own-z":
        out = frame.copy()
        for c in cols:
            out[c] = own_baseline_feature(frame, c)
        return out, cols, "none"
    out = stacked(frame, cols, v.inputs, v.trailing_seconds)
    suffix = EXTRA_SUFFIX.get(v.inputs)
    return out, cols + ([c + suffix for c in cols] if suffix else []), "none"


def _params(v: Variant, cols: Sequence[str]) -> dict[str, Any]:
    if not v.monotone:
        return {}
    return {
        "monotone_constraints": [int(_base(c) in RISING_WITH_STRESS) for c in cols],
        "monotone_constraints_method": "advanced",
    }


def outer_folds(units: Sequence[str], k: int = OUTER_SPLITS) -> list[np.ndarray[Any, Any]]:
    """Held-out participants per outer fold: sorted, dealt round-robin (deterministic)."""
    ordered = np.asarray(sorted(units))
    return [ordered[i::k] for i in range(k)]


def _live_arrays(frame: pd.DataFrame, p: np.ndarray[Any, Any], t: np.ndarray[Any, Any]) -> Any:
    sel = live_mask(frame, TARGET) & np.isfinite(p)
    y = frame[TARGET + "_end"].to_numpy(dtype=np.float64)[sel].astype(int)
    return y, p[sel], t[sel], np.asarray(frame["subject"].astype(str).to_numpy()[sel], dtype=str)


def _bal(frame: pd.DataFrame, p: np.ndarray[Any, Any], t: np.ndarray[Any, Any]) -> float:
    y, p, t, _ = _live_arrays(frame, p, t)
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
    kw: dict[str, Any] = {
        "features": cols,
        "target": TARGET,
        "normalization": norm,
        "params": _params(v, cols),
    }
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
                v.kind, sp_train[np.isin(sp_subj, units[tr])], sp[test], **kw
            )
        # One fit on the remaining participants of each protocol scores both the inner
        # cross direction and the outer held-out participants.
        targets_sp = pd.concat([ne[ne_in_rows], sp[~sp_in_rows], ne[~ne_in_rows]])
        p_a, t_a = fit_predict(v.kind, sp_train[sp_in_rows], targets_sp, **kw)
        targets_ne = pd.concat([sp[sp_in_rows], sp[~sp_in_rows]])
        p_b, t_b = fit_predict(v.kind, ne_train[ne_in_rows], targets_ne, **kw)
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
            y, pp, tt, ss = _live_arrays(frame, p, t)
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
    from affectstream.models.levers import Lever, _grouped, _live

    lever = Lever("shipped", PHASIC, "baseline_z", monotone=True)
    scored = pool_frames(tables)
    out: dict[str, Any] = {}
    for contrast in NONEEG_LABELS:
        train = dict(tables)
        train[NE] = noneeg_training_labels(tables[NE], phases, contrast, TARGET)
        p, t = _grouped(pool_frames(train), lever, list(PHASIC), TARGET, splits)
        out[contrast] = {}
        for name in tables:
            sel = scored["subject"].str.startswith(name + ":").to_numpy()
            part = scored[sel].reset_index(drop=True)
            out[contrast][f"both -> {name}"] = _live(part, p[sel], t[sel], TARGET)
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
