"""The response shapes of every synthetic ECG and EDA in the package.

Two families of generators draw them: :mod:`affectstream.signal.synthetic` (offline recordings
with known beats and responses) and :mod:`affectstream.device.emulation.signals` (the emulated
Polar H10 and EDA band). Device and signal may not import each other, so the shapes they share
live here, in the base layer both already use (like :mod:`affectstream.types`).

The template is a sum of Gaussians, one per P, Q, R, S and T wave (after McSharry et al.'s
ECGSYN). P and Q keep their offset from R; S and T move and widen with ``sqrt(RR)``, a
Bazett-like QT adaptation. A skin-conductance response is a Bateman function (the
difference of a slow and a fast exponential) scaled to a unit peak.
"""

from __future__ import annotations

import numpy as np

from affectstream.types import FloatArray

#: P, Q, R, S, T waves: (offset from R in s at RR = 1 s, amplitude µV, width s, scales with RR).
ECG_WAVES: tuple[tuple[float, float, float, bool], ...] = (
    (-0.17, 110.0, 0.025, False),
    (-0.03, -120.0, 0.010, False),
    (0.0, 1100.0, 0.013, False),
    (0.035, -260.0, 0.012, False),
    (0.30, 280.0, 0.055, True),
)

#: Span of one beat's template around its R peak (s): where every wave has decayed to < 0.5 µV
#: for RR up to 1.5 s.
ECG_BEAT_SPAN = (-0.4, 0.7)


def ecg_beat(dt: FloatArray, rr: FloatArray | float = 1.0) -> FloatArray:
    """ECG of one beat (µV) at ``dt`` seconds from its R peak.

    Parameters
    ----------
    dt : ndarray
        Time from the R peak in seconds (negative before it); ``inf`` gives 0.
    rr : ndarray or float
        RR interval ending at the beat, in seconds; broadcast against ``dt``.

    Returns
    -------
    ndarray
        The template's value, shaped as ``dt`` and ``rr`` broadcast together.
    """
    scale = np.sqrt(rr)
    out = np.zeros(np.broadcast_shapes(np.shape(dt), np.shape(scale)))
    for offset, amplitude, width, scales in ECG_WAVES:
        centre = offset * scale if scales else offset
        sd = width * scale if scales else width
        out += amplitude * np.exp(-0.5 * ((dt - centre) / sd) ** 2)
    return out


def scr_response(lag: FloatArray, *, decay: float, rise: float) -> FloatArray:
    """One skin-conductance response of unit peak, ``lag`` seconds after its onset.

    Parameters
    ----------
    lag : ndarray
        Time since the onset in seconds; the response is 0 at and before the onset.
    decay, rise : float
        Time constants in seconds (``decay > rise``).

    Returns
    -------
    ndarray
        ``(exp(-lag/decay) - exp(-lag/rise)) / peak``, shaped as ``lag``.
    """
    # The Bateman function peaks where its derivative is zero: this closed form, so the
    # unit peak does not depend on the sampling grid.
    t_peak = np.log(decay / rise) * decay * rise / (decay - rise)
    peak = np.exp(-t_peak / decay) - np.exp(-t_peak / rise)
    after = np.maximum(lag, 0.0)
    shape = np.where(lag > 0, np.exp(-after / decay) - np.exp(-after / rise), 0.0)
    return np.asarray(shape / peak, dtype=np.float64)
