"""Read a BIDS session folder (as ``affectstream export --format bids`` writes it) back.

A session folder ``sub-<p>/ses-<s>/`` holds the EEG as EDF (``eeg/*_eeg.edf``), the other
regularly sampled physiology as ``*_recording-<modality>_physio.tsv.gz`` with a JSON sidecar
(``Columns``, ``SamplingFrequency``, ``StartTime``), RR intervals and heart rate as
``*_acq-<modality>_events.tsv``, and markers, phases and gaps in ``beh/*_events.tsv``.
Onsets and start times count from a reference time; the events files also hold each
event's absolute ``time_ns``, which gives the reference back (else the ``acq_time`` of the
session's ``scans.tsv``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from affectstream.errors import ConfigError
from affectstream.io._grid import regular_block
from affectstream.io.edf import read_edf_with_events
from affectstream.io.units import check_finite
from affectstream.types import UNITS, SampleBlock

_PHYSIO = re.compile(r"_recording-(?P<modality>[a-z]+)_physio\.tsv\.gz$")
_EVENT_STREAM = re.compile(r"_acq-(?P<modality>[a-z]+)_events\.tsv$")


def is_bids_session(path: Path) -> bool:
    """Whether ``path`` is a BIDS session folder (``ses-*`` or ``sub-*`` holding data)."""
    return path.is_dir() and path.name.startswith(("ses-", "sub-")) and any(path.rglob("*.tsv*"))


def _reference_time(folder: Path) -> float:
    """Seconds since the epoch that onsets and ``StartTime`` count from."""
    for events in sorted(folder.rglob("*_events.tsv")):
        frame = pd.read_csv(events, sep="\t", na_values=["n/a"])
        if "time_ns" in frame and "onset" in frame and len(frame):
            return float(frame["time_ns"].iloc[0]) / 1e9 - float(frame["onset"].iloc[0])
    for scans in sorted(folder.rglob("*_scans.tsv")):
        frame = pd.read_csv(scans, sep="\t")
        if "acq_time" in frame and len(frame):
            stamp = pd.Timestamp(str(frame["acq_time"].iloc[0]))
            stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp
            return float((stamp - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1))
    raise ConfigError(
        f"{str(folder)!r}: no events file with time_ns and no scans.tsv with acq_time: the "
        "start time of the recordings is unknown."
    )


def _physio(path: Path, modality: str, t_ref: float) -> SampleBlock:
    sidecar = path.with_name(path.name.removesuffix(".tsv.gz") + ".json")
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
        columns = [str(c) for c in meta["Columns"]]
        sfreq = float(meta["SamplingFrequency"])
        start = float(meta.get("StartTime", 0.0))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"{str(path)!r}: its sidecar {sidecar.name} is missing or lacks Columns / "
            f"SamplingFrequency ({exc})."
        ) from None
    frame = pd.read_csv(path, sep="\t", header=None, names=columns, na_values=["n/a"])
    values = frame.to_numpy(np.float64)
    check_finite(values, repr(str(path)))
    present = ~np.all(np.isnan(values), axis=1)
    t = t_ref + start + np.arange(len(frame)) / sfreq
    stream = str(meta.get("affectstream", {}).get("stream", f"{path.name}/{modality}"))
    return regular_block(
        stream=stream,
        modality=modality,
        channels=tuple(columns),
        unit=UNITS.get(modality, ""),
        t=t[present],
        values=values[present],
        sfreq=sfreq,
        device=str(meta.get("Manufacturer", "")),
    )


def _event_stream(path: Path, modality: str, t_ref: float) -> SampleBlock:
    frame = pd.read_csv(path, sep="\t", na_values=["n/a"])
    sidecar = path.with_suffix(".json")
    meta = json.loads(sidecar.read_text(encoding="utf-8")) if sidecar.is_file() else {}
    stream = str(meta.get("affectstream", {}).get("stream", f"{path.name}/{modality}"))
    values = frame["value"].to_numpy(np.float64)[:, None]
    check_finite(values, repr(str(path)))
    return SampleBlock(
        stream=stream,
        modality=modality,
        channels=(modality,),
        unit=UNITS.get(modality, ""),
        sfreq=None,
        t=t_ref + frame["onset"].to_numpy(np.float64),
        values=values,
        index=np.arange(len(frame), dtype=np.int64),
    )


def read_bids_session(folder: Path) -> tuple[list[SampleBlock], list[tuple[float, str, str]]]:
    """Streams and events of a BIDS session folder.

    Parameters
    ----------
    folder : Path
        ``sub-<p>/ses-<s>`` (or ``sub-<p>`` without sessions).

    Returns
    -------
    blocks : list of SampleBlock
    events : list of (float, str, str)
        ``(time, kind, label)`` of the markers and phases in ``beh/*_events.tsv``.
    """
    t_ref = _reference_time(folder)
    blocks: list[SampleBlock] = []
    for edf in sorted(folder.rglob("*_eeg.edf")) + sorted(folder.rglob("*_eeg.bdf")):
        blocks.extend(read_edf_with_events(edf)[0])
    events: list[tuple[float, str, str]] = []
    for path in sorted(folder.rglob("*.tsv*")):
        physio = _PHYSIO.search(path.name)
        stream = _EVENT_STREAM.search(path.name)
        if physio is not None and physio["modality"] in UNITS:
            blocks.append(_physio(path, physio["modality"], t_ref))
        elif stream is not None and stream["modality"] in UNITS:
            blocks.append(_event_stream(path, stream["modality"], t_ref))
        elif path.parent.name == "beh" and path.name.endswith("_events.tsv"):
            frame = pd.read_csv(path, sep="\t", na_values=["n/a"], keep_default_na=False)
            for onset, kind, label in zip(
                frame["onset"], frame["trial_type"], frame["value"], strict=True
            ):
                if str(kind) in ("marker", "phase", "self_report"):
                    events.append((t_ref + float(onset), str(kind), str(label)))
    if not blocks:
        raise ConfigError(f"{str(folder)!r} holds no EEG, physio or RR/HR events file.")
    return blocks, sorted(events)
