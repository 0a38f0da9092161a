"""Valence: a per-participant calibration protocol, and an explicitly uncalibrated estimate.

No redistributable real valence data exists for a population model, and across people a
physiological "valence" classifier turns out to be a stress detector in disguise (on real
wrist data, low-valence windows were almost all the stress condition). So valence comes from
a personal model fitted on calibration *episodes* of the same person:

1. the participant goes through stimulus blocks (protocol phases with ``calibration = true``,
   :mod:`affectstream.runtime.protocol`), each followed by a SAM self-report (valence and
   arousal, 1-9);
2. :class:`PersonalValenceModel` needs at least two episodes on each side of the valence
   midpoint, at least one of the unpleasant ones *not* stressful (arousal rated at most the
   midpoint), so that it cannot learn stress and call it valence;
3. it regresses the rating on the window features (ridge regression, features standardised
   within each training fold) and scores itself **leave one episode out**: every held-out
   episode is predicted by a model that never saw any of its windows, against the person's
   own mean rating (over all its episodes: the stricter bar; the leave-one-out mean is
   biased against itself). Only a model whose held-out error is below the own mean's with
   the whole 95% bootstrap interval of the paired difference below zero, *and* whose gain
   over the own mean passes a within-person permutation test of the ratings' order
   (p <= 0.05), is ``calibrated``; the error, with its interval over episodes, travels with
   every estimate it makes.

Before calibration, :func:`uncalibrated_valence` gives an estimate marked ``calibrated=False``
with its confidence spelled out: from frontal alpha asymmetry when EEG is present (a weak,
population-level direction), otherwise the uninformative 0.5. :class:`ValenceSmoother` keeps
either kind from jumping between windows.

The parts live in one module per job: :mod:`~affectstream.models.valence_blocks` (scale,
episodes, protocol rules), :mod:`~affectstream.models.valence_scoring` (leave one episode
out, permutation test), :mod:`~affectstream.models.valence_personal` (the model) and
:mod:`~affectstream.models.valence_uncalibrated` (uncalibrated estimate, smoothing); this
module re-exports them under their historical import path.
"""

from __future__ import annotations

from affectstream.models.valence_blocks import (
    MIN_EPISODES_PER_SIDE,
    SCALE_MAX,
    SCALE_MID,
    SCALE_MIN,
    CalibrationBlock,
    ValenceEstimate,
    block_windows,
    check_calibration_blocks,
)
from affectstream.models.valence_personal import (
    FORMAT_VERSION,
    PersonalValenceModel,
    calibration_verdict,
    fit_personal_valence,
)
from affectstream.models.valence_scoring import (
    BOOTSTRAP,
    PERMUTATION_ALPHA,
    StandardisedRidge,
    measure_leave_one_episode_out,
    permutation_test,
)
from affectstream.models.valence_uncalibrated import (
    FIRST_STEP_SECONDS,
    SMOOTHING_SECONDS,
    UNCALIBRATED_LEAN,
    ValenceSmoother,
    uncalibrated_valence,
)

__all__ = [
    "BOOTSTRAP",
    "FIRST_STEP_SECONDS",
    "FORMAT_VERSION",
    "MIN_EPISODES_PER_SIDE",
    "PERMUTATION_ALPHA",
    "SCALE_MAX",
    "SCALE_MID",
    "SCALE_MIN",
    "SMOOTHING_SECONDS",
    "UNCALIBRATED_LEAN",
    "CalibrationBlock",
    "PersonalValenceModel",
    "StandardisedRidge",
    "ValenceEstimate",
    "ValenceSmoother",
    "block_windows",
    "calibration_verdict",
    "check_calibration_blocks",
    "fit_personal_valence",
    "measure_leave_one_episode_out",
    "permutation_test",
    "uncalibrated_valence",
]
