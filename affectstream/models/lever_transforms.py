"""Per-participant inputs and training filters measured as levers (:mod:`.levers_nested`).

Every transform here is causal and label-free: a window's value depends only on the same
participant's windows that ended at or before it, so it can be computed live and computing
it on a whole table before splitting leaks nothing across participants or into the future.

- :func:`trailing_z`: a robust z-score against the participant's own trailing minutes (an
  adaptive personal reference, instead of only the session-start rest);
- :func:`causal_rank`: the window's percentile among the participant's windows so far (a
  quantile feature that is the same for any monotone device response);
- :func:`settled_training` (training filter): leave out training windows that begin within
  ``settle`` seconds of a label change (physiology lags the protocol's phase change); every
  window is still scored as live;
- :func:`noneeg_training_labels` (training labels): Non-EEG's contrasts narrowed per its
  README (cognitive stress only, or the relax phase after walking/jogging left out).
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from affectstream.errors import ConfigError
from affectstream.models.features import END_SUFFIX

logger = logging.getLogger(__name__)

#: Robust scale of a normal sample from its median absolute deviation.
MAD_TO_SD = 1.4826
#: The trailing scale is floored at this share of the participant's rest spread (a quiet
#: stretch would otherwise divide by ~0).
TRAILING_SCALE_FLOOR = 0.25
#: Trailing z-scores are clipped here, as the bundle normaliser clips (one artefact cannot
#: dominate a linear model).
Z_CLIP = 10.0
#: Fewest earlier windows a trailing reference needs; before that the rest is the reference.
TRAILING_MIN_WINDOWS = 6
#: Non-EEG training-label variants (:func:`noneeg_training_labels`).
NONEEG_LABELS = ("cognitive+emotional", "cognitive", "no-post-physical")

FloatArray = np.ndarray[Any, Any]


def _by_participant(frame: pd.DataFrame) -> list[np.ndarray[Any, Any]]:
    """Row positions of each participant's windows, in time order."""
    subjects = frame["subject"].astype(str).to_numpy()
    t_end = frame["t_end"].to_numpy(dtype=np.float64)
    out = []
    for s in pd.unique(subjects):
        rows = np.flatnonzero(subjects == s)
        out.append(rows[np.argsort(t_end[rows], kind="stable")])
    return out


def _rest_spread(x: FloatArray, reference: np.ndarray[Any, Any]) -> float:
    ref = x[reference & np.isfinite(x)]
    return float(ref.std()) if ref.size > 1 else float("nan")


def trailing_z(frame: pd.DataFrame, feature: str, seconds: float) -> FloatArray:
    """Robust z of a feature against the participant's own windows of the last ``seconds``.

    The reference of the window ending at ``t`` is the participant's earlier windows ending
    in ``[t - seconds, t)`` (the current window excluded): centre = their median, scale =
    ``1.4826 * MAD`` floored at :data:`TRAILING_SCALE_FLOOR` times the spread of the
    participant's rest windows; z is clipped to ``±Z_CLIP``. With fewer than
    :data:`TRAILING_MIN_WINDOWS` earlier windows (the session start) the rest windows are
    the reference.

    Parameters
    ----------
    frame : pandas.DataFrame
        Feature table with ``subject``, ``t_end`` and ``reference``.
    feature : str
        Column.
    seconds : float
        Trailing span (s).

    Returns
    -------
    ndarray
        NaN where the feature is missing or no reference exists.
    """
    out = np.full(len(frame), np.nan)
    if feature not in frame.columns:
        return out
    x_all = frame[feature].to_numpy(dtype=np.float64)
    t_all = frame["t_end"].to_numpy(dtype=np.float64)
    ref_all = frame["reference"].to_numpy(dtype=bool)
    for rows in _by_participant(frame):
        x, t, ref = x_all[rows], t_all[rows], ref_all[rows]
        spread = _rest_spread(x, ref)
        floor = TRAILING_SCALE_FLOOR * spread if np.isfinite(spread) and spread > 0 else 1e-9
        rest = x[ref & np.isfinite(x)]
        start = 0
        for i in range(len(rows)):
            while t[start] < t[i] - seconds:
                start += 1
            past = x[start:i]
            past = past[np.isfinite(past)]
            base = past if past.size >= TRAILING_MIN_WINDOWS else rest
            if base.size == 0 or not np.isfinite(x[i]):
                continue
            centre = float(np.median(base))
            scale = MAD_TO_SD * float(np.median(np.abs(base - centre)))
            out[rows[i]] = np.clip((x[i] - centre) / max(scale, floor), -Z_CLIP, Z_CLIP)
    return out


def causal_rank(frame: pd.DataFrame, feature: str) -> FloatArray:
    """The window's mid-rank percentile among the participant's windows so far (0-1).

    Parameters
    ----------
    frame : pandas.DataFrame
        Feature table with ``subject`` and ``t_end``.
    feature : str
        Column.

    Returns
    -------
    ndarray
        ``(#earlier below + #earlier equal / 2 + 0.5) / (#earlier + 1)``; NaN where missing.
    """
    out = np.full(len(frame), np.nan)
    if feature not in frame.columns:
        return out
    x_all = frame[feature].to_numpy(dtype=np.float64)
    for rows in _by_participant(frame):
        seen: list[float] = []
        for r in rows:
            v = x_all[r]
            if not np.isfinite(v):
                continue
            lo, hi = bisect.bisect_left(seen, v), bisect.bisect_right(seen, v)
            out[r] = (lo + (hi - lo) / 2.0 + 0.5) / (len(seen) + 1)
            bisect.insort(seen, v)
    return out


def settled_training(
    frame: pd.DataFrame, target: str, *, window: float, settle: float
) -> pd.DataFrame:
    """``frame`` with the target blanked (NaN) on windows that start too soon after a change.

    A window is kept for training when it starts at least ``settle`` seconds after the last
    change of the label at the window ends (``<target>_end``); the table is only for
    training (scoring uses every window as live).

    Parameters
    ----------
    frame : pandas.DataFrame
        Feature table with ``<target>_end``.
    target : str
        Label column.
    window : float
        Window length (s).
    settle : float
        Seconds after a label change during which no window may start.

    Returns
    -------
    pandas.DataFrame
        A copy; ``settle`` 0 returns ``frame`` itself.
    """
    if settle <= 0:
        return frame
    end = frame[target + END_SUFFIX].to_numpy(dtype=np.float64)
    t = frame["t_end"].to_numpy(dtype=np.float64)
    keep = np.ones(len(frame), dtype=bool)
    for rows in _by_participant(frame):
        labels = end[rows]
        # NaN counts as its own label value, so unlabelled gaps are changes too.
        code = np.where(np.isfinite(labels), labels, -1.0)
        # The session start is no change of condition: only later changes count.
        changed = np.r_[False, code[1:] != code[:-1]]
        last_change = np.maximum.accumulate(np.where(changed, t[rows], -np.inf))
        keep[rows] = (t[rows] - window) >= last_change + settle
    out = frame.copy()
    out.loc[~keep, target] = np.nan
    return out


def noneeg_phase_at_end(frame: pd.DataFrame, data: Path | str) -> np.ndarray[Any, Any]:
    """Non-EEG phase name (``Relax``, ``PhysicalStress``, ...) at each window's end.

    Parameters
    ----------
    frame : pandas.DataFrame
        Non-EEG feature table (subjects ``SubjectN``, ``t_end`` at
        :data:`~affectstream.models.wrist_protocols.NONEEG_EPOCH` + record seconds).
    data : path
        The Non-EEG folder.

    Returns
    -------
    ndarray of str
        ``""`` before the first annotation; from the last one on, its note.
    """
    import wfdb

    from affectstream.models.wrist_protocols import NONEEG_EPOCH

    subjects = frame["subject"].astype(str).to_numpy()
    t = frame["t_end"].to_numpy(dtype=np.float64) - NONEEG_EPOCH
    out = np.full(len(frame), "", dtype=object)
    for s in pd.unique(subjects):
        path = Path(data) / f"{s}_AccTempEDA"
        try:
            ann = wfdb.rdann(str(path), "atr")
            fs = float(wfdb.rdheader(str(path)).fs)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"Cannot read Non-EEG phases {str(path)!r}.atr: {exc}.") from None
        starts = np.asarray(ann.sample, dtype=np.float64) / fs
        sel = subjects == s
        idx = np.searchsorted(starts, t[sel], side="right") - 1
        notes = np.asarray(ann.aux_note, dtype=object)
        out[sel] = np.where(idx >= 0, notes[np.clip(idx, 0, None)], "")
    return out


def noneeg_training_labels(
    frame: pd.DataFrame, phases: np.ndarray[Any, Any], variant: str, target: str
) -> pd.DataFrame:
    """Non-EEG training labels under a narrower contrast (scoring keeps the standard one).

    Parameters
    ----------
    frame : pandas.DataFrame
        Non-EEG feature table.
    phases : ndarray of str
        :func:`noneeg_phase_at_end` of ``frame``.
    variant : str
        ``cognitive+emotional`` (unchanged), ``cognitive`` (emotional-stress windows not
        trained on) or ``no-post-physical`` (the relax phase right after physical stress,
        a recovery with raised heart rate and sweating, not trained on).
    target : str
        Label column.

    Returns
    -------
    pandas.DataFrame
    """
    if variant not in NONEEG_LABELS:
        raise ConfigError(f"Unknown Non-EEG label variant {variant!r}: one of {NONEEG_LABELS}.")
    if variant == "cognitive+emotional":
        return frame
    if variant == "cognitive":
        drop = phases == "EmotionalStress"
    else:
        drop = np.zeros(len(frame), dtype=bool)
        for rows in _by_participant(frame):
            previous = ""  # the last non-relax phase before this window
            for r in rows:
                drop[r] = phases[r] == "Relax" and previous == "PhysicalStress"
                if phases[r] not in ("Relax", ""):
                    previous = str(phases[r])
    out = frame.copy()
    out.loc[drop, target] = np.nan
    return out


def stacked(frame: pd.DataFrame, columns: Sequence[str], how: str, seconds: float) -> pd.DataFrame:
    """``frame`` with ``columns`` replaced (or joined) by a transform of themselves.

    Parameters
    ----------
    frame : pandas.DataFrame
    columns : sequence of str
    how : str
        ``trailing`` (robust z vs the last ``seconds``), ``rank`` (causal percentile),
        ``own+trailing`` (own-rest z in place plus ``<col>_trail`` columns), ``own+rank``
        (own-rest z in place plus ``<col>_rank`` columns).
    seconds : float
        Trailing span.

    Returns
    -------
    pandas.DataFrame
    """
    from affectstream.models.baselines import own_baseline_feature

    out = frame.copy()
    for c in columns:
        if how == "trailing":
            out[c] = trailing_z(frame, c, seconds)
        elif how == "rank":
            out[c] = causal_rank(frame, c)
        elif how == "own+trailing":
            out[c] = own_baseline_feature(frame, c)
            out[c + "_trail"] = trailing_z(frame, c, seconds)
        elif how == "own+rank":
            out[c] = own_baseline_feature(frame, c)
            out[c + "_rank"] = causal_rank(frame, c)
        else:
            raise ConfigError(f"Unknown transform {how!r}.")
    return out
