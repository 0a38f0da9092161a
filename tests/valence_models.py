"""A fitted personal valence model whose quality the test chooses (runtime and API tests)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from affectstream.models.valence import CalibrationBlock, PersonalValenceModel

#: Epoch seconds the synthetic calibration starts at.
T0 = 1_700_000_000.0


def fitted_personal_valence(
    calibrated: bool, window: float = 10.0, feature: str = "eeg_faa"
) -> PersonalValenceModel:
    """A personal model on one feature that tracks the rating, or does not.

    Parameters
    ----------
    calibrated : bool
        True: the feature follows each block's rating (the model beats the person's own mean
        rating); False: pure noise (it does not).
    window : float
        Feature window (s) the model is fitted on: a live session applies it only on the same.
    feature : str
        The feature column (default ``eeg_faa``; ``hrv_rmssd`` for a participant calibrated
        on a heart-rate strap alone).

    Returns
    -------
    PersonalValenceModel
    """
    rng = np.random.default_rng(1)
    ratings = [(8.0, 4.0), (2.0, 3.0), (7.0, 6.0), (3.0, 4.0), (8.0, 3.0), (2.0, 2.0)]
    t = T0 + 10.0 + 5.0 * np.arange(72)
    rating = np.repeat([v for v, _ in ratings], 12)
    signal = (rating - 5.0) / 3.0 * (2.0 if calibrated else 0.0)
    frame = pd.DataFrame({"t_end": t, feature: signal + rng.normal(0, 0.5, 72)})
    blocks = [
        CalibrationBlock(T0 + 60.0 * k, T0 + 60.0 * (k + 1), v, a, f"b{k}")
        for k, (v, a) in enumerate(ratings)
    ]
    return PersonalValenceModel().fit(frame, blocks, window)
