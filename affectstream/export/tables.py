"""CSV and Parquet exports: one file per measurement (raw signals: one per stream)."""

from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from affectstream.errors import SignalError
from affectstream.export.session import (
    EVENT_MODALITIES,
    Progress,
    StoredSession,
    _no_progress,
    channel_display_name,
    field_columns,
    slug,
)
from affectstream.export.staging import unique_names
from affectstream.export.units import column_unit
from affectstream.io._grid import estimate_sfreq
from affectstream.store import RAW_PREFIX, TAG_KEYS

logger = logging.getLogger(__name__)


def iso_times(time_ns: np.ndarray) -> np.ndarray:
    """ISO 8601 UTC text with nanoseconds, e.g. ``2026-11-25T10:00:00.123456789Z``."""
    stamps = np.asarray(time_ns, dtype=np.int64).astype("datetime64[ns]")
    return np.asarray(_iso_arrow(stamps).to_numpy(zero_copy_only=False))


def _iso_arrow(stamps: np.ndarray) -> Any:
    """ISO text of datetime64[ns] values as an Arrow string array (fast for millions)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pa.array(np.datetime_as_string(stamps, unit="ns"))
    return pc.binary_join_element_wise(text, pa.scalar("Z"), pa.scalar(""))


def export_frames(data: StoredSession) -> dict[str, pd.DataFrame]:
    """The tables a session exports to, by file stem.

    ``features``, ``quality``, ``affect``, ``events`` as stored (all series, tags as
    columns), and ``raw_<modality>_<stream>`` per raw stream (only its own channels, named
    as in the EDF and BIDS exports: ``AF7``, not the store's ``af7``).

    Parameters
    ----------
    data : StoredSession

    Returns
    -------
    dict of str to DataFrame
        Columns ``time_ns`` (int64), then tags, then fields; no ``time`` column yet.
    """
    frames: dict[str, pd.DataFrame] = {}
    names = stream_names(data)
    for measurement, frame in data.tables.items():
        if not measurement.startswith(RAW_PREFIX) or "stream" not in frame:
            frames[measurement] = frame.reset_index(drop=True)
            continue
        for stream in pd.unique(frame["stream"]):
            part = frame[(frame["stream"] == stream).to_numpy()]
            keep = [c for c in part.columns if c in ("time_ns", *TAG_KEYS)]
            keep += [c for c in field_columns(part) if part[c].notna().any()]
            # Channels spelled as in EDF and BIDS (10-20 for EEG), not as stored.
            modality = measurement[len(RAW_PREFIX) :]
            names_out = {c: channel_display_name(modality, c) for c in keep}
            table = part[keep].rename(columns=names_out)
            frames[f"{measurement}_{names[str(stream)]}"] = table.reset_index(drop=True)
    return frames


def stream_names(data: StoredSession) -> dict[str, str]:
    """File-name part of every raw stream of a session, distinct for distinct streams.

    ``polar/ecg`` -> ``polar-ecg``; two streams that clean to one name (``"dev a/eda"``,
    ``"dev-a/eda"``) each get a hash suffix rather than sharing a file.
    """
    streams = [
        str(s)
        for m, frame in data.tables.items()
        if m.startswith(RAW_PREFIX) and "stream" in frame
        for s in pd.unique(frame["stream"])
    ]
    return unique_names(streams, slug)


def table_metadata(stem: str, frame: pd.DataFrame, session: str) -> dict[str, Any]:
    """What a table's numbers mean: measurement, stream, sampling rate and column units.

    Parameters
    ----------
    stem : str
        File stem (``features``, ``raw_eeg_muse-1-eeg``...).
    frame : pandas.DataFrame
        The table (``time_ns``, tags, fields).
    session : str

    Returns
    -------
    dict
        ``measurement``, ``stream`` (raw tables), ``sampling_frequency_hz`` (regular raw
        streams, estimated from the timestamps as replay does; None otherwise) and
        ``columns``: name -> ``{"unit": ...}`` for every column with a unit.
    """
    # Stems are the measurement, or raw_<modality>_<stream> (modalities have no "_").
    measurement = "_".join(stem.split("_", 2)[:2]) if stem.startswith(RAW_PREFIX) else stem
    meta: dict[str, Any] = {"session": session, "measurement": measurement}
    if measurement.startswith(RAW_PREFIX):
        modality = measurement[len(RAW_PREFIX) :]
        meta["stream"] = str(frame["stream"].iloc[0]) if "stream" in frame and len(frame) else ""
        meta["modality"] = modality
        meta["sampling_frequency_hz"] = None
        if modality not in EVENT_MODALITIES and len(frame) >= 2:
            t = frame["time_ns"].to_numpy(np.int64) / 1e9
            with contextlib.suppress(SignalError):
                meta["sampling_frequency_hz"] = estimate_sfreq(t, f"{meta['stream']!r}")
    meta["columns"] = {
        c: {"unit": unit}
        for c in frame.columns
        if (unit := column_unit(measurement, str(c))) is not None
    }
    return meta


def _with_metadata(arrow: Any, meta: dict[str, Any]) -> Any:
    """Arrow table with each column's unit as field metadata and ``meta`` on the schema."""
    import pyarrow as pa

    fields = []
    for f in arrow.schema:
        unit = meta["columns"].get(f.name, {}).get("unit")
        fields.append(f.with_metadata({"unit": unit}) if unit is not None else f)
    schema = pa.schema(fields, metadata={**(arrow.schema.metadata or {}),
                                         b"affectstream": json.dumps(meta).encode()})  # fmt: skip
    return arrow.cast(schema)


def write_tables(
    data: StoredSession, out: Path, fmt: str, progress: Progress | None = None
) -> list[Path]:
    """Write every table of a session as CSV or Parquet files in ``out``.

    Every file has ``time_ns`` (int64 ns since the Unix epoch, exact) and ``time``: ISO 8601
    UTC text with nanoseconds in CSV, a ``timestamp[ns, UTC]`` column in Parquet. Tags
    (participant, session, device, stream, model) are columns. CSV floats are written with
    their shortest round-trip form, so both formats hold the stored values
    exactly; missing values are empty cells in CSV and nulls in Parquet; CSV booleans are
    ``true``/``false``.

    Parameters
    ----------
    data : StoredSession
    out : Path
        Folder (created if needed).
    fmt : {"csv", "parquet"}
    progress : callable, optional
        ``progress(stage, done, total)`` after each file.

    Returns
    -------
    list of Path
        Files written.
    """
    report = progress or _no_progress
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    out.mkdir(parents=True, exist_ok=True)
    frames = export_frames(data)
    written = []
    for done, (stem, frame) in enumerate(frames.items(), start=1):
        table = frame.copy()
        stamps = pd.to_datetime(table["time_ns"].to_numpy(np.int64), unit="ns", utc=True)
        table.insert(1, "time", stamps)
        path = out / f"{stem}.{fmt}"
        meta = table_metadata(stem, frame, data.info.session)
        arrow = pa.Table.from_pandas(table, preserve_index=False)
        if fmt == "csv":
            iso = _iso_arrow(table["time_ns"].to_numpy(np.int64).astype("datetime64[ns]"))
            arrow = arrow.set_column(1, "time", iso)
            # Arrow writes floats in their shortest round-trip form, ~10x faster than pandas.
            pa_csv.write_csv(arrow, path, pa_csv.WriteOptions(quoting_style="needed"))
            sidecar = path.with_suffix(".json")
            sidecar.write_text(json.dumps(meta, indent=1, ensure_ascii=False), encoding="utf-8")
            written.append(sidecar)
        else:
            pq.write_table(_with_metadata(arrow, meta), path)
        written.append(path)
        logger.info("wrote %s (%d rows)", path, len(table))
        report(f"writing {fmt}", done, len(frames))
    return written
