"""Named feature subsets (``affectstream train --features NAME``) and monotone directions.

A subset keeps a model to signals every wrist protocol records the same way; the monotone
directions stop LightGBM learning "stress lowers sweating" from one protocol's phase order.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from affectstream.errors import ConfigError
from affectstream.signal.columns import feature_columns

#: Device-robust physiology every wrist protocol has: tonic EDA level and slope, phasic
#: activity, SCR rate, heart rate, skin temperature. No movement (talking/walking tasks are
#: protocol quirks), no SCR amplitude/rise time (depend on the EDA device's rate and noise).
COMPACT_FEATURES = (
    "eda_tonic_mean",
    "eda_tonic_slope",
    "eda_phasic_std",
    "eda_scr_rate",
    "hr_mean",
    "temp_mean",
)
#: The two classic arousal signals: tonic skin conductance level and heart rate.
EDA_HR_FEATURES = ("eda_tonic_mean", "hr_mean")
#: Sweat-gland activity and heart rate only (no temperature or movement).
EDA_HR_PHASIC_FEATURES = ("eda_tonic_mean", "eda_phasic_std", "eda_scr_rate", "hr_mean")

#: Stress can only raise these (sympathetic arousal: sweat-gland activity, heart rate);
#: LightGBM ``monotone_constraints`` +1 stops a model learning the opposite from one
#: protocol's order of phases. Everything else is unconstrained (0).
RISING_WITH_STRESS = ("eda_tonic_mean", "eda_phasic_std", "eda_scr_rate", "hr_mean")

#: ``--features`` names; ``all`` = every model-usable column the data give.
FEATURE_SETS: dict[str, tuple[str, ...] | None] = {
    "all": None,
    "compact": COMPACT_FEATURES,
    "eda-hr": EDA_HR_FEATURES,
    "eda-hr-phasic": EDA_HR_PHASIC_FEATURES,
}


def feature_set(name: str) -> tuple[str, ...] | None:
    """The columns of a named subset (``None`` for ``all``).

    Parameters
    ----------
    name : str
        A key of :data:`FEATURE_SETS`.

    Returns
    -------
    tuple of str or None

    Raises
    ------
    ConfigError
        For an unknown name (the message lists the known ones).
    """
    if name not in FEATURE_SETS:
        raise ConfigError(f"Unknown feature set {name!r}: choose one of {', '.join(FEATURE_SETS)}.")
    return FEATURE_SETS[name]


def monotone_constraints(features: Sequence[str]) -> list[int]:
    """LightGBM ``monotone_constraints`` in feature order (+1 on :data:`RISING_WITH_STRESS`).

    Parameters
    ----------
    features : sequence of str
        Model columns in order.

    Returns
    -------
    list of int
    """
    return [int(f in RISING_WITH_STRESS) for f in features]


def select_features(frame: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """``frame`` with only the feature columns ``names`` (and their context columns).

    Bookkeeping and label columns stay; a context column (``<feature>_ctx<N>s``) stays with
    its feature.

    Parameters
    ----------
    frame : pandas.DataFrame
        Feature table.
    names : sequence of str
        Feature columns to keep.

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    ConfigError
        When none of ``names`` is in the table (the data do not record those signals).
    """
    present = feature_columns(frame)
    keep = {c for c in present if c in names or c.split("_ctx", 1)[0] in names}
    if not any(c in names for c in present):
        raise ConfigError(
            f"None of the features {', '.join(names)} is in these data (they have "
            f"{', '.join(present) or 'no features'}); choose another --features set."
        )
    return frame.drop(columns=[c for c in present if c not in keep])
