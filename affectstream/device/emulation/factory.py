"""Build the emulated devices named on the command line (``--emulate hr,polar,eda,muse``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from affectstream.device.emulation.eda import EdaBand
from affectstream.device.emulation.ganglion import Ganglion
from affectstream.device.emulation.heart_rate import HeartRateStrap
from affectstream.device.emulation.muse import MuseHeadset
from affectstream.device.emulation.peripheral import EmulatedPeripheral
from affectstream.device.emulation.polar import PolarH10
from affectstream.device.emulation.script import AffectScript
from affectstream.errors import ConfigError

_FACTORIES: dict[str, Callable[..., EmulatedPeripheral]] = {
    "hr": lambda tag, **kw: HeartRateStrap(f"HRM-Pro {tag}", **kw),
    "polar": lambda tag, **kw: PolarH10(f"Polar H10 5A3B{tag}", **kw),
    "eda": lambda tag, **kw: EdaBand(f"AS-EDA-{tag}", **kw),
    "muse": lambda tag, **kw: MuseHeadset(f"Muse-{tag}", **kw),
    "ganglion": lambda tag, **kw: Ganglion(f"Ganglion-{tag.lower()}", **kw),
}

#: Profiles :func:`make_emulated` can build.
EMULATED_PROFILES = tuple(_FACTORIES)
#: What ``"all"`` expands to: the four wearables of a typical session (the Ganglion, an
#: alternative EEG headset, is left out; name it explicitly).
ALL_PROFILES = ("hr", "polar", "eda", "muse")


def make_emulated(
    kinds: Sequence[str] | str,
    *,
    script: AffectScript | None = None,
    speed: float = 1.0,
    seed: int = 0,
    **options: Any,
) -> list[EmulatedPeripheral]:
    """Create emulated peripherals by profile name.

    Parameters
    ----------
    kinds : sequence of str or str
        Profile names (``"hr"``, ``"polar"``, ``"eda"``, ``"muse"``, ``"ganglion"``), a
        comma-separated string of them, or ``"all"`` (hr, polar, eda, muse). A name may
        repeat to get several devices.
    script : AffectScript, optional
        Shared arousal/valence script (the same person wears everything);
        :meth:`AffectScript.default` when omitted.
    speed : float
        Device clocks run ``speed`` times real time.
    seed : int
        Base seed; device ``i`` uses ``seed + i``.
    **options
        Passed to every peripheral (e.g. ``drift_ppm``).

    Returns
    -------
    list of EmulatedPeripheral
        Not yet on a radio: ``await radio.add(p)`` each.
    """
    names = [k.strip() for k in kinds.split(",")] if isinstance(kinds, str) else list(kinds)
    if "all" in names:
        names = [n for n in names if n != "all"] + list(ALL_PROFILES)
    if not names:
        raise ConfigError(
            f"make_emulated needs at least one profile; choose from {list(EMULATED_PROFILES)} "
            "or 'all'."
        )
    shared = script if script is not None else AffectScript.default()
    devices: list[EmulatedPeripheral] = []
    for i, name in enumerate(names):
        factory = _FACTORIES.get(name)
        if factory is None:
            raise ConfigError(
                f"Unknown emulated profile {name!r}; choose from {list(EMULATED_PROFILES)} "
                "or 'all'."
            )
        tag = f"{(seed + i) & 0xFFFF:04X}"
        devices.append(factory(tag, script=shared, speed=speed, seed=seed + i, **options))
    return devices
