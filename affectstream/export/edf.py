"""EDF/BDF export of the EEG and ECG streams of a session (MNE's exporter, edfio).

EDF has no "missing sample": every data record holds every sample. How the export keeps
gaps and time (docs/export.md, "EDF"):

- samples that never arrived are written as the last value before them (held flat, so the
  channel's physical range is unchanged) and covered by a ``BAD_ACQ_SKIP`` annotation,
  MNE's name for data that was never acquired; ``raw.get_data(reject_by_annotation="NaN")``
  (or :func:`affectstream.io.read_edf`) turns them back into NaN;
- the EDF header holds the start time to the second only, so the file starts at the whole
  second before the first sample and the samples before it are padded the same way (also
  ``BAD_ACQ_SKIP``); the last data record is padded likewise. Sample times are kept to the
  sampling grid (within half a sample period);
- values are 16-bit in EDF (24-bit in BDF) over the physical range of each channel type in
  the file: the resolution is ``(physical max - physical min) / 65534`` (``/ 16777214``);
- other session events (markers, phases) become annotations ``<kind>/<label>``.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from affectstream.errors import ConfigError
from affectstream.export.session import (
    EVENT_MODALITIES,
    Progress,
    StoredSession,
    _no_progress,
    raw_blocks,
    raw_streams,
    slug,
)
from affectstream.export.staging import unique_names
from affectstream.io.edf import EDF_DIMENSIONS
from affectstream.store import GAP_EVENT_KIND
from affectstream.types import FloatArray, SampleBlock

logger = logging.getLogger(__name__)

#: MNE channel type of each modality in EDF (MNE writes eeg/ecg in µV; the others as
#: stored, with :data:`EDF_DIMENSIONS` as their physical dimension). Every regular stream
#: is written; a modality not listed is ``misc``.
EDF_MODALITIES = {"eeg": "eeg", "ecg": "ecg", "eda": "bio", "ppg": "bio"}
#: Channel types MNE takes as volts and writes ×1e6 (so data go in ×1e-6).
_SCALED_TYPES = frozenset({"eeg", "ecg", "bio"})
#: Modalities whose EDF unit is MNE's own "uV".
_VOLTAGE_MODALITIES = frozenset({"eeg", "ecg"})
#: Annotation of samples that were never acquired.
ACQ_SKIP = "BAD_ACQ_SKIP"


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of the runs of True in ``mask``."""
    edges = np.flatnonzero(np.diff(np.concatenate(([0], mask.astype(np.int8), [0]))))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _hold(values: FloatArray) -> FloatArray:
    """Fill NaN by the previous value (the next one at the start) per column."""
    return pd.DataFrame(values).ffill().bfill().fillna(0.0).to_numpy(np.float64)


#: Characters of a channel name that fit an EDF label (16) after the type prefix ("EEG ").
MAX_NAME = 12


def edf_labels(channels: tuple[str, ...]) -> list[str]:
    """Channel names that fit EDF's 16-character labels, kept distinct.

    Parameters
    ----------
    channels : tuple of str

    Returns
    -------
    list of str
        Names cut to :data:`MAX_NAME` characters; a cut name that collides gets a number.
    """
    labels: list[str] = []
    for i, name in enumerate(channels):
        label = name[:MAX_NAME]
        if label in labels:
            suffix = str(i)
            label = name[: MAX_NAME - len(suffix)] + suffix
        labels.append(label)
    if len(labels) != len(channels) or len(set(labels)) != len(labels):
        raise ConfigError(f"Cannot make distinct EDF labels of 12 characters from {channels}.")
    return labels


def block_to_raw(
    block: SampleBlock, events: pd.DataFrame, participant: str = ""
) -> tuple[object, float]:
    """Build the MNE Raw written for one stream, with gaps padded and annotated.

    Parameters
    ----------
    block : SampleBlock
        A regular stream (NaN rows where samples miss).
    events : pandas.DataFrame
        Session events (``time_ns``, ``kind``, ``label``); non-gap ones become annotations.
    participant : str
        Written as the EDF patient code.

    Returns
    -------
    raw : mne.io.RawArray
        Data in volts, ``meas_date`` at the whole second before the first sample.
    start : float
        That whole second, seconds since the Unix epoch.
    """
    import mne

    if block.sfreq is None:
        raise ConfigError(
            f"EDF export needs a regularly sampled stream; {block.stream!r} is an event "
            "stream (export it as CSV)."
        )
    sfreq = block.sfreq
    start = math.floor(float(block.t[0]))
    lead = round((float(block.t[0]) - start) * sfreq)
    n = lead + len(block)
    if float(sfreq).is_integer():
        n = math.ceil(n / sfreq) * int(sfreq)  # whole data records of 1 s
    values = np.full((n, len(block.channels)), np.nan)
    values[lead : lead + len(block)] = block.values
    missing = np.all(np.isnan(values), axis=1)
    kind = edf_channel_type(block.modality)
    info = mne.create_info(edf_labels(block.channels), sfreq, kind)
    scale = 1e-6 if kind in _SCALED_TYPES else 1.0  # MNE writes these types ×1e6
    raw = mne.io.RawArray(_hold(values).T * scale, info, verbose="error")
    meas_date = dt.datetime.fromtimestamp(start, tz=dt.UTC)
    raw.set_meas_date(meas_date)
    if participant:
        code = "".join(c if c.isalnum() or c in "-_" else "_" for c in participant)
        raw.info["subject_info"] = {"his_id": code}
    onsets: list[float] = []
    durations: list[float] = []
    descriptions: list[str] = []
    for first, stop in _runs(missing):
        onsets.append(first / sfreq)
        durations.append((stop - first) / sfreq)
        descriptions.append(ACQ_SKIP)
    duration = n / sfreq
    if len(events):
        others = events[events["kind"] != GAP_EVENT_KIND]
        for time_ns, what, label in zip(
            others["time_ns"], others["kind"], others["label"], strict=True
        ):
            onset = int(time_ns) / 1e9 - start
            if 0.0 <= onset < duration:
                onsets.append(onset)
                durations.append(0.0)
                descriptions.append(f"{what}/{label}" if label else str(what))
    raw.set_annotations(mne.Annotations(onsets, durations, descriptions, orig_time=meas_date))
    return raw, float(start)


def edf_channel_type(modality: str) -> str:
    """MNE channel type a modality is written with (``misc`` unless listed)."""
    return EDF_MODALITIES.get(modality, "misc")


def edf_streams(data: StoredSession) -> tuple[list[SampleBlock], dict[str, str]]:
    """The streams of a session that go to EDF, and those that cannot, with the reason.

    Every stream with a sampling rate goes (EEG, ECG, EDA, PPG, temperature, motion...);
    streams of one value per event (RR intervals, heart-rate readings) have no sampling
    rate, which EDF requires.

    Parameters
    ----------
    data : StoredSession

    Returns
    -------
    blocks : list of SampleBlock
    left_out : dict of str to str
        Stream id -> why it is not in the EDF export.
    """
    return [b for b in raw_blocks(data) if b.sfreq is not None], edf_left_out(data)


def edf_left_out(data: StoredSession) -> dict[str, str]:
    """Streams of a session an EDF/BDF export cannot hold, and why.

    Parameters
    ----------
    data : StoredSession

    Returns
    -------
    dict of str to str
        Stream id -> reason.
    """
    return {
        stream: f"{modality}: one value per event, no sampling rate (EDF needs one); "
        "it is in the CSV, Parquet and BIDS exports"
        for stream, modality in raw_streams(data).items()
        if modality in EVENT_MODALITIES
    }


def set_physical_dimensions(path: Path, modality: str) -> None:
    """Write the unit of a non-voltage stream into the EDF header (MNE leaves it empty).

    Parameters
    ----------
    path : Path
        EDF/BDF file written by :func:`write_edf_file`.
    modality : str
        Its stream's modality.
    """
    dimension = EDF_DIMENSIONS.get(modality)
    if dimension is None or modality in _VOLTAGE_MODALITIES:
        return
    import edfio

    # BDF has 24-bit samples: read as EDF it would be garbled (and rewritten so).
    reader = edfio.read_bdf if path.suffix.lower() == ".bdf" else edfio.read_edf
    edf = reader(path)
    for signal in edf.signals:
        if not signal.label.endswith("Annotations"):  # edfio lists BDF+'s as a signal
            signal.physical_dimension = dimension
    temporary = path.with_name(f".{path.name}.partial")
    edf.write(temporary)
    temporary.replace(path)


def write_edf_file(raw: object, path: Path, fmt: str = "edf", *, add_ch_type: bool = True) -> Path:
    """Write ``raw`` with MNE's exporter, channel types in the labels (``EEG AF7``) by default.

    Parameters
    ----------
    raw : mne.io.BaseRaw
    path : Path
    fmt : {"edf", "bdf"}
    add_ch_type : bool
        Prefix labels with the channel type, so readers (MNE's ``infer_types``) tell EEG
        from ECG. BIDS EEG files go without: their channels.tsv gives the types.

    Returns
    -------
    Path
    """
    import mne

    with warnings.catch_warnings():
        # Non-integer rates shift sample times slightly; said in the docs, not per file.
        warnings.simplefilter("ignore", RuntimeWarning)
        mne.export.export_raw(
            path, raw, fmt=fmt, add_ch_type=add_ch_type, overwrite=True, verbose="error"
        )
    return path


def write_edf(
    data: StoredSession, out: Path, fmt: str = "edf", progress: Progress | None = None
) -> list[Path]:
    """Write one EDF (or BDF) file per regular stream of a session (see :func:`edf_streams`).

    Parameters
    ----------
    data : StoredSession
    out : Path
        Folder (created if needed).
    fmt : {"edf", "bdf"}
    progress : callable, optional
        ``progress(stage, done, total)`` after each file.

    Returns
    -------
    list of Path
        ``<session>_<stream>.<fmt>`` files; empty if the session has no regular stream.
    """
    report = progress or _no_progress
    out.mkdir(parents=True, exist_ok=True)
    blocks, left_out = edf_streams(data)
    for stream, why in left_out.items():
        logger.info("not in the %s export: %s (%s)", fmt, stream, why)
    events = data.events()
    written = []
    # Distinct streams get distinct files even when their ids clean to one name.
    names = unique_names([b.stream for b in blocks], slug)
    for done, block in enumerate(blocks, start=1):
        raw, _ = block_to_raw(block, events, data.info.participant)
        path = out / f"{slug(data.info.session)}_{names[block.stream]}.{fmt}"
        written.append(write_edf_file(raw, path, fmt))
        set_physical_dimensions(path, block.modality)
        logger.info("wrote %s", path)
        report(f"writing {fmt}", done, len(blocks))
    if not blocks:
        logger.warning("session %r has no regular stream: no EDF written", data.info.session)
    return written
