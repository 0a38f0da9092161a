"""What a feature column is: the one definition the signal, models and runtime layers share.

A feature table (from :func:`affectstream.signal.extract_features`, the streaming
extractor, or a training dataset) holds feature columns next to bookkeeping: ``t_end``,
``quality_*``/``usable_*``/``reason_*`` per family, and in training tables the subject,
session and labels. Only numeric, non-boolean columns named with a modality prefix are
features, so no feature can encode time in session, protocol order or a label.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

#: Prefixes of feature columns: physiology only, never time, quality, protocol or labels.
FEATURE_PREFIXES = ("hrv_", "hr_", "rr_", "ppg_", "ecg_", "eda_", "eeg_", "temp_", "acc_", "resp_")


def feature_family(name: str) -> str:
    """The family of a feature column: its modality prefix (``hrv``, ``eda``, ``eeg``...).

    Parameters
    ----------
    name : str
        Feature column name, e.g. ``"hrv_rmssd"``.

    Returns
    -------
    str
        The name up to its first underscore (the whole name when it has none).
    """
    return name.split("_", 1)[0]


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """Return the feature columns of a feature table, sorted.

    Only numeric, non-boolean columns named with a modality prefix
    (:data:`FEATURE_PREFIXES`) qualify; ``t_end``, ``quality_*``, ``usable_*``, ``reason_*``,
    subject/session and labels never do.

    Parameters
    ----------
    frame : pandas.DataFrame
        Feature table.

    Returns
    -------
    list of str
    """
    return sorted(
        c
        for c in frame.columns
        if isinstance(c, str)
        and c.startswith(FEATURE_PREFIXES)
        and pd.api.types.is_numeric_dtype(frame[c])
        and not pd.api.types.is_bool_dtype(frame[c])
    )


def feature_families(features: Iterable[str]) -> set[str]:
    """Families (name prefixes such as ``hrv``, ``eda``, ``eeg``) of feature names.

    Parameters
    ----------
    features : iterable of str
        Feature names.

    Returns
    -------
    set of str
    """
    return {feature_family(f) for f in features}
