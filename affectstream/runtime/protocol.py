"""Session protocols: named phases with durations and instructions, read from a file.

A protocol file is JSON or TOML::

    # protocol.toml
    [[phases]]
    name = "baseline"
    duration = 240
    instruction = "Sit still, eyes open, breathe normally."

    [[phases]]
    name = "stress"
    duration = 300
    instruction = "Count backwards from 1022 in steps of 13."

    [[phases]]
    name = "sad-music"
    duration = 90
    instruction = "Listen to the music."
    calibration = true   # a valence calibration block: a SAM self-report follows it

The runtime writes one ``events`` point (``kind="phase"``, ``calibration=1`` on calibration
blocks) at the start of every phase and uses the first phase called ``baseline`` as the
participant's reference period. Calibration blocks feed the personal valence model
(:mod:`affectstream.runtime.calibration`).
"""

from __future__ import annotations

import json
import logging
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from affectstream.errors import ConfigError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProtocolPhase:
    """One phase of a session protocol.

    Parameters
    ----------
    name : str
        Phase label, e.g. ``"baseline"``.
    duration : float
        Seconds (> 0).
    instruction : str
        What the participant is asked to do (shown live and stored with the phase event).
    calibration : bool
        A valence calibration block: the participant rates it (SAM) when it ends.
    """

    name: str
    duration: float
    instruction: str = ""
    calibration: bool = False

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise ConfigError(f"A protocol phase needs a non-empty name, got {self.name!r}.")
        if not isinstance(self.duration, int | float) or not self.duration > 0:
            raise ConfigError(
                f"Protocol phase {self.name!r}: duration must be a number of seconds > 0, "
                f"got {self.duration!r}."
            )


@dataclass(frozen=True)
class StudyProtocol:
    """An ordered list of phases.

    Parameters
    ----------
    phases : sequence of ProtocolPhase
        The phases, in order.
    """

    phases: tuple[ProtocolPhase, ...]

    def __init__(self, phases: Sequence[ProtocolPhase]) -> None:
        if not phases:
            raise ConfigError("A protocol needs at least one phase.")
        object.__setattr__(self, "phases", tuple(phases))

    @property
    def duration(self) -> float:
        """Total length in seconds."""
        return float(sum(p.duration for p in self.phases))

    def starts(self) -> list[float]:
        """Start of every phase in seconds from the session start.

        Returns
        -------
        list of float
        """
        out, t = [], 0.0
        for phase in self.phases:
            out.append(t)
            t += phase.duration
        return out

    def baseline_end(self) -> float | None:
        """End (seconds from the start) of the first phase named ``baseline``, or None.

        Returns
        -------
        float or None
        """
        for start, phase in zip(self.starts(), self.phases, strict=True):
            if phase.name.lower() == "baseline":
                return start + phase.duration
        return None

    def phase_at(self, elapsed: float) -> ProtocolPhase | None:
        """The phase running ``elapsed`` seconds after the start (None after the end).

        Parameters
        ----------
        elapsed : float
            Seconds since the session start.

        Returns
        -------
        ProtocolPhase or None
        """
        for start, phase in zip(self.starts(), self.phases, strict=True):
            if start <= elapsed < start + phase.duration:
                return phase
        return None


def protocol_from_dict(data: Any, *, source: str = "protocol") -> StudyProtocol:
    """Build a :class:`StudyProtocol` from ``{"phases": [{"name", "duration", "instruction"...}]}``.

    Parameters
    ----------
    data : dict
        Parsed file contents.
    source : str
        Where it came from, shown in error messages.

    Returns
    -------
    StudyProtocol
    """
    if not isinstance(data, dict) or not isinstance(data.get("phases"), list):
        raise ConfigError(
            f"{source}: expected a 'phases' list of {{name, duration, instruction}} entries."
        )
    phases = []
    for i, entry in enumerate(data["phases"]):
        if not isinstance(entry, dict):
            raise ConfigError(f"{source}: phase {i} must be a table/object, got {entry!r}.")
        unknown = sorted(set(entry) - {"name", "duration", "instruction", "calibration"})
        if unknown:
            raise ConfigError(
                f"{source}: phase {i} has unknown keys {unknown}; allowed are name, duration, "
                "instruction, calibration."
            )
        if not isinstance(entry.get("calibration", False), bool):
            raise ConfigError(f"{source}: phase {i}: calibration must be true or false.")
        phases.append(
            ProtocolPhase(
                name=str(entry.get("name", "")),
                duration=entry.get("duration"),  # type: ignore[arg-type]  # checked in the class
                instruction=str(entry.get("instruction", "")),
                calibration=bool(entry.get("calibration", False)),
            )
        )
    return StudyProtocol(phases)


def load_protocol(path: str | Path) -> StudyProtocol:
    """Read a protocol file (``.json`` or ``.toml``).

    Parameters
    ----------
    path : str or Path
        The file.

    Returns
    -------
    StudyProtocol

    Raises
    ------
    ConfigError
        If the file cannot be read or does not describe phases.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"Cannot read protocol file {str(file)!r}: {exc}.") from None
    try:
        if file.suffix.lower() == ".toml":
            data: Any = tomllib.loads(text)
        else:
            data = json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(
            f"Protocol file {str(file)!r} is not valid {file.suffix.lstrip('.') or 'JSON'}: "
            f"{exc}. Use JSON or TOML (.toml) with a 'phases' list."
        ) from None
    return protocol_from_dict(data, source=str(file))
