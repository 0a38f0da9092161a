"""Read a CSV recording into sample blocks.

Layout (documented in docs/export.md, "Recording files"):

- one header row; comma, semicolon or tab separated;
- an optional time column: ``time_ns`` (int64 ns since the Unix epoch), or ``time``, ``t``,
  ``timestamp``, ``time_s`` (float seconds since the Unix epoch, or since the start of the
  recording, shifted by ``t0``), or ISO 8601 text in any of those;
- channel columns named ``<modality>`` or ``<modality>_<channel>`` (case-insensitive),
  optionally with a unit: ``ecg[mV]``, ``eeg_af7 (uV)``. Columns of one modality form one
  stream; NeuroKit2's capitalised columns (``ECG``, ``EDA``, ``PPG``) fit this layout, and
  columns that carry no features (``RSP``, ``Photosensor``) are skipped;
- without a time column, ``sfreq`` gives the sampling rate (RR intervals then get their times
  from the cumulative sum of the intervals).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from affectstream._validate import check_positive
from affectstream.errors import ConfigError, SignalError
from affectstream.io._grid import MAX_GAP_SECONDS, estimate_sfreq, regular_block
from affectstream.io.layouts import check_size, known_layouts
from affectstream.io.units import check_finite, check_plausible, to_canonical
from affectstream.types import UNITS, FloatArray, SampleBlock

logger = logging.getLogger(__name__)

#: Column names taken as the time column (lowercase), seconds unless ``time_ns``.
TIME_COLUMNS = ("time_ns", "time", "t", "timestamp", "time_s", "seconds")
#: Other names of modalities seen in files.
ALIASES = {"gsr": "eda", "bvp": "ppg", "ibi": "rr", "heart_rate": "hr", "heartrate": "hr"}
#: Columns that are understood but carry no affectstream features; skipped.
SKIPPED = ("rsp", "resp", "respiration", "photosensor", "marker", "markers", "trigger", "event")
#: Modalities sampled at irregular times (one row per event).
EVENT_MODALITIES = ("rr", "hr")

#: pandas < 3 parses floats to the nearest bit only when asked; 3.x does by default (and
#: deprecates the option).
ASK_ROUND_TRIP = int(pd.__version__.split(".")[0]) < 3

_UNIT = re.compile(r"^(?P<name>.*?)\s*(?:\[(?P<b>[^\]]*)\]|\((?P<p>[^)]*)\))\s*$")


def parse_column(column: str) -> tuple[str, str, str] | None:
    """Split a column name into (modality, channel, unit), or None if it is no channel.

    Parameters
    ----------
    column : str
        Header of a CSV column, e.g. ``"eeg_af7 [uV]"`` or ``"ECG"``.

    Returns
    -------
    tuple of str or None
        ``("eeg", "af7", "uV")``; the channel is the modality itself when the column has
        no suffix, the unit is ``""`` when the column declares none.
    """
    match = _UNIT.match(column)
    name, unit = (column, "") if match is None else (match["name"], match["b"] or match["p"] or "")
    key = name.strip().lower().replace(" ", "_").replace("-", "_")
    for prefix in (*UNITS, *ALIASES):
        if key == prefix or key.startswith(prefix + "_"):
            modality = ALIASES.get(prefix, prefix)
            channel = key[len(prefix) + 1 :] or modality
            return modality, channel, unit.strip()
    return None


def read_csv(
    path: str | Path,
    *,
    sfreq: float | None = None,
    t0: float = 0.0,
    units: Mapping[str, str] | None = None,
    modalities: Sequence[str] | None = None,
    skip_unknown: bool = False,
    device: str = "",
    max_gap: float = MAX_GAP_SECONDS,
) -> list[SampleBlock]:
    """Read a CSV recording (layout in the module docstring) into one block per modality.

    Parameters
    ----------
    path : str or Path
        The CSV file.
    sfreq : float, optional
        Sampling rate in Hz of the regular columns; required without a time column,
        otherwise estimated per stream from the times.
    t0 : float
        Seconds since the Unix epoch added to relative times (and the time of the first
        row when there is no time column).
    units : mapping, optional
        Unit per modality (``{"ecg": "mV"}``) for columns that declare none.
    modalities : sequence of str, optional
        Keep only these modalities.
    skip_unknown : bool
        Skip columns that name no modality instead of raising.
    device : str
        Device name written into the blocks.
    max_gap : float
        Longest gap between timestamps (s) filled with NaN rows; a longer one is refused
        (usually one wrong timestamp; memory would grow with the gap).

    Returns
    -------
    list of SampleBlock
        One per modality, regular streams with NaN rows and gaps where samples are missing.

    Raises
    ------
    ConfigError
        Unreadable file, unknown column, unknown unit or missing sampling rate.
    SignalError
        Values that look like another unit, or times that do not increase.
    """
    path = Path(path)
    if path.is_file():
        check_size(path)
    try:
        with path.open(encoding="utf-8") as handle:
            header = handle.readline(64 * 1024)
        separator = max((",", ";", "\t"), key=header.count)
        if ASK_ROUND_TRIP:
            frame = pd.read_csv(path, sep=separator, float_precision="round_trip")
        else:
            frame = pd.read_csv(path, sep=separator)
    except FileNotFoundError:
        raise ConfigError(f"Recording file {str(path)!r} does not exist.") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"Cannot parse {str(path)!r} as CSV ({exc}). Expected a header row, then one row "
            "per sample; see docs/export.md, 'Recording files'."
        ) from None
    if frame.empty:
        raise ConfigError(
            f"{str(path)!r} has a header ({', '.join(map(str, frame.columns[:8]))}) but no "
            "data rows: is the recording complete?"
        )
    if sfreq is not None:
        sfreq = check_positive("sfreq", sfreq)
    stem = path.stem
    time_column = next((c for c in frame.columns if str(c).strip().lower() in TIME_COLUMNS), None)
    times = None if time_column is None else _times(frame[time_column], t0, path, time_column)

    groups: dict[str, list[tuple[str, str, str]]] = {}
    unknown: list[str] = []
    for column in frame.columns:
        if column == time_column:
            continue
        parsed = parse_column(str(column))
        if parsed is None:
            key = str(column).strip().lower()
            if key in SKIPPED:
                logger.info("%s: column %r carries no features; skipped", path, column)
            else:
                unknown.append(str(column))
            continue
        groups.setdefault(parsed[0], []).append((str(column), parsed[1], parsed[2]))
    if unknown and not skip_unknown:
        raise ConfigError(
            f"{str(path)!r}: columns {unknown} name no modality and the file is in no "
            f"known layout ({known_layouts()}). Name channel columns '<modality>' or "
            f"'<modality>_<channel>' with a modality in {sorted(UNITS)}, or skip them "
            "(skip_unknown=True, CLI --skip-unknown-columns)."
        )
    if modalities is not None:
        groups = {m: cols for m, cols in groups.items() if m in set(modalities)}
    if not groups:
        raise ConfigError(
            f"{str(path)!r} has no channel columns to read (columns: {list(frame.columns)}"
            f"{', modalities ' + str(list(modalities)) if modalities is not None else ''}). "
            f"Known layouts: {known_layouts()}."
        )
    if times is None and sfreq is None:
        raise ConfigError(
            f"{str(path)!r} has no time column ({', '.join(TIME_COLUMNS)}); pass the sampling "
            "rate (sfreq=..., CLI --sfreq)."
        )

    blocks = []
    for modality, columns in groups.items():
        declared = {unit for _, _, unit in columns if unit}
        unit = (units or {}).get(modality, "")
        if len(declared) > 1:
            raise ConfigError(f"{str(path)!r}: {modality} columns mix units {sorted(declared)}.")
        unit = next(iter(declared), unit)
        values = np.empty((len(frame), len(columns)))
        for i, (column, _, _) in enumerate(columns):
            where = f"{str(path)!r} column {column!r}"
            numbers = pd.to_numeric(frame[column], errors="coerce").to_numpy(np.float64)
            text = frame[column].notna().to_numpy() & np.isnan(numbers)
            if text.any():
                row = int(np.flatnonzero(text)[0])
                raise SignalError(
                    f"{where}: row {row + 2} holds {frame[column].iloc[row]!r}, not a number. "
                    "Leave missing samples empty."
                )
            check_finite(numbers, where)
            values[:, i] = to_canonical(modality, unit, numbers, where)
            check_plausible(modality, values[:, i], where)
        present = ~np.all(np.isnan(values), axis=1)
        blocks.append(
            _block(
                stem,
                modality,
                tuple(c for _, c, _ in columns),
                values,
                present,
                times,
                sfreq,
                t0,
                device,
                path,
                max_gap,
            )
        )
    return blocks


def _times(column: pd.Series, t0: float, path: Path, name: str) -> FloatArray:
    """Seconds since the Unix epoch from a time column."""
    if str(name).strip().lower() == "time_ns":
        ns = pd.to_numeric(column, errors="coerce")
        if ns.isna().any():
            raise ConfigError(f"{str(path)!r}: column {name!r} must hold int nanoseconds.")
        return np.asarray(ns.to_numpy(np.int64), dtype=np.float64) / 1e9
    numbers = pd.to_numeric(column, errors="coerce")
    if numbers.notna().all():
        seconds = numbers.to_numpy(np.float64)
        # Times below ~1 year are relative to the start of the recording.
        return seconds + t0 if float(np.nanmax(np.abs(seconds))) < 3.2e7 else seconds
    try:
        stamps = pd.to_datetime(column, utc=True, format="ISO8601")
        # Seconds since the epoch whatever resolution pandas gives the column (ns or µs).
        since = (stamps - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)
    except (ValueError, TypeError, OverflowError):  # OutOfBoundsDatetime is a ValueError
        raise ConfigError(
            f"{str(path)!r}: time column {name!r} holds neither numbers nor ISO 8601 times "
            f"(first value {column.iloc[0]!r})."
        ) from None
    return np.asarray(since.to_numpy(np.float64), dtype=np.float64)


def _block(
    stem: str,
    modality: str,
    channels: tuple[str, ...],
    values: FloatArray,
    present: np.ndarray,
    times: FloatArray | None,
    sfreq: float | None,
    t0: float,
    device: str,
    path: Path,
    max_gap: float,
) -> SampleBlock:
    stream = f"{stem}/{modality}"
    unit = UNITS.get(modality, "")
    where = f"{str(path)!r} ({modality})"
    if times is None:
        if sfreq is None:
            raise RuntimeError("a CSV stream without times needs a sampling rate.")
        if modality == "rr":
            rr = values[present, 0]
            t = t0 + np.cumsum(rr) / 1000.0
            return regular_block(
                stream=stream,
                modality=modality,
                channels=channels,
                unit=unit,
                t=t,
                values=values[present],
                sfreq=None,
                device=device,
            )
        t = t0 + np.arange(values.shape[0]) / sfreq
        rate = None if modality in EVENT_MODALITIES else sfreq
    else:
        t = times
        if modality in EVENT_MODALITIES:
            rate = None
        else:
            rate = sfreq if sfreq is not None else estimate_sfreq(t[present], where)
    if t[present].shape[0] > 1 and not np.all(np.diff(t[present]) > 0):
        raise SignalError(f"{where}: times must increase strictly; sort the rows.")
    return regular_block(
        stream=stream,
        modality=modality,
        channels=channels,
        unit=unit,
        t=t[present],
        values=values[present],
        sfreq=rate,
        device=device,
        max_gap=max_gap,
    )
