"""Valence calibration episodes: the SAM scale, the rated blocks and the protocol rules.

A calibration is a list of :class:`CalibrationBlock` (stimulus episodes, each with its SAM
self-report); :func:`check_calibration_blocks` refuses a set that cannot tell valence from
stress, and :func:`block_windows` says which feature windows lie inside which episode.
:class:`ValenceEstimate` is what every valence estimate, calibrated or not, looks like.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from affectstream.errors import ConfigError, ModelError

logger = logging.getLogger(__name__)

SCALE_MIN, SCALE_MAX, SCALE_MID = 1.0, 9.0, 5.0
#: Episodes needed on each side of the midpoint before a personal model is fitted.
MIN_EPISODES_PER_SIDE = 2


def _check_rating(name: str, value: float | None) -> None:
    if value is not None and not SCALE_MIN <= value <= SCALE_MAX:
        raise ConfigError(
            f"{name.capitalize()} rating {value!r} is outside the 1-9 scale; record the "
            f"self-report on the 9-point SAM scale."
        )


@dataclass(frozen=True)
class CalibrationBlock:
    """One stimulus block (episode) of the calibration protocol and the self-report after it.

    Parameters
    ----------
    t_start, t_end : float
        Block span, seconds since the epoch.
    rating : float
        Self-reported valence on the 1-9 scale (SAM).
    arousal : float, optional
        Self-reported arousal on the 1-9 scale; tells stressful unpleasant episodes
        (arousal above the midpoint) from calm unpleasant ones.
    label : str
        The block's name (its protocol phase).
    session : str
        The session it belongs to; when given, only that session's windows (the feature
        table's ``session`` column) count, so sessions recorded at once do not mix.
    """

    t_start: float
    t_end: float
    rating: float
    arousal: float | None = None
    label: str = ""
    session: str = ""

    def __post_init__(self) -> None:
        _check_rating("valence", self.rating)
        _check_rating("arousal", self.arousal)
        if not self.t_end > self.t_start:
            raise ConfigError(
                f"Calibration block ends ({self.t_end}) before it starts ({self.t_start})."
            )

    @property
    def side(self) -> str:
        """``"high"``, ``"low"`` or ``"mid"`` (a rating exactly at the midpoint)."""
        if self.rating > SCALE_MID:
            return "high"
        return "low" if self.rating < SCALE_MID else "mid"

    @property
    def stressful(self) -> bool:
        """Unpleasant and rated aroused: the episodes a stress detector would also find."""
        return self.side == "low" and self.arousal is not None and self.arousal > SCALE_MID


@dataclass(frozen=True)
class ValenceEstimate:
    """Valence for one window.

    Parameters
    ----------
    probability : float
        Probability that valence is high (above the scale midpoint).
    calibrated : bool
        True only when a personal model that beat the person's own mean rating (the whole
        95% interval of the difference below zero) made it.
    confidence : str
        What is known about how good this estimate is, in words and numbers.
    basis : str
        Which signals the estimate rests on.
    rating : float, optional
        The personal model's predicted SAM rating (1-9); None when uncalibrated.
    accuracy : mapping, optional
        The personal model's measured accuracy (:attr:`PersonalValenceModel.accuracy_`).
    """

    probability: float
    calibrated: bool
    confidence: str
    basis: str
    rating: float | None = None
    accuracy: Mapping[str, Any] | None = None


def check_calibration_blocks(blocks: Sequence[CalibrationBlock]) -> None:
    """Refuse a calibration that cannot tell valence from stress.

    Parameters
    ----------
    blocks : sequence of CalibrationBlock
        The episodes that have windows inside them.

    Raises
    ------
    ModelError
        Fewer than two episodes on a side, or every unpleasant episode was stressful.
    """
    high = [b for b in blocks if b.side == "high"]
    low = [b for b in blocks if b.side == "low"]
    calm_low = [b for b in low if b.arousal is not None and b.arousal <= SCALE_MID]
    if len(high) < MIN_EPISODES_PER_SIDE or len(low) < MIN_EPISODES_PER_SIDE:
        raise ModelError(
            f"Calibration needs at least {MIN_EPISODES_PER_SIDE} rated episodes on each side of "
            f"the valence midpoint ({SCALE_MID:g}); got {len(low)} low and {len(high)} high "
            f"with windows inside them. Add calibration blocks (pleasant and unpleasant "
            f"stimuli) or lengthen them beyond one feature window."
        )
    if not calm_low:
        raise ModelError(
            f"No unpleasant calibration episode was rated calm (arousal <= {SCALE_MID:g}): a "
            f"model fitted on stressful ones would learn stress, not valence. Add at least one "
            f"unpleasant, calm block (e.g. sad pictures or music) with a valence and arousal "
            f"self-report."
        )


def block_windows(
    frame: pd.DataFrame, blocks: Sequence[CalibrationBlock], window: float
) -> np.ndarray[Any, Any]:
    """Index of the block each window lies wholly inside (-1: none).

    Parameters
    ----------
    frame : pandas.DataFrame
        Feature rows with ``t_end``.
    blocks : sequence of CalibrationBlock
    window : float
        Window length (s).

    Returns
    -------
    numpy.ndarray of int
    """
    t_end = frame["t_end"].to_numpy(dtype=np.float64)
    sessions = frame["session"].astype(str).to_numpy() if "session" in frame else None
    block_id = np.full(t_end.shape, -1)
    for k, block in enumerate(blocks):
        inside = (t_end - window >= block.t_start - 1e-9) & (t_end <= block.t_end + 1e-9)
        if block.session and sessions is not None:
            inside &= sessions == block.session
        block_id[inside & (block_id < 0)] = k
    return block_id
