"""BIDS export of a session: EEG through mne-bids, physiology as ``*_physio.tsv.gz``.

Layout written under the BIDS root (docs/export.md, "BIDS")::

    dataset_description.json  participants.tsv  README
    sub-<p>/ses-<s>/eeg/   *_eeg.edf + sidecars, channels.tsv, events.tsv (mne-bids)
                           *_recording-<modality>_physio.tsv.gz + .json (other signals)
    sub-<p>/ses-<s>/beh/   *_events.tsv (markers, phases, gaps of every stream)
                           *_acq-<modality>_events.tsv (RR intervals, heart rate: one row
                           per beat or reading)
    derivatives/affectstream/sub-<p>/ses-<s>/beh/*_desc-<features|quality|affect>_timeseries.tsv

Without EEG, physiology goes to ``beh/``. Every onset and ``StartTime`` is in seconds from
the reference time: the first sample of the EEG file (a whole second, see the EDF notes),
or the whole second before the session's first point when there is no EEG.
"""

from __future__ import annotations

import json
import logging
import math
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from affectstream._version import __version__
from affectstream.errors import ConfigError
from affectstream.export.edf import ACQ_SKIP, block_to_raw, write_edf_file
from affectstream.export.session import (
    Progress,
    StoredSession,
    _no_progress,
    field_columns,
    raw_blocks,
)
from affectstream.export.staging import commit, existing, replace_file, staged
from affectstream.export.units import column_unit
from affectstream.signal import WindowConfig
from affectstream.store import GAP_EVENT_KIND, TAG_KEYS
from affectstream.types import SampleBlock

logger = logging.getLogger(__name__)

#: Supported headsets by channel layout: (manufacturer, reference electrode).
EEG_DEVICES: dict[tuple[str, ...], tuple[str, str]] = {
    ("TP9", "AF7", "AF8", "TP10"): ("InteraXon (Muse)", "Fpz"),
}
#: PowerLineFrequency of the EEG sidecar when the session did not record its own mains
#: frequency (sessions stored before they did): WindowConfig.line_freq's default.
LINE_FREQ_HZ = WindowConfig().line_freq

#: Task label of exported recordings.
TASK = "affectstream"
BIDS_VERSION = "1.9.0"


def bids_label(text: str, default: str) -> str:
    """A BIDS label (letters and digits only) from an id: ``"P-01"`` -> ``"P01"``.

    Parameters
    ----------
    text : str
    default : str
        Used when nothing is left.

    Returns
    -------
    str
    """
    return re.sub(r"[^A-Za-z0-9]", "", text) or default


def _write_json(path: Path, content: dict[str, Any]) -> None:
    path.write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _describe_columns(sidecar: Path, columns: dict[str, Any]) -> None:
    # The sidecar describes a table every export into this dataset shares: the first writes it.
    if not sidecar.exists():
        replace_file(sidecar, lambda path: _write_json(path, columns))


def _tsv(frame: pd.DataFrame, path: Path, *, header: bool = True) -> None:
    frame.to_csv(path, sep="\t", index=False, header=header, na_rep="n/a")


#: Column of participants.tsv and sessions.tsv with the id the store knows (labels are
#: letters and digits only, so two ids can share one; this column tells them apart).
SOURCE_ID = "affectstream_id"


def write_bids(
    data: StoredSession, root: Path, progress: Progress | None = None, *, force: bool = False
) -> list[Path]:
    """Write a session into a BIDS dataset at ``root`` (created or extended).

    The session is written into a staging folder and moved in when complete; dataset-level
    files (``participants.tsv``...) are merged, never replaced.

    Parameters
    ----------
    data : StoredSession
    root : Path
        BIDS root folder; other participants and sessions already there are kept.
    progress : callable, optional
        ``progress(stage, done, total)`` after each step.
    force : bool
        Replace this session's files if it was exported into ``root`` before.

    Returns
    -------
    list of Path
        The session's files (mne-bids sidecars included) and the dataset-level files.

    Raises
    ------
    ConfigError
        The session is already in ``root`` (without ``force``), another participant or
        session id gives the same BIDS label, or the folder cannot be written.
    """
    subject = bids_label(data.info.participant, "unknown")
    sessions_tsv = root / f"sub-{subject}" / f"sub-{subject}_sessions.tsv"
    with staged(root) as stage:
        _check_label(
            root / "participants.tsv", "participant_id", f"sub-{subject}",
            data.info.participant, "participant",
        )  # fmt: skip
        session = session_label(sessions_tsv, data.info.session)
        _write_session(data, stage, subject, session, progress or _no_progress)
        dataset_level = {
            p.relative_to(stage).as_posix() for p in stage.iterdir() if p.is_file()
        } | {"derivatives/affectstream/dataset_description.json"}
        clashes = existing(stage, root, keep=dataset_level)
        if clashes and not force:
            raise ConfigError(
                f"Session {data.info.session!r} is already in the BIDS dataset {root} "
                f"({clashes[0].relative_to(root)}); add --force to replace it."
            )
        derived_description = stage / "derivatives" / "affectstream" / "dataset_description.json"
        for path in dataset_level - {derived_description.relative_to(stage).as_posix()}:
            (stage / path).unlink()  # merged below instead
        commit(stage, root, keep=dataset_level)
        _write_dataset_files(root, subject, session, data)
    session_dir = root / f"sub-{subject}" / f"ses-{session}"
    derived = root / "derivatives" / "affectstream" / f"sub-{subject}" / f"ses-{session}"
    shared = [root / name for name in ("dataset_description.json", "participants.tsv", "README")]
    files = [p for folder in (session_dir, derived) for p in folder.rglob("*") if p.is_file()]
    return sorted(files) + [sessions_tsv] + [p for p in shared if p.is_file()]


def session_label(sessions_tsv: Path, session_id: str) -> str:
    """Short BIDS session label: the one this id already has, else the next number.

    Session ids are long (``P01-20261125T100000Z-ab12``); BIDS labels number them per
    participant (``ses-1``, ``ses-2``...) and ``sub-<p>_sessions.tsv`` maps each label to
    the affectstream id (``affectstream_id``) and its start (``acq_time``).

    Parameters
    ----------
    sessions_tsv : Path
        The participant's sessions file (may not exist yet).
    session_id : str

    Returns
    -------
    str
        The label without ``ses-``.
    """
    if not sessions_tsv.is_file():
        return "1"
    rows = pd.read_csv(sessions_tsv, sep="\t", dtype=str, keep_default_na=False)
    labels = [str(v).removeprefix("ses-") for v in rows.get("session_id", [])]
    if SOURCE_ID in rows:
        for label, source in zip(labels, rows[SOURCE_ID], strict=True):
            if source == session_id:
                return label
    numbers = [int(label) for label in labels if label.isdigit()]
    return str(max(numbers, default=0) + 1)


def _check_label(table: Path, column: str, label: str, source: str, what: str) -> None:
    """Refuse a label that a different id already holds in ``table``."""
    if not table.is_file():
        return
    rows = pd.read_csv(table, sep="\t", dtype=str, keep_default_na=False)
    if column not in rows or SOURCE_ID not in rows:
        return
    held = rows.loc[rows[column] == label, SOURCE_ID]
    others = sorted({h for h in held if h not in ("", "n/a", source)})
    if others:
        raise ConfigError(
            f"The {what} ids {others[0]!r} and {source!r} both become the BIDS label "
            f"{label!r} in {table.parent}; export {source!r} into another --out (BIDS labels "
            "are letters and digits only, so they cannot be told apart in one dataset)."
        )


def _write_session(
    data: StoredSession, root: Path, subject: str, session: str, report: Progress
) -> None:
    """The session's own files under ``root`` (a staging folder)."""
    prefix = f"sub-{subject}_ses-{session}_task-{TASK}"
    session_dir = root / f"sub-{subject}" / f"ses-{session}"
    blocks = raw_blocks(data)
    eeg = [b for b in blocks if b.modality == "eeg" and b.sfreq is not None]
    physio = [b for b in blocks if b.sfreq is not None and not (eeg and b is eeg[0])]
    discrete = [b for b in blocks if b.sfreq is None]
    steps = 3 + len(physio) + len(discrete)
    done = 0

    if eeg:
        reference = _write_eeg(data, eeg[0], root, subject, session)
        physio_dir = session_dir / "eeg"
    else:
        reference = float(math.floor(data.info.start_ns / 1e9))
        physio_dir = session_dir / "beh"
    done += 1
    report("writing BIDS", done, steps)
    physio_dir.mkdir(parents=True, exist_ok=True)
    used: dict[str, int] = {}
    for block in physio:
        used[block.modality] = used.get(block.modality, 0) + 1
        label = block.modality + (str(used[block.modality]) if used[block.modality] > 1 else "")
        _write_physio(block, physio_dir / f"{prefix}_recording-{label}_physio", reference)
        done += 1
        report("writing BIDS", done, steps)
    beh = session_dir / "beh"
    beh.mkdir(parents=True, exist_ok=True)
    rates = {b.stream: b.sfreq for b in blocks}
    _write_events(data, beh / f"{prefix}_events.tsv", reference, rates)
    for block in discrete:
        _write_discrete(block, beh / f"{prefix}_acq-{bids_label(block.modality, 'x')}", reference)
        done += 1
        report("writing BIDS", done, steps)
    _write_derivatives(data, root, subject, session, prefix, reference)
    done += 1
    report("writing BIDS", done, steps)
    done += 1
    report("writing BIDS", done, steps)


def _write_eeg(
    data: StoredSession, block: SampleBlock, root: Path, subject: str, session: str
) -> float:
    """EEG through an EDF file and mne-bids; returns the file's start (reference) time."""
    import mne
    from mne_bids import BIDSPath, write_raw_bids

    raw, start = block_to_raw(block, data.events(), data.info.participant)
    with tempfile.TemporaryDirectory() as folder:
        edf = write_edf_file(raw, Path(folder) / "eeg.edf", add_ch_type=False)
        written = mne.io.read_raw_edf(edf, verbose="error")
        # The EDF keeps its BAD_ACQ_SKIP spans and mne-bids reads them from it; listed in
        # events.tsv as well they would come back twice.
        keep = [i for i, a in enumerate(written.annotations) if a["description"] != ACQ_SKIP]
        written.set_annotations(written.annotations[keep])
        written.info["line_freq"] = float(data.settings().get("line_freq") or LINE_FREQ_HZ)
        bids_path = BIDSPath(subject=subject, session=session, task=TASK, datatype="eeg", root=root)
        write_raw_bids(written, bids_path, overwrite=True, verbose=False)
    sidecar = bids_path.copy().update(suffix="eeg", extension=".json").fpath
    content = json.loads(sidecar.read_text(encoding="utf-8"))
    manufacturer, reference = eeg_device(block.channels)
    content.update({"Manufacturer": manufacturer, "EEGReference": reference})
    _write_json(sidecar, content)
    return start


def eeg_device(channels: tuple[str, ...]) -> tuple[str, str]:
    """Manufacturer and reference electrode of an EEG stream, known by its channel layout.

    Parameters
    ----------
    channels : tuple of str

    Returns
    -------
    manufacturer, reference : str
        ``"n/a"`` when the layout is not one of a supported headset.
    """
    return EEG_DEVICES.get(tuple(c.upper() for c in channels), ("n/a", "n/a"))


def _write_physio(block: SampleBlock, stem: Path, reference: float) -> None:
    """``<stem>.tsv.gz`` (no header, n/a for missing samples) and ``<stem>.json``."""
    if block.sfreq is None:
        raise ConfigError(
            f"BIDS physio needs a regularly sampled stream; {block.stream!r} is an event stream."
        )
    columns = [f"{block.modality}_{c}" if c != block.modality else c for c in block.channels]
    frame = pd.DataFrame(block.values, columns=columns)
    frame.to_csv(
        stem.with_name(stem.name + ".tsv.gz"),
        sep="\t",
        index=False,
        header=False,
        na_rep="n/a",
        compression="gzip",
    )
    sidecar: dict[str, Any] = {
        "SamplingFrequency": block.sfreq,
        "StartTime": float(block.t[0]) - reference,
        "Columns": columns,
        "Manufacturer": block.device or "n/a",
        "affectstream": {"stream": block.stream, "gaps": len(block.gaps)},
    }
    for column in columns:
        sidecar[column] = {"Units": block.unit}
    _write_json(stem.with_name(stem.name + ".json"), sidecar)


def _write_events(
    data: StoredSession, path: Path, reference: float, rates: dict[str, float | None]
) -> None:
    """All session events (markers, phases, gaps) as a BIDS events file.

    A gap lasts its missing samples over its stream's rate; other events are instants.
    """
    events = data.events()
    duration = np.zeros(len(events))
    if {"n_samples", "stream"} <= set(events.columns):
        rate = events["stream"].map(lambda s: rates.get(str(s)) or np.nan).to_numpy(np.float64)
        missing = pd.to_numeric(events["n_samples"], errors="coerce").to_numpy(np.float64)
        is_gap = (events["kind"] == GAP_EVENT_KIND).to_numpy() & np.isfinite(missing / rate)
        duration[is_gap] = (missing / rate)[is_gap]
    frame = pd.DataFrame(
        {
            "onset": events["time_ns"].to_numpy(np.int64) / 1e9 - reference,
            "duration": duration,
            "trial_type": events["kind"].to_numpy(),
            "value": events["label"].to_numpy() if "label" in events else None,
            "stream": events["stream"].replace("", "n/a").to_numpy()
            if "stream" in events
            else None,
            "time_ns": events["time_ns"].to_numpy(np.int64),
        }
    )
    if "n_samples" in events:
        frame["n_samples"] = events["n_samples"].astype("Int64").to_numpy()
    _tsv(frame, path)
    _write_json(
        path.with_suffix(".json"),
        {
            "onset": {"Description": "Seconds from the reference time", "Units": "s"},
            "duration": {
                "Description": "Gaps: missing samples / the stream's rate; others 0",
                "Units": "s",
            },
            "trial_type": {"Description": "Event kind: marker, phase, gap..."},
            "value": {"Description": "Event label (marker text, phase name, gap reason)"},
            "stream": {"Description": "Stream the event belongs to (gaps)"},
            "time_ns": {"Description": "Event time, ns since the Unix epoch (UTC)", "Units": "ns"},
            "n_samples": {"Description": "Samples missing in a gap", "Units": "samples"},
        },
    )


def _write_discrete(block: SampleBlock, stem: Path, reference: float) -> None:
    """An event stream (RR intervals, heart rate) as an events file, one row per event."""
    frame = pd.DataFrame(
        {"onset": block.t - reference, "duration": 0.0, "trial_type": block.modality}
    )
    for i, channel in enumerate(block.channels):
        name = "value" if len(block.channels) == 1 else channel
        frame[name] = block.values[:, i]
    _tsv(frame, stem.with_name(stem.name + "_events.tsv"))
    _write_json(
        stem.with_name(stem.name + "_events.json"),
        {
            "onset": {"Description": "Seconds from the reference time", "Units": "s"},
            "value": {"Description": f"{block.modality} of the stream", "Units": block.unit},
            "affectstream": {"stream": block.stream},
        },
    )


def _write_derivatives(
    data: StoredSession, root: Path, subject: str, session: str, prefix: str, reference: float
) -> None:
    """Features, quality and estimates as derivative time series."""
    base = root / "derivatives" / "affectstream"
    folder = base / f"sub-{subject}" / f"ses-{session}" / "beh"
    for measurement in ("features", "quality", "affect"):
        frame = data.tables.get(measurement)
        if frame is None or not len(frame):
            continue
        folder.mkdir(parents=True, exist_ok=True)
        table = frame.copy()
        table.insert(0, "onset", table["time_ns"].to_numpy(np.int64) / 1e9 - reference)
        stem = folder / f"{prefix}_desc-{measurement}_timeseries"
        _tsv(table, stem.with_name(stem.name + ".tsv"))
        sidecar: dict[str, Any] = {
            "onset": {"Description": "Window end, seconds from the reference time", "Units": "s"},
            "time_ns": {
                "Description": "Window end, ns since the Unix epoch (UTC)",
                "Units": "ns",
            },
        }
        for tag in TAG_KEYS:
            if tag in table:
                sidecar[tag] = {"Description": f"{tag} tag in the affectstream store"}
        for name in field_columns(frame):
            entry = {"Description": f"{measurement} field {name} (affectstream docs/features.md)"}
            unit = column_unit(measurement, name)
            if unit is not None:
                entry["Units"] = unit
            sidecar.setdefault(name, entry)
        _write_json(stem.with_name(stem.name + ".json"), sidecar)
    description = base / "dataset_description.json"
    if folder.exists() and not description.exists():
        _write_json(
            description,
            {
                "Name": "affectstream features, signal quality and affect estimates",
                "BIDSVersion": BIDS_VERSION,
                "DatasetType": "derivative",
                "GeneratedBy": [{"Name": "affectstream", "Version": __version__}],
            },
        )


def _write_dataset_files(root: Path, subject: str, session: str, data: StoredSession) -> None:
    """dataset_description.json, participants.tsv, the subject's sessions.tsv and README.

    Existing files are merged (rows added, never removed) through a temporary name.
    """
    description = root / "dataset_description.json"
    content: dict[str, Any] = {}
    if description.exists():
        content = json.loads(description.read_text(encoding="utf-8"))
    if str(content.get("Name", "[Unspecified]")).startswith("[Unspecified"):
        content["Name"] = "affectstream recordings"
    if any(str(a).startswith("[Unspecified") for a in content.get("Authors", [])):
        del content["Authors"]  # mne-bids placeholders; the researcher adds the real ones
    content.setdefault("BIDSVersion", BIDS_VERSION)
    content.setdefault("DatasetType", "raw")
    generated = [g for g in content.get("GeneratedBy", []) if g.get("Name") != "affectstream"]
    content["GeneratedBy"] = [*generated, {"Name": "affectstream", "Version": __version__}]
    replace_file(description, lambda path: _write_json(path, content))
    _merge_row(
        root / "participants.tsv",
        {"participant_id": f"sub-{subject}", SOURCE_ID: data.info.participant},
    )
    _describe_columns(
        root / "participants.json",
        {
            "participant_id": {"Description": "BIDS label of the participant"},
            SOURCE_ID: {"Description": "Pseudonymous participant id in affectstream"},
        },
    )
    _describe_columns(
        root / f"sub-{subject}" / f"sub-{subject}_sessions.json",
        {
            "acq_time": {"Description": "Time of the session's first point (UTC)"},
            SOURCE_ID: {"Description": "Session id in affectstream"},
        },
    )
    start = datetime.fromtimestamp(data.info.start_ns / 1e9, tz=UTC)
    _merge_row(
        root / f"sub-{subject}" / f"sub-{subject}_sessions.tsv",
        {
            "session_id": f"ses-{session}",
            "acq_time": start.strftime("%Y-%m-%dT%H:%M:%S"),
            SOURCE_ID: data.info.session,
        },
    )
    readme = root / "README"
    if not readme.exists():
        replace_file(
            readme,
            lambda path: path.write_text(
                "Recordings exported by affectstream (affectstream export --format bids).\n"
                "See docs/export.md for the layout and how gaps and times are represented.\n",
                encoding="utf-8",
            ),
        )


def _merge_row(table: Path, row: dict[str, str]) -> None:
    """Add ``row`` to a TSV keyed by its first column (replacing that key's row)."""
    key = next(iter(row))
    frame = pd.DataFrame([row])
    if table.exists():
        old = pd.read_csv(table, sep="\t", dtype=str, keep_default_na=False)
        old = old[old[key] != row[key]] if key in old else old
        frame = pd.concat([old, frame], ignore_index=True).fillna("n/a")
    replace_file(table, lambda path: _tsv(frame, path))
