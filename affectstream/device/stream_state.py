"""Per-stream accounting: counter unwrapping, gaps, timestamps and counters of one stream.

A :class:`StreamState` turns the decoded :class:`~affectstream.device.driver.Frame` objects
of one stream into :class:`~affectstream.types.SampleBlock` objects. Device counters are
unwrapped; every sample the counter says is missing becomes a NaN row plus a
:class:`~affectstream.types.Gap`, also across a disconnect. There the counter may have
wrapped, so where it went on is predicted from host time at the rate the device was seen to
sample; a counter that lands behind the last received sample is never a duplicate (nothing
is redelivered on a new connection): it is a cycle further on when that is within the
prediction's error (the Ganglion's cycle is one second), else the device restarted its
counter and a ``"restart"`` gap (time known, sample count not) is recorded. Blocks that did
not fit the output queue become an ``"overflow"`` gap in front of the next block that fits.
:class:`StreamStats` counts all of it. The connection lifecycle that feeds it lives in
:mod:`~affectstream.device.supervisor`.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, replace

import numpy as np

from affectstream.device.clock import ClockModel, strictly_after
from affectstream.device.driver import Frame, StreamSpec
from affectstream.types import Gap, SampleBlock

logger = logging.getLogger(__name__)

#: Smallest spacing of event times (HR, RR) in seconds: when two would tie or go back, the
#: later moves this far past the earlier (the store keeps one point per series and time).
_EVENT_MIN_STEP = 1e-3

#: Host seconds a counter predicted across a disconnect may be off by (delivery delays
#: before and after the outage) and still be moved a counter cycle on rather than taken
#: as a device restart.
_RESUME_TOLERANCE_S = 1.0


@dataclass
class StreamStats:
    """Counters of one stream.

    Parameters
    ----------
    samples_received : int
        Samples decoded and delivered from the device, saturated ones included (they
        arrived; only their value is unknown).
    samples_expected : int
        Samples the device counter says were sent from the first received on
        (``samples_received + gap_samples``).
    gap_samples : int
        Samples the counter says were lost (NaN rows).
    saturated_samples : int
        Received samples whose sensor hit its rail (NaN rows plus a ``"saturated"`` gap;
        counted in ``samples_received``, not in ``gap_samples``).
    reconnects : int
        Reconnections of the device after unrequested disconnects.
    malformed : int
        Packets dropped because they could not be decoded.
    overflow_samples : int
        Samples that did not fit the output queue (NaN rows plus an ``"overflow"`` gap).
    duplicates : int
        Samples received twice (dropped).
    gaps : int
        Gaps recorded for lost or unknown samples (counter jumps, disconnects, restarts,
        overflows); runs of saturated samples are counted in ``saturated_samples`` only.
    """

    samples_received: int = 0
    samples_expected: int = 0
    gap_samples: int = 0
    saturated_samples: int = 0
    reconnects: int = 0
    malformed: int = 0
    overflow_samples: int = 0
    duplicates: int = 0
    gaps: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counters as a plain dict.

        Returns
        -------
        dict of str to int
        """
        return asdict(self)


def beat_times(rr_ms: np.ndarray, arrival: float) -> np.ndarray:
    """Times of the beats that end the RR intervals of one Heart Rate notification.

    A notification lists the beat-to-beat intervals completed since the previous one, the
    last ending at (about) the arrival. So the last beat is at ``arrival`` and each earlier
    one precedes it by the intervals after it: ``t[k] = arrival - sum(rr[k + 1:])``.

    Parameters
    ----------
    rr_ms : ndarray of float64, shape (n,)
        RR intervals in milliseconds, in the notification's order.
    arrival : float
        Host time of the notification, seconds.

    Returns
    -------
    ndarray of float64, shape (n,)
        Beat times, seconds; consecutive differences are the RR values from the second on.
    """
    rr_s = np.nan_to_num(np.asarray(rr_ms, dtype=np.float64), nan=0.0) / 1000.0
    after = np.concatenate([np.cumsum(rr_s[:0:-1])[::-1], [0.0]])
    out: np.ndarray = arrival - after
    return out


class StreamState:
    """Counter unwrapping, gap accounting and timestamps of one stream.

    Parameters
    ----------
    spec : StreamSpec
        What the stream carries.
    stream_id : str
        ``"<device name>/<kind>"``.
    device : str
        Device name.
    clock_window : float
        Forgetting window of the clock model, seconds.
    """

    def __init__(
        self, spec: StreamSpec, stream_id: str, device: str, clock_window: float = 30.0
    ) -> None:
        self.spec = spec
        self.stream_id = stream_id
        self.device = device
        self.stats = StreamStats()
        self.clock_window = clock_window
        self.clock = ClockModel(spec.sfreq, window=clock_window) if spec.sfreq else None
        self._device_next: int | None = None  # next expected unwrapped device counter
        self._offset = 0  # output index = device counter + offset (changes on restarts)
        self._out_next = 0
        self._last_arrival: float | None = None
        self._last_time: float | None = None
        self.pending_reason: str | None = None  # "disconnect" after an unrequested drop
        self._overflow: tuple[int, float] | None = None  # (first index, host time)
        #: Latest finite value of a ``battery`` stream (None for other modalities).
        self.last_value: float | None = None

    def update_spec(self, spec: StreamSpec) -> None:
        """Adopt a spec read from the device on connection (e.g. the EDA band's rate).

        Parameters
        ----------
        spec : StreamSpec
            The new spec.
        """
        if spec.sfreq != self.spec.sfreq:
            self.clock = ClockModel(spec.sfreq, window=self.clock_window) if spec.sfreq else None
        self.spec = spec

    def _unwrap(self, counter: int, n: int, arrival: float) -> tuple[int, bool]:
        """Unwrapped device counter of a frame's first sample, and whether the device
        restarted its counter (so that no gap can be computed)."""
        modulus = self.spec.counter_modulus
        if modulus is None or self._device_next is None:
            return counter, False
        base = self._device_next
        if self.pending_reason is None:
            return base + (counter - base + modulus // 2) % modulus - modulus // 2, False
        rate = self.clock.rate() if self.clock is not None else (self.spec.sfreq or 1.0)
        if self._last_arrival is not None and self.spec.sfreq:
            # Across a disconnect the counter may have wrapped more than once: predict
            # from elapsed host time (delivery delays cancel to first order) at the rate
            # the device was seen to sample.
            elapsed = round((arrival - self._last_arrival) * rate)
            base += max(0, elapsed - n)
        unwrapped = base + (counter - base + modulus // 2) % modulus - modulus // 2
        if unwrapped < self._device_next:
            # Not a duplicate: BLE carries no notification over to a new connection and a
            # device resumes with new samples. Either the prediction fell short by a cycle
            # (a small modulus: the Ganglion's is one second, less than delivery delays
            # under load can add) or the device restarted its counter. A cycle later is
            # taken when it is within the prediction's error.
            tolerance = max(_RESUME_TOLERANCE_S * rate, 0.1 * (base - self._device_next))
            if unwrapped + modulus - base <= tolerance:
                return unwrapped + modulus, False
            return unwrapped, True
        return unwrapped, False

    def _times(self, index: np.ndarray, values: np.ndarray, arrival: float) -> np.ndarray:
        """Strictly increasing host times of new samples (each after the last delivered)."""
        if self.clock is not None:
            return self.clock.stamp(index)
        if self.spec.modality == "rr":
            t = beat_times(values[:, 0], arrival)
        else:
            t = np.full(index.shape[0], arrival)
        # Delivery latency jitters: when the previous notification came late and this one
        # early, its spaced-back beats can land at or before the previous last beat. Such a
        # beat moves just after it (an error no larger than the jitter) so that times stay
        # strictly increasing: the store keeps one point per time, the extractor needs order.
        last = -np.inf if self._last_time is None else self._last_time
        return strictly_after(t, last, _EVENT_MIN_STEP)

    def ingest(self, frame: Frame, arrival: float) -> SampleBlock | None:
        """Turn one decoded frame into a block with gaps made explicit.

        Parameters
        ----------
        frame : Frame
            Decoded samples with the device counter.
        arrival : float
            Host time the notification arrived.

        Returns
        -------
        SampleBlock or None
            None when the frame held only already-received samples.
        """
        values = np.asarray(frame.values, dtype=np.float64)
        saturated = None if frame.saturated is None else np.asarray(frame.saturated, bool)
        n = values.shape[0]
        if n == 0:
            return None
        gaps: list[Gap] = []
        n_missing = 0
        reason = self.pending_reason or "counter_jump"
        lost_since: float | None = None
        if frame.counter is None:
            first = self._out_next
            if self.pending_reason and self._last_time is not None:
                # No counter: the loss is known in time only, not in samples.
                lost_since = self._last_time
        else:
            device_first, restarted = self._unwrap(frame.counter, n, arrival)
            if (frame.restart or restarted) and self._device_next is not None:
                if restarted:
                    logger.warning(
                        "%s: device counter went back across a reconnect (%d, expected "
                        "from %d on); taken as a device restart",
                        self.stream_id,
                        device_first,
                        self._device_next,
                    )
                self._offset = self._out_next - device_first
                if self._last_time is not None:
                    gaps.append(
                        Gap(self.stream_id, self._out_next, 0, self._last_time, arrival, "restart")
                    )
                if self.clock is not None:
                    self.clock.reset()
            elif self._device_next is not None:
                jump = device_first - self._device_next
                if jump < 0:
                    overlap = min(-jump, n)
                    self.stats.duplicates += overlap
                    if overlap == n:
                        logger.debug("%s: duplicate samples dropped", self.stream_id)
                        return None
                    values = values[overlap:]
                    saturated = None if saturated is None else saturated[overlap:]
                    device_first += overlap
                    n -= overlap
                else:
                    n_missing = jump
            else:
                self._offset = self._out_next - device_first
            self._device_next = device_first + n
            first = device_first + self._offset - n_missing
        index = np.arange(first, first + n_missing + n, dtype=np.int64)
        if self.clock is not None:
            self.clock.observe(int(index[-1]), arrival)
        t = self._times(index, values, arrival)
        if lost_since is not None:
            gaps.append(Gap(self.stream_id, first, 0, lost_since, float(t[0]), reason))
        if n_missing:
            gaps.append(
                Gap(self.stream_id, first, n_missing, float(t[0]), float(t[n_missing - 1]), reason)
            )
            values = np.concatenate([np.full((n_missing, values.shape[1]), np.nan), values])
            self.stats.gap_samples += n_missing
            logger.info("%s: %d samples missing (%s)", self.stream_id, n_missing, reason)
        self.stats.gaps += len(gaps)
        if saturated is not None:
            gaps.extend(self._saturated_gaps(saturated, first + n_missing, t[n_missing:]))
        self.stats.samples_received += n
        self.stats.samples_expected += n + n_missing
        self._out_next = int(index[-1]) + 1
        self._last_arrival = arrival
        self._last_time = float(t[-1])
        self.pending_reason = None
        if self.spec.modality == "battery":
            finite = values[np.isfinite(values[:, 0]), 0]
            if finite.size:
                self.last_value = float(finite[-1])
        return SampleBlock(
            stream=self.stream_id,
            modality=self.spec.modality,
            channels=self.spec.channels,
            unit=self.spec.unit,
            sfreq=self.spec.sfreq,
            t=t,
            values=values,
            index=index,
            gaps=tuple(gaps),
            device=self.device,
        )

    def _saturated_gaps(self, saturated: np.ndarray, first: int, t: np.ndarray) -> list[Gap]:
        """One ``"saturated"`` gap per run of saturated samples (received, value unknown)."""
        edges = np.diff(np.concatenate([[0], saturated.astype(np.int8), [0]]))
        starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        self.stats.saturated_samples += int(saturated.sum())
        return [
            Gap(self.stream_id, first + a, b - a, float(t[a]), float(t[b - 1]), "saturated")
            for a, b in zip(starts.tolist(), stops.tolist(), strict=True)
        ]

    def mark_overflow(self, block: SampleBlock) -> None:
        """Remember that ``block`` did not fit the output queue.

        Parameters
        ----------
        block : SampleBlock
            The block that was not delivered.
        """
        self.stats.overflow_samples += len(block)
        if self._overflow is None:
            self._overflow = (int(block.index[0]), float(block.t[0]))

    def with_overflow(self, block: SampleBlock) -> SampleBlock:
        """Prefix ``block`` with NaN rows and an ``"overflow"`` gap for undelivered blocks.

        Parameters
        ----------
        block : SampleBlock
            The next block that fits the queue.

        Returns
        -------
        SampleBlock
        """
        if self._overflow is None:
            return block
        first, t_first = self._overflow
        n = int(block.index[0]) - first
        if n <= 0:
            self._overflow = None
            return block
        index = np.arange(first, first + n, dtype=np.int64)
        # Between the first undelivered stamp and the block (not the clock model's times,
        # which a refit may have moved before samples already delivered).
        t = np.linspace(t_first, float(block.t[0]), n, endpoint=False)
        gap = Gap(self.stream_id, first, n, float(t[0]), float(t[-1]), "overflow")
        self.stats.gaps += 1
        return replace(
            block,
            t=np.concatenate([t, block.t]),
            values=np.concatenate([np.full((n, block.values.shape[1]), np.nan), block.values]),
            index=np.concatenate([index, block.index]),
            gaps=(gap, *block.gaps),
        )

    def clear_overflow(self) -> None:
        """Forget the pending overflow once it has been delivered."""
        self._overflow = None
