"""Physiologically plausible signal generators driven by an :class:`AffectScript`.

Each generator is incremental (called chunk by chunk as the device clock advances), cheap to
start (no simulation at start-up) and vectorised, so several devices run in real time on
one core. The models are deliberately simple and documented here, so tests can derive
their expectations from the parameters:

- heart: mean heart rate ``HR_REST_BPM + HR_GAIN_BPM * arousal``; RR intervals carry
  respiratory sinus arrhythmia and a 0.1 Hz (LF) rhythm whose depth shrinks with arousal.
- ECG: the package's sum-of-Gaussians P-QRS-T template (:func:`affectstream.waveforms.ecg_beat`)
  placed at each beat of the RR sequence, with baseline wander and noise.
- EDA: a tonic level that follows ``SCL_REST_US + SCL_GAIN_US * arousal`` with a slow lag,
  plus skin-conductance responses at ``SCR_RATE_REST + SCR_RATE_GAIN * arousal`` per
  minute (Poisson), each a Bateman-shaped bump.
- EEG: 1/f background per channel plus a ~10 Hz alpha rhythm whose amplitude is
  ``ALPHA_UV * (1 - ALPHA_AROUSAL_DROP * arousal)``; AF8 alpha amplitude is scaled by
  ``exp(+FAA_GAIN * (valence - 0.5))`` and AF7 by ``exp(-FAA_GAIN * (valence - 0.5))``,
  so frontal alpha asymmetry in power, ``ln(alpha_power_AF8) - ln(alpha_power_AF7)``, is
  ``4 * FAA_GAIN * (valence - 0.5)`` (before the 1/f background dilutes it).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import signal as sps

from affectstream.device.emulation.script import AffectScript
from affectstream.types import FloatArray
from affectstream.waveforms import ecg_beat, scr_response

HR_REST_BPM = 60.0
HR_GAIN_BPM = 40.0
RSA_DEPTH_REST = 0.07  # fraction of the mean RR at arousal 0
LF_DEPTH_REST = 0.035
RR_NOISE_REST = 0.02  # fraction of the mean RR (beat-to-beat jitter)

SCL_REST_US = 2.0
SCL_GAIN_US = 8.0
SCL_TAU_S = 15.0
SCR_RATE_REST = 2.0  # responses per minute at arousal 0
SCR_RATE_GAIN = 14.0
SCR_AMP_REST_US = 0.15
SCR_AMP_GAIN_US = 0.6

ALPHA_UV = 12.0
# Alpha power at arousal 0.9 is about half of that at 0.2 ((1 - 0.315) / (1 - 0.07))² = 0.54,
# the order of alpha desynchronisation in mental arithmetic. It was 0.75 (power down 85 %):
# against the demo's own rest that put alpha shares 10+ of the rest's SDs down, past every
# window of eegmat (1 % quantile -4.5 to -5.3; docs/models.md, "The demo's arousal").
ALPHA_AROUSAL_DROP = 0.35
ALPHA_HZ = 10.0
FAA_GAIN = 0.25
ALPHA_SHARED = 0.95  # fraction of alpha power common to all electrodes
BACKGROUND_UV = 8.0


def mean_hr_bpm(arousal: float | FloatArray) -> float | FloatArray:
    """Mean heart rate (bpm) the heart model produces at a given arousal."""
    return HR_REST_BPM + HR_GAIN_BPM * np.asarray(arousal, dtype=np.float64)


class BeatGenerator:
    """Heartbeat times and RR intervals following the script.

    Parameters
    ----------
    script : AffectScript
        Drives the mean heart rate and the depth of heart-rate variability.
    rng : numpy.random.Generator
        Source of randomness.
    """

    def __init__(self, script: AffectScript, rng: np.random.Generator) -> None:
        self.script = script
        self.rng = rng
        self.resp_phase = float(rng.uniform(0, 2 * np.pi))
        self.lf_phase = float(rng.uniform(0, 2 * np.pi))
        # Device time of the last generated beat; the first beat falls within 1 s.
        self._t = float(rng.uniform(0.0, 1.0))
        self.times: list[float] = [self._t]
        self.rr: list[float] = [float("nan")]  # RR ending at each beat (s)
        self.dropped = 0  # beats forgotten from the front (global number of times[0])

    def _next_rr(self, t: float) -> float:
        a = float(self.script.arousal(t))
        mean_rr = 60.0 / float(mean_hr_bpm(a))
        resp_hz = 0.25 + 0.1 * a
        rsa = RSA_DEPTH_REST * (1.0 - 0.8 * a)
        lf = LF_DEPTH_REST * (1.0 - 0.6 * a)
        noise = RR_NOISE_REST * (1.0 - 0.5 * a)
        factor = (
            1.0
            + rsa * np.sin(2 * np.pi * resp_hz * t + self.resp_phase)
            + lf * np.sin(2 * np.pi * 0.1 * t + self.lf_phase)
            + noise * self.rng.standard_normal()
        )
        return float(np.clip(mean_rr * factor, 0.3, 2.0))

    def extend_to(self, t_end: float) -> None:
        """Generate beats until the last one lies after ``t_end``."""
        while self._t <= t_end:
            rr = self._next_rr(self._t)
            self._t += rr
            self.times.append(self._t)
            self.rr.append(rr)

    def beats_between(self, t0: float, t1: float) -> tuple[FloatArray, FloatArray]:
        """Beat times in ``[t0, t1)`` and the RR interval ending at each (seconds)."""
        self.extend_to(t1)
        times = np.asarray(self.times)
        lo, hi = np.searchsorted(times, [t0, t1], side="left")
        return times[lo:hi], np.asarray(self.rr)[lo:hi]

    def forget_before(self, t: float) -> None:
        """Drop beats older than ``t`` (keeps memory bounded on long runs)."""
        times = np.asarray(self.times)
        k = int(np.searchsorted(times, t)) - 2
        if k > 0:
            del self.times[:k]
            del self.rr[:k]
            self.dropped += k


class EcgGenerator:
    """ECG in µV on a regular grid, following a :class:`BeatGenerator`.

    Parameters
    ----------
    beats : BeatGenerator
        The heart whose beats the ECG shows.
    sfreq : float
        Sampling rate in Hz.
    rng : numpy.random.Generator
        Noise source.
    """

    def __init__(self, beats: BeatGenerator, sfreq: float, rng: np.random.Generator) -> None:
        self.beats = beats
        self.sfreq = float(sfreq)
        self.rng = rng
        self.wander_phase = float(rng.uniform(0, 2 * np.pi))

    def samples(self, first_index: int, n: int) -> FloatArray:
        """ECG samples ``first_index .. first_index + n - 1`` (device sample indices)."""
        t = (first_index + np.arange(n)) / self.sfreq
        if n == 0:
            return t
        self.beats.extend_to(float(t[-1]) + 2.5)
        times = np.asarray(self.beats.times)
        rrs = np.asarray(self.beats.rr)
        ecg = np.zeros(n)
        nxt = np.searchsorted(times, t, side="right")
        # Sum the templates of the two beats around each sample and the one before.
        for shift in (-2, -1, 0):
            raw_k = nxt + shift
            valid = (raw_k >= 0) & (raw_k < len(times))
            k = np.clip(raw_k, 0, len(times) - 1)
            dt = np.where(valid, t - times[k], np.inf)  # no such beat: contributes nothing
            rr = np.where(np.isfinite(rrs[k]), rrs[k], 1.0)
            ecg += ecg_beat(dt, rr)
        ecg += 60.0 * np.sin(2 * np.pi * 0.25 * t + self.wander_phase)
        ecg += 8.0 * self.rng.standard_normal(n)
        self.beats.forget_before(float(t[0]) - 5.0)
        return ecg


class EdaGenerator:
    """Skin conductance in µS: tonic level plus skin-conductance responses.

    Parameters
    ----------
    script : AffectScript
        Drives the tonic level and the SCR rate.
    rng : numpy.random.Generator
        Randomness for SCR timing and amplitude.
    """

    RISE_S = 0.75
    DECAY_S = 2.5

    def __init__(self, script: AffectScript, rng: np.random.Generator) -> None:
        self.script = script
        self.rng = rng
        self._scl = SCL_REST_US + SCL_GAIN_US * float(script.arousal(0.0))
        self._last_t = 0.0
        self._next_scr = self._draw_wait(0.0)
        self.scr_onsets: list[float] = []
        self.scr_amps: list[float] = []

    def scr_rate_per_min(self, t: float) -> float:
        """Expected SCR rate at device time ``t``."""
        return SCR_RATE_REST + SCR_RATE_GAIN * float(self.script.arousal(t))

    def _draw_wait(self, t: float) -> float:
        return t + float(self.rng.exponential(60.0 / self.scr_rate_per_min(t)))

    def samples_at(self, t: FloatArray) -> FloatArray:
        """Conductance (µS) at increasing device times ``t`` (seconds), after earlier calls."""
        if t.size == 0:
            return t
        while self._next_scr <= t[-1]:
            a = float(self.script.arousal(self._next_scr))
            mean_amp = SCR_AMP_REST_US + SCR_AMP_GAIN_US * a
            self.scr_onsets.append(self._next_scr)
            self.scr_amps.append(float(mean_amp * self.rng.lognormal(0.0, 0.4)))
            self._next_scr = self._draw_wait(self._next_scr)
        # Tonic: first-order lag towards the script's target.
        target = SCL_REST_US + SCL_GAIN_US * self.script.arousal(t)
        dt = np.diff(np.concatenate([[self._last_t], t]))
        alpha = 1.0 - np.exp(-np.maximum(dt, 0.0) / SCL_TAU_S)
        scl = np.empty_like(t)
        level = self._scl
        for i in range(t.size):  # short chunks; a loop is cheaper than building filters
            level += alpha[i] * (target[i] - level)
            scl[i] = level
        self._scl = level
        self._last_t = float(t[-1])
        # Phasic: sum of recent responses.
        onsets = np.asarray(self.scr_onsets)
        amps = np.asarray(self.scr_amps)
        keep = onsets > t[0] - 30.0
        onsets, amps = onsets[keep], amps[keep]
        self.scr_onsets, self.scr_amps = list(onsets), list(amps)
        phasic = np.zeros_like(t)
        if onsets.size:
            lag = t[:, None] - onsets[None, :]
            phasic = scr_response(lag, decay=self.DECAY_S, rise=self.RISE_S) @ amps
        noise = 0.004 * self.rng.standard_normal(t.size)
        return np.maximum(scl + phasic + noise, 0.01)


def _pink_filter() -> tuple[FloatArray, FloatArray]:
    # Kasdin/Kellet 3-pole approximation of a 1/f spectrum.
    b = np.array([0.049922035, -0.095993537, 0.050612699, -0.004408786])
    a = np.array([1.0, -2.494956002, 2.017265875, -0.522189400])
    return b, a


class EegGenerator:
    """Multichannel EEG in µV: 1/f background plus an arousal- and valence-driven alpha.

    Parameters
    ----------
    script : AffectScript
        Drives alpha amplitude (arousal) and frontal asymmetry (valence).
    channels : sequence of str
        Channel names; ``"AF7"`` and ``"AF8"`` get the asymmetry, ``"AUX"`` no alpha.
    sfreq : float
        Sampling rate in Hz.
    rng : numpy.random.Generator
        Noise source.
    """

    def __init__(
        self,
        script: AffectScript,
        channels: Sequence[str],
        sfreq: float,
        rng: np.random.Generator,
    ) -> None:
        self.script = script
        self.channels = tuple(channels)
        self.sfreq = float(sfreq)
        self.rng = rng
        n_ch = len(self.channels)
        self._pink_b, self._pink_a = _pink_filter()
        pink_gain = float(
            np.sqrt(np.sum(sps.lfilter(self._pink_b, self._pink_a, np.eye(1, 4096)[0]) ** 2))
        )
        self._pink_scale = BACKGROUND_UV / pink_gain
        self._pink_zi = np.zeros((n_ch, 3))
        r = 0.985
        w = 2 * np.pi * ALPHA_HZ / self.sfreq
        self._alpha_a = np.array([1.0, -2 * r * np.cos(w), r * r])
        impulse = sps.lfilter([1.0], self._alpha_a, np.eye(1, 8192)[0])
        # Unit-RMS alpha process; times sqrt(2) so the amplitude is the sinusoid's peak.
        self._alpha_scale = np.sqrt(2.0) / float(np.sqrt(np.sum(impulse**2)))
        self._alpha_zi = np.zeros((n_ch + 1, 2))
        self._channel_gain = np.array([0.0 if ch == "AUX" else 1.0 for ch in self.channels])
        self._faa_sign = np.array(
            [1.0 if ch == "AF8" else -1.0 if ch == "AF7" else 0.0 for ch in self.channels]
        )

    def alpha_amplitude(self, t: FloatArray) -> FloatArray:
        """Alpha amplitude (µV) per sample and channel at device times ``t``."""
        a = self.script.arousal(t)[:, None]
        v = self.script.valence(t)[:, None]
        base = ALPHA_UV * (1.0 - ALPHA_AROUSAL_DROP * a)
        asym = np.exp(self._faa_sign[None, :] * FAA_GAIN * (v - 0.5))
        amplitude: FloatArray = base * self._channel_gain[None, :] * asym
        return amplitude

    def samples(self, first_index: int, n: int) -> FloatArray:
        """EEG samples, shape (n, n_channels), for device sample indices from ``first_index``."""
        n_ch = len(self.channels)
        if n == 0:
            return np.zeros((0, n_ch))
        t = (first_index + np.arange(n)) / self.sfreq
        white = self.rng.standard_normal((n_ch, n))
        pink, self._pink_zi = sps.lfilter(
            self._pink_b, self._pink_a, white, axis=1, zi=self._pink_zi
        )
        # Alpha is spatially coherent: one shared generator plus a smaller local part.
        drive = self.rng.standard_normal((n_ch + 1, n))
        sources, self._alpha_zi = sps.lfilter(
            [1.0], self._alpha_a, drive, axis=1, zi=self._alpha_zi
        )
        alpha = ALPHA_SHARED**0.5 * sources[:1] + (1.0 - ALPHA_SHARED) ** 0.5 * sources[1:]
        eeg = pink.T * self._pink_scale + alpha.T * self._alpha_scale * self.alpha_amplitude(t)
        result: FloatArray = np.asarray(eeg, dtype=np.float64)
        return result
