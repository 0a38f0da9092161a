"""Read recording files into :class:`~affectstream.types.SampleBlock` objects.

:func:`load_recording` (streams and events) and :func:`read_recording` (streams) pick the
reader by file extension and, for text files, by the layout the first lines show: the
project's CSV (:func:`read_csv`), muselsl, Mind Monitor, OpenBCI GUI and BrainFlow files
(:mod:`affectstream.io.layouts`); EDF/BDF (:func:`read_edf`, through MNE); XDF
(:func:`read_xdf`, through pyxdf, for Lab Streaming Layer users); Empatica E4 export folders
and zips (:mod:`affectstream.io.e4`). Every reader converts to the canonical units, refuses
``inf`` and turns missing samples into NaN rows plus gaps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict, Unpack

from affectstream.errors import ConfigError
from affectstream.io._grid import (
    MAX_GAP_SECONDS,
    NOMINAL_RATES,
    estimate_sfreq,
    regular_block,
    regular_positions,
)
from affectstream.io.bids import is_bids_session, read_bids_session
from affectstream.io.csv import parse_column, read_csv
from affectstream.io.e4 import is_e4_folder, read_e4
from affectstream.io.edf import read_edf, read_edf_with_events
from affectstream.io.layouts import KNOWN_LAYOUTS, known_layouts, read_layout, sniff_layout
from affectstream.io.xdf import read_xdf, read_xdf_with_events
from affectstream.types import SampleBlock

__all__ = [
    "KNOWN_LAYOUTS",
    "MAX_GAP_SECONDS",
    "NOMINAL_RATES",
    "RECORDING_SUFFIXES",
    "ReadOptions",
    "RecordedEvent",
    "Recording",
    "estimate_sfreq",
    "load_recording",
    "parse_column",
    "read_csv",
    "read_edf",
    "read_recording",
    "read_xdf",
    "regular_block",
    "regular_positions",
]

#: File extensions :func:`read_recording` understands (and folders: an E4 export).
RECORDING_SUFFIXES = (".csv", ".tsv", ".txt", ".edf", ".bdf", ".xdf", ".xdfz", ".zip")


@dataclass(frozen=True)
class RecordedEvent:
    """A marker or phase a recording file holds.

    Parameters
    ----------
    t : float
        Time, seconds (on the clock of the recording's samples).
    label : str
        What happened (``"stress start"``, ``"tag 2"``).
    kind : str
        ``"marker"`` or ``"phase"``.
    detail : str
        Free text.
    """

    t: float
    label: str
    kind: str = "marker"
    detail: str = ""


@dataclass(frozen=True)
class Recording:
    """The streams and events of a recording file.

    Parameters
    ----------
    blocks : list of SampleBlock
        One per stream.
    events : list of RecordedEvent
        Markers and phases, in time order.
    layout : str
        The layout it was read as (a key of :data:`KNOWN_LAYOUTS`, or ``"edf"``, ``"xdf"``).
    """

    blocks: list[SampleBlock]
    events: list[RecordedEvent] = field(default_factory=list)
    layout: str = "affectstream"


class ReadOptions(TypedDict, total=False):
    """Keyword options of :func:`load_recording` (defaults: those of :func:`read_csv`)."""

    sfreq: float | None
    t0: float
    units: Mapping[str, str] | None
    modalities: Sequence[str] | None
    skip_unknown: bool
    max_gap: float


def load_recording(path: str | Path, **options: Unpack[ReadOptions]) -> Recording:
    """Read a recording file (or E4 export folder) with its markers and phases.

    The reader is chosen by the extension; a text file's layout is recognised from its
    first lines (:func:`affectstream.io.layouts.sniff_layout`): muselsl, Mind Monitor,
    OpenBCI GUI, BrainFlow or the project's own CSV layout. A BIDS session folder
    (``sub-*/ses-*``, as ``affectstream export --format bids`` writes it) gives its EEG,
    physio and RR/HR files with its markers and phases (a ``*_physio.tsv.gz`` file: its
    whole session). Another folder (or ``.zip``) is read as an Empatica E4 export.

    Parameters
    ----------
    path : str or Path
        The file or folder.
    **options
        :class:`ReadOptions`. ``sfreq``, ``t0``, ``units``, ``skip_unknown``: the project's
        CSV layout only; see :func:`read_csv`. ``modalities``: keep only these modalities.
        ``max_gap`` (default :data:`MAX_GAP_SECONDS`): the longest gap between timestamps
        (s) filled with NaN rows; a longer one is refused with the sample where it happens
        (usually one wrong timestamp).

    Returns
    -------
    Recording
    """
    path = Path(path)
    suffix = path.suffix.lower()
    modalities = options.get("modalities")
    max_gap = options.get("max_gap", MAX_GAP_SECONDS)
    if is_bids_session(path):
        blocks, annotations = read_bids_session(path)
        events = [RecordedEvent(t, label, kind) for t, kind, label in annotations]
        return Recording(_keep(blocks, modalities), events, "bids")
    if path.name.endswith("_physio.tsv.gz") and path.is_file():
        return load_recording(path.parent.parent, modalities=modalities, max_gap=max_gap)
    if path.is_dir() or suffix == ".zip":
        if path.is_dir() and not is_e4_folder(path):
            raise ConfigError(
                f"{str(path)!r} is a folder but no Empatica E4 export (no EDA.csv, BVP.csv, "
                f"HR.csv, TEMP.csv, ACC.csv, IBI.csv in it); give a recording file. Known "
                f"layouts: {known_layouts()}."
            )
        if not path.exists():
            raise ConfigError(f"Recording file {str(path)!r} does not exist.")
        blocks, tags = read_e4(path)
        events = [RecordedEvent(float(t), f"tag {i + 1}") for i, t in enumerate(tags)]
        return Recording(_keep(blocks, modalities), events, "empatica-e4")
    if suffix in (".csv", ".tsv", ".txt"):
        layout = sniff_layout(path)
        if layout == "affectstream":
            blocks = read_csv(path, **options)
            return Recording(blocks, [], layout)
        blocks, markers = read_layout(path, layout, max_gap=max_gap)
        events = [RecordedEvent(t, label) for t, label in markers]
        return Recording(_keep(blocks, modalities), events, layout)
    if suffix in (".edf", ".bdf"):
        blocks, annotations = read_edf_with_events(path, modalities=modalities)
        events = [RecordedEvent(t, label, kind) for t, kind, label in annotations]
        return Recording(blocks, events, "edf")
    if suffix in (".xdf", ".xdfz"):
        blocks, markers = read_xdf_with_events(path, modalities=modalities, max_gap=max_gap)
        events = [RecordedEvent(t, label) for t, label in markers]
        return Recording(blocks, events, "xdf")
    raise ConfigError(
        f"Cannot tell the format of {str(path)!r} from its extension {suffix!r}; "
        f"use one of {', '.join(RECORDING_SUFFIXES)} or an E4 export folder."
    )


def _keep(blocks: Sequence[SampleBlock], modalities: Sequence[str] | None) -> list[SampleBlock]:
    if modalities is None:
        return list(blocks)
    kept = [b for b in blocks if b.modality in modalities]
    if not kept:
        raise ConfigError(
            f"No stream of modalities {list(modalities)} (the recording has "
            f"{sorted({b.modality for b in blocks})})."
        )
    return kept


def read_recording(path: str | Path, **options: Unpack[ReadOptions]) -> list[SampleBlock]:
    """Read the streams of a recording; :func:`load_recording` without the events.

    Parameters
    ----------
    path : str or Path
        The file or E4 export folder.
    **options
        See :func:`load_recording`.

    Returns
    -------
    list of SampleBlock
    """
    return load_recording(path, **options).blocks
