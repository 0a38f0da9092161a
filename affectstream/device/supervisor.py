"""Connection supervisor: several BLE devices at once, reconnecting and resuming by itself.

One :class:`Supervisor` runs every device in one asyncio process through
:class:`bleak.BleakClient`. Per device it finds the device, connects (bounded by a timeout),
lets the device's :class:`~affectstream.device.driver.ProfileDriver` subscribe and send
its start commands, and hands notifications to the per-stream accounting
(:class:`~affectstream.device.stream_state.StreamState`: counter unwrapping, gaps,
timestamps) that makes :class:`~affectstream.types.SampleBlock` objects. When the link drops
without being asked to, it reconnects with bounded, jittered exponential backoff and resumes
streaming (re-subscribes, re-sends the start commands, re-checks the answers) without the
caller doing anything. This module is that connection lifecycle; per-device state (targets,
the :class:`DeviceState` snapshot) is in :mod:`~affectstream.device.device_state`.

Malformed packets are counted, logged and dropped. Blocks go to a bounded queue (or a
callback) that never blocks the BLE callback: if the queue is full the block is counted and
its samples turn into an ``"overflow"`` gap in front of the next block that fits.

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
from typing import Any

from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakError

from affectstream._validate import check_positive
from affectstream.backoff import backoff_delay
from affectstream.device.device_state import (
    DeviceState,
    DeviceTarget,
    LinkState,
    SupervisedDevice,
    snapshot,
)
from affectstream.device.driver import Frame, ProfileDriver
from affectstream.device.profiles import match_profile
from affectstream.device.stream_state import StreamState, StreamStats
from affectstream.errors import DecodeError, DeviceError, DeviceNotFoundError, ProtocolError
from affectstream.types import SampleBlock

__all__ = [
    "BlockCallback",
    "DeviceState",
    "DeviceTarget",
    "LinkState",
    "StreamStats",
    "Supervisor",
    "bluetooth_unavailable",
]

logger = logging.getLogger(__name__)

_ADDRESS = re.compile(r"^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$|^[0-9A-Fa-f-]{36}$")

#: Errors after which a reconnect is worth trying.
_LINK_ERRORS = (BleakError, DeviceError, TimeoutError, OSError, EOFError)
#: Seconds the stop may wait for its read round trip, the barrier that brings in every
#: notification the devices sent before it (see Supervisor._disconnect).
DRAIN_TIMEOUT_S = 5.0
#: Client Characteristic Configuration descriptor (turns notifications on and off).
CCCD = "00002902-0000-1000-8000-00805f9b34fb"


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
        f"Bluetooth is not available: {str(exc) or type(exc).__name__}. Check that Bluetooth is "
        "on and that this user may use it (Linux: BlueZ's bluetoothd running, user in the "
        "'bluetooth' group; macOS: Bluetooth permission for the terminal); "
        "`--emulate all` runs emulated devices without a radio."
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
        self._devices = [SupervisedDevice(t) for t in self.targets]
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
        return [snapshot(d) for d in self._devices]

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

    async def _resolve(self, device: SupervisedDevice) -> None:
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

    async def _first_connect(self, device: SupervisedDevice) -> None:
        try:
            await self._resolve(device)
            if device.profile is None:
                raise RuntimeError("device profile not resolved before connecting.")
            device.driver = device.profile.new_driver(**device.target.options)
            await self._connect(device)
        except OSError as exc:  # the platform stack itself (D-Bus, adapter) is missing
            raise bluetooth_unavailable(exc) from exc

    async def _connect(self, device: SupervisedDevice) -> None:
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
            # Broad on purpose: the failed connect, not its clean-up, is what to report.
            with contextlib.suppress(Exception):
                await client.disconnect()
            raise DeviceNotFoundError(
                f"Could not connect to {device.name} ({device.address}) within "
                f"{self.connect_timeout:g} s: {str(exc) or type(exc).__name__}. Check that it is "
                "on and in range and not connected to another app; some devices only "
                "accept one central."
            ) from exc
        device.client = client
        try:
            await self._start_streaming(device, client)
        except BaseException:
            # Broad on purpose: the start failure, not the clean-up's, is what to report.
            with contextlib.suppress(Exception):
                await client.disconnect()
            device.client = None
            raise
        device.connected_once = True
        device.link = "connected"
        logger.info(
            "%s: streaming (%s)", device.name, device.profile.name if device.profile else ""
        )

    async def _start_streaming(self, device: SupervisedDevice, client: BleakClient) -> None:
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
        device.notify_uuids = []
        for uuid in uuids:
            await client.start_notify(uuid, handler)
            device.notify_uuids.append(uuid)
        await driver.start(client)
        device.keep_alive = asyncio.create_task(self._keep_alive(device, driver, client))

    async def _keep_alive(
        self, device: SupervisedDevice, driver: ProfileDriver, client: BleakClient
    ) -> None:
        try:
            await driver.keep_alive(client)
        except asyncio.CancelledError:
            raise
        except _LINK_ERRORS as exc:  # the link is down; the supervisor handles that
            logger.debug("%s: keep-alive ended: %s", device.name, exc)

    def _handler(
        self, device: SupervisedDevice, driver: ProfileDriver
    ) -> Callable[[BleakGATTCharacteristic, bytearray], None]:
        def on_notify(sender: BleakGATTCharacteristic, data: bytearray) -> None:
            arrival = self.now()
            uuid = sender.uuid.lower()
            try:
                frames = driver.decode(uuid, bytes(data))
            except Exception as exc:
                # One bad packet never ends a stream: this runs in bleak's notification
                # callback, where raising would only lose the packet. Decoders raise
                # DecodeError for malformed input; anything else is a decoder bug and is
                # logged with its traceback (see _malformed).
                self._malformed(device, driver.kind_of(uuid), bytes(data), exc)
                return
            self._ingest(device, frames, arrival)

        return on_notify

    def _malformed(self, device: SupervisedDevice, kind: str, data: bytes, exc: Exception) -> None:
        state = device.streams.get(kind)
        stream = state.stream_id if state else f"{device.name}/{kind}"
        if state is not None:
            state.stats.malformed += 1
        expected = isinstance(exc, DecodeError)
        logger.log(
            logging.WARNING if expected else logging.ERROR,
            "%s: malformed packet dropped (%s): %s",
            stream,
            exc,
            data[:16].hex(" "),
            exc_info=None if expected else exc,
        )

    def _ingest(self, device: SupervisedDevice, frames: list[Frame], arrival: float) -> None:
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

    async def _supervise(self, device: SupervisedDevice) -> None:
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
                except Exception:
                    # Supervision must outlive any surprise (logged with its traceback): a
                    # device that stops being retried is silent data loss.
                    logger.exception("%s: unexpected error while reconnecting", device.name)
                else:
                    device.reconnects += 1
                    logger.warning(
                        "%s: reconnected (reconnect #%d)", device.name, device.reconnects
                    )
                    break
                attempt += 1

    async def _on_link_down(self, device: SupervisedDevice) -> None:
        if device.keep_alive is not None:
            device.keep_alive.cancel()
            device.keep_alive = None
        self._mark_link_down(device, self.now())
        client, device.client = device.client, None
        if client is not None:
            with contextlib.suppress(*_LINK_ERRORS):
                await client.disconnect()

    def _mark_link_down(self, device: SupervisedDevice, arrival: float) -> None:
        """Deliver what the driver held back and mark every stream as resuming after a
        disconnect (its next counter is predicted from host time)."""
        driver = device.driver
        if driver is not None:
            self._ingest(device, driver.flush(), arrival)
        for state in device.streams.values():
            state.pending_reason = "disconnect"

    async def _disconnect(self, device: SupervisedDevice) -> None:
        """Stop streaming, take in what the device already sent, then disconnect.

        After the stop commands, one read request makes the round trip: ATT keeps order on
        a link, so when its response is back, every notification the device sent before it
        answered (before it stopped, for a device with a stop command) has reached the
        handler. What the driver then still holds (e.g. a Muse packet some electrodes of
        which had arrived) is delivered, not dropped. A device without a stop command (a
        heart-rate strap) streams until the link closes; a notification in flight at that
        moment cannot be told from one never sent.
        """
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
        await self._drain(device, client)
        if device.driver is not None:
            self._ingest(device, device.driver.flush(), self.now())
        with contextlib.suppress(*_LINK_ERRORS):
            await asyncio.wait_for(client.disconnect(), 5.0)

    async def _drain(self, device: SupervisedDevice, client: BleakClient) -> None:
        """One bounded read round trip: the barrier of :meth:`_disconnect`."""
        uuids, device.notify_uuids = device.notify_uuids, []
        if not uuids or not client.is_connected:
            return
        try:
            # Inside the try: bleak raises if the services were never resolved, and the
            # link must still be closed by the caller.
            characteristic = client.services.get_characteristic(uuids[0])
            cccd = characteristic.get_descriptor(CCCD) if characteristic is not None else None
            if cccd is None:
                return
            await asyncio.wait_for(client.read_gatt_descriptor(cccd.handle), DRAIN_TIMEOUT_S)
        except (TimeoutError, ValueError, *_LINK_ERRORS) as exc:
            # What is still in flight is not delivered; the host cannot know it here.
            logger.warning(
                "%s: no answer within %g s at stop (%s); notifications still in flight "
                "are not stored",
                device.name,
                DRAIN_TIMEOUT_S,
                str(exc) or type(exc).__name__,
            )
