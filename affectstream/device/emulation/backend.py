"""bleak backends over bumble's userspace BLE stack (the ``backend=`` seam of bleak).

``BleakClient(address, backend=BumbleClientBackend, radio=radio)`` and
``BleakScanner(backend=BumbleScannerBackend, radio=radio)`` behave like bleak on real
hardware, but talk to emulated peripherals on a :class:`VirtualRadio`. Get the keyword
arguments from :meth:`VirtualRadio.client_kwargs` and :meth:`VirtualRadio.scanner_kwargs`.

Handles: characteristic handles are ATT *value* handles (bumble's numbering); BlueZ reports
the declaration handle (value handle - 1). Code that must run on both should address
characteristics by UUID.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from bleak.args import SizedBuffer
from bleak.assigned_numbers import gatt_char_props_to_strs
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import (
    AdvertisementData,
    AdvertisementDataCallback,
    BaseBleakScanner,
)
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakDeviceNotFoundError, BleakError, BleakGATTProtocolError
from bleak.uuids import normalize_uuid_str
from bumble import att, hci
from bumble.core import UUID, AdvertisingData, BaseBumbleError
from bumble.device import Advertisement, Connection, Device, Peer
from bumble.gatt_client import CharacteristicProxy

if TYPE_CHECKING:
    from affectstream.device.emulation.radio import VirtualRadio

logger = logging.getLogger(__name__)

#: ATT MTU the emulated central asks for (BlueZ asks for 517 too).
DEFAULT_CLIENT_MTU = 517


def _uuid_str(uuid: UUID) -> str:
    return normalize_uuid_str(uuid.to_hex_str("-"))


def _check_radio(radio: object, who: str) -> VirtualRadio:
    from affectstream.device.emulation.radio import VirtualRadio

    if not isinstance(radio, VirtualRadio):
        raise BleakError(
            f"{who} needs radio=<VirtualRadio>, got {radio!r}; pass "
            "**radio.client_kwargs() / **radio.scanner_kwargs() to bleak."
        )
    return radio


class BumbleClientBackend(BaseBleakClient):
    """bleak client backend that connects through a :class:`VirtualRadio`.

    Parameters
    ----------
    address_or_ble_device : BLEDevice or str
        Address of the emulated peripheral.
    disconnected_callback : callable or None
        Called (with no arguments, bleak wraps it) when the link drops without the
        client asking: a peripheral-initiated disconnect or a link loss.
    timeout : float
        Connection timeout in seconds (bleak's ``timeout``); the radio's
        ``connect_timeout`` caps it.
    radio : VirtualRadio
        The radio to connect through.
    mtu : int
        ATT MTU to request after connecting (default 517).
    **kwargs
        Other bleak arguments (``services``, ``bluez``, ``winrt``...), ignored.
    """

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        *,
        disconnected_callback: Callable[[], None] | None = None,
        timeout: float = 10.0,
        radio: VirtualRadio | None = None,
        mtu: int = DEFAULT_CLIENT_MTU,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            address_or_ble_device, disconnected_callback=disconnected_callback, timeout=timeout
        )
        self.address = self.address.upper()
        self._radio = _check_radio(radio, "BumbleClientBackend")
        self._requested_mtu = int(mtu)
        self._device: Device | None = None
        self._connection: Connection | None = None
        self._peer: Peer | None = None
        self._client_disconnecting = False
        self._notify_subscribers: dict[int, Callable[[bytes], None]] = {}

    # -- info -----------------------------------------------------------------------------

    @property
    def name(self) -> str:
        peripheral = self._radio.peripheral(self.address)
        return peripheral.name if peripheral is not None else self.address.replace(":", "-")

    @property
    def mtu_size(self) -> int:
        if self._connection is None:
            return att.ATT_DEFAULT_MTU
        return int(self._connection.att_mtu)

    @property
    def is_connected(self) -> bool:
        return self._connection is not None

    # -- connection -----------------------------------------------------------------------

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        if pair:
            logger.warning("Emulated BLE has no pairing; ignoring pair=True for %s", self.address)
        if self._connection is not None:
            return
        try:
            peer_address = hci.Address(self.address)
        except ValueError as error:
            raise BleakDeviceNotFoundError(
                self.address,
                f"{self.address!r} is not a BLE address; expected six hex bytes like "
                "'C0:A5:01:00:00:01' (VirtualRadio peripherals have .address).",
            ) from error
        timeout = min(float(self._timeout), self._radio.connect_timeout)
        device = await self._radio.new_central(f"bleak-central-{self.address}")
        self._device = device
        try:
            connection = await asyncio.wait_for(device.connect(peer_address, timeout=None), timeout)
        except TimeoutError as error:
            await self._abandon_connect(device)
            raise BleakDeviceNotFoundError(
                self.address,
                f"No emulated peripheral at {self.address} accepted a connection within "
                f"{timeout:g} s; add it to the VirtualRadio before connecting, and make "
                "sure it is advertising (not out of range, not connected to another client).",
            ) from error
        except BaseException:
            await self._abandon_connect(device)
            raise
        self._connection = connection
        self._client_disconnecting = False
        connection.on(connection.EVENT_DISCONNECTION, self._on_disconnection)
        peer = Peer(connection)
        self._peer = peer
        try:
            await self._guard(peer.request_mtu(self._requested_mtu))
            self.services = await self._guard(self._discover(peer))
        except BaseException:
            if self._connection is not None:
                await self.disconnect()
            raise
        logger.debug("Connected to %s, MTU %d", self.address, self.mtu_size)

    async def _abandon_connect(self, device: Device) -> None:
        try:
            await asyncio.wait_for(device.cancel_connection(), 1.0)  # type: ignore[no-untyped-call]
        except (TimeoutError, BaseBumbleError):
            logger.debug("Cancelling the pending connection failed", exc_info=True)
        self._radio.release_device(device)
        self._device = None

    async def _discover(self, peer: Peer) -> BleakGATTServiceCollection:
        collection = BleakGATTServiceCollection()
        await peer.discover_services()
        for service in peer.services:
            await peer.discover_characteristics(service=service)
            bleak_service = BleakGATTService(service, service.handle, _uuid_str(service.uuid))
            collection.add_service(bleak_service)
            for characteristic in service.characteristics:
                await peer.discover_descriptors(characteristic=characteristic)
                bleak_char = BleakGATTCharacteristic(
                    characteristic,
                    characteristic.handle,
                    _uuid_str(characteristic.uuid),
                    sorted(gatt_char_props_to_strs(int(characteristic.properties))),
                    self._max_write_without_response_size,
                    bleak_service,
                )
                collection.add_characteristic(bleak_char)
                for descriptor in characteristic.descriptors:
                    collection.add_descriptor(
                        BleakGATTDescriptor(
                            descriptor,
                            descriptor.handle,
                            _uuid_str(descriptor.type),
                            bleak_char,
                        )
                    )
        return collection

    def _max_write_without_response_size(self) -> int:
        return self.mtu_size - 3

    def _on_disconnection(self, reason: int) -> None:
        solicited = self._client_disconnecting
        logger.debug(
            "Link to %s closed (reason 0x%02X, %s)",
            self.address,
            reason,
            "client request" if solicited else "unsolicited",
        )
        self._connection = None
        self._peer = None
        self._notify_subscribers.clear()
        if self._device is not None:
            self._radio.release_device(self._device)
            self._device = None
        # bleak's contract: the callback fires only when the client did not ask.
        if not solicited and self._disconnected_callback is not None:
            asyncio.get_running_loop().call_soon(self._disconnected_callback)

    async def disconnect(self) -> None:
        connection = self._connection
        if connection is None:
            return
        self._client_disconnecting = True
        try:
            await connection.disconnect()
        except (TimeoutError, BaseBumbleError):
            logger.debug("Disconnect of %s raised", self.address, exc_info=True)
            if self._connection is not None:
                self._on_disconnection(hci.HCI_REMOTE_USER_TERMINATED_CONNECTION_ERROR)

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError(
            "Pairing is not emulated: the emulated peripherals need no bonding. Connect "
            "without pair=True."
        )

    async def unpair(self) -> None:
        raise NotImplementedError(
            "Unpairing is not emulated: the emulated peripherals are never bonded."
        )

    # -- I/O ------------------------------------------------------------------------------

    def _require_peer(self) -> Peer:
        if self._peer is None:
            raise BleakError(f"Not connected to {self.address}")
        return self._peer

    async def _guard(self, awaitable: Any) -> Any:
        """Await a GATT operation and turn bumble's failures into bleak's exceptions."""
        try:
            return await awaitable
        except att.ATT_Error as error:
            raise BleakGATTProtocolError(error.error_code) from error
        except BaseBumbleError as error:  # link or state errors: bleak raises BleakError
            raise BleakError(f"{self.address}: GATT operation failed: {error}") from error
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            # bumble cancels the pending request when the link drops.
            raise BleakError(f"{self.address} disconnected during a GATT operation") from None

    async def _read_handle(self, handle: int) -> bytearray:
        peer = self._require_peer()
        return bytearray(await self._guard(peer.read_value(handle)))

    async def read_gatt_char(
        self,
        characteristic: BleakGATTCharacteristic,
        *,
        use_cached: bool = False,
        **kwargs: Any,
    ) -> bytearray:
        return await self._read_handle(characteristic.handle)

    async def read_gatt_descriptor(
        self,
        descriptor: BleakGATTDescriptor,
        *,
        use_cached: bool = False,
        **kwargs: Any,
    ) -> bytearray:
        return await self._read_handle(descriptor.handle)

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: SizedBuffer, response: bool
    ) -> None:
        peer = self._require_peer()
        await self._guard(
            peer.write_value(characteristic.handle, bytes(data), with_response=response)
        )

    async def write_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, data: SizedBuffer
    ) -> None:
        peer = self._require_peer()
        await self._guard(peer.write_value(descriptor.handle, bytes(data), with_response=True))

    async def start_notify(
        self,
        characteristic: BleakGATTCharacteristic,
        callback: NotifyCallback,
        **kwargs: Any,
    ) -> None:
        peer = self._require_peer()
        proxy = characteristic.obj
        if not isinstance(proxy, CharacteristicProxy):
            raise BleakError(f"{characteristic} does not belong to this emulated connection")
        if not {"notify", "indicate"} & set(characteristic.properties):
            raise BleakError(
                f"Characteristic {characteristic.uuid} supports neither notify nor indicate"
            )

        def subscriber(value: bytes) -> None:
            callback(bytearray(value))

        if characteristic.handle in self._notify_subscribers:
            await self.stop_notify(characteristic)
        self._notify_subscribers[characteristic.handle] = subscriber
        # Prefer notifications when both are offered, as bleak's contract asks.
        await self._guard(peer.subscribe(proxy, subscriber, prefer_notify=True))

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        peer = self._require_peer()
        subscriber = self._notify_subscribers.pop(characteristic.handle, None)
        proxy = characteristic.obj
        if subscriber is None or not isinstance(proxy, CharacteristicProxy):
            return
        await self._guard(peer.unsubscribe(proxy, subscriber))


class BumbleScannerBackend(BaseBleakScanner):
    """bleak scanner backend that listens to advertisements on a :class:`VirtualRadio`.

    Parameters
    ----------
    detection_callback, service_uuids : see :class:`bleak.BleakScanner`.
    scanning_mode : {"active", "passive"}
        Active scanning also collects scan responses.
    radio : VirtualRadio
        The radio to listen on.
    **kwargs
        Other bleak arguments (``bluez``, ``cb``), ignored.
    """

    def __init__(
        self,
        detection_callback: AdvertisementDataCallback | None,
        service_uuids: list[str] | None,
        scanning_mode: Literal["active", "passive"] = "active",
        *,
        radio: VirtualRadio | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        self._radio = _check_radio(radio, "BumbleScannerBackend")
        self._active = scanning_mode == "active"
        self._device: Device | None = None

    async def start(self) -> None:
        self.seen_devices = {}
        if self._device is not None:
            return
        device = await self._radio.new_central("bleak-scanner")
        device.on(device.EVENT_ADVERTISEMENT, self._on_advertisement)
        await device.start_scanning(active=self._active, filter_duplicates=False)
        self._device = device

    async def stop(self) -> None:
        device = self._device
        self._device = None
        if device is None:
            return
        device.remove_listener(device.EVENT_ADVERTISEMENT, self._on_advertisement)
        try:
            await device.stop_scanning()
        finally:
            self._radio.release_device(device)

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        data = advertisement.data
        name = data.get(AdvertisingData.COMPLETE_LOCAL_NAME) or data.get(
            AdvertisingData.SHORTENED_LOCAL_NAME
        )
        uuids: list[str] = []
        for ad_type in (
            AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
            AdvertisingData.INCOMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
            AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
            AdvertisingData.INCOMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
        ):
            for uuid in data.get(ad_type) or []:
                uuids.append(_uuid_str(uuid))
        manufacturer: dict[int, bytes] = {}
        manufacturer_data = data.get(AdvertisingData.MANUFACTURER_SPECIFIC_DATA)
        if manufacturer_data is not None:
            company_id, payload = manufacturer_data
            manufacturer[int(company_id)] = bytes(payload)
        tx_power = data.get(AdvertisingData.TX_POWER_LEVEL)
        if not self.is_allowed_uuid(uuids):
            return
        address = str(advertisement.address).split("/")[0].upper()
        local_name = str(name) if name is not None else None
        adv = AdvertisementData(
            local_name=local_name,
            manufacturer_data=manufacturer,
            service_data={},
            service_uuids=uuids,
            tx_power=int(tx_power) if tx_power is not None else None,
            rssi=int(advertisement.rssi),
            platform_data=(advertisement,),
        )
        device = self.create_or_update_device(address, address, local_name, advertisement, adv)
        self.call_detection_callbacks(device, adv)
