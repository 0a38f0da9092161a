"""Map device sample counters to host time, fitting offset and drift live.

BLE delivery only ever *adds* delay: a sample's arrival time is its true time plus a
non-negative, jittery latency. So the relation between device counter and host time is the
*lower envelope* of (counter, arrival time), not a least-squares line through it. The
:class:`ClockModel` keeps, over a forgetting window, the earliest-arriving packet per short
bucket, takes the lower convex hull of those points and picks the line that lies under every
point and is as high as possible on average (the linear-programming clock-skew estimator of
Moon, Skelly and Towsley, 1999): its optimum is the hull edge spanning the points' mean
counter. Timestamps then follow the device's own sample clock, with the fixed minimum
latency as the only offset, instead of jittering with delivery.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections import deque

import numpy as np
from numpy.typing import ArrayLike

from affectstream._validate import check_positive
from affectstream.types import FloatArray

logger = logging.getLogger(__name__)

#: Relative difference from the nominal rate beyond which :meth:`ClockModel.rate` trusts
#: a measured rate: far more than a crystal's error (~100 ppm) and than the jitter of the
#: earliest arrivals over a few seconds of data.
RATE_TOLERANCE = 0.05


def _cross(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def strictly_after(t: FloatArray, after: float, min_step: float) -> FloatArray:
    """Raise times just enough that each is ``min_step`` past the one before.

    ``out[i] = max(t[i], out[i - 1] + min_step)`` with ``out[-1] = after``.

    Parameters
    ----------
    t : ndarray of float64
        Times, seconds.
    after : float
        Time the first value must follow (``-inf`` for none).
    min_step : float
        Smallest spacing in seconds, > 0.

    Returns
    -------
    ndarray of float64
        Strictly increasing times; ``t`` itself when nothing had to move.
    """
    if t.shape[0] == 0:
        return t
    if t[0] >= after + min_step and (t.shape[0] == 1 or bool(np.all(np.diff(t) >= min_step))):
        return t
    steps = min_step * np.arange(t.shape[0])
    # out[i] = i·s + max(after + s, max over j ≤ i of t[j] − j·s): a running maximum.
    lifted = t - steps
    lifted[0] = max(lifted[0], after + min_step)
    out: FloatArray = np.maximum.accumulate(lifted) + steps
    return out


def lower_hull(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Lower convex hull of points sorted by x (Andrew's monotone chain).

    Parameters
    ----------
    points : list of (x, y)
        Sorted by x, distinct x.

    Returns
    -------
    list of (x, y)
        Hull vertices from left to right.
    """
    hull: list[tuple[float, float]] = []
    for p in points:
        while len(hull) >= 2 and _cross(hull[-2], hull[-1], p) <= 0:
            hull.pop()
        hull.append(p)
    return hull


class ClockModel:
    """Device counter → host time, offset and drift fitted on the lower envelope of arrivals.

    Parameters
    ----------
    nominal_rate : float
        Nominal sample rate in Hz (samples per device-counter step per second).
    window : float
        Forgetting window in seconds: only the last ``window`` seconds of packets count,
        so a drift that changes (temperature) is followed.
    bucket : float
        Seconds per bucket; each keeps only its earliest-arriving packet.
    max_drift_ppm : float
        Fitted drift is clipped to ± this many parts per million (crystals are within
        ~±100 ppm; a larger fit means too little data, not a faster clock).
    min_span : float, optional
        Seconds of data before the slope is fitted; until then the nominal rate is used.
        Defaults to a third of ``window``.

    Attributes
    ----------
    drift_ppm_ : float
        Fitted drift of the device clock relative to the host, in ppm (positive: the device
        samples faster than nominal).
    """

    def __init__(
        self,
        nominal_rate: float,
        *,
        window: float = 30.0,
        bucket: float = 0.5,
        max_drift_ppm: float = 1000.0,
        min_span: float | None = None,
    ) -> None:
        self.nominal_rate = check_positive("nominal_rate", nominal_rate)
        self.window = check_positive("window", window)
        self.bucket = check_positive("bucket", bucket)
        self.max_drift_ppm = check_positive("max_drift_ppm", max_drift_ppm)
        self.min_span = window / 3.0 if min_span is None else check_positive("min_span", min_span)
        self._last_stamp = -math.inf
        self.reset()

    def reset(self) -> None:
        """Forget every observation (after a device restart).

        The last time :meth:`stamp` gave is kept: stamps go on increasing across a restart.
        """
        self._origin: int | None = None
        # (bucket key, x, residual) with x = index - origin, residual = arrival - x / rate.
        self._buckets: deque[tuple[int, float, float]] = deque()
        self._dirty = False
        self._intercept = 0.0
        self._slope = 0.0  # residual seconds per sample
        self.drift_ppm_ = 0.0

    def observe(self, index: int, arrival: float) -> None:
        """Add a packet: the device index of its last sample and its host arrival time.

        Parameters
        ----------
        index : int
            Unwrapped device index of the packet's last sample.
        arrival : float
            Host time the packet arrived, seconds.
        """
        if self._origin is None:
            self._origin = int(index)
        x = float(index - self._origin)
        residual = arrival - x / self.nominal_rate
        key = math.floor(x / (self.bucket * self.nominal_rate))
        if self._buckets and self._buckets[-1][0] == key:
            if residual < self._buckets[-1][2]:
                self._buckets[-1] = (key, x, residual)
                self._dirty = True
        elif not self._buckets or key > self._buckets[-1][0]:
            self._buckets.append((key, x, residual))
            oldest_key = key - round(self.window / self.bucket)
            while self._buckets and self._buckets[0][0] < oldest_key:
                self._buckets.popleft()
            self._dirty = True
        else:
            # An index older than the newest bucket (reordered delivery): still a valid
            # upper bound on the clock, but too rare to be worth re-sorting for.
            logger.debug("clock: out-of-order index %d ignored", index)

    def _fit(self) -> None:
        self._dirty = False
        points = [(x, r) for _, x, r in self._buckets]
        slope = 0.0
        span = points[-1][0] - points[0][0]
        if len(points) >= 2 and span >= self.min_span * self.nominal_rate:
            hull = lower_hull(points)
            mean_x = sum(p[0] for p in points) / len(points)
            for left, right in itertools.pairwise(hull):
                if left[0] <= mean_x <= right[0]:
                    slope = (right[1] - left[1]) / (right[0] - left[0])
                    break
            limit = self.max_drift_ppm * 1e-6 / self.nominal_rate
            slope = min(max(slope, -limit), limit)
        # Highest line of this slope that stays under every point.
        self._intercept = min(r - slope * x for x, r in points)
        self._slope = slope
        # arrival ≈ x (1/rate + slope): the device runs fast when the slope is negative.
        self.drift_ppm_ = -slope * self.nominal_rate * 1e6

    def rate(self) -> float:
        """Device samples per host second, for predicting a counter across a disconnect.

        Measured between the earliest arrivals of the oldest and newest buckets. A
        measurement within :data:`RATE_TOLERANCE` of the nominal rate is arrival jitter
        over a short span (crystals are within ~±100 ppm), so the nominal rate corrected by
        the fitted drift is returned; further off, the device does not sample at its
        nominal rate (an emulator running faster than real time, a misconfigured rate) and
        the measurement is returned. Without two buckets: the nominal rate.

        Returns
        -------
        float
        """
        if self._dirty:
            self._fit()
        nominal = self.nominal_rate * (1.0 + self.drift_ppm_ * 1e-6)
        if len(self._buckets) < 2:
            return nominal
        _, x0, r0 = self._buckets[0]
        _, x1, r1 = self._buckets[-1]
        seconds = (x1 - x0) / self.nominal_rate + (r1 - r0)
        if seconds <= 0.0:
            return nominal
        measured = (x1 - x0) / seconds
        if abs(measured / self.nominal_rate - 1.0) <= RATE_TOLERANCE:
            return nominal
        return measured

    def time_of(self, index: ArrayLike) -> FloatArray:
        """Host time of device sample indices.

        Parameters
        ----------
        index : array-like of int
            Unwrapped device sample indices.

        Returns
        -------
        ndarray of float64
            Seconds on the host clock; NaN-free once one packet has been observed.

        Raises
        ------
        SignalError
            If nothing has been observed yet.
        """
        if self._origin is None:
            from affectstream.errors import SignalError

            raise SignalError("ClockModel.time_of called before any observe(); feed a packet.")
        if self._dirty:
            self._fit()
        x = np.asarray(index, dtype=np.float64) - self._origin
        return self._intercept + x * (1.0 / self.nominal_rate + self._slope)

    def stamp(self, index: ArrayLike) -> FloatArray:
        """Host time of new samples, never at or before a time already stamped.

        :meth:`time_of`, except that a sample is moved forward, to half a nominal period
        after the previous stamp, when a refit has lowered the line below what was already
        given out. The line advances a whole period per sample, so a backward step of
        ``s`` seconds is absorbed within ``2 s · nominal_rate`` samples. A stamp is never
        earlier than the fitted time, and a moved stamp's error is below that of the stamp
        before it (the true clock advances more than half a period), so the accuracy bound
        of the fit holds for stamps too.

        Parameters
        ----------
        index : array-like of int
            Unwrapped device indices of new samples, increasing, each after those stamped
            before.

        Returns
        -------
        ndarray of float64
            Strictly increasing seconds on the host clock.

        Raises
        ------
        SignalError
            If nothing has been observed yet.
        """
        t = strictly_after(self.time_of(index), self._last_stamp, 0.5 / self.nominal_rate)
        if t.shape[0]:
            self._last_stamp = float(t[-1])
        return t
