"""bumble's virtual controller and host without their per-packet debug strings.

bumble logs every HCI packet with ``logger.debug(f"... {packet}")`` in
``Controller.on_hci_packet``/``send_hci_packet`` and ``Host.on_hci_packet``/
``send_hci_packet``. An f-string is built before ``logger.debug`` looks at the level, so
each notification of an emulated device formats its packets (and their ANSI colours) four
times over for log lines nobody emits: ~10 % of the service's CPU with 10 participants x 4
emulated devices (py-spy, docs/dashboard.md). These subclasses do the same dispatch without
that line while bumble's loggers are below DEBUG, and are bumble's own methods otherwise
(set ``bumble`` logging to DEBUG and every packet is logged as before).
"""

from __future__ import annotations

import asyncio
import logging

from bumble import hci
from bumble.controller import Controller
from bumble.host import Host

logger = logging.getLogger(__name__)

_CONTROLLER_LOG = logging.getLogger("bumble.controller")
_HOST_LOG = logging.getLogger("bumble.host")


class QuietController(Controller):
    """:class:`bumble.controller.Controller` minus the per-packet debug string."""

    def on_hci_packet(self, packet: hci.HCI_Packet) -> None:
        """Dispatch a packet from the host (as bumble does, without formatting it)."""
        if _CONTROLLER_LOG.isEnabledFor(logging.DEBUG):
            super().on_hci_packet(packet)
            return
        match packet:
            case hci.HCI_Command():
                self.on_hci_command_packet(packet)
            case hci.HCI_AclDataPacket():
                self.on_hci_acl_data_packet(packet)
            case hci.HCI_Event():
                self.on_hci_event_packet(packet)
            case _:
                super().on_hci_packet(packet)  # bumble's warning for an unknown type

    def send_hci_packet(self, packet: hci.HCI_Packet) -> None:
        """Hand a packet to the host on the next loop turn (as bumble does)."""
        if _CONTROLLER_LOG.isEnabledFor(logging.DEBUG):
            super().send_hci_packet(packet)
        elif self.host:
            asyncio.get_running_loop().call_soon(self.host.on_packet, bytes(packet))


class QuietHost(Host):
    """:class:`bumble.host.Host` minus the per-packet debug string."""

    def on_hci_packet(self, packet: hci.HCI_Packet) -> None:
        """Dispatch a packet from the controller (as bumble does, without formatting it)."""
        if _HOST_LOG.isEnabledFor(logging.DEBUG) or self.snooper:
            super().on_hci_packet(packet)
            return
        match packet:
            case hci.HCI_Event():
                self.on_hci_event_packet(packet)
            case hci.HCI_AclDataPacket():
                self.on_hci_acl_data_packet(packet)
            case _:  # commands, SCO, ISO and the unknown: bumble's own path (none here)
                super().on_hci_packet(packet)

    def send_hci_packet(self, packet: hci.HCI_Packet) -> None:
        """Hand a packet to the controller (as bumble does, without formatting it)."""
        if _HOST_LOG.isEnabledFor(logging.DEBUG) or self.snooper:
            super().send_hci_packet(packet)
        elif self.hci_sink:
            self.hci_sink.on_packet(bytes(packet))
