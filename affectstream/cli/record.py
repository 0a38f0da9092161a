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
from typing import TYPE_CHECKING, Any

from affectstream._validate import check_positive
from affectstream.cli._ids import id_argument
from affectstream.cli._line_freq import add_line_freq_argument
from affectstream.cli._lsl_out import add_lsl_out_argument
from affectstream.cli._output import add_json_argument, emit_result, say
from affectstream.cli._store_args import add_store_arguments
from affectstream.cli.demo import next_steps
from affectstream.errors import ConfigError

if TYPE_CHECKING:
    from affectstream.device.emulation.peripheral import EmulatedPeripheral

logger = logging.getLogger(__name__)

#: Seconds over which --chaos spreads its faults when the session has no set length.
CHAOS_SPAN_S = 20.0


def register(subparsers: Any) -> None:
    """Add ``record`` to ``subparsers`` (see :mod:`affectstream.cli`)."""
    parser = subparsers.add_parser(
        "record",
        help="stream BLE wearables (or emulated ones) and summarise what arrived",
        description=(
            "Connect to every device given (address or advertised name, optionally "
            "ADDRESS@PROFILE) or to emulated devices (--emulate), stream until --duration "
            "seconds, the end of --protocol or Ctrl-C, reconnecting by itself after dropouts, "
            "show per-stream rates, gaps and reconnects on stderr and summarise what arrived "
            "(with --json: one JSON summary, the last stdout line)."
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
    parser.add_argument(
        "--lsl",
        action="append",
        default=[],
        metavar="PREDICATE",
        help="record Lab Streaming Layer streams matching an LSL predicate, e.g. "
        "'type=\"EEG\"' or \"name='Muse'\" (repeatable; mixes with devices; marker "
        "streams become markers); needs affectstream[lsl]",
    )
    parser.add_argument(
        "--lsl-map",
        action="append",
        default=[],
        metavar="NAME=MODALITY",
        help="modality of an LSL stream whose metadata does not say (e.g. OpenBCI=eeg)",
    )
    parser.add_argument(
        "--lsl-timeout", type=float, default=5.0, help="seconds to find each --lsl stream"
    )
    add_lsl_out_argument(parser, " while recording")
    parser.add_argument(
        "--brainflow",
        action="append",
        default=[],
        metavar="BOARD[:PARAM=VALUE,...]",
        help="record a BrainFlow board, e.g. synthetic or cyton:serial_port=/dev/ttyUSB0 "
        "(repeatable; mixes with devices and LSL); needs affectstream[brainflow]",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        help="seconds (default: the protocol's length, else until Ctrl-C)",
    )
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
    parser.add_argument(
        "--participant",
        default="",
        type=id_argument("participant", allow_empty=True),
        help="pseudonymous participant id",
    )
    parser.add_argument(
        "--protocol",
        metavar="FILE",
        help="protocol file (JSON or TOML 'phases': name, duration, instruction); the session "
        "lasts the protocol unless --duration is given; a 'baseline' phase is the reference",
    )
    parser.add_argument(
        "--self-reports",
        metavar="FILE",
        help="ratings of the protocol's calibration blocks for scripted sessions (JSON/TOML: "
        'block -> {"valence": 1-9, "arousal": 1-9}); without it you are asked at each '
        "block's end and the next line typed is the answer ('7 3')",
    )
    add_store_arguments(parser)
    parser.add_argument("--model", metavar="BUNDLE", help="arousal model bundle (folder or name)")
    add_line_freq_argument(parser, " where you record, Hz (default: the model's, else 50)")
    parser.add_argument(
        "--no-markers",
        action="store_true",
        help="do not turn lines typed on stdin into marker events",
    )
    add_json_argument(parser)
    parser.set_defaults(func=run)


async def _record(args: argparse.Namespace) -> dict[str, Any]:
    import signal
    import sys

    from affectstream.device.lsl_meta import parse_mapping
    from affectstream.runtime.calibration import load_self_reports
    from affectstream.runtime.faults import chaos as chaos_schedule
    from affectstream.runtime.record import emulated_targets, parse_targets, record_session
    from affectstream.runtime.session import LiveSession
    from affectstream.runtime.view import LiveView

    # No --duration: the protocol's length, else until Ctrl-C (a study session's length is
    # the participant's, not a default's).
    duration = args.duration
    if duration is not None:
        duration = check_positive("--duration", duration)
    answers = load_self_reports(args.self_reports) if args.self_reports else None
    async with contextlib.AsyncExitStack() as stack:
        peripherals: list[EmulatedPeripheral] = []
        options: dict[str, Any] = {
            "connect_timeout": args.connect_timeout,
            "scan_timeout": args.scan_timeout,
        }
        if args.emulate:
            targets, emulated, peripherals = await emulated_targets(
                stack, args.emulate, speed=check_positive("--speed", args.speed), seed=args.seed
            )
            options.update(emulated)
        else:
            targets = parse_targets(args.devices)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not on Windows
            loop.add_signal_handler(signal.SIGINT, stop.set)
        markers = None if args.no_markers else sys.stdin
        if markers is not None and markers.isatty():
            say("type a label and Enter to write a marker; Ctrl-C stops and saves everything")
        elif duration is None and not args.protocol:
            say("recording until Ctrl-C (no --duration or --protocol given)")
        lsl_note = f" and {len(args.lsl)} LSL predicate(s)" if args.lsl else ""
        lsl_note += f" and {len(args.brainflow)} BrainFlow board(s)" if args.brainflow else ""
        say(f"connecting to {len(targets)} device(s){lsl_note}...")
        chaos_task: asyncio.Task[dict[str, int]] | None = None

        def start_chaos(session: LiveSession) -> None:
            # The schedule counts from when the devices stream, not from now.
            nonlocal chaos_task
            if args.chaos and peripherals:
                chaos_task = asyncio.create_task(
                    chaos_schedule(peripherals, duration or CHAOS_SPAN_S, session.streaming)
                )

        started = time.monotonic()
        try:
            with LiveView("affectstream record") as view:
                summary = await record_session(
                    targets,
                    store=args.store,
                    participant=args.participant,
                    protocol=args.protocol,
                    duration=duration,
                    bundle=args.model,
                    line_freq=args.line_freq,
                    markers=markers,
                    stop=stop,
                    on_update=view.update,
                    supervisor_options=options,
                    lsl=args.lsl,
                    lsl_map=parse_mapping(args.lsl_map),
                    lsl_resolve_timeout=check_positive("--lsl-timeout", args.lsl_timeout),
                    lsl_out=args.lsl_out,
                    brainflow=args.brainflow,
                    on_session=start_chaos,
                    self_reports=answers,
                    ask=say if markers is not None else None,
                )
            chaos: dict[str, int] = {}
            if chaos_task is not None and chaos_task.done():
                chaos = chaos_task.result()
            elif chaos_task is not None:
                say("warning: the session ended before the --chaos schedule did")
        finally:
            if chaos_task is not None and not chaos_task.done():
                chaos_task.cancel()
        elapsed = time.monotonic() - started
        for entry in summary["streams"].values():
            # Device counters at the top level, as before, next to the runtime's ledger.
            entry.update(entry.pop("device", {}))
            received = entry.get("samples_received", 0)
            entry["rate_hz"] = received / elapsed if elapsed > 0 else None
        summary["emulated"] = bool(args.emulate)
        summary["devices"] = sorted({s.rsplit("/", 1)[0] for s in summary["streams"]})
        if args.chaos and peripherals:
            chaos["malformed_sent"] = sum(p.malformed_sent for p in peripherals)
            summary["chaos"] = chaos
        calibration = summary.get("valence_calibration")
        if calibration is not None:
            say(f"valence calibration: {_calibration_line(calibration)}")
        incomplete = "" if summary["stored"] else "; INCOMPLETE, see the errors below"
        say(f"data: {summary['store']} (session {summary['session']}{incomplete})")
        for what, command in next_steps(str(summary["store"]), str(summary["session"])):
            say(f"  {what + ':':16s} {command}")
        return summary


def _calibration_line(result: dict[str, Any]) -> str:
    """One line on the personal valence fit after a session with calibration blocks."""
    if "accuracy" not in result:
        return f"{result.get('status')}: {result.get('reason', '')}"
    acc = result["accuracy"]
    return (
        f"{result['participant']} {result['status']}: held-out error {acc['mae']:.2f} SAM points "
        f"vs {acc['mae_own_mean']:.2f} for their own mean ({acc['n_episodes']} episodes); "
        f"model and card in {result['path']}"
    )


def run(args: argparse.Namespace) -> int:
    """Record, then print the JSON summary last (with ``--json``).

    Exit code: 0, or 1 when a stream delivered nothing or anything was not stored.
    """
    if args.emulate and args.devices:
        raise ConfigError(
            "Give either device addresses/names or --emulate KINDS (e.g. --emulate all), not both."
        )
    if not (args.emulate or args.devices or args.lsl or args.brainflow):
        raise ConfigError(
            "Give device addresses/names, --emulate KINDS (e.g. --emulate all), "
            "--lsl PREDICATE (e.g. --lsl 'type=\"EEG\"') or --brainflow BOARD."
        )
    if args.chaos and not args.emulate:
        raise ConfigError("--chaos injects faults through the emulator; use it with --emulate.")
    summary = asyncio.run(_record(args))
    if summary.get("reference"):
        say(summary["reference"])
    for warning in summary.get("warnings", []):
        say(f"note: {warning}")
    silent = [s for s, v in summary["streams"].items() if v.get("samples_received", 0) == 0]
    if silent:
        say(f"warning: no samples from {', '.join(silent)}")
    for loss in summary["not_stored"]:
        say(f"error: {loss}")
    emit_result(args, summary)
    return 1 if silent or not summary["streams"] or not summary["stored"] else 0
