"""Arousal/valence scripts that drive the emulated physiology."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from affectstream.errors import ConfigError
from affectstream.types import FloatArray


@dataclass(frozen=True, slots=True)
class Phase:
    """One phase of an :class:`AffectScript`.

    Parameters
    ----------
    name : str
        Label, e.g. ``"baseline"`` or ``"stress"``.
    duration : float
        Length in seconds of device time (> 0).
    arousal, valence : float
        Levels in [0, 1] held during the phase.
    """

    name: str
    duration: float
    arousal: float
    valence: float

    def __post_init__(self) -> None:
        if not self.duration > 0:
            raise ConfigError(
                f"Phase {self.name!r}: duration must be > 0 seconds, got {self.duration!r}."
            )
        for label, level in (("arousal", self.arousal), ("valence", self.valence)):
            if not 0.0 <= level <= 1.0:
                raise ConfigError(f"Phase {self.name!r}: {label} must be in [0, 1], got {level!r}.")


class AffectScript:
    """Arousal and valence over time: a sequence of phases joined by linear ramps.

    Time is seconds of device time since the device powered on. After the last phase the
    script starts over (``loop=True``) or holds the last phase.

    Parameters
    ----------
    phases : sequence of Phase
        The phases, in order.
    ramp : float
        Seconds over which the levels glide from one phase to the next (centred on the
        boundary). 0 gives steps.
    loop : bool
        Repeat the script after the last phase.
    """

    def __init__(self, phases: Sequence[Phase], *, ramp: float = 10.0, loop: bool = True) -> None:
        if not phases:
            raise ConfigError("AffectScript needs at least one Phase, got an empty sequence.")
        if ramp < 0:
            raise ConfigError(f"AffectScript ramp must be >= 0 seconds, got {ramp!r}.")
        self.phases = tuple(phases)
        self.ramp = float(ramp)
        self.loop = bool(loop)
        self._bounds = np.cumsum([0.0] + [p.duration for p in self.phases])
        self._arousal = np.array([p.arousal for p in self.phases])
        self._valence = np.array([p.valence for p in self.phases])

    @classmethod
    def default(cls) -> AffectScript:
        """Baseline (2 min), stress (2 min), recovery (2 min), repeated."""
        return cls(
            [
                Phase("baseline", 120.0, arousal=0.2, valence=0.55),
                Phase("stress", 120.0, arousal=0.85, valence=0.25),
                Phase("recovery", 120.0, arousal=0.35, valence=0.7),
            ]
        )

    @property
    def duration(self) -> float:
        """Length of one pass through the phases, in seconds."""
        return float(self._bounds[-1])

    def _wrap(self, t: FloatArray) -> FloatArray:
        if self.loop:
            return np.mod(t, self.duration)
        return np.clip(t, 0.0, self.duration - 1e-9)

    def _levels(self, t: ArrayLike, levels: FloatArray) -> FloatArray:
        tt = self._wrap(np.asarray(t, dtype=np.float64))
        if self.ramp == 0 or len(self.phases) == 1:
            idx = np.clip(np.searchsorted(self._bounds, tt, side="right") - 1, 0, len(levels) - 1)
            return levels[idx]
        # Piecewise-linear through phase mid-plateaus: flat inside a phase, ramps of
        # length `ramp` centred on each boundary.
        knots_t: list[float] = []
        knots_v: list[float] = []
        half = self.ramp / 2.0
        for i, level in enumerate(levels):
            start, end = self._bounds[i], self._bounds[i + 1]
            a = start + min(half, (end - start) / 2) if i > 0 else start
            b = end - min(half, (end - start) / 2) if i < len(levels) - 1 else end
            knots_t += [a, b]
            knots_v += [level, level]
        return np.interp(tt, knots_t, knots_v)

    def arousal(self, t: ArrayLike) -> FloatArray:
        """Arousal level in [0, 1] at device time(s) ``t`` (seconds)."""
        return self._levels(t, self._arousal)

    def valence(self, t: ArrayLike) -> FloatArray:
        """Valence level in [0, 1] at device time(s) ``t`` (seconds)."""
        return self._levels(t, self._valence)
