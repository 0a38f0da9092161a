"""Units of exported columns: raw channels, features, quality and estimates.

Raw channels carry their modality's unit (:data:`affectstream.types.UNITS`); feature units
are those of docs/features.md (a test checks every documented name against
:func:`column_unit`), so exports say what their numbers mean without the docs at hand.
"""

from __future__ import annotations

import re

from affectstream.store import RAW_PREFIX
from affectstream.types import UNITS

#: Feature name pattern -> unit (docs/features.md, "Features" tables).
FEATURE_UNITS: tuple[tuple[str, str], ...] = (
    (r"hrv_(mean_nn|sdnn|rmssd|sd1|sd2)", "ms"),
    (r"hrv_mean_hr", "bpm"),
    (r"hrv_pnn50", "%"),
    (r"hrv_(lf|hf)", "ms²"),
    (r"hrv_lf_hf", "1"),
    (r"eda_(tonic_mean|phasic_std|scr_amplitude_mean)", "µS"),
    (r"eda_tonic_slope", "µS/s"),
    (r"eda_scr_count", "count"),
    (r"eda_scr_rate", "1/min"),
    (r"eda_scr_risetime_mean", "s"),
    (r"eeg_[a-z]+_abs_\w+", "µV²"),
    (r"eeg_[a-z]+_rel_\w+", "1"),
    (r"eeg_(faa|engagement)", "1"),
    (r"temp_mean", "°C"),
    (r"temp_slope", "°C/s"),
    (r"acc_mag_(mean|std)", "g"),
    (r"hr_mean", "bpm"),
    (r"hr_slope", "bpm/s"),
)

#: Columns shared by every table.
_COMMON = {"time_ns": "ns", "t_end": "s"}


def feature_unit(name: str) -> str | None:
    """Unit of a feature column (None if the name is not a known feature)."""
    for pattern, unit in FEATURE_UNITS:
        if re.fullmatch(pattern, name):
            return unit
    return None


def column_unit(measurement: str, column: str) -> str | None:
    """Unit of one column of an exported table; None for text, flags and tags.

    Parameters
    ----------
    measurement : str
        ``raw_<modality>``, ``features``, ``quality``, ``affect`` or ``events``.
    column : str

    Returns
    -------
    str or None
        ``"1"`` for dimensionless numbers (probabilities, quality indices, ratios).
    """
    if column in _COMMON:
        return _COMMON[column]
    if measurement.startswith(RAW_PREFIX):
        return UNITS.get(measurement[len(RAW_PREFIX) :])
    if measurement == "features":
        return feature_unit(column)
    if measurement == "quality":
        return "1" if column.startswith("quality_") else None
    if measurement == "affect":
        if re.fullmatch(r"(arousal|valence)(_svm|_confidence|_coverage)?", column):
            return "1"
        return None
    if measurement == "events" and column in ("n_samples", "first_index"):
        return "samples"
    return None
