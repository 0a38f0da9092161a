"""How long the participant's reference period is: what each model needs, and a session's default.

A ``baseline_z`` bundle needs :data:`~affectstream.runtime.estimator.MIN_REFERENCE_WINDOWS`
of its windows inside the reference period (:func:`reference_seconds`), and was trained
against a rest of its own length (``normalization.baseline_seconds``). A protocol's
``baseline`` phase sets the period when there is one (the demo plans it with
:func:`reference_needs`); without one, :func:`default_reference` makes it long enough for
every model of the session, not only the first: ``stress-wrist`` (60-s windows) beside
``eeg-workload`` (10-s windows, a 60-s setting) used to get 60 s and never estimated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from affectstream.models.bundle import ModelBundle
from affectstream.runtime.combine import bundle_name
from affectstream.runtime.estimator import reference_seconds
from affectstream.runtime.multiwindow import bundle_window, trained_window
from affectstream.signal import WindowConfig

#: Seconds the devices' first samples may come after the session (or protocol) starts (the
#: window grid starts at the first sample): added to what a model's reference needs.
LEAD_IN = 5.0


@dataclass(frozen=True)
class ReferenceNeed:
    """How long a baseline one model's reference needs, and its window.

    Parameters
    ----------
    name : str
        Bundle name.
    seconds : float
        Baseline it needs from the start (its reference windows plus :data:`LEAD_IN`).
    window : float
        Its window length (s).
    """

    name: str
    seconds: float
    window: float

    @property
    def min_duration(self) -> float:
        """Shortest session whose baseline holds this reference, leaving one whole window after."""
        return self.seconds + self.window


def reference_needs(
    bundles: Sequence[ModelBundle],
    window: WindowConfig | None = None,
    *,
    own_windows: bool | None = None,
) -> list[ReferenceNeed]:
    """What baseline each bundle's reference needs (:func:`reference_seconds`).

    Each need is counted on the windows the bundle reads in the session
    (:func:`~affectstream.runtime.multiwindow.bundle_window`): a bundle on the session's
    windows at the session's step, not the step it was trained with.

    Parameters
    ----------
    bundles : sequence of ModelBundle
    window : WindowConfig, optional
        The session's windows; default each bundle on the windows it was trained on.
    own_windows : bool
        With ``window``: each bundle trained on another length reads its own windows;
        False: every bundle runs on ``window`` (:func:`~affectstream.runtime.multiwindow.
        reads_own_windows`). Required with ``window``: the session's rule decides it.

    Returns
    -------
    list of ReferenceNeed
        Bundles that need a baseline, shortest need first.
    """
    if window is not None and own_windows is None:
        raise TypeError("reference_needs: own_windows is required with a window")
    needs = []
    for bundle in bundles:
        reads = (
            trained_window(bundle)
            if window is None
            else bundle_window(bundle, window, own_windows=bool(own_windows))
        )
        seconds = reference_seconds(bundle, reads)
        if seconds > 0:
            length = reads.window
            needs.append(ReferenceNeed(bundle_name(bundle), seconds + LEAD_IN, length))
    return sorted(needs, key=lambda n: n.seconds)


def default_reference(
    bundles: Sequence[ModelBundle],
    window: WindowConfig | None = None,
    *,
    own_windows: bool | None = None,
) -> tuple[float, str] | None:
    """The reference period of a session without a protocol: long enough for every model.

    Each bundle asks for the longer of its own setting (the rest it was trained against,
    ``normalization.baseline_seconds``) and what its reference needs
    (:func:`reference_needs`); the session takes the longest ask, so no model's reference
    is cut short by another's (a longer reference only adds windows to the mean and spread;
    ``stress-wrist`` scores better the longer it is, docs/models.md).

    Parameters
    ----------
    bundles : sequence of ModelBundle
        The session's bundles.
    window : WindowConfig, optional
        The session's windows; default each bundle on the windows it was trained on.
    own_windows : bool
        As :func:`reference_needs` (required with ``window``).

    Returns
    -------
    tuple of (float, str) or None
        Seconds from the start and, in words, which model asks for them and why; None when
        no bundle asks for a reference period.
    """
    found = reference_needs(bundles, window, own_windows=own_windows)
    needs = {need.name: need.seconds for need in found}
    asks: list[tuple[float, str]] = []
    for bundle in bundles:
        name = bundle_name(bundle)
        own = float(bundle.meta.get("normalization", {}).get("baseline_seconds") or 0.0)
        need = needs.get(name, 0.0)
        if own >= need and own > 0:
            asks.append((own, f"{name}'s own {own:g}-s reference setting"))
        elif need > 0:
            asks.append((need, f"{name}'s reference needs {need:g} s"))
    if not asks:
        return None
    seconds, why = max(asks, key=lambda a: a[0])
    if len(bundles) > 1:
        why += ", the longest of the session's models"
    return seconds, why
