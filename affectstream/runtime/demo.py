"""The demo scenario: emulated wearables on the emulated BLE stack through the real runtime.

:func:`run_demo` powers on an HR strap with RR intervals, a Polar H10 (ECG), the EDA band
and a Muse headband on a :class:`~affectstream.device.emulation.VirtualRadio`, all driven by
one :class:`~affectstream.device.emulation.AffectScript` (baseline, a stress block,
recovery), records them with the connection supervisor through bleak, and runs a
:class:`~affectstream.runtime.session.LiveSession` into the embedded store. Nothing is
mocked between the radio and the store.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from affectstream._validate import check_positive
from affectstream.device.emulation import VirtualRadio, make_emulated
from affectstream.device.supervisor import Supervisor
from affectstream.errors import ConfigError
from affectstream.models.bundle import load_bundle
from affectstream.redact import redact_url
from affectstream.runtime.demo_protocol import (
    BASELINE_SHARE,
    DEMO_LEAD_IN,
    ReferenceNeed,
    demo_baseline,
    demo_script,
    reference_needs,
)
from affectstream.runtime.estimator import (
    LiveEstimator,
    demo_bundle_path,
    ensure_demo_bundle,
    resolve_arousal_bundles,
)
from affectstream.runtime.faults import check_disconnects, scripted_disconnects
from affectstream.runtime.multiwindow import reads_own_windows, trained_window
from affectstream.runtime.session import LiveSession, LiveSnapshot, SessionConfig
from affectstream.signal import WindowConfig
from affectstream.signal.columns import feature_families
from affectstream.store import EmbeddedStore, default_store_path, open_store

logger = logging.getLogger(__name__)

# The protocol planning lives in demo_protocol.py; these names stay importable from here.
__all__ = [
    "BASELINE_SHARE",
    "DEMO_DURATION",
    "DEMO_LEAD_IN",
    "DemoOptions",
    "ReferenceNeed",
    "demo_baseline",
    "demo_families",
    "demo_script",
    "reference_needs",
    "run_demo",
    "store_location",
]

#: Default demo length in seconds: a 70-s baseline, long enough for the wrist model's
#: reference (two of its 60-s windows, see :func:`demo_baseline`), then 40 s of stress and
#: 40 s of recovery; it ends by itself in under three minutes.
DEMO_DURATION = 150.0
#: Primary windows when every model's are longer than DEMO_MAX_WINDOW (features shown early;
#: each model still estimates on its own windows).
DEMO_WINDOW = 20.0
DEMO_STEP = 2.0
#: PPG beats are confirmed in segments of this many seconds (shorter: lower latency; ECG
#: beats and SCRs are confirmed within half a second whatever it is).
DEMO_BEAT_SEGMENT = 5.0
#: Live feedback: new blocks go to the feature worker every LIVE_COMPUTE_INTERVAL s and
#: estimates to the store every LIVE_FLUSH_INTERVAL s (the session defaults, 0.25 and 0.5 s,
#: would add up to 0.75 s between a row being ready and its estimate stored).
LIVE_COMPUTE_INTERVAL, LIVE_FLUSH_INTERVAL = 0.05, 0.05

#: Feature families each emulated profile gives.
_FAMILIES = {"hr": {"hr", "hrv"}, "polar": {"hrv"}, "eda": {"eda"}, "muse": {"eeg", "acc"}}
#: Longest model window the demo adopts as its primary window (a short session needs short
#: windows; longer models get their own windows beside it, runtime/multiwindow.py).
DEMO_MAX_WINDOW = 30.0


@dataclass
class DemoOptions:
    """What :func:`run_demo` runs.

    Parameters
    ----------
    duration : float
        Seconds (default :data:`DEMO_DURATION`, 150).
    store : str or Path, optional
        Embedded store path or store URL; the default embedded store when omitted.
    kinds : str
        Emulated devices (``make_emulated`` names).
    window, step : float, optional
        Feature windows. Default: the shortest model's own when its window is at most
        :data:`DEMO_MAX_WINDOW` s, else :data:`DEMO_WINDOW` s every :data:`DEMO_STEP` s
        (shown live); every model estimates on the windows it was trained on. An explicit
        ``window`` runs every model on it (illustrative, with a warning).
    participant : str
        Participant id written with the data.
    seed : int
        Seed of the emulated signals.
    bundle : str or Path, optional
        Arousal model bundle; the best shipped one (or a synthetic demonstration model
        trained once) by default.
    session_id : str, optional
        Session id (a new one by default).
    disconnects : mapping of str to sequence of float
        Scripted disconnects: emulated profile → seconds after the devices stream (see
        :func:`affectstream.runtime.faults.scripted_disconnects`); none by default.
    """

    duration: float = DEMO_DURATION
    store: str | Path | None = None
    kinds: str = "hr,polar,eda,muse"
    window: float | None = None
    step: float | None = None
    participant: str = "demo"
    seed: int = 0
    bundle: str | Path | None = None
    session_id: str | None = None
    disconnects: Mapping[str, Sequence[float]] = field(default_factory=dict)


def demo_families(kinds: list[str]) -> set[str]:
    """Feature families the emulated devices of ``kinds`` give.

    Parameters
    ----------
    kinds : list of str
        ``make_emulated`` names.

    Returns
    -------
    set of str
    """
    families: set[str] = set()
    for name in kinds:
        families |= _FAMILIES.get(name, set())
    return families


def store_location(store: object) -> str:
    """Where a store keeps its data, for people (a path or a URL).

    Parameters
    ----------
    store : TimeSeriesStore
        The store.

    Returns
    -------
    str
    """
    if isinstance(store, EmbeddedStore):
        return str(store.path)
    return redact_url(getattr(store, "url", store))


async def run_demo(
    options: DemoOptions | None = None,
    *,
    on_update: Callable[[LiveSnapshot], None] | None = None,
    stop: asyncio.Event | None = None,
    on_status: Callable[[str], None] | None = None,
    on_session: Callable[[LiveSession], None] | None = None,
) -> dict[str, Any]:
    """Run the scripted demo session and return its summary.

    Parameters
    ----------
    options : DemoOptions, optional
        What to run.
    on_update : callable, optional
        Receives live snapshots (a :class:`~affectstream.runtime.view.LiveView`).
    stop : asyncio.Event, optional
        Set to end early (everything is still flushed).
    on_status : callable, optional
        Receives progress messages for people.
    on_session : callable, optional
        Receives the :class:`LiveSession` once it is built, before the devices connect
        (the service attaches its live listeners and reads its ledgers).

    Returns
    -------
    dict
        The session summary plus ``store`` (where the data is), ``emulated`` (what each
        emulator sent and lost per stream), ``devices`` and ``protocol``.
    """
    opts = options if options is not None else DemoOptions()
    duration = check_positive("--duration", opts.duration)
    status = on_status or (lambda message: logger.info("%s", message))
    names = [k.strip() for k in opts.kinds.split(",") if k.strip()]
    disconnects = check_disconnects(opts.disconnects, names)
    families = demo_families(names)
    # Every shipped bundle the devices cover (wrist + chest + EEG: both), each on its own
    # window length, combined per window (combine.py); the shortest sets the demo's windows.
    paths = resolve_arousal_bundles(opts.bundle, families, allow_demo=False)
    if not paths:
        status(
            "no shipped arousal model: using a demonstration model trained on synthetic "
            f"data (trained once, ~10 s, cached in {demo_bundle_path()})"
        )
        paths = [await asyncio.to_thread(ensure_demo_bundle)]
    bundles = [
        await asyncio.to_thread(load_bundle, path, allow_version_mismatch=True) for path in paths
    ]
    warnings = []
    win = opts.window if opts.window is not None else DEMO_WINDOW
    step = opts.step if opts.step is not None else DEMO_STEP
    # Every model on the windows it was trained on (multiwindow.py), unless --window asks
    # for one window for all: then its estimates are illustrative, as warned.
    own_windows = reads_own_windows(opts.window)
    if bundles:
        bundle = min(bundles, key=lambda b: float(b.meta.get("window", {}).get("window", 1e9)))
        trained = bundle.meta.get("window", {})
        if own_windows and float(trained.get("window", 1e9)) <= DEMO_MAX_WINDOW:
            shortest = trained_window(bundle)
            win, step = shortest.window, shortest.step
        if opts.step is not None:
            step = opts.step
        other = [b for b in bundles if b.meta.get("window", {}).get("window") not in (None, win)]
        if not own_windows and other:
            lengths = ", ".join(f"{float(b.meta['window']['window']):g}" for b in other)
            warnings.append(
                f"demo features use {win:g}-s windows every {step:g} s; the model "
                f"{'+'.join(b.model_id for b in other)} was trained on {lengths}-s windows, "
                "so its estimates are illustrative"
            )
        missing = sorted(set().union(*(feature_families(b.features) for b in bundles)) - families)
        if missing:
            warnings.append(
                f"model {'+'.join(b.model_id for b in bundles)} also uses {', '.join(missing)} "
                "features, which these devices do not give (left missing; confidence drops "
                "accordingly)"
            )
    if step > win:
        raise ConfigError(f"Demo step ({step:g} s) must not exceed the window ({win:g} s).")
    window = WindowConfig(window=win, step=step, beat_segment=min(DEMO_BEAT_SEGMENT, win))
    # The baseline holds every model's reference when the session is long enough for it.
    baseline, notes = demo_baseline(
        duration, reference_needs(bundles, window, own_windows=own_windows)
    )
    warnings += notes
    script, protocol = demo_script(duration, baseline)
    store = open_store(opts.store if opts.store is not None else default_store_path())
    try:
        config = SessionConfig(
            participant=opts.participant,
            session_id=opts.session_id,
            window=window,
            protocol=protocol,
            compute_interval=LIVE_COMPUTE_INTERVAL,
            flush_interval=LIVE_FLUSH_INTERVAL,
        )
        estimator = LiveEstimator.for_session(
            bundles, opts.participant, win, own_windows=own_windows
        )
        session = LiveSession(store, config, estimator)
        session.warnings.extend(warnings)
        if on_session is not None:
            on_session(session)
        async with VirtualRadio() as radio:
            peripherals = make_emulated(names, script=script, seed=opts.seed)
            targets = await radio.add_all(peripherals, keep_samples=False)
            supervisor = Supervisor(
                targets, on_block=session.submit, backoff_initial=0.1, **radio.supervisor_options()
            )
            phases = ", ".join(f"{p.name} {p.duration:g} s" for p in protocol.phases)
            status(
                f"demo: {len(peripherals)} emulated devices, {duration:g} s ({phases}); "
                f"windows {win:g} s every {step:g} s"
            )
            for note in notes:
                status(f"note: {note}")
            faults = asyncio.create_task(
                scripted_disconnects(peripherals, disconnects, session.streaming)
            )
            try:
                summary = await session.run(
                    supervisor, duration=duration, stop=stop, on_update=on_update
                )
            finally:
                if not faults.done():
                    faults.cancel()
            made: dict[str, int] = {}
            if faults.done() and not faults.cancelled():
                if faults.exception() is not None:  # a fault that failed is no lost data
                    logger.warning("scripted disconnects failed: %s", faults.exception())
                else:
                    made = faults.result()
            emulated: dict[str, Any] = {}
            for peripheral in peripherals:
                for kind in peripheral.kinds:
                    emulated[f"{peripheral.name}/{kind}"] = {
                        "sent": peripheral.sent_count(kind),
                        "lost": int(peripheral.lost_samples(kind)),
                    }
        summary["store"] = store_location(store)
        summary["emulated"] = emulated
        summary["devices"] = [p.name for p in peripherals]
        if disconnects:
            summary["scripted_disconnects"] = made
        summary["protocol"] = [{"name": p.name, "duration_s": p.duration} for p in protocol.phases]
        return summary
    finally:
        store.close()
