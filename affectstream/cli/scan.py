"""``affectstream scan``: list nearby BLE devices and the profile each one matches."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from typing import Any

from affectstream._validate import check_positive
from affectstream.cli._output import add_json_argument, emit_result, say


def register(subparsers: Any) -> None:
    """Add ``scan`` to ``subparsers`` (see :mod:`affectstream.cli`)."""
    parser = subparsers.add_parser(
        "scan",
        help="list nearby BLE devices and the affectstream profile each matches",
        description=(
            "Scan for BLE advertisements and show, per device, its address, name, signal "
            "strength and the profile it matches (hr, polar, eda, muse, ganglion) by "
            "advertised services and name."
        ),
    )
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to scan (default 5)")
    parser.add_argument(
        "--emulate",
        metavar="KINDS",
        help="scan an in-memory radio with emulated devices instead, e.g. 'hr,eda' or 'all'",
    )
    parser.add_argument(
        "--all", action="store_true", help="also list devices that match no profile"
    )
    add_json_argument(parser)
    parser.set_defaults(func=run)


async def scan(
    timeout: float, scanner_kwargs: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Scan for devices and match each to a profile.

    Parameters
    ----------
    timeout : float
        Seconds to scan.
    scanner_kwargs : dict, optional
        Extra keyword arguments for ``BleakScanner`` (an emulated radio's).

    Returns
    -------
    list of dict
        One entry per device: ``address``, ``name``, ``rssi``, ``services``, ``profile``
        (None when no profile matches), sorted by profile then name.
    """
    from bleak import BleakScanner

    from affectstream.device.profiles import match_profile

    found = await BleakScanner.discover(timeout=timeout, return_adv=True, **(scanner_kwargs or {}))
    devices = []
    for address, (ble_device, adv) in found.items():
        name = adv.local_name or ble_device.name
        profile = match_profile(name, adv.service_uuids)
        devices.append(
            {
                "address": address,
                "name": name,
                "rssi": adv.rssi,
                "services": sorted(adv.service_uuids),
                "profile": profile.name if profile else None,
            }
        )
    devices.sort(key=lambda d: (d["profile"] is None, d["profile"] or "", d["name"] or ""))
    return devices


async def _scan_emulated(kinds: str, timeout: float) -> list[dict[str, Any]]:
    from affectstream.device.emulation import VirtualRadio
    from affectstream.device.emulation.factory import make_emulated

    async with VirtualRadio() as radio:
        for peripheral in make_emulated(kinds):
            await radio.add(peripheral)
        return await scan(timeout, radio.scanner_kwargs())


def _show(devices: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(devices)} BLE device(s)")
    for column in ("address", "name", "rssi", "profile"):
        table.add_column(column)
    for d in devices:
        table.add_row(d["address"], d["name"] or "?", str(d["rssi"]), d["profile"] or "-")
    Console(stderr=True).print(table)


def run(args: argparse.Namespace) -> int:
    """Scan and show the devices; print JSON last with ``--json``."""
    timeout = check_positive("--timeout", args.timeout)
    if args.emulate:
        devices = asyncio.run(_scan_emulated(args.emulate, timeout))
    else:
        from bleak.exc import BleakError

        from affectstream.device.supervisor import bluetooth_unavailable

        try:
            devices = asyncio.run(scan(timeout))
        except (BleakError, OSError) as exc:
            raise bluetooth_unavailable(exc) from exc
    if not args.all:
        devices = [d for d in devices if d["profile"] is not None]
    with contextlib.suppress(Exception):  # a display problem must not lose the result
        _show(devices)
    if not devices:
        say("No matching device found; is it on, charged and not connected elsewhere?")
    emit_result(args, {"devices": devices})
    return 0
