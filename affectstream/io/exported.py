"""Read the project's own CSV and Parquet exports back as a stored session.

``affectstream export --format csv|parquet`` writes one table per measurement and per raw
stream plus ``<format>_manifest.json`` (docs/export.md). :func:`read_export` turns such a
folder (or one ``raw_<modality>_<stream>`` table of it, with the ``events`` table beside it)
back into the tables the store would return, so the export replays exactly as the stored
session: the same samples, gaps (the ``gap`` events), markers and phases.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from affectstream.errors import ConfigError
from affectstream.types import UNITS

if TYPE_CHECKING:
    from affectstream.export.session import StoredSession

#: Manifest names, by export format.
MANIFESTS = {"csv": "csv_manifest.json", "parquet": "parquet_manifest.json"}
#: Tag columns of exported tables (read as text, never as numbers).
_TAGS = ("participant", "session", "device", "stream", "model")
_RAW = re.compile(r"^raw_(?P<modality>[a-z]+)_")


def export_manifest(path: Path) -> Path | None:
    """The manifest of the export folder ``path`` (or of the folder holding file ``path``)."""
    folder = path if path.is_dir() else path.parent
    for name in MANIFESTS.values():
        if (folder / name).is_file():
            return folder / name
    return None


def is_export_table(path: Path) -> bool:
    """Whether ``path`` is a raw table an export wrote (``raw_<modality>_<stream>.csv``)."""
    match = _RAW.match(path.name)
    return (
        path.is_file()
        and path.suffix.lower() in (".csv", ".parquet")
        and match is not None
        and match["modality"] in UNITS
    )


def _read_table(path: Path) -> pd.DataFrame:
    if path.suffix.lower() == ".parquet":
        frame = pd.read_parquet(path)
    else:
        header = pd.read_csv(path, nrows=0).columns
        types = {c: "string" for c in header if c in (*_TAGS, "kind", "label", "detail")}
        frame = pd.read_csv(path, dtype=types, keep_default_na=False, na_values=[""])
        for column in types:
            frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    if "time_ns" not in frame:
        raise ConfigError(f"{str(path)!r} has no time_ns column; is it an affectstream export?")
    frame = frame.drop(columns=[c for c in ("time",) if c in frame])
    frame["time_ns"] = frame["time_ns"].to_numpy(np.int64)
    return frame


def read_export(path: Path) -> StoredSession:
    """An export folder (or one raw table of it) as the stored session it came from.

    Parameters
    ----------
    path : Path
        The folder holding ``csv_manifest.json`` / ``parquet_manifest.json``, or a
        ``raw_<modality>_<stream>.csv|.parquet`` file (its sibling ``events`` table, if
        any, gives the gaps, markers and phases).

    Returns
    -------
    affectstream.export.session.StoredSession
    """
    from affectstream.export.session import StoredSession
    from affectstream.store import SessionInfo

    manifest_path = export_manifest(path)
    session, participant = path.stem, ""
    files: list[Path]
    if manifest_path is not None:
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            names = [str(n) for n in manifest["files"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{str(manifest_path)!r} is no export manifest ({exc}).") from None
        session = str(manifest.get("session", session))
        participant = str(manifest.get("participant", ""))
        files = [manifest_path.parent / n for n in names]
    else:
        files = [path, *path.parent.glob("events.*")]
    if path.is_file():  # one stream: that table and the events
        files = [f for f in files if f == path or f.stem == "events"]
    tables: dict[str, list[pd.DataFrame]] = {}
    for file in files:
        if file.suffix.lower() not in (".csv", ".parquet"):
            continue  # JSON sidecars (units, rates) beside the tables
        if not file.is_file():
            raise ConfigError(f"{str(file)!r}, listed in the export, is missing.")
        match = _RAW.match(file.name)
        if match is not None:
            tables.setdefault(f"raw_{match['modality']}", []).append(_read_table(file))
        elif file.stem == "events":
            tables["events"] = [_read_table(file)]
    if not any(m.startswith("raw_") for m in tables):
        raise ConfigError(
            f"{str(path)!r}: the export holds no raw_<modality>_<stream> table to replay "
            "(export the session with its raw samples)."
        )
    joined = {m: pd.concat(parts, ignore_index=True) for m, parts in tables.items()}
    times = np.concatenate([f["time_ns"].to_numpy(np.int64) for f in joined.values()])
    if "participant" in joined.get("events", pd.DataFrame()) and not participant:
        participant = str(joined["events"]["participant"].dropna().iloc[0])
    info = SessionInfo(
        session=session,
        participant=participant,
        start_ns=int(times.min()),
        stop_ns=int(times.max()) + 1,
        n_points=int(times.size),
    )
    return StoredSession(info=info, tables=joined)
