"""The recipes nested lever selection chooses from (:mod:`.levers_nested`).

Each :class:`Variant` is one recipe: window length, per-participant input, feature set,
model kind, training filter and Non-EEG training contrast. :data:`VARIANTS` is the pool
(the shipped recipe first, the two baselines last), :func:`prepare` the table and columns a
variant's model sees, :meth:`Variant.setup` what it is fitted with.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import pandas as pd

from affectstream.models.baselines import own_baseline_feature
from affectstream.models.crossprotocol import COMMON_RATE
from affectstream.models.feature_sets import (
    EDA_HR_FEATURES,
    EDA_HR_PHASIC_FEATURES,
    monotone_constraints,
)
from affectstream.models.lever_fit import LeverSetup
from affectstream.models.lever_transforms import stacked


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
        LightGBM +1 constraints on
        :data:`~affectstream.models.feature_sets.RISING_WITH_STRESS` (and their transforms).
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

    def setup(self, columns: Sequence[str], normalization: str, target: str) -> LeverSetup:
        """What the variant's model is fitted with, on the columns :func:`prepare` gives.

        Parameters
        ----------
        columns : sequence of str
            Model columns (a combined input's extra columns included).
        normalization : str
            The normaliser :func:`prepare` gives.
        target : str
            Label column.

        Returns
        -------
        LeverSetup
        """
        params: dict[str, Any] = {}
        if self.monotone:  # a transform of a feature keeps its direction
            params["monotone_constraints"] = monotone_constraints([base_column(c) for c in columns])
            params["monotone_constraints_method"] = "advanced"
        return LeverSetup(columns, target, normalization, params)


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


def base_column(column: str) -> str:
    """The feature a model column was made from (a combined input's suffix removed)."""
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
