"""Live valence for one participant: their personal model when calibrated, else an honest guess.

Every window gets ``valence`` (p(valence above the SAM midpoint)), smoothed over time by
:class:`~affectstream.models.valence.ValenceSmoother`, with:

- ``valence_calibrated``: True only when the participant's stored personal model beat their
  own mean rating (:mod:`affectstream.models.valence_store`) and was fitted on windows of the
  length this session uses;
- ``valence_confidence``: the measured accuracy in words (calibrated), or why there is none;
- ``valence_basis``; ``valence_rating`` (predicted SAM 1-9, NaN when uncalibrated);
- ``valence_mae``, ``valence_mae_ci_low``, ``valence_mae_ci_high``, ``valence_mae_own_mean``:
  the personal model's leave-one-episode-out error in SAM points with its 95% interval and
  the bar it beat (NaN when uncalibrated).

Uncalibrated, the estimate is 0.5 or the frontal-alpha-asymmetry direction relative to the
session's baseline, leaning at most :data:`~affectstream.models.valence.UNCALIBRATED_LEAN`.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import pandas as pd

from affectstream.errors import ConfigError, ModelError
from affectstream.models.normalize import ParticipantNormalizer
from affectstream.models.valence import (
    PersonalValenceModel,
    ValenceEstimate,
    ValenceSmoother,
    uncalibrated_valence,
)
from affectstream.models.valence_store import load_personal_valence

logger = logging.getLogger(__name__)

#: The per-participant normaliser, for the frontal asymmetry z-score (unclipped: the
#: uncalibrated valence curve takes the raw z-score).
_FAA_NORMALIZER = ParticipantNormalizer(features=("eeg_faa",), clip=np.inf)


def personal_valence(participant: str) -> PersonalValenceModel | None:
    """The participant's stored personal valence model, if any.

    Parameters
    ----------
    participant : str
        Pseudonymous id; empty: nobody to calibrate.

    Returns
    -------
    PersonalValenceModel or None
        None when there is none or it cannot be read (logged: valence stays uncalibrated).
    """
    if not participant:
        return None
    try:
        return load_personal_valence(participant)
    except (ConfigError, ModelError) as exc:
        logger.warning("valence stays uncalibrated: %s", exc)
        return None


class LiveValence:
    """Valence fields for each feature row, in time order.

    Parameters
    ----------
    personal : PersonalValenceModel, optional
        The participant's stored model (used only if calibrated and on this window length).
    window : float, optional
        The session's feature window (s), checked against the personal model's.
    """

    def __init__(
        self, personal: PersonalValenceModel | None = None, *, window: float | None = None
    ) -> None:
        self.personal: PersonalValenceModel | None = None
        self.not_used = ""
        if personal is not None:
            if not personal.calibrated_:
                self.not_used = (
                    "the personal calibration did not beat the person's own mean rating ("
                    f"{personal.accuracy_['mae']:.2f} vs {personal.accuracy_['mae_own_mean']:.2f}"
                    " SAM points)"
                )
            elif window is not None and abs(personal.window_ - window) > 1e-6:
                self.not_used = (
                    f"the personal model was fitted on {personal.window_:g}-s windows, this "
                    f"session uses {window:g} s; re-calibrate with this model's windows"
                )
            else:
                self.personal = personal
        if self.not_used:
            logger.warning("valence stays uncalibrated: %s", self.not_used)
        self.smoother = ValenceSmoother()
        self._faa_reference: list[float] = []  # usable eeg_faa values of the baseline
        self._faa_scale: tuple[Any, Any] | None = None  # centre, spread

    def faa_z(self, row: pd.Series, t_end: float, baseline_end: float | None) -> float | None:
        """Frontal alpha asymmetry relative to the baseline windows (None without EEG).

        Parameters
        ----------
        row : pandas.Series
            One feature row.
        t_end : float
            Its window end.
        baseline_end : float or None
            End of the baseline period (None: still in it).

        Returns
        -------
        float or None
        """
        if "eeg_faa" not in row.index or not math.isfinite(row["eeg_faa"]):
            return None
        in_baseline = baseline_end is None or t_end <= baseline_end + 1e-9
        if in_baseline and bool(row.get("usable_eeg", True)):
            self._faa_reference.append(float(row["eeg_faa"]))
            self._faa_scale = None  # the baseline grew
        if self._faa_scale is None:
            if len(self._faa_reference) < 2:
                return None
            reference = pd.DataFrame({"eeg_faa": self._faa_reference, "reference": True})
            spread = _FAA_NORMALIZER.reference_spread(reference)
            self._faa_scale = (
                _FAA_NORMALIZER.reference_center(reference),
                np.where(spread > 0, spread, 1.0),  # a flat baseline: differences only
            )
        z = _FAA_NORMALIZER.apply(np.array([[float(row["eeg_faa"])]]), *self._faa_scale)
        return float(z[0, 0]) if np.isfinite(z[0, 0]) else None

    def fields(self, row: pd.Series, t_end: float, baseline_end: float | None) -> dict[str, Any]:
        """The ``valence*`` fields of one window.

        Parameters
        ----------
        row, t_end, baseline_end
            As for :meth:`faa_z`.

        Returns
        -------
        dict
        """
        raw: ValenceEstimate
        if self.personal is not None:
            raw = self.personal.predict(pd.DataFrame([row]))[0]
        else:
            raw = uncalibrated_valence(self.faa_z(row, t_end, baseline_end))
            if self.not_used:
                raw = ValenceEstimate(
                    raw.probability, False, f"{raw.confidence}; {self.not_used}", raw.basis
                )
        smooth = self.smoother.update(t_end, raw)
        acc = smooth.accuracy or {}
        ci = acc.get("mae_ci95", [math.nan, math.nan])
        return {
            "valence": smooth.probability,
            "valence_calibrated": smooth.calibrated,
            "valence_confidence": smooth.confidence,
            "valence_basis": smooth.basis,
            "valence_rating": math.nan if smooth.rating is None else smooth.rating,
            "valence_mae": float(acc.get("mae", math.nan)),
            "valence_mae_ci_low": float(ci[0]),
            "valence_mae_ci_high": float(ci[1]),
            "valence_mae_own_mean": float(acc.get("mae_own_mean", math.nan)),
        }
