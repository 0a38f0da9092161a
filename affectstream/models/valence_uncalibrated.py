"""Valence without a personal model, and the smoothing every live valence gets.

:func:`uncalibrated_valence` is explicitly ``calibrated=False``: the uninformative 0.5, or a
capped lean from frontal alpha asymmetry. :class:`ValenceSmoother` keeps any estimate from
jumping between windows.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from affectstream.errors import ConfigError
from affectstream.models.valence_blocks import SCALE_MID, ValenceEstimate

logger = logging.getLogger(__name__)

#: Largest distance from 0.5 of an uncalibrated estimate (published cross-subject valence
#: from physiology is near chance, ~0.55-0.63 accuracy).
UNCALIBRATED_LEAN = 0.15
#: Time constant (s) of the smoothing applied to every live valence estimate.
SMOOTHING_SECONDS = 60.0
#: Step assumed for the first window (the usual feature step).
FIRST_STEP_SECONDS = 5.0


def uncalibrated_valence(faa_normalized: float | None, *, slope: float = 0.5) -> ValenceEstimate:
    """A population-level valence guess for a participant with no calibration yet.

    Parameters
    ----------
    faa_normalized : float or None
        Frontal alpha asymmetry (``eeg_faa``) relative to the participant's baseline, in
        units of its typical spread; None or NaN when no EEG is available.
    slope : float
        Log-odds per unit of normalised asymmetry; deliberately small.

    Returns
    -------
    ValenceEstimate
        ``calibrated=False``. The confidence states that no accuracy was measured.
    """
    if faa_normalized is None or not np.isfinite(faa_normalized):
        return ValenceEstimate(
            0.5,
            False,
            "uncalibrated, uninformative: no EEG and no personal calibration; run the "
            "valence calibration protocol",
            "prior",
        )
    probability = float(1.0 / (1.0 + np.exp(-slope * float(faa_normalized))))
    # A population direction near chance may lean, never claim: at most UNCALIBRATED_LEAN.
    probability = float(np.clip(probability, 0.5 - UNCALIBRATED_LEAN, 0.5 + UNCALIBRATED_LEAN))
    return ValenceEstimate(
        probability,
        False,
        "uncalibrated: frontal alpha asymmetry direction only; accuracy not measured here "
        "(published cross-subject valence from physiology is near chance, ~0.55-0.63); run "
        "the valence calibration protocol",
        "eeg_faa",
    )


class ValenceSmoother:
    """Exponential smoothing of live valence over time, so it never jumps between windows.

    Valence is a slow state; a personal model is scored on whole episodes, and a population
    direction is near chance. The smoothed probability follows the raw one with time constant
    ``seconds``: a change takes about that long to show, and a single odd window moves the
    estimate by at most ``step / seconds`` of the way.

    Parameters
    ----------
    seconds : float
        Time constant (s).
    """

    def __init__(self, seconds: float = SMOOTHING_SECONDS) -> None:
        if not seconds > 0:
            raise ConfigError(f"Smoothing time constant must be > 0 s, got {seconds!r}.")
        self.seconds = float(seconds)
        self._t: float | None = None
        self._p = 0.5
        self._rating = SCALE_MID

    def update(self, t: float, estimate: ValenceEstimate) -> ValenceEstimate:
        """Fold one window's estimate in and return the smoothed one.

        Parameters
        ----------
        t : float
            Window end (s); non-decreasing.
        estimate : ValenceEstimate
            The raw estimate of this window.

        Returns
        -------
        ValenceEstimate
            Same fields, smoothed ``probability`` (and ``rating``).
        """
        # Both start from "don't know" (0.5, the midpoint) rather than from the first window.
        dt = FIRST_STEP_SECONDS if self._t is None else max(t - self._t, 0.0)
        weight = 1.0 - math.exp(-dt / self.seconds)
        self._t = t
        # In probability (not log-odds) space: a step moves it at most `weight` of the way.
        self._p += weight * (estimate.probability - self._p)
        rating = estimate.rating
        if rating is not None:
            self._rating += weight * (rating - self._rating)
            rating = self._rating
        return ValenceEstimate(
            self._p,
            estimate.calibrated,
            estimate.confidence,
            estimate.basis,
            rating=rating,
            accuracy=estimate.accuracy,
        )
