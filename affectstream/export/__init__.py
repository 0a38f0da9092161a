"""Researcher-facing exports of a stored session: CSV, Parquet, EDF/BDF and BIDS.

:func:`export_session` reads one session from a store and writes it in one format; the
formats, and how each represents time, gaps and resolution, are described in
docs/export.md.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from affectstream._validate import check_option
from affectstream._version import __version__
from affectstream.export.bids import write_bids
from affectstream.export.edf import ACQ_SKIP, block_to_raw, write_edf
from affectstream.export.session import (
    Progress,
    StoredSession,
    describe_sessions,
    find_session,
    load_session,
    raw_blocks,
)
from affectstream.export.tables import iso_times, write_tables
from affectstream.store import TimeSeriesStore

__all__ = [
    "ACQ_SKIP",
    "FORMATS",
    "ExportResult",
    "Progress",
    "StoredSession",
    "block_to_raw",
    "describe_sessions",
    "export_session",
    "find_session",
    "iso_times",
    "load_session",
    "raw_blocks",
    "write_bids",
    "write_edf",
    "write_tables",
]

logger = logging.getLogger(__name__)

#: Export formats.
FORMATS = ("csv", "parquet", "edf", "bdf", "bids")


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote.

    Parameters
    ----------
    session : str
    participant : str
    format : str
    out : Path
        Folder written to.
    files : list of Path
        Files written.
    rows : dict of str to int
        Rows (points) per measurement exported.
    """

    session: str
    participant: str
    format: str
    out: Path
    files: list[Path] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)


def export_session(
    store: TimeSeriesStore,
    session: str,
    fmt: str,
    out: str | Path,
    *,
    progress: Progress | None = None,
) -> ExportResult:
    """Export one stored session.

    Parameters
    ----------
    store : TimeSeriesStore
        Store holding the session.
    session : str
        Session id; a :class:`~affectstream.errors.ConfigError` lists the stored ones if
        it is not there.
    fmt : {"csv", "parquet", "edf", "bdf", "bids"}
        ``csv``/``parquet``: features, quality, affect, events and one file per raw stream;
        ``edf``/``bdf``: one file per EEG or ECG stream; ``bids``: a BIDS dataset at ``out``.
    out : str or Path
        Output folder (created if needed).
    progress : callable, optional
        ``progress(stage, done, total)``, e.g. to drive a progress bar.

    Returns
    -------
    ExportResult
    """
    check_option("fmt", fmt, FORMATS)
    out = Path(out)
    data = load_session(store, session, progress)
    if fmt in ("csv", "parquet"):
        files = write_tables(data, out, fmt, progress)
        manifest = out / f"{fmt}_manifest.json"
        manifest.write_text(
            json.dumps(
                {
                    "session": data.info.session,
                    "participant": data.info.participant,
                    "format": fmt,
                    "affectstream": __version__,
                    "files": [p.name for p in files],
                    "time": "time_ns: int64 ns since the Unix epoch; time: UTC",
                },
                indent=1,
            )
        )
        files.append(manifest)
    elif fmt in ("edf", "bdf"):
        files = write_edf(data, out, fmt, progress)
    else:
        files = write_bids(data, out, progress)
    rows = {name: len(frame) for name, frame in data.tables.items()}
    logger.info("exported session %r as %s: %d files in %s", session, fmt, len(files), out)
    return ExportResult(
        session=data.info.session,
        participant=data.info.participant,
        format=fmt,
        out=out,
        files=files,
        rows=rows,
    )
