"""The beat template of every synthetic ECG in the package.

Two generators draw ECG: :func:`affectstream.signal.synthetic.synthetic_ecg` (offline
recordings with known beats) and :class:`affectstream.device.emulation.signals.EcgGenerator`
(the emulated Polar H10). Device and signal may not import each other, so the shape they share
lives here, in the base layer both already use (like :mod:`affectstream.types`).

The template is a sum of Gaussians, one per P, Q, R, S and T wave (after McSharry et al.'s
ECGSYN). P and Q keep their offset from R; S and T move and widen with ``sqrt(RR)``, a
Bazett-like QT adaptation.
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
