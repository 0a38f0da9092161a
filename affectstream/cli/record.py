"""``affectstream record``: stream BLE devices (or emulated ones), show them live, summarise.

Examples::

    affectstream record --emulate hr,polar,eda,muse --duration 20 --chaos --json
    affectstream record "Polar H10 A1B2C3D4" AS-EDA-00F1 --duration 60 --json
    affectstream record C4:7C:8D:6A:12:34@polar --duration 60
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from affectstream._validate import check_positive
from affectstream.cli._output import emit_json, say
from affectstream.errors import ConfigError

if TYPE_CHECKING:
    from affectstream.device.emulation.peripheral import EmulatedPeripheral
    from affectstream.device.supervisor import DeviceTarget, Supervisor
    from affectstream.types import SampleBlock

logger = logging.getLogger(__name__)

#: Seconds over which the live sample rate is measured.
RATE_WINDOW_S = 2.0


def register(subparsers: Any) -> None:
    """Register ``record``.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The top-level sub-command registry.
    """
    parser = subparsers.add_parser(
        "record",
        help="stream BLE wearables (or emulated ones) and summarise what arrived",
        description=(
            "Connect to every device given (address or advertised name, optionally "
            "ADDRESS@PROFILE) or to emulated devices (--emulate), stream for --duration "
            "seconds, reconnecting by itself after dropouts, show per-stream rates, gaps "
            "and reconnects on stderr, and print one JSON summary as the last stdout line."
        ),
    )
    parser.add_argument(
        "devices",
        nargs="*",
        metavar="DEVICE",
        help="BLE address or advertised name, optionally with @PROFILE (hr, polar, eda, "
        "muse, ganglion)",
    )
    parser.add_argument(
        "--emulate",
        metavar="KINDS",
        help="record emulated devices instead: comma-separated hr,polar,eda,muse,ganglion "
        "or 'all' (hr,polar,eda,muse)",
    )
    parser.add_argument("--duration", type=float, default=20.0, help="seconds (default 20)")
    parser.add_argument(
        "--chaos",
        action="store_true",
        help="with --emulate: inject disconnects, a link loss and malformed packets",
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="with --emulate: device clocks run this many times real time (default 1)",
    )
    parser.add_argument("--seed", type=int, default=0, help="with --emulate: signal seed")
    parser.add_argument(
        "--connect-timeout", type=float, default=10.0, help="seconds per connection attempt"
    )
    parser.add_argument(
        "--scan-timeout", type=float, default=10.0, help="seconds to find a device by name"
    )
    parser.add_argument("--json", action="store_true", help="print the JSON summary last")
    parser.set_defaults(func=run)


def parse_targets(devices: list[str]) -> list[DeviceTarget]:
    """Turn ``ADDRESS_OR_NAME[@PROFILE]`` arguments into device targets.

    Parameters
    ----------
    devices : list of str
        Positional arguments.

    Returns
    -------
    list of DeviceTarget

    Raises
    ------
    ConfigError
        If a profile name is unknown.
    """
    from affectstream.device.profiles import get_profile
    from affectstream.device.supervisor import DeviceTarget

    targets = []
    for text in devices:
        address, _, profile = text.rpartition("@") if "@" in text else (text, "", "")
        if profile:
            get_profile(profile)
        targets.append(DeviceTarget(address.strip(), profile=profile or None))
    return targets


class LiveStats:
    """Per-stream sample rates over a sliding window, fed from the block queue."""

    def __init__(self) -> None:
        self.recent: dict[str, deque[tuple[float, int]]] = {}
        self.gaps: dict[str, int] = {}

    def add(self, block: SampleBlock) -> None:
        """Count one block.

        Parameters
        ----------
        block : SampleBlock
            A delivered block.
        """
        now = time.monotonic()
        window = self.recent.setdefault(block.stream, deque())
        window.append((now, len(block) - sum(g.n_samples for g in block.gaps)))
        while window and window[0][0] < now - RATE_WINDOW_S:
            window.popleft()
        self.gaps[block.stream] = self.gaps.get(block.stream, 0) + len(block.gaps)

    def rate(self, stream: str) -> float:
        """Samples per second received recently.

        Parameters
        ----------
        stream : str
            Stream id.

        Returns
        -------
        float
        """
        window = self.recent.get(stream)
        if not window:
            return 0.0
        now = time.monotonic()
        while window and window[0][0] < now - RATE_WINDOW_S:
            window.popleft()
        return sum(n for _, n in window) / RATE_WINDOW_S


def _table(sup: Supervisor, live: LiveStats, elapsed: float, duration: float) -> Any:
    from rich.table import Table

    table = Table(title=f"affectstream record  {elapsed:5.1f}/{duration:g} s")
    for column in ("stream", "rate/s", "received", "gap samples", "reconnects", "malformed"):
        table.add_column(column, justify="left" if column == "stream" else "right")
    for stream, stats in sorted(sup.stats().items()):
        table.add_row(
            stream,
            f"{live.rate(stream):.1f}",
            str(stats.samples_received),
            str(stats.gap_samples),
            str(stats.reconnects),
            str(stats.malformed),
        )
    return table


async def _chaos(peripherals: list[EmulatedPeripheral], duration: float) -> dict[str, int]:
    """Inject malformed packets, one disconnect per device and one link loss."""
    counts = {"disconnects": 0, "link_losses": 0, "malformed_requested": 0}
    start = time.monotonic()

    async def at(fraction: float) -> None:
        await asyncio.sleep(max(0.0, start + fraction * duration - time.monotonic()))

    await at(0.15)
    for p in peripherals:
        p.send_malformed(3)
        counts["malformed_requested"] += 3
    for i, p in enumerate(peripherals):
        await at(0.25 + 0.3 * i / max(1, len(peripherals)))
        if p.is_connected:
            await p.disconnect()
            counts["disconnects"] += 1
    await at(0.65)
    if peripherals and peripherals[0].is_connected:
        await peripherals[0].link_loss(out_of_range=min(1.0, 0.05 * duration))
        counts["link_losses"] += 1
    return counts


async def _record(args: argparse.Namespace) -> dict[str, Any]:
    from rich.console import Console
    from rich.live import Live

    from affectstream.device.supervisor import DeviceTarget, Supervisor

    duration = check_positive("--duration", args.duration)
    console = Console(stderr=True)
    async with contextlib.AsyncExitStack() as stack:
        peripherals: list[EmulatedPeripheral] = []
        client_kwargs: dict[str, Any] = {}
        scanner_kwargs: dict[str, Any] = {}
        if args.emulate:
            from affectstream.device.emulation import VirtualRadio
            from affectstream.device.emulation.factory import make_emulated

            radio = await stack.enter_async_context(VirtualRadio())
            peripherals = make_emulated(
                args.emulate, speed=check_positive("--speed", args.speed), seed=args.seed
            )
            for p in peripherals:
                await radio.add(p)
            targets = [DeviceTarget(p.address, profile=p.profile, name=p.name) for p in peripherals]
            client_kwargs = radio.client_kwargs()
            scanner_kwargs = radio.scanner_kwargs()
        else:
            targets = parse_targets(args.devices)
        sup = Supervisor(
            targets,
            client_kwargs=client_kwargs,
            scanner_kwargs=scanner_kwargs,
            connect_timeout=args.connect_timeout,
            scan_timeout=args.scan_timeout,
        )
        say(f"connecting to {len(targets)} device(s)...")
        await sup.start()
        live = LiveStats()

        async def consume() -> None:
            while True:
                live.add(await sup.blocks.get())

        consumer = asyncio.create_task(consume())
        chaos_task = (
            asyncio.create_task(_chaos(peripherals, duration))
            if args.chaos and peripherals
            else None
        )
        started = time.monotonic()
        try:
            if console.is_terminal:
                with Live(console=console, refresh_per_second=4) as display:
                    while (elapsed := time.monotonic() - started) < duration:
                        display.update(_table(sup, live, elapsed, duration))
                        await asyncio.sleep(0.25)
            else:
                next_line = 0.0
                while (elapsed := time.monotonic() - started) < duration:
                    if elapsed >= next_line:
                        parts = [
                            f"{s.split('/', 1)[-1]}@{s.split('/')[0]} {live.rate(s):.0f}/s "
                            f"gap {st.gap_samples} rc {st.reconnects}"
                            for s, st in sorted(sup.stats().items())
                        ]
                        say(f"[{elapsed:5.1f}s] " + "; ".join(parts))
                        next_line += max(1.0, duration / 10)
                    await asyncio.sleep(min(0.25, duration - elapsed))
            chaos: dict[str, int] = {}
            if chaos_task is not None:
                chaos = await chaos_task
        finally:
            if chaos_task is not None and not chaos_task.done():
                chaos_task.cancel()
            await sup.stop()
            while not sup.blocks.empty():
                live.add(sup.blocks.get_nowait())
            consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await consumer
        elapsed = time.monotonic() - started
        console.print(_table(sup, live, min(elapsed, duration), duration))
        streams = {}
        for stream, stats in sorted(sup.stats().items()):
            entry: dict[str, Any] = stats.as_dict()
            entry["rate_hz"] = stats.samples_received / elapsed if elapsed > 0 else None
            streams[stream] = entry
        summary: dict[str, Any] = {
            "duration_s": round(elapsed, 3),
            "emulated": bool(args.emulate),
            "devices": sup.device_names(),
            "streams": streams,
        }
        if args.chaos and peripherals:
            chaos["malformed_sent"] = sum(p.malformed_sent for p in peripherals)
            summary["chaos"] = chaos
        return summary


def run(args: argparse.Namespace) -> int:
    """Record, then print the JSON summary last (with ``--json``).

    Parameters
    ----------
    args : argparse.Namespace
        Parsed arguments.

    Returns
    -------
    int
        Exit code: 0, or 1 when a stream delivered nothing.
    """
    if bool(args.emulate) == bool(args.devices):
        raise ConfigError(
            "Give either device addresses/names or --emulate KINDS (e.g. --emulate all), "
            f"not {'both' if args.devices else 'neither'}."
        )
    if args.chaos and not args.emulate:
        raise ConfigError("--chaos injects faults through the emulator; use it with --emulate.")
    summary = asyncio.run(_record(args))
    silent = [s for s, v in summary["streams"].items() if v["samples_received"] == 0]
    if silent:
        say(f"warning: no samples from {', '.join(silent)}")
    if args.json:
        emit_json(summary)
    return 1 if silent or not summary["streams"] else 0
