"""Connection supervisor: several BLE devices at once, reconnecting and resuming by itself.

One :class:`Supervisor` runs every device in one asyncio process through
:class:`bleak.BleakClient`. Per device it finds the device, connects (bounded by a timeout),
lets the device's :class:`~affectstream.device.driver.ProfileDriver` subscribe and send
its start commands, and turns notifications into :class:`~affectstream.types.SampleBlock`
objects. When the link drops without being asked to, it reconnects with bounded, jittered
exponential backoff and resumes streaming (re-subscribes, re-sends the start commands,
re-checks the answers) without the caller doing anything.

Device counters are unwrapped per stream; every sample the counter says is missing becomes a
NaN row plus a :class:`~affectstream.types.Gap`, also across a disconnect. There the counter
may have wrapped, so where it went on is predicted from host time at the rate the device was
seen to sample; a counter that lands behind the last received sample is never a duplicate
(nothing is redelivered on a new connection): it is a cycle further on when that is within
the prediction's error (the Ganglion's cycle is one second), else the device restarted its
counter and a ``"restart"`` gap (time known, sample count not) is recorded. Malformed packets
are counted, logged and dropped. Blocks go to a bounded queue (or a callback) that never
blocks the BLE callback: if the queue is full the block is counted and its samples turn into
an ``"overflow"`` gap in front of the next block that fits.

``client_kwargs`` and ``scanner_kwargs`` are passed to ``BleakClient`` and ``BleakScanner``;
that is how the emulated radio is plugged in (``VirtualRadio.client_kwargs()``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np
from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakError

from affectstream._validate import check_positive
from affectstream.backoff import backoff_delay
from affectstream.device.clock import ClockModel, strictly_after
from affectstream.device.driver import Frame, Profile, ProfileDriver, StreamSpec
from affectstream.device.profiles import get_profile, match_profile
from affectstream.errors import DecodeError, DeviceError, DeviceNotFoundError, ProtocolError
from affectstream.types import Gap, SampleBlock

logger = logging.getLogger(__name__)

_ADDRESS = re.compile(r"^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$|^[0-9A-Fa-f-]{36}$")

#: Smallest spacing of event times (HR, RR) in seconds: when two would tie or go back, the
#: later moves this far past the earlier (the store keeps one point per series and time).
_EVENT_MIN_STEP = 1e-3

#: Host seconds a counter predicted across a disconnect may be off by (delivery delays
#: before and after the outage) and still be moved a counter cycle on rather than taken
#: as a device restart.
_RESUME_TOLERANCE_S = 1.0

#: Errors after which a reconnect is worth trying.
_LINK_ERRORS = (BleakError, DeviceError, TimeoutError, OSError, EOFError)


def bluetooth_unavailable(exc: BaseException) -> DeviceError:
    """Turn a platform Bluetooth failure (no adapter, no BlueZ, no permission) into advice.

    Parameters
    ----------
    exc : BaseException
        What bleak's platform backend raised.

    Returns
    -------
    DeviceError
    """
    return DeviceError(
        f"Bluetooth is not available: {exc or type(exc).__name__}. Check that Bluetooth is "
        "on and that this user may use it (Linux: BlueZ's bluetoothd running, user in the "
        "'bluetooth' group; macOS: Bluetooth permission for the terminal); "
        "`--emulate all` runs emulated devices without a radio."
    )


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


@dataclass
class DeviceTarget:
    """A device to record.

    Parameters
    ----------
    address : str
        BLE address (or platform UUID on macOS), or the advertised name.
    profile : str, optional
        Profile name; found from the advertisement when omitted.
    name : str, optional
        Name used in stream ids; defaults to the advertised name or the address.
    options : dict
        Profile driver options (e.g. ``{"rate": 64}`` for the EDA band).
    """

    address: str
    profile: str | None = None
    name: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


#: Link states a supervised device can be in (:attr:`DeviceState.link`).
LinkState = Literal["connecting", "connected", "reconnecting", "stopped"]


@dataclass(frozen=True, slots=True)
class DeviceState:
    """What a supervised device looks like now: a read-only snapshot for status displays.

    Parameters
    ----------
    name : str
        Device name (the stream id prefix).
    address : str
        BLE address (or platform UUID) it was found at.
    profile : str or None
        Profile name; None until it is resolved.
    link : {"connecting", "connected", "reconnecting", "stopped"}
        Link state: before the first connection, streaming, after an unrequested drop
        until the link is back, and after :meth:`Supervisor.stop`.
    reconnects : int
        Reconnections after unrequested disconnects.
    gaps : int
        Gaps recorded on its streams (:attr:`StreamStats.gaps`, summed).
    gap_samples : int
        Samples lost on its streams (:attr:`StreamStats.gap_samples`, summed).
    battery : float or None
        Battery level in percent, from a ``battery`` stream or the device's status reply
        (Muse); None when the device does not report it.
    battery_low : bool or None
        The device's battery-low flag (EDA band); None when it has none.
    contact : bool or None
        Skin/electrode contact as last reported (Heart Rate contact bit, EDA band contact
        flag); None when the device does not report it.
    """

    name: str
    address: str
    profile: str | None
    link: LinkState
    reconnects: int
    gaps: int
    gap_samples: int
    battery: float | None
    battery_low: bool | None
    contact: bool | None

    @property
    def connected(self) -> bool:
        """Whether the device is streaming now.

        Returns
        -------
        bool
        """
        return self.link == "connected"


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


class _Device:
    """Runtime state of one supervised device."""

    def __init__(self, target: DeviceTarget) -> None:
        self.target = target
        self.address = target.address
        self.name = target.name or target.address
        self.profile: Profile | None = get_profile(target.profile) if target.profile else None
        self.driver: ProfileDriver | None = None
        self.streams: dict[str, StreamState] = {}
        self.client: BleakClient | None = None
        self.link_down = asyncio.Event()
        self.reconnects = 0
        self.connected_once = False
        self.link: LinkState = "connecting"
        self.task: asyncio.Task[None] | None = None
        self.keep_alive: asyncio.Task[None] | None = None


def _device_state(device: _Device) -> DeviceState:
    driver = device.driver
    streams = list(device.streams.values())
    battery = next((s.last_value for s in streams if s.last_value is not None), None)
    if battery is None and driver is not None:
        battery = driver.battery
    return DeviceState(
        name=device.name,
        address=device.address,
        profile=device.profile.name if device.profile is not None else None,
        link=device.link,
        reconnects=device.reconnects,
        gaps=sum(s.stats.gaps for s in streams),
        gap_samples=sum(s.stats.gap_samples for s in streams),
        battery=battery,
        battery_low=driver.battery_low if driver is not None else None,
        contact=driver.contact if driver is not None else None,
    )


BlockCallback = Callable[[SampleBlock], None]


class Supervisor:
    """Record several BLE devices at once, reconnecting and resuming by itself.

    Parameters
    ----------
    targets : sequence of DeviceTarget or str
        Devices to record (a string is an address or an advertised name).
    on_block : callable, optional
        Called with every :class:`SampleBlock` from the BLE callback; must not block. When
        omitted, blocks go to :attr:`blocks`, a bounded :class:`asyncio.Queue`.
    queue_size : int
        Capacity of :attr:`blocks` (in blocks).
    client_kwargs : dict, optional
        Extra keyword arguments for ``BleakClient`` (e.g. an emulated radio's).
    scanner_kwargs : dict, optional
        Extra keyword arguments for ``BleakScanner``.
    connect_timeout : float
        Seconds a connection attempt may take.
    scan_timeout : float
        Seconds to look for a device given by name (or without a profile).
    backoff_initial, backoff_max : float
        First and largest reconnect delay in seconds; delays double and are jittered
        down by up to half so that several devices do not retry in lockstep.
    clock_window : float
        Forgetting window of the clock models, seconds.

    Examples
    --------
    >>> async with Supervisor(["C0:A5:01:00:00:01"]) as sup:  # doctest: +SKIP
    ...     block = await sup.blocks.get()
    """

    def __init__(
        self,
        targets: Sequence[DeviceTarget | str],
        *,
        on_block: BlockCallback | None = None,
        queue_size: int = 4096,
        client_kwargs: dict[str, Any] | None = None,
        scanner_kwargs: dict[str, Any] | None = None,
        connect_timeout: float = 10.0,
        scan_timeout: float = 10.0,
        backoff_initial: float = 0.25,
        backoff_max: float = 8.0,
        clock_window: float = 30.0,
    ) -> None:
        if not targets:
            raise DeviceError("Supervisor needs at least one device to record.")
        self.targets = [t if isinstance(t, DeviceTarget) else DeviceTarget(t) for t in targets]
        self.on_block = on_block
        self.blocks: asyncio.Queue[SampleBlock] = asyncio.Queue(maxsize=int(queue_size))
        self.client_kwargs = dict(client_kwargs or {})
        self.scanner_kwargs = dict(scanner_kwargs or {})
        self.connect_timeout = check_positive("connect_timeout", connect_timeout)
        self.scan_timeout = check_positive("scan_timeout", scan_timeout)
        self.backoff_initial = check_positive("backoff_initial", backoff_initial)
        self.backoff_max = check_positive("backoff_max", backoff_max)
        self.clock_window = check_positive("clock_window", clock_window)
        self._devices = [_Device(t) for t in self.targets]
        self._stopping = asyncio.Event()
        # Host time: wall clock at start plus a monotonic clock, immune to NTP steps.
        self._wall0 = time.time()
        self._mono0 = time.monotonic()

    def now(self) -> float:
        """Host time in Unix seconds on a monotonic base.

        Returns
        -------
        float
        """
        return self._wall0 + (time.monotonic() - self._mono0)

    # -- public API ---------------------------------------------------------------------

    async def __aenter__(self) -> Supervisor:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Find and connect every device, then supervise them in the background.

        Raises
        ------
        DeviceNotFoundError
            If a device is not found or does not answer within the timeouts.
        ProtocolError
            If a device refuses the start commands on the first connection.
        """
        results = await asyncio.gather(
            *(self._first_connect(d) for d in self._devices), return_exceptions=True
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            await self.stop()
            raise errors[0]
        for device in self._devices:
            device.task = asyncio.create_task(self._supervise(device), name=f"ble-{device.name}")

    async def stop(self) -> None:
        """Stop streaming (stop commands, then disconnect) and end supervision."""
        self._stopping.set()
        for device in self._devices:
            device.link = "stopped"
        for device in self._devices:
            if device.task is not None:
                device.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await device.task
                device.task = None
        await asyncio.gather(*(self._disconnect(d) for d in self._devices))

    def stats(self) -> dict[str, StreamStats]:
        """Per-stream counters, keyed by stream id.

        Returns
        -------
        dict of str to StreamStats
        """
        out: dict[str, StreamStats] = {}
        for device in self._devices:
            for state in device.streams.values():
                state.stats.reconnects = device.reconnects
                out[state.stream_id] = state.stats
        return out

    def device_states(self) -> list[DeviceState]:
        """A snapshot of every supervised device: link, reconnects, gaps, battery, contact.

        Read-only and cheap (no I/O); meant to be polled by status displays.

        Returns
        -------
        list of DeviceState
            One per device, in the order the targets were given.
        """
        return [_device_state(d) for d in self._devices]

    def device_names(self) -> list[str]:
        """Names of the supervised devices (stream id prefixes).

        Returns
        -------
        list of str
        """
        return [d.name for d in self._devices]

    def is_connected(self, name: str) -> bool:
        """Whether the device called ``name`` is connected now.

        Parameters
        ----------
        name : str
            Device name.

        Returns
        -------
        bool
        """
        for device in self._devices:
            if device.name == name:
                return device.client is not None and device.client.is_connected
        return False

    def backoff_delay(self, attempt: int) -> float:
        """Seconds to wait before reconnect attempt ``attempt`` (0 for the first).

        Doubles from ``backoff_initial`` up to ``backoff_max`` and is jittered down by up to
        half, so that devices dropped together do not retry in lockstep.

        Parameters
        ----------
        attempt : int
            Failed attempts so far.

        Returns
        -------
        float
        """
        return backoff_delay(attempt, self.backoff_initial, self.backoff_max)

    # -- connection ---------------------------------------------------------------------

    async def _resolve(self, device: _Device) -> None:
        """Find the device when only a name is known or its profile is unknown."""
        if device.profile is not None and _ADDRESS.match(device.address):
            return
        target = device.target.address

        def matches(ble: BLEDevice, adv: AdvertisementData) -> bool:
            return target.upper() == ble.address.upper() or target in (ble.name, adv.local_name)

        found = await BleakScanner.find_device_by_filter(
            matches, timeout=self.scan_timeout, **self.scanner_kwargs
        )
        if found is None:
            raise DeviceNotFoundError(
                f"No BLE device with address or name {target!r} was seen within "
                f"{self.scan_timeout:g} s. Check that it is switched on, charged and in range, "
                "not connected to another app or phone, and run `affectstream scan` to list "
                "what is visible."
            )
        ble_device, adv = found if isinstance(found, tuple) else (found, None)
        device.address = ble_device.address
        advertised_name = (adv.local_name if adv else None) or ble_device.name
        if device.target.name is None and advertised_name:
            device.name = advertised_name
        if device.profile is None:
            uuids: list[str] = list(adv.service_uuids) if adv else []
            device.profile = match_profile(advertised_name, uuids)
            if device.profile is None:
                raise DeviceError(
                    f"Device {target!r} ({advertised_name!r}, services {uuids}) matches no "
                    "known profile; give its profile explicitly (hr, polar, eda, muse, "
                    "ganglion)."
                )

    async def _first_connect(self, device: _Device) -> None:
        try:
            await self._resolve(device)
            if device.profile is None:
                raise RuntimeError("device profile not resolved before connecting.")
            device.driver = device.profile.new_driver(**device.target.options)
            await self._connect(device)
        except OSError as exc:  # the platform stack itself (D-Bus, adapter) is missing
            raise bluetooth_unavailable(exc) from exc

    async def _connect(self, device: _Device) -> None:
        if device.driver is None:
            raise RuntimeError("device driver not created before connecting.")
        loop = asyncio.get_running_loop()
        link_down = asyncio.Event()
        device.link_down = link_down

        def on_disconnect(_client: BleakClient) -> None:
            loop.call_soon_threadsafe(link_down.set)

        client = BleakClient(
            device.address,
            disconnected_callback=on_disconnect,
            timeout=self.connect_timeout,
            **self.client_kwargs,
        )
        try:
            # bumble's virtual controller never gives up on an absent peer; neither do
            # some platform stacks, so bound the attempt here.
            await asyncio.wait_for(client.connect(), self.connect_timeout + 1.0)
        except (TimeoutError, BleakError) as exc:
            with contextlib.suppress(Exception):
                await client.disconnect()
            raise DeviceNotFoundError(
                f"Could not connect to {device.name} ({device.address}) within "
                f"{self.connect_timeout:g} s: {exc or type(exc).__name__}. Check that it is "
                "on and in range and not connected to another app; some devices only "
                "accept one central."
            ) from exc
        device.client = client
        try:
            await self._start_streaming(device, client)
        except BaseException:
            with contextlib.suppress(Exception):
                await client.disconnect()
            device.client = None
            raise
        device.connected_once = True
        device.link = "connected"
        logger.info(
            "%s: streaming (%s)", device.name, device.profile.name if device.profile else ""
        )

    async def _start_streaming(self, device: _Device, client: BleakClient) -> None:
        driver = device.driver
        if driver is None:
            raise RuntimeError("device driver not created before streaming.")
        if device.connected_once:
            driver.on_reconnect()
        await driver.prepare(client)
        for spec in driver.streams:
            state = device.streams.get(spec.kind)
            if state is None:
                device.streams[spec.kind] = StreamState(
                    spec, f"{device.name}/{spec.kind}", device.name, self.clock_window
                )
            else:
                state.update_spec(spec)
        uuids = driver.notify_uuids(client)
        for spec in driver.streams:  # streams known only after looking at the services
            if spec.kind not in device.streams:
                device.streams[spec.kind] = StreamState(
                    spec, f"{device.name}/{spec.kind}", device.name, self.clock_window
                )
        handler = self._handler(device, driver)
        for uuid in uuids:
            await client.start_notify(uuid, handler)
        await driver.start(client)
        device.keep_alive = asyncio.create_task(self._keep_alive(device, driver, client))

    async def _keep_alive(
        self, device: _Device, driver: ProfileDriver, client: BleakClient
    ) -> None:
        try:
            await driver.keep_alive(client)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the link is down; the supervisor handles that
            logger.debug("%s: keep-alive ended: %s", device.name, exc)

    def _handler(
        self, device: _Device, driver: ProfileDriver
    ) -> Callable[[BleakGATTCharacteristic, bytearray], None]:
        def on_notify(sender: BleakGATTCharacteristic, data: bytearray) -> None:
            arrival = self.now()
            uuid = sender.uuid.lower()
            try:
                frames = driver.decode(uuid, bytes(data))
            except Exception as exc:  # one bad packet never ends a stream
                self._malformed(device, driver.kind_of(uuid), bytes(data), exc)
                return
            self._ingest(device, frames, arrival)

        return on_notify

    def _malformed(self, device: _Device, kind: str, data: bytes, exc: Exception) -> None:
        state = device.streams.get(kind)
        stream = state.stream_id if state else f"{device.name}/{kind}"
        if state is not None:
            state.stats.malformed += 1
        level = logging.WARNING if isinstance(exc, DecodeError) else logging.ERROR
        logger.log(level, "%s: malformed packet dropped (%s): %s", stream, exc, data[:16].hex(" "))

    def _ingest(self, device: _Device, frames: list[Frame], arrival: float) -> None:
        for frame in frames:
            state = device.streams.get(frame.kind)
            if state is None:
                continue
            block = state.ingest(frame, arrival)
            if block is not None:
                self._deliver(state, block)

    def _deliver(self, state: StreamState, block: SampleBlock) -> None:
        if self.on_block is not None:
            self.on_block(block)
            return
        try:
            self.blocks.put_nowait(state.with_overflow(block))
        except asyncio.QueueFull:
            state.mark_overflow(block)
            logger.warning(
                "%s: output queue full, %d samples become an overflow gap",
                state.stream_id,
                len(block),
            )
        else:
            state.clear_overflow()

    # -- supervision --------------------------------------------------------------------

    async def _supervise(self, device: _Device) -> None:
        while not self._stopping.is_set():
            await device.link_down.wait()
            if self._stopping.is_set():
                return
            logger.warning("%s: link lost; reconnecting", device.name)
            device.link = "reconnecting"
            await self._on_link_down(device)
            attempt = 0
            while not self._stopping.is_set():
                delay = self.backoff_delay(attempt)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
                if self._stopping.is_set():
                    return
                try:
                    await self._connect(device)
                except ProtocolError as exc:
                    logger.warning("%s: device refused to restart: %s", device.name, exc)
                except _LINK_ERRORS as exc:
                    logger.info("%s: reconnect attempt %d failed: %s", device.name, attempt, exc)
                except Exception:  # supervision must outlive any surprise; keep trying
                    logger.exception("%s: unexpected error while reconnecting", device.name)
                else:
                    device.reconnects += 1
                    logger.warning(
                        "%s: reconnected (reconnect #%d)", device.name, device.reconnects
                    )
                    break
                attempt += 1

    async def _on_link_down(self, device: _Device) -> None:
        if device.keep_alive is not None:
            device.keep_alive.cancel()
            device.keep_alive = None
        self._mark_link_down(device, self.now())
        client, device.client = device.client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.disconnect()

    def _mark_link_down(self, device: _Device, arrival: float) -> None:
        """Deliver what the driver held back and mark every stream as resuming after a
        disconnect (its next counter is predicted from host time)."""
        driver = device.driver
        if driver is not None:
            self._ingest(device, driver.flush(), arrival)
        for state in device.streams.values():
            state.pending_reason = "disconnect"

    async def _disconnect(self, device: _Device) -> None:
        if device.keep_alive is not None:
            device.keep_alive.cancel()
            device.keep_alive = None
        client, device.client = device.client, None
        if client is None:
            return
        try:
            if client.is_connected and device.driver is not None:
                await asyncio.wait_for(device.driver.stop(client), 3.0)
        except (TimeoutError, *_LINK_ERRORS) as exc:
            logger.debug("%s: stop command failed: %s", device.name, exc)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.disconnect(), 5.0)
