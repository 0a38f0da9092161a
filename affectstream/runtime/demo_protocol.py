"""The demo's protocol: baseline, stress and recovery, with a baseline long enough for every
model's reference when the session allows it.

The emulated physiology (:class:`~affectstream.device.emulation.AffectScript`) and the
session's phases (:class:`~affectstream.runtime.protocol.StudyProtocol`) come from the same
lengths. ``stress-wrist`` (60-s windows every 5 s, ``baseline_z``) needs two of its windows
inside the baseline (:data:`~affectstream.runtime.estimator.MIN_REFERENCE_WINDOWS`): 65 s of
data, 70 s with the devices' start (:data:`DEMO_LEAD_IN`). What each model needs comes from
:mod:`affectstream.runtime.reference`, as does a session's default reference period.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from affectstream.device.emulation import AffectScript, Phase
from affectstream.errors import ConfigError
from affectstream.runtime.estimator import MIN_REFERENCE_WINDOWS
from affectstream.runtime.protocol import ProtocolPhase, StudyProtocol
from affectstream.runtime.reference import LEAD_IN, ReferenceNeed, reference_needs

#: The devices' start-up allowance in the demo's baseline (:data:`reference.LEAD_IN`).
DEMO_LEAD_IN = LEAD_IN

__all__ = [
    "BASELINE_SHARE",
    "DEMO_LEAD_IN",
    "ReferenceNeed",
    "demo_baseline",
    "demo_script",
    "reference_needs",
]

#: Share of the session the baseline takes at least (stress and recovery split the rest).
BASELINE_SHARE = 0.4

_INSTRUCTIONS = {
    "baseline": "Sit still and breathe normally.",
    "stress": "Mental arithmetic under time pressure (scripted high arousal, low valence).",
    "recovery": "Relax (scripted low arousal, pleasant).",
}


def demo_baseline(duration: float, needs: Sequence[ReferenceNeed]) -> tuple[float, list[str]]:
    """The baseline phase's length, and a note for each model it is too short for.

    At least :data:`BASELINE_SHARE` of the session; longer when a model's reference needs it
    and the session still leaves one whole window of that model after the baseline (so the
    model sees the task, not only the baseline's tail): the wrist model's 60-s windows need a
    70-s baseline, so sessions of 130 s or more.

    Parameters
    ----------
    duration : float
        Session length (s).
    needs : sequence of ReferenceNeed
        From :func:`reference_needs`.

    Returns
    -------
    baseline : float
        Seconds.
    notes : list of str
        For people: which models will give no estimate, and the duration that would fit them.
    """
    baseline = BASELINE_SHARE * duration
    for need in sorted(needs, key=lambda n: n.seconds):
        if need.seconds > baseline and need.min_duration <= duration + 1e-9:
            baseline = need.seconds
    notes = [
        f"{need.name} needs a {need.seconds:g}-s baseline ({MIN_REFERENCE_WINDOWS} of its "
        f"{need.window:g}-s windows) and {need.window:g} s after it; this {duration:g}-s "
        f"demo's baseline is {baseline:g} s, so it gives no estimate (--duration "
        f"{math.ceil(need.min_duration):d} or more lets it join)"
        for need in needs
        if need.seconds > baseline + 1e-9
    ]
    return baseline, notes


def demo_script(
    duration: float, baseline: float | None = None
) -> tuple[AffectScript, StudyProtocol]:
    """Baseline, stress and recovery of ``duration`` seconds.

    Parameters
    ----------
    duration : float
        Session length in seconds.
    baseline : float, optional
        Baseline length (s; :func:`demo_baseline`); default :data:`BASELINE_SHARE` of the
        session. Stress and recovery split the rest equally.

    Returns
    -------
    script : AffectScript
        Drives the emulated physiology.
    protocol : StudyProtocol
        The same phases, written as events and used as the reference period.
    """
    first = BASELINE_SHARE * duration if baseline is None else float(baseline)
    if not 0 < first < duration:
        raise ConfigError(
            f"The demo's baseline ({first:g} s) must be shorter than the session ({duration:g} s)."
        )
    rest = (duration - first) / 2
    lengths = {"baseline": first, "stress": rest, "recovery": rest}
    levels = {"baseline": (0.2, 0.55), "stress": (0.9, 0.2), "recovery": (0.3, 0.75)}
    phases = [Phase(name, lengths[name], *levels[name]) for name in lengths]
    script = AffectScript(phases, ramp=min(5.0, 0.05 * duration), loop=False)
    protocol = StudyProtocol(
        [ProtocolPhase(name, lengths[name], _INSTRUCTIONS[name]) for name in lengths]
    )
    return script, protocol
