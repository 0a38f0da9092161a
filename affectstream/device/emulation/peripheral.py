"""Base class of the emulated BLE peripherals: clock, delivery bookkeeping and chaos."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from bumble import hci
from bumble.core import UUID, AdvertisingData
from bumble.device import Connection, Device
from bumble.gatt import Characteristic, CharacteristicValue, Service

from affectstream._validate import check_positive
from affectstream.device.emulation.script import AffectScript
from affectstream.errors import ConfigError, DeviceError
from affectstream.types import FloatArray, IntArray

if TYPE_CHECKING:
    from affectstream.device.emulation.radio import VirtualRadio

logger = logging.getLogger(__name__)

#: Host seconds between two generation ticks of a peripheral.
TICK_S = 0.02

#: Packets the bumble host may hold for a connection before a peripheral waits.
MAX_PENDING_PACKETS = 8

#: Reason code of a supervision timeout (what a central sees when the radio link is lost).
CONNECTION_TIMEOUT = hci.HCI_CONNECTION_TIMEOUT_ERROR


@dataclass
class Record:
    """Samples of one stream kind in one packet."""

    kind: str
    values: FloatArray  # (m, channels), canonical units, exactly what a decoder recovers
    indices: IntArray  # (m,), unwrapped device sample indices


@dataclass
class Packet:
    """One notification an emulated peripheral wants to send."""

    characteristic: Characteristic[Any]
    payload: bytes
    records: list[Record] = field(default_factory=list)


@dataclass
class _StreamLog:
    channels: int
    values: list[FloatArray] = field(default_factory=list)
    indices: list[IntArray] = field(default_factory=list)
    lost: int = 0
    counting: bool = False  # losses count from the first delivery on
    n_sent: int = 0


class EmulatedPeripheral:
    """An emulated BLE peripheral: a bumble GATT server with a device clock.

    Subclasses build the GATT services, generate samples as the device clock advances and
    hand packets to :meth:`_emit`, which delivers them (connected, subscribed, not stalled)
    or counts their samples as lost.

    Parameters
    ----------
    name : str
        Advertised local name.
    script : AffectScript, optional
        Arousal/valence over device time; :meth:`AffectScript.default` when omitted.
    speed : float
        The device clock runs ``speed`` times real time (samples per host second scale
        with it), for fast tests.
    seed : int
        Seed of the signal generators.
    drift_ppm : float
        Device crystal error: the device clock runs ``1 + drift_ppm * 1e-6`` times faster
        than the host clock (times ``speed``).
    max_mtu : int
        Largest ATT MTU the peripheral accepts (23 forces the minimum).
    address : str, optional
        BLE address; allocated by the radio when omitted.
    uptime : float
        Device-clock seconds already elapsed at power-on (counters start there), e.g. to
        reach a 16-bit counter wrap quickly.

    Notes
    -----
    Lost samples: from the first sample a client receives on a stream, every generated
    sample of that stream that is not delivered counts as lost, whatever the cause
    (disconnect, link loss, stall, skip, unsubscribed, stopped by the client). Device
    sample indices always follow the device clock, so a counter gap on the wire equals
    the samples lost.
    """

    profile: ClassVar[str] = ""
    service_uuid: ClassVar[str] = ""
    #: Stream kinds this peripheral records, with their channel names.
    kinds: ClassVar[dict[str, tuple[str, ...]]] = {}
    #: The characteristic malformed packets are sent on (set by subclasses).
    data_characteristic: Characteristic[Any] | None = None

    def __init__(
        self,
        name: str,
        *,
        script: AffectScript | None = None,
        speed: float = 1.0,
        seed: int = 0,
        drift_ppm: float = 0.0,
        max_mtu: int = 247,
        address: str | None = None,
        uptime: float = 0.0,
    ) -> None:
        check_positive("speed", speed)
        check_positive("uptime", uptime, allow_zero=True)
        if not 23 <= max_mtu <= 517:
            raise ConfigError(f"max_mtu must be in [23, 517] bytes, got {max_mtu!r}.")
        if not -2e5 <= drift_ppm <= 2e5:
            raise ConfigError(f"drift_ppm must be within ±2e5 ppm, got {drift_ppm!r}.")
        self.name = name
        self.script = script if script is not None else AffectScript.default()
        self.speed = float(speed)
        self.seed = int(seed)
        self.drift_ppm = float(drift_ppm)
        self.max_mtu = int(max_mtu)
        self.address = address.upper() if address else ""
        self.uptime = float(uptime)
        self.rng = np.random.default_rng([self.seed, sum(map(ord, self.profile or "x"))])
        self.malformed_sent = 0
        self.disconnects = 0
        self._logs = {kind: _StreamLog(len(ch)) for kind, ch in self.kinds.items()}
        #: Keep every delivered sample for :meth:`sent_samples` (tests compare them with
        #: what was decoded). Long runs set it False: only counts are kept, so memory
        #: does not grow with the session.
        self.keep_samples = True
        self._radio: VirtualRadio | None = None
        self._device: Device | None = None
        self._connection: Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._t0_loop = 0.0
        self.t0_wall = time.time()  # reset at power-on
        self._stall_until = -1.0
        self._stall_drop = True
        self._malformed_cycle = 0
        self._skip: dict[str, int] = {}
        self._malformed_pending = 0
        self._background: set[asyncio.Task[None]] = set()

    # -- clock ----------------------------------------------------------------------------

    @property
    def clock_rate(self) -> float:
        """Device seconds per host second (``speed * (1 + drift_ppm * 1e-6)``)."""
        return self.speed * (1.0 + self.drift_ppm * 1e-6)

    def device_time(self) -> float:
        """Seconds on the device clock since power-on."""
        if self._device is None:
            return self.uptime
        elapsed = asyncio.get_running_loop().time() - self._t0_loop
        return self.uptime + elapsed * self.clock_rate

    def host_time_of(self, device_seconds: float | FloatArray) -> float | FloatArray:
        """True host wall-clock time (Unix seconds) of a device-clock instant.

        Use it in clock-model tests: a sample with device index ``i`` of a stream at
        ``sfreq`` Hz was taken at ``host_time_of(i / sfreq)``.
        """
        device = np.asarray(device_seconds, dtype=np.float64)
        return self.t0_wall + (device - self.uptime) / self.clock_rate

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def is_powered(self) -> bool:
        """Whether the peripheral is on a radio."""
        return self._device is not None

    @property
    def is_connected(self) -> bool:
        """Whether a central is connected."""
        return self._connection is not None

    @property
    def mtu(self) -> int:
        """The ATT MTU of the current connection (23 when not connected)."""
        return int(self._connection.att_mtu) if self._connection is not None else 23

    def _build_services(self) -> list[Service]:
        raise NotImplementedError

    def _advertised_uuids(self) -> list[str]:
        return [self.service_uuid]

    def _advertising_data(self) -> bytes:
        structures: list[tuple[int, bytes]] = [
            (AdvertisingData.FLAGS, bytes([0x06])),
            (AdvertisingData.COMPLETE_LOCAL_NAME, self.name.encode("utf-8")),
        ]
        short = [
            u
            for u in self._advertised_uuids()
            if UUID(u).to_bytes() and len(UUID(u).to_pdu_bytes()) == 2
        ]
        long = [u for u in self._advertised_uuids() if u not in short]
        if short:
            structures.append(
                (
                    AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
                    b"".join(UUID(u).to_pdu_bytes() for u in short),
                )
            )
        if long:
            structures.append(
                (
                    AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
                    b"".join(UUID(u).to_pdu_bytes() for u in long),
                )
            )
        return bytes(AdvertisingData(structures))

    async def power_on(self, radio: VirtualRadio) -> None:
        """Attach to a radio, start the device clock and advertise (called by the radio)."""
        if self._device is not None:
            raise DeviceError(f"{self.name} is already powered on.")
        from affectstream.device.emulation.radio import ADVERTISING_INTERVAL_MS

        self._radio = radio
        if not self.address:
            self.address = radio.new_address()
        device = radio.new_device(self.name, self.address)
        device.gatt_server.max_mtu = self.max_mtu
        device.add_services(self._build_services())
        device.on(device.EVENT_CONNECTION, self._on_connection)
        await device.power_on()
        self._device = device
        self._t0_loop = asyncio.get_running_loop().time()
        self.t0_wall = time.time()
        device.advertising_interval_min = ADVERTISING_INTERVAL_MS
        device.advertising_interval_max = ADVERTISING_INTERVAL_MS
        await device.start_advertising(advertising_data=self._advertising_data(), auto_restart=True)
        self._task = asyncio.create_task(self._run(), name=f"emulated-{self.name}")
        logger.debug("%s (%s) powered on at %s", self.name, self.profile, self.address)

    async def power_off(self) -> None:
        """Stop generating, drop any connection and leave the radio."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        device, self._device = self._device, None
        if device is not None and self._radio is not None:
            self._radio.release_device(device)
            # The central learns of the loss like a supervision timeout.
            if self._connection is not None:
                self._connection = None
                await self._drop_link(device)
        self._connection = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            now = asyncio.get_running_loop().time()
            stalled = now < self._stall_until
            if stalled and not self._stall_drop:
                continue  # buffered stall: catch up once it ends
            try:
                await self._tick(self.device_time(), deliver=not stalled)
            except Exception:
                # A generation bug must not silence the device for the rest of the run.
                logger.exception("Emulated %s failed to generate a tick", self.name)

    async def _tick(self, device_time: float, *, deliver: bool) -> None:
        """Generate everything due up to ``device_time`` and emit it."""
        raise NotImplementedError

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run a coroutine in the background (e.g. an answer sent after a write returns)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- connection -----------------------------------------------------------------------

    def _on_connection(self, connection: Connection) -> None:
        self._connection = connection
        connection.on(connection.EVENT_DISCONNECTION, self._on_disconnection)
        self._on_connected(connection)

    def _on_disconnection(self, reason: int) -> None:
        self._connection = None
        self.disconnects += 1
        logger.debug("%s lost its central (reason 0x%02X)", self.name, reason)
        self._on_link_down()

    def _on_connected(self, connection: Connection) -> None:
        """Hook for subclasses."""

    def _on_link_down(self) -> None:
        """Hook: devices that need a start command stop streaming here."""

    def subscribed(self, characteristic: Characteristic[Any]) -> bool:
        """Whether the connected central enabled notifications or indications."""
        if self._device is None or self._connection is None:
            return False
        cccds = self._device.gatt_server.subscribers.get(self._connection) or {}
        cccd = cccds.get(characteristic.handle)
        return bool(cccd and cccd[0] & 0x03)

    async def _emit(self, packet: Packet, *, deliver: bool = True) -> bool:
        """Send one notification if possible; record its samples as sent or lost."""
        ok = deliver and self.can_send(packet.characteristic)
        if ok and self._consume_skip(packet.records):
            ok = False  # an injected counter gap: dropped on purpose
        if ok:
            ok = await self._send(packet.characteristic, packet.payload)
        self._record(packet.records, ok)
        return ok

    def can_send(self, characteristic: Characteristic[Any]) -> bool:
        """Whether a notification on ``characteristic`` would reach the central now."""
        return (
            self._device is not None
            and self._connection is not None
            and self.subscribed(characteristic)
            and self._central_holds_link()
        )

    def _consume_skip(self, records: Sequence[Record]) -> bool:
        """True (and the pending skip shrinks) when these samples are to be skipped."""
        if not any(self._skip.get(r.kind, 0) > 0 for r in records):
            return False
        for record in records:
            pending = self._skip.get(record.kind, 0)
            self._skip[record.kind] = max(0, pending - len(record.indices))
        return True

    async def _send(self, characteristic: Characteristic[Any], payload: bytes) -> bool:
        """Notify ``payload`` (after queued malformed packets); False if not sent."""
        if self._device is None or self._connection is None:
            return False
        if len(payload) > self.mtu - 3:
            logger.warning(
                "%s: %d-byte packet does not fit MTU %d; not sent",
                self.name,
                len(payload),
                self.mtu,
            )
            return False
        if not await self._wait_for_room():
            return False
        if self._malformed_pending and characteristic is self.data_characteristic:
            await self._send_malformed_now()
        device, connection = self._device, self._connection
        if device is None or connection is None or not self.subscribed(characteristic):
            return False  # the link or the subscription went away while waiting
        await device.notify_subscriber(connection, characteristic, payload)
        return True

    async def _wait_for_room(self) -> bool:
        """Back-pressure: wait while the stack still holds many unsent packets.

        A real radio sends a few packets per connection event and the firmware buffers
        the rest; here the bumble host's ACL queue plays that part. Bounding it keeps the
        record of what was delivered exact when a link drops (queued packets would be
        lost while already counted as sent). Returns False if the link went away.
        """
        device, connection = self._device, self._connection
        if device is None or connection is None:
            return False
        queue = device.host.le_acl_packet_queue
        if queue is not None and queue.pending > MAX_PENDING_PACKETS:
            try:
                await asyncio.wait_for(queue.drain(connection.handle), 2.0)
            except (TimeoutError, ValueError):
                logger.debug("%s: ACL queue did not drain", self.name)
        return (
            self._device is device and self._connection is connection and self._central_holds_link()
        )

    def _record(self, records: Sequence[Record], delivered: bool) -> None:
        for record in records:
            log = self._logs[record.kind]
            if delivered:
                log.n_sent += len(record.indices)
                if self.keep_samples:
                    log.values.append(record.values)
                    log.indices.append(record.indices)
                log.counting = True
            elif log.counting:
                log.lost += len(record.indices)

    def _skip_unsent(self, kind: str, next_index: int, now_index: int) -> int:
        """Move a stream's next index to ``now_index``; samples skipped count as lost.

        For devices that do not generate while stopped: their counter follows the clock,
        so the samples of the pause are a counter gap like any other loss.
        """
        if now_index <= next_index:
            return next_index
        log = self._logs[kind]
        if log.counting:
            log.lost += now_index - next_index
        return now_index

    def _central_holds_link(self) -> bool:
        """Whether the central's controller still has this link (it may have just dropped it)."""
        if self._radio is None or self._connection is None:
            return False
        peer = self._radio.link.find_le_controller(self._connection.peer_address)
        return peer is not None and self._connection.self_address in peer.le_connections

    async def _send_malformed_now(self) -> None:
        device, connection = self._device, self._connection
        if device is None or connection is None or self.data_characteristic is None:
            return
        while self._malformed_pending > 0:
            self._malformed_pending -= 1
            payload = self._malformed_payload()
            await device.notify_subscriber(connection, self.data_characteristic, payload)
            self.malformed_sent += 1

    def _malformed_payload(self) -> bytes:
        """The next of :meth:`_malformed_payloads`, in turn."""
        options = self._malformed_payloads()
        payload = options[self._malformed_cycle % len(options)]
        self._malformed_cycle += 1
        return payload

    def _malformed_payloads(self) -> tuple[bytes, ...]:
        """Payloads the profile's decoder must reject (subclasses override)."""
        return (b"",)

    # -- chaos ----------------------------------------------------------------------------

    async def disconnect(self) -> None:
        """Peripheral-initiated disconnect (the central's disconnected callback fires)."""
        connection = self._connection
        if connection is None:
            raise DeviceError(f"{self.name} has no connection to drop.")
        self._connection = None  # nothing more is sent on this link
        await connection.disconnect()

    async def link_loss(self, out_of_range: float = 0.0) -> None:
        """Drop the link as a supervision timeout would (no termination is exchanged).

        Parameters
        ----------
        out_of_range : float
            Seconds (host time) the device stays unreachable after the loss (it stops
            advertising meanwhile, so reconnecting fails until then).
        """
        if self._device is None or self._connection is None:
            raise DeviceError(f"{self.name} has no connection to lose.")
        device = self._device
        self._connection = None  # nothing more is sent on this link
        if out_of_range > 0:
            await device.stop_advertising()
        await self._drop_link(device)
        if out_of_range > 0:
            await asyncio.sleep(out_of_range)
            if self._device is device:
                await device.start_advertising(
                    advertising_data=self._advertising_data(), auto_restart=True
                )

    async def _drop_link(self, device: Device) -> None:
        if self._radio is None:
            raise RuntimeError("the emulated peripheral is not powered on.")
        # Let packets already handed to the stack arrive first, so the record of what
        # was delivered stays exact.
        await asyncio.sleep(0.01)
        controller = self._radio.controller_of(device)
        for peer_address, connection in list(controller.le_connections.items()):
            peer = self._radio.link.find_le_controller(peer_address)
            if peer is not None:
                for key, peer_connection in list(peer.le_connections.items()):
                    if key == connection.self_address:
                        peer.on_le_disconnected(peer_connection, CONNECTION_TIMEOUT)
            controller.on_le_disconnected(connection, CONNECTION_TIMEOUT)

    def stall(self, seconds: float, *, drop: bool = True) -> None:
        """Stop sending for ``seconds`` of host time while the device clock runs on.

        Parameters
        ----------
        seconds : float
            Host seconds to stall.
        drop : bool
            True (default): samples generated during the stall are dropped and counted as
            lost, so the counters jump. False: they are buffered and sent in a burst when
            the stall ends (delivery jitter without loss).
        """
        check_positive("seconds", seconds)
        self._stall_until = asyncio.get_running_loop().time() + seconds
        self._stall_drop = drop

    def skip_samples(self, kind: str, n: int) -> None:
        """Drop whole packets of ``kind`` covering at least ``n`` samples (a counter gap)."""
        self._check_kind(kind)
        if n <= 0:
            raise ConfigError(f"skip_samples needs n > 0, got {n!r}.")
        self._skip[kind] = self._skip.get(kind, 0) + int(n)

    def send_malformed(self, n: int = 1) -> None:
        """Queue ``n`` truncated or garbage packets for the data characteristic."""
        if n <= 0:
            raise ConfigError(f"send_malformed needs n > 0, got {n!r}.")
        self._malformed_pending += int(n)

    # -- records --------------------------------------------------------------------------

    def _check_kind(self, kind: str) -> _StreamLog:
        if kind not in self._logs:
            raise ConfigError(
                f"{self.profile} peripheral has no stream kind {kind!r}; "
                f"kinds are {sorted(self._logs)}."
            )
        return self._logs[kind]

    def channels(self, kind: str) -> tuple[str, ...]:
        """Channel names of a stream kind."""
        self._check_kind(kind)
        return self.kinds[kind]

    def sent_samples(self, kind: str) -> FloatArray:
        """Every delivered sample of ``kind``, shape (n, channels), canonical units.

        Values are quantised exactly as on the wire, so a correct decoder recovers them
        bit for bit (within float64 rounding of the unit scale).
        """
        log = self._check_kind(kind)
        if not log.values:
            return np.zeros((0, log.channels))
        return np.concatenate(log.values)

    def sent_indices(self, kind: str) -> IntArray:
        """Unwrapped device sample indices of :meth:`sent_samples`."""
        log = self._check_kind(kind)
        if not log.indices:
            return np.zeros(0, dtype=np.int64)
        return np.concatenate(log.indices).astype(np.int64)

    def sent_count(self, kind: str) -> int:
        """Samples of ``kind`` delivered (counted even when ``keep_samples`` is False)."""
        return self._check_kind(kind).n_sent

    def lost_samples(self, kind: str) -> int:
        """Samples of ``kind`` generated after the first delivery but never delivered."""
        return self._check_kind(kind).lost

    def __repr__(self) -> str:
        state = "connected" if self.is_connected else "on" if self.is_powered else "off"
        return f"<{type(self).__name__} {self.name!r} {self.address or '-'} {state}>"


def pack_records(kind: str, values: FloatArray, indices: Sequence[int] | IntArray) -> Record:
    """Build a :class:`Record` with 2-D float values and int64 indices."""
    vals = np.asarray(values, dtype=np.float64)
    if vals.ndim == 1:
        vals = vals[:, None]
    return Record(kind, vals, np.asarray(indices, dtype=np.int64))


def notify_characteristic(uuid: str) -> Characteristic[bytes]:
    """A characteristic that only notifies (a device's data stream): no read, no write."""
    return Characteristic(uuid, Characteristic.Properties.NOTIFY, Characteristic.Permissions(0))


def battery_service(read_level: Callable[[Connection], int]) -> Service:
    """Standard Battery service (0x180F) whose level (%) is read from ``read_level``."""
    from affectstream.device import gatt as uuids

    level: Characteristic[bytes] = Characteristic(
        uuids.BATTERY_LEVEL,
        Characteristic.Properties.READ | Characteristic.Properties.NOTIFY,
        Characteristic.READABLE,
        CharacteristicValue[bytes](read=lambda connection: bytes([read_level(connection)])),
    )
    return Service(uuids.BATTERY_SERVICE, [level])
