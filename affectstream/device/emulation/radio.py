"""An in-memory BLE radio: one bumble ``LocalLink`` shared by emulated peripherals and bleak.

Every emulated peripheral and every bleak client or scanner gets its own bumble ``Device``
with its own virtual ``Controller``; all controllers sit on one ``LocalLink``, so the whole
BLE stack (HCI, L2CAP, ATT, GATT) runs for real in userspace, only the radio is simulated.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from bumble.controller import Controller
from bumble.device import Device
from bumble.hci import Address
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink

from affectstream._validate import check_positive
from affectstream.device.device_state import DeviceTarget
from affectstream.device.emulation.quiet import QuietController, QuietHost
from affectstream.errors import DeviceError

if TYPE_CHECKING:
    from affectstream.device.emulation.peripheral import EmulatedPeripheral

logger = logging.getLogger(__name__)

#: Advertising interval of emulated peripherals, in milliseconds. Short, so that scans and
#: (re)connections in tests take tens of milliseconds, not seconds.
ADVERTISING_INTERVAL_MS = 20.0

_radio_ids = itertools.count(1)


class VirtualRadio:
    """An in-memory BLE radio shared by emulated peripherals and bleak clients.

    Use it as an async context manager; it needs a running event loop (bumble's virtual
    controllers create futures on construction).

    Parameters
    ----------
    connect_timeout : float
        Seconds a connection attempt may take before it fails with
        :class:`bleak.exc.BleakDeviceNotFoundError`. bumble's virtual controller never gives
        up on an absent peer, so the backend enforces this (the smaller of this value and
        the ``timeout`` given to ``BleakClient`` wins).

    Examples
    --------
    >>> async with VirtualRadio() as radio:  # doctest: +SKIP
    ...     strap = HeartRateStrap()
    ...     await radio.add(strap)
    ...     async with BleakClient(strap.address, **radio.client_kwargs()) as client:
    ...         await client.start_notify(HEART_RATE_MEASUREMENT, callback)
    """

    def __init__(self, *, connect_timeout: float = 5.0) -> None:
        check_positive("connect_timeout", connect_timeout)
        self.connect_timeout = float(connect_timeout)
        self._radio_id = next(_radio_ids) % 256
        self._address_counter = itertools.count(1)
        self._link: LocalLink | None = None
        self._peripherals: dict[str, EmulatedPeripheral] = {}
        self._centrals: set[Device] = set()
        self._controllers: dict[int, Controller] = {}

    # -- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> VirtualRadio:
        self._link = LocalLink()  # type: ignore[no-untyped-call]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Power every peripheral off and drop every central device."""
        for peripheral in list(self._peripherals.values()):
            try:
                await peripheral.power_off()
            except Exception:  # broad on purpose: every other peripheral still powers off
                logger.exception("Powering off %s failed", peripheral.name)
        self._peripherals.clear()
        for device in list(self._centrals):
            self.release_device(device)
        self._link = None

    @property
    def link(self) -> LocalLink:
        """The bumble link every controller of this radio is attached to."""
        if self._link is None:
            raise DeviceError(
                "VirtualRadio is not open: use it as `async with VirtualRadio() as radio:`."
            )
        return self._link

    # -- peripherals ----------------------------------------------------------------------

    async def add(self, peripheral: EmulatedPeripheral) -> None:
        """Power a peripheral on on this radio and start advertising.

        Parameters
        ----------
        peripheral : EmulatedPeripheral
            The emulated device; its ``address`` is fixed here if it has none yet.
        """
        if peripheral.address in self._peripherals:
            raise DeviceError(
                f"Peripheral {peripheral.name!r} at {peripheral.address} is already on "
                "this radio; create a new peripheral object for a second device."
            )
        if not peripheral.address:
            peripheral.address = self.new_address()
        await peripheral.power_on(self)
        self._peripherals[peripheral.address] = peripheral

    async def add_all(
        self, peripherals: Sequence[EmulatedPeripheral], *, keep_samples: bool = True
    ) -> list[DeviceTarget]:
        """Power several peripherals on and return the targets a supervisor connects to.

        Parameters
        ----------
        peripherals : sequence of EmulatedPeripheral
            The emulated devices (see :meth:`add`).
        keep_samples : bool
            False: the peripherals only count what they send (a long session's memory
            stays flat); True keeps every sample for tests that compare them.

        Returns
        -------
        list of DeviceTarget
            One per peripheral, by address, profile and name.
        """
        for peripheral in peripherals:
            if not keep_samples:
                peripheral.keep_samples = False
            await self.add(peripheral)
        return [DeviceTarget(p.address, profile=p.profile, name=p.name) for p in peripherals]

    async def remove(self, peripheral: EmulatedPeripheral) -> None:
        """Power a peripheral off (it disappears from the air) and forget it."""
        self._peripherals.pop(peripheral.address, None)
        await peripheral.power_off()

    @property
    def peripherals(self) -> list[EmulatedPeripheral]:
        """The peripherals currently on this radio."""
        return list(self._peripherals.values())

    def peripheral(self, address: str) -> EmulatedPeripheral | None:
        """Return the peripheral with this address, or ``None``."""
        return self._peripherals.get(address.upper())

    # -- bleak seam -----------------------------------------------------------------------

    def client_kwargs(self, **extra: Any) -> dict[str, Any]:
        """Keyword arguments that make ``BleakClient(address, **kw)`` use this radio.

        Parameters
        ----------
        **extra
            Extra backend options, e.g. ``mtu=23`` (the ATT MTU the client asks for;
            default 517, as BlueZ does).

        Returns
        -------
        dict
        """
        from affectstream.device.emulation.backend import BumbleClientBackend

        return {"backend": BumbleClientBackend, "radio": self, **extra}

    def supervisor_options(self) -> dict[str, Any]:
        """``client_kwargs`` and ``scanner_kwargs`` of a :class:`Supervisor` on this radio.

        Returns
        -------
        dict
        """
        return {"client_kwargs": self.client_kwargs(), "scanner_kwargs": self.scanner_kwargs()}

    def scanner_kwargs(self) -> dict[str, Any]:
        """Keyword arguments that make ``BleakScanner(**kw)`` listen on this radio.

        Returns
        -------
        dict
        """
        from affectstream.device.emulation.backend import BumbleScannerBackend

        return {"backend": BumbleScannerBackend, "radio": self}

    # -- devices --------------------------------------------------------------------------

    def new_address(self) -> str:
        """Allocate a fresh random static address on this radio."""
        n = next(self._address_counter)
        # Top two bits set: a valid random static address.
        tail = ":".join(f"{(n >> shift) & 0xFF:02X}" for shift in (16, 8, 0))
        return f"C0:A5:{self._radio_id:02X}:{tail}"

    def new_device(self, name: str, address: str | None = None) -> Device:
        """Create a bumble device with its own virtual controller on this radio's link.

        Parameters
        ----------
        name : str
            Device name (GAP).
        address : str, optional
            Random static address; a fresh one when omitted.

        Returns
        -------
        bumble.device.Device
            Not powered on yet.
        """
        address = address or self.new_address()
        # Quiet: bumble's own classes format every packet for debug lines never emitted.
        controller = QuietController(name, link=self.link, public_address=address)
        host = QuietHost(controller, AsyncPipeSink(controller))
        device = Device(name=name, address=Address(address), host=host)
        self._controllers[id(device)] = controller
        return device

    def controller_of(self, device: Device) -> Controller:
        """The virtual controller of a device made by :meth:`new_device`."""
        return self._controllers[id(device)]

    async def new_central(self, name: str) -> Device:
        """Create and power on a central device (one per bleak client or scanner)."""
        device = self.new_device(name)
        await device.power_on()
        self._centrals.add(device)
        return device

    def release_device(self, device: Device) -> None:
        """Take a device's controller off the link so it neither sends nor receives."""
        self._centrals.discard(device)
        controller = self._controllers.pop(id(device), None)
        link = self._link
        if controller is not None and link is not None and controller in link.controllers:
            link.remove_controller(controller)
