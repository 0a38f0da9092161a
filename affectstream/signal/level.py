"""Cheap window statistics of slow streams: skin temperature, heart rate, acceleration."""

from __future__ import annotations

import math

import numpy as np

from affectstream.errors import SignalError
from affectstream.signal._base import Processor, ols_slope
from affectstream.signal.config import WindowConfig
from affectstream.types import FloatArray, SampleBlock

#: Plausible values per modality; samples outside lower the quality index.
PLAUSIBLE = {"temp": (20.0, 45.0), "hr": (25.0, 240.0), "acc": (0.0, 16.0)}


class LevelProcessor(Processor):
    """Mean and slope of a one-channel stream (``temp``, ``hr``) or the magnitude of ``acc``.

    Features: ``temp_mean`` (°C), ``temp_slope`` (°C/s), ``hr_mean`` (bpm), ``hr_slope``
    (bpm/s), ``acc_mag_mean`` and ``acc_mag_std`` (g, magnitude of the x, y, z vector).
    Samples are kept with their times; a window holds those with ``t_end - window <= t < t_end``.
    """

    def __init__(self, first: SampleBlock, config: WindowConfig) -> None:
        super().__init__(first, config)
        self.family = self.modality
        self.t = np.empty(0)
        self.v = np.empty(0)
        if self.modality == "acc" and len(self.channels) != 3:
            raise SignalError(
                f"ACC stream {self.stream!r} has channels {self.channels}; expected x, y, z."
            )

    def check_units(self, block: SampleBlock) -> None:
        finite = block.values[np.all(np.isfinite(block.values), axis=1)]
        if not finite.size:
            return
        if self.modality == "acc":
            magnitude = float(np.median(np.linalg.norm(finite, axis=1)))
            if magnitude > 8.0:
                raise SignalError(
                    f"ACC stream {self.stream!r}: median magnitude {magnitude:.3g} at rest "
                    f"should be about 1 g. Values look like m/s² (divide by 9.81) or raw "
                    f"Empatica E4 counts of 1/64 g (divide by 64)."
                )
        elif self.modality == "temp":
            median = float(np.median(finite))
            if median > 50.0:
                raise SignalError(
                    f"TEMP stream {self.stream!r}: median {median:.4g} is not a skin "
                    f"temperature in °C. If it is °F, convert with (F - 32) / 1.8."
                )

    def _times(self, n_new: int) -> FloatArray:
        sfreq = self.rate
        return self.t_first + np.arange(self.n - n_new, self.n) / sfreq

    def _consume(self, t: FloatArray, values: FloatArray) -> None:
        v = np.linalg.norm(values, axis=1) if self.modality == "acc" else values[:, 0].copy()
        low, high = PLAUSIBLE.get(self.modality, (-math.inf, math.inf))
        v[(v < low) | (v > high)] = np.nan
        self.t = np.concatenate((self.t, t))
        self.v = np.concatenate((self.v, v))

    def add_samples(self, values: FloatArray) -> None:
        self._consume(self._times(values.shape[0]), values)

    def add_events(self, t: FloatArray, values: FloatArray) -> None:
        self._consume(t, values)

    def ready_until(self) -> float:
        return math.inf if self.finished else self.data_end()

    def columns(self) -> list[str]:
        if self.modality == "acc":
            return ["acc_mag_mean", "acc_mag_std"]
        return [f"{self.modality}_mean", f"{self.modality}_slope"]

    def window(self, t_end: float) -> tuple[dict[str, float], float, str]:
        lo = int(np.searchsorted(self.t, t_end - self.config.window, side="left"))
        hi = int(np.searchsorted(self.t, t_end, side="left"))
        v, t = self.v[lo:hi], self.t[lo:hi]
        ok = np.isfinite(v)
        if self.sfreq is not None:
            quality = float(ok.sum()) / (self.config.window * self.sfreq)
        else:
            quality = float(ok.mean()) if v.size else 0.0
        quality = min(quality, 1.0)
        if not ok.any():
            return self.nan_features(), 0.0, f"no valid {self.modality} samples"
        if self.modality == "acc":
            std = float(np.std(v[ok], ddof=1)) if ok.sum() > 1 else math.nan
            return {"acc_mag_mean": float(np.mean(v[ok])), "acc_mag_std": std}, quality, ""
        if self.sfreq is not None:
            slope = ols_slope(v, 1.0 / self.sfreq)
        else:
            slope = _slope_irregular(t[ok], v[ok])
        features = {f"{self.modality}_mean": float(np.mean(v[ok])), f"{self.modality}_slope": slope}
        return features, quality, ""

    def trim(self, before: float) -> None:
        first = int(np.searchsorted(self.t, before, side="left"))
        if first:
            self.t, self.v = self.t[first:], self.v[first:]


def _slope_irregular(t: FloatArray, v: FloatArray) -> float:
    if t.size < 2:
        return math.nan
    tc = t - t.mean()
    denom = float(np.dot(tc, tc))
    return float(np.dot(tc, v - v.mean()) / denom) if denom > 0 else math.nan
