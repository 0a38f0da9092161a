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
from affectstream.errors import ConfigError
from affectstream.export.bids import write_bids
from affectstream.export.edf import ACQ_SKIP, block_to_raw, edf_left_out, write_edf
from affectstream.export.session import (
    Progress,
    StoredSession,
    describe_sessions,
    find_session,
    load_session,
    raw_blocks,
    slug,
)
from affectstream.export.staging import commit, existing, id_hash, staged, unique_names
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
    "export_sessions",
    "find_session",
    "iso_times",
    "load_session",
    "raw_blocks",
    "select_sessions",
    "session_folders",
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
    left_out : dict of str to str
        Streams the format cannot hold (EDF/BDF: no sampling rate) and why.
    """

    session: str
    participant: str
    format: str
    out: Path
    files: list[Path] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    left_out: dict[str, str] = field(default_factory=dict)


def export_session(
    store: TimeSeriesStore,
    session: str,
    fmt: str,
    out: str | Path,
    *,
    force: bool = False,
    progress: Progress | None = None,
) -> ExportResult:
    """Export one stored session.

    Nothing is overwritten silently: files that already exist in ``out`` are refused
    unless ``force``; the export is written under a temporary name and moved in when
    complete, so a failure (full disk, read-only folder) leaves no partial files.

    Parameters
    ----------
    store : TimeSeriesStore
        Store holding the session.
    session : str
        Session id; a :class:`~affectstream.errors.ConfigError` lists the stored ones if
        it is not there.
    fmt : {"csv", "parquet", "edf", "bdf", "bids"}
        ``csv``/``parquet``: features, quality, affect, events and one file per raw stream;
        ``edf``/``bdf``: one file per regular stream; ``bids``: a BIDS dataset at ``out``.
    out : str or Path
        Output folder (created if needed); for ``bids`` the dataset root, shared by sessions.
    force : bool
        Replace files of an earlier export of this session.
    progress : callable, optional
        ``progress(stage, done, total)``, e.g. to drive a progress bar.

    Returns
    -------
    ExportResult

    Raises
    ------
    ConfigError
        Unknown session or format, files already there (without ``force``), a name
        collision in a BIDS dataset, or an ``OSError`` while writing (one line).
    """
    check_option("fmt", fmt, FORMATS)
    out = Path(out)
    data = load_session(store, session, progress)
    left_out: dict[str, str] = {}
    if fmt == "bids":
        files = write_bids(data, out, progress, force=force)
    else:
        if fmt in ("edf", "bdf"):
            left_out = edf_left_out(data)
        with staged(out) as stage:
            if fmt in ("csv", "parquet"):
                written = write_tables(data, stage, fmt, progress)
            else:
                written = write_edf(data, stage, fmt, progress)
            _write_manifest(data, stage, fmt, written, left_out)
            clashes = existing(stage, out)
            if clashes and not force:
                raise ConfigError(
                    f"{out} already holds {clashes[0].name} (an earlier export?); add --force "
                    "to replace it, or choose another --out."
                )
            files = commit(stage, out)
    rows = {name: len(frame) for name, frame in data.tables.items()}
    logger.info("exported session %r as %s: %d files in %s", session, fmt, len(files), out)
    return ExportResult(
        session=data.info.session,
        participant=data.info.participant,
        format=fmt,
        out=out,
        files=files,
        rows=rows,
        left_out=left_out,
    )


def _write_manifest(
    data: StoredSession, folder: Path, fmt: str, files: list[Path], left_out: dict[str, str]
) -> None:
    """``<fmt>_manifest.json``: which session, which files, what is not in them."""
    (folder / f"{fmt}_manifest.json").write_text(
        json.dumps(
            {
                "session": data.info.session,
                "participant": data.info.participant,
                "format": fmt,
                "affectstream": __version__,
                "files": [p.name for p in files],
                "left_out": left_out,
                "time": "time_ns: int64 ns since the Unix epoch; time: UTC",
            },
            indent=1,
        )
    )


def session_folders(sessions: list[str]) -> dict[str, str]:
    """Folder name of each session in a multi-session export (distinct for distinct ids)."""
    return unique_names(sessions, slug)


def export_sessions(
    store: TimeSeriesStore,
    sessions: list[str],
    fmt: str,
    out: str | Path,
    *,
    force: bool = False,
    progress: Progress | None = None,
) -> list[ExportResult]:
    """Export several sessions: one folder per session in ``out`` (BIDS: one dataset).

    Parameters
    ----------
    store : TimeSeriesStore
    sessions : list of str
        Session ids (see :func:`select_sessions`).
    fmt : {"csv", "parquet", "edf", "bdf", "bids"}
    out : str or Path
        ``out/<session>/`` per session; for ``bids`` the dataset root.
    force : bool
        Replace files of earlier exports of these sessions.
    progress : callable, optional

    Returns
    -------
    list of ExportResult
        In the order of ``sessions``.
    """
    check_option("fmt", fmt, FORMATS)
    out = Path(out)
    folders = session_folders(sessions)
    results = []
    for session in sessions:
        target = out if fmt == "bids" else out / folders[session]
        if fmt != "bids" and _exported_session(target) not in (None, session):
            # Another id cleaned to the same folder name in an earlier export: keep apart.
            target = out / f"{folders[session]}-{id_hash(session)}"
        results.append(export_session(store, session, fmt, target, force=force, progress=progress))
    return results


def _exported_session(folder: Path) -> str | None:
    """The session an earlier export wrote into ``folder`` (from its manifest), if any."""
    for manifest in sorted(folder.glob("*_manifest.json")):
        try:
            return str(json.loads(manifest.read_text(encoding="utf-8"))["session"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return None


def select_sessions(
    store: TimeSeriesStore,
    session: str | None = None,
    *,
    participant: str | None = None,
    every: bool = False,
) -> list[str]:
    """Session ids chosen by id, by participant or all of them, oldest first.

    Parameters
    ----------
    store : TimeSeriesStore
    session : str, optional
        One session id.
    participant : str, optional
        Every session of this participant.
    every : bool
        Every stored session.

    Returns
    -------
    list of str

    Raises
    ------
    ConfigError
        Not exactly one way of choosing was given, or it chose nothing.
    """
    given = sum([session is not None, participant is not None, every])
    if given != 1:
        raise ConfigError(
            "Say which sessions to export: a SESSION id, --participant ID or --all "
            f"(exactly one; got {given})."
        )
    if session is not None:
        return [find_session(store, session).session]
    stored = sorted(store.sessions(), key=lambda info: (info.start_ns, info.session))
    chosen = [i.session for i in stored if every or i.participant == participant]
    if not chosen:
        raise ConfigError(
            f"No stored session of participant {participant!r}. Sessions there:\n"
            f"{describe_sessions(stored)}"
            if not every
            else f"The store {store!r} holds no session to export."
        )
    return chosen
