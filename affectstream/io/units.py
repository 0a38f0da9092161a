"""Units of recording files: conversion to the canonical units and a plausibility check.

Canonical units are those of :data:`affectstream.types.UNITS` (ECG and EEG in µV, EDA in µS,
RR in ms, heart rate in bpm). A file declares another unit per column (``ecg[mV]``) or the
caller passes ``units={"ecg": "mV"}``; values whose size contradicts the unit they claim
are refused with a message saying which unit they look like.
"""

from __future__ import annotations

import numpy as np

from affectstream.errors import ConfigError, SignalError
from affectstream.types import UNITS, FloatArray

_VOLT = {
    "µv": 1.0,
    "uv": 1.0,
    "μv": 1.0,
    "microvolt": 1.0,
    "microvolts": 1.0,
    "mv": 1e3,
    "millivolts": 1e3,
    "v": 1e6,
    "volts": 1e6,
    "nv": 1e-3,
}
#: Factor from a unit (lowercase) to the modality's canonical unit.
CONVERSIONS: dict[str, dict[str, float]] = {
    "ecg": _VOLT,
    "eeg": _VOLT,
    "eda": {"µs": 1.0, "us": 1.0, "μs": 1.0, "microsiemens": 1.0, "ns": 1e-3, "ms": 1e3, "s": 1e6},
    "rr": {"ms": 1.0, "s": 1e3},
    "hr": {"bpm": 1.0, "1/min": 1.0, "beats/min": 1.0},
    "ppg": {"au": 1.0, "a.u.": 1.0, "": 1.0},
    "temp": {"°c": 1.0, "c": 1.0, "degc": 1.0, "celsius": 1.0},
    "acc": {"g": 1.0, "m/s^2": 1 / 9.80665, "m/s2": 1 / 9.80665, "mg": 1e-3},
    "gyro": {"deg/s": 1.0, "°/s": 1.0, "dps": 1.0},
    "battery": {"%": 1.0},
}


def to_canonical(modality: str, unit: str, values: FloatArray, where: str) -> FloatArray:
    """Convert ``values`` from ``unit`` to the canonical unit of ``modality``.

    Parameters
    ----------
    modality : str
        Modality of the values (``"ecg"``, ``"eda"``...).
    unit : str
        Unit the values are in; ``""`` means the canonical unit.
    values : ndarray
        Samples.
    where : str
        File and column, for error messages.

    Returns
    -------
    ndarray
        Values in :data:`~affectstream.types.UNITS` ``[modality]``.
    """
    key = unit.strip().lower()
    canonical = UNITS.get(modality, "")
    if not key or key == canonical.lower():
        return np.asarray(values, dtype=np.float64)
    table = CONVERSIONS.get(modality, {})
    if key not in table:
        allowed = sorted({canonical, *table} - {""})
        raise ConfigError(
            f"{where}: unknown unit {unit!r} for {modality}; use one of {allowed} "
            f"(values are converted to {canonical or 'no unit'})."
        )
    return np.asarray(values, dtype=np.float64) * table[key]


def check_finite(values: FloatArray, where: str) -> None:
    """Refuse infinite values: a sample is a number or missing (NaN), never ``inf``.

    Parameters
    ----------
    values : ndarray
        Samples.
    where : str
        File and column, for error messages.

    Raises
    ------
    SignalError
        Naming the first infinite value's row.
    """
    infinite = np.isinf(np.asarray(values, dtype=np.float64))
    if infinite.any():
        row = int(np.flatnonzero(infinite.any(axis=1) if infinite.ndim == 2 else infinite)[0])
        raise SignalError(
            f"{where}: {int(infinite.sum())} infinite value(s), the first in data row {row + 1}. "
            "Leave missing samples empty; inf is no measurement."
        )


def check_plausible(modality: str, values: FloatArray, where: str) -> None:
    """Refuse values whose size says they are in another unit than the canonical one.

    Parameters
    ----------
    modality : str
        Modality of the values, already in the canonical unit.
    values : ndarray
        Samples.
    where : str
        File and column, for error messages.

    Raises
    ------
    SignalError
        With the unit the values look like and how to declare it.
    """
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size < 2:
        return
    hint = f"declare the unit in the column name (e.g. '{modality}[mV]') or pass units="
    if modality in ("ecg", "eeg"):
        low, high = np.percentile(finite, [1.0, 99.0])
        spread = float(high - low)
        if 0.0 < spread < (5.0 if modality == "ecg" else 1.0):
            likely = "mV" if spread > 0.02 else "V"
            raise SignalError(
                f"{where}: {modality.upper()} values span only {spread:.3g} µV (1st to 99th "
                f"percentile), which looks like {likely}, not µV; {hint}"
                f"{{'{modality}': '{likely}'}}."
            )
    median = float(np.median(finite))
    if modality == "eda" and median > 100.0:
        raise SignalError(
            f"{where}: EDA median {median:.4g} µS is far above skin conductance; values look "
            f"like nS or kΩ skin resistance. Declare nS ('eda[nS]'); convert kΩ as "
            "µS = 1000 / kΩ."
        )
    if modality == "rr" and median < 10.0:
        raise SignalError(
            f"{where}: RR median {median:.4g} ms is too short for a heartbeat; the intervals "
            "look like seconds. Declare them as 'rr[s]' or pass units={'rr': 's'}."
        )
    if modality == "hr" and not 15.0 <= median <= 300.0:
        raise SignalError(
            f"{where}: heart-rate median {median:.4g} is not in beats per minute (15-300); "
            "check the column."
        )
