"""Recognise the file layouts other tools write and read them into sample blocks.

:func:`sniff_layout` looks at the first lines of a text file and names its layout;
:func:`read_layout` reads it. Layouts (documented in docs/export.md, "Recording files"):

- ``muselsl``: ``timestamps,TP9,AF7,AF8,TP10,Right AUX`` (muselsl ``record``; Unix seconds,
  µV, 256 Hz; the AUX electrode is skipped, ``Marker*`` columns are markers);
- ``mind-monitor``: Mind Monitor's CSV, ``TimeStamp,Delta_TP9,...,RAW_TP9,...,Elements``
  (the ``RAW_*`` columns in µV at 256 Hz; band powers, accelerometer... are skipped,
  ``/Marker/N`` elements are markers; ``TimeStamp`` is the phone's local time, read as UTC);
- ``openbci-gui``: OpenBCI GUI raw text (``%`` header lines with the sample rate, then
  ``Sample Index, EXG Channel 0, ..., Timestamp, ...``; EXG channels in µV; sample positions
  from the packet counter, times fitted to the Unix-ms ``Timestamp`` column; non-zero
  ``Marker Channel`` values are markers);
- ``brainflow``: BrainFlow ``DataFilter.write_file`` output (tab-separated, no header) of a
  Cyton or the synthetic board, recognised by its number of columns and a Unix-time column
  where the board keeps it (non-zero marker-row values are markers);
- ``affectstream``: the project's own CSV layout (:func:`affectstream.io.csv.read_csv`).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from affectstream.errors import ConfigError, SignalError
from affectstream.io._grid import MAX_GAP_SECONDS, check_gaps, estimate_sfreq, regular_block
from affectstream.io.units import check_finite, check_plausible
from affectstream.types import FloatArray, IntArray, SampleBlock

logger = logging.getLogger(__name__)

#: Muse electrode names as the Muse SDK, muselsl and Mind Monitor write them.
MUSE_CHANNELS = ("TP9", "AF7", "AF8", "TP10")
#: Mind Monitor's time column and the raw EEG columns it writes.
MIND_MONITOR_TIME = "TimeStamp"
MIND_MONITOR_RAW = tuple(f"RAW_{c}" for c in MUSE_CHANNELS)
#: Memory a byte of CSV text takes once parsed (float64 columns and pandas' copies on the
#: way): a guard against loading a file the machine cannot hold, not an exact figure.
MEMORY_PER_TEXT_BYTE = 4.0
#: Lines and bytes read at most to recognise a layout.
SNIFF_LINES = 40
SNIFF_BYTES = 256 * 1024


@dataclass(frozen=True)
class BrainFlowBoard:
    """Where a BrainFlow board keeps its rows (``BoardShim.get_board_descr``)."""

    name: str
    n_columns: int
    eeg: tuple[int, ...]
    timestamp: int
    marker: int
    sfreq: float
    counter_modulus: int


#: Boards whose ``write_file`` output is recognised, by number of columns.
BRAINFLOW_BOARDS = {
    24: BrainFlowBoard("cyton", 24, tuple(range(1, 9)), 22, 23, 250.0, 256),
    32: BrainFlowBoard("synthetic", 32, tuple(range(1, 17)), 30, 31, 250.0, 256),
}

#: Layouts :func:`read_layout` knows, with the columns each expects (for error messages).
KNOWN_LAYOUTS = {
    "affectstream": "time column (time_ns, time, timestamp...) + '<modality>_<channel>' columns",
    "muselsl": "timestamps,TP9,AF7,AF8,TP10,Right AUX",
    "mind-monitor": "TimeStamp,Delta_TP9,...,RAW_TP9,RAW_AF7,RAW_AF8,RAW_TP10,...,Elements",
    "openbci-gui": "'%' header lines, then Sample Index, EXG Channel 0..N, ..., Timestamp",
    "brainflow": "tab-separated, no header, 24 (Cyton) or 32 (synthetic board) columns",
    "empatica-e4": "a folder or .zip with EDA.csv, BVP.csv, HR.csv, TEMP.csv, ACC.csv, IBI.csv",
}


def known_layouts() -> str:
    """One line per known layout and the columns it expects, for error messages.

    Returns
    -------
    str
    """
    return "; ".join(f"{name}: {columns}" for name, columns in KNOWN_LAYOUTS.items())


def check_size(path: Path, factor: float = MEMORY_PER_TEXT_BYTE) -> None:
    """Refuse a text file that could not be loaded into the memory this machine has free.

    Parameters
    ----------
    path : Path
        The file.
    factor : float
        Bytes of memory a byte of text takes once parsed (:data:`MEMORY_PER_TEXT_BYTE`).

    Raises
    ------
    ConfigError
        Naming the file's size and the memory it would need.
    """
    try:
        size = path.stat().st_size
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):  # no sysconf (Windows): no check
        return
    if size * factor > free:
        raise ConfigError(
            f"{str(path)!r} is {size / 1e9:.1f} GB of text, about {size * factor / 1e9:.0f} GB "
            f"once loaded, more than the {free / 1e9:.1f} GB of memory free: split it into "
            "shorter files (or convert it to EDF/Parquet) and replay the parts."
        )


def _head(path: Path) -> list[str]:
    """The first lines of a text file, reading at most :data:`SNIFF_BYTES`."""
    try:
        with path.open("rb") as handle:
            chunk = handle.read(SNIFF_BYTES)
    except FileNotFoundError:
        raise ConfigError(f"Recording file {str(path)!r} does not exist.") from None
    except IsADirectoryError:
        raise ConfigError(f"{str(path)!r} is a folder, not a recording file.") from None
    if b"\0" in chunk:
        raise ConfigError(
            f"{str(path)!r} holds binary data (NUL bytes), not text: is it really a "
            f"{path.suffix or 'text'} file? Known layouts: {known_layouts()}."
        )
    lines = chunk.decode("utf-8", errors="replace").splitlines()
    if len(chunk) == SNIFF_BYTES and len(lines) < 2:
        raise ConfigError(
            f"{str(path)!r}: no line break in the first {SNIFF_BYTES // 1024} KB; not a "
            "recording in a known layout."
        )
    return lines[:SNIFF_LINES]


def _cells(line: str) -> list[str]:
    return [c.strip() for c in re.split(r"[,;\t]", line)]


def sniff_layout(path: Path) -> str:
    """Name the layout of a text recording from its first lines.

    Parameters
    ----------
    path : Path
        A ``.csv``, ``.tsv`` or ``.txt`` file.

    Returns
    -------
    str
        A key of :data:`KNOWN_LAYOUTS` (``"affectstream"`` when nothing else matches).
    """
    lines = [line for line in _head(path) if line.strip()]
    check_size(path)
    if not lines:
        return "affectstream"
    if lines[0].startswith("%"):
        return "openbci-gui"
    header = _cells(lines[0])
    lower = [c.lower() for c in header]
    if lower[:1] == ["timestamps"] and all(c.lower() in lower for c in MUSE_CHANNELS):
        return "muselsl"
    if header[:1] == [MIND_MONITOR_TIME] and all(c in header for c in MIND_MONITOR_RAW):
        return "mind-monitor"
    if "\t" in lines[0] and len(header) in BRAINFLOW_BOARDS:
        try:
            [float(c) for c in header]
        except ValueError:
            return "affectstream"
        return "brainflow"
    return "affectstream"


def read_layout(
    path: Path, layout: str, *, device: str = "", max_gap: float = MAX_GAP_SECONDS
) -> tuple[list[SampleBlock], list[tuple[float, str]]]:
    """Read a file in one of the other tools' layouts (not ``"affectstream"``).

    Parameters
    ----------
    path : Path
        The file.
    layout : str
        From :func:`sniff_layout`.
    device : str
        Device name for the blocks.
    max_gap : float
        Longest gap between timestamps (s) filled with NaN rows; a longer one is refused.

    Returns
    -------
    blocks : list of SampleBlock
        One EEG block (µV).
    markers : list of (float, str)
        ``(time, label)`` of the markers the file holds: muselsl ``Marker*`` columns, Mind
        Monitor ``/Marker/N`` elements, the OpenBCI GUI's ``Marker Channel`` and
        BrainFlow's marker row (non-zero values).
    """
    if layout == "muselsl":
        block, markers = _read_muselsl(path, device or "muse", max_gap)
    elif layout == "mind-monitor":
        block, markers = _read_mind_monitor(path, device or "muse", max_gap)
    elif layout == "openbci-gui":
        block, markers = _read_openbci_gui(path, device or "openbci", max_gap)
    elif layout == "brainflow":
        block, markers = _read_brainflow(path, device, max_gap)
    else:
        raise ConfigError(f"Unknown layout {layout!r}; known: {known_layouts()}.")
    return [block], sorted(markers)


def _nonzero_markers(
    times: FloatArray, codes: FloatArray, name: str = "marker"
) -> list[tuple[float, str]]:
    """``(time, "marker N")`` for each row whose marker value is set and not zero."""
    rows = np.flatnonzero(np.isfinite(codes) & (codes != 0) & np.isfinite(times))
    return [(float(times[i]), f"{name} {codes[i]:g}") for i in rows]


def _frame(path: Path, **options: object) -> pd.DataFrame:
    try:
        return pd.read_csv(path, **options)  # type: ignore[call-overload, no-any-return]
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Cannot parse {str(path)!r}: {exc}.") from None


def _numbers(frame: pd.DataFrame, columns: list[str], where: str) -> FloatArray:
    values: FloatArray = frame[columns].apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
    check_finite(values, where)
    return values


def _eeg_block(
    path: Path,
    t: FloatArray,
    values: FloatArray,
    channels: tuple[str, ...],
    sfreq: float,
    device: str,
    max_gap: float,
) -> SampleBlock:
    """The EEG block of a layout file, each channel checked for plausible µV values."""
    where = f"{str(path)!r} (EEG)"
    for i in range(values.shape[1]):
        check_plausible("eeg", values[:, i], f"{where} channel {channels[i]!r}")
    return regular_block(
        stream=f"{path.stem}/eeg",
        modality="eeg",
        channels=channels,
        unit="µV",
        t=t,
        values=values,
        sfreq=sfreq,
        device=device,
        max_gap=max_gap,
    )


def _eeg(
    path: Path,
    t: FloatArray,
    values: FloatArray,
    channels: tuple[str, ...],
    device: str,
    max_gap: float,
) -> SampleBlock:
    where = f"{str(path)!r} (EEG)"
    keep = ~np.all(np.isnan(values), axis=1)
    t, values = t[keep], values[keep]
    if t.shape[0] < 2:
        raise ConfigError(f"{where}: fewer than two EEG samples.")
    if not np.all(np.diff(t) > 0):
        raise SignalError(f"{where}: times must increase strictly; sort the rows.")
    return _eeg_block(path, t, values, channels, estimate_sfreq(t, where), device, max_gap)


def _read_muselsl(
    path: Path, device: str, max_gap: float
) -> tuple[SampleBlock, list[tuple[float, str]]]:
    frame = _frame(path)
    by_lower = {str(c).strip().lower(): str(c) for c in frame.columns}
    columns = [by_lower[c.lower()] for c in MUSE_CHANNELS]
    where = f"{str(path)!r} (muselsl)"
    t = _numbers(frame, [by_lower["timestamps"]], where)[:, 0]
    values = _numbers(frame, columns, where)
    markers: list[tuple[float, str]] = []
    for column in (c for c in frame.columns if str(c).lower().startswith("marker")):
        labels = frame[column]
        for i in np.flatnonzero(labels.notna().to_numpy() & (labels.astype(str) != "0")):
            markers.append((float(t[i]), str(labels.iloc[i])))
    return _eeg(path, t, values, MUSE_CHANNELS, device, max_gap), markers


def _read_mind_monitor(
    path: Path, device: str, max_gap: float
) -> tuple[SampleBlock, list[tuple[float, str]]]:
    frame = _frame(path)
    where = f"{str(path)!r} (Mind Monitor)"
    values = _numbers(frame, list(MIND_MONITOR_RAW), where)
    stamps = pd.to_datetime(frame[MIND_MONITOR_TIME], errors="coerce", utc=True)
    usable = stamps.notna().to_numpy()
    if not usable.any():
        raise ConfigError(
            f"{where}: column {MIND_MONITOR_TIME!r} holds no date-times "
            f"(first value {frame[MIND_MONITOR_TIME].iloc[0]!r})."
        )
    # Seconds since the epoch whatever resolution pandas gives the column (ns or µs).
    seconds = (stamps - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)
    t = seconds.to_numpy(np.float64, na_value=np.nan)
    values = values.copy()
    values[~usable] = np.nan
    # Element rows (blinks, jaw clenches, markers) carry no EEG: their RAW cells are empty.
    keep = usable & ~np.all(np.isnan(values), axis=1)
    markers: list[tuple[float, str]] = []
    if "Elements" in frame:
        # Markers the user set ("/Marker/1".."/Marker/5"); blink and jaw-clench detections
        # are the headband's guesses, not events of the session.
        elements = frame["Elements"].astype(str)
        for i in np.flatnonzero(usable & elements.str.startswith("/Marker/").to_numpy()):
            markers.append((float(t[i]), "marker " + elements.iloc[i].rsplit("/", 1)[-1]))
    return _eeg(path, t[keep], values[keep], MUSE_CHANNELS, device, max_gap), markers


def counter_positions(counter: IntArray, modulus: int) -> IntArray:
    """Sample positions from a wrapping packet counter (a missed packet is a jump).

    Parameters
    ----------
    counter : ndarray of int
        The device's sample counter per row.
    modulus : int
        Where the counter wraps (256 for OpenBCI).

    Returns
    -------
    ndarray of int64
        0 for the first row, increasing by the counter's step modulo ``modulus``; a step
        of 0 (a repeated row) counts as one.
    """
    steps = np.mod(np.diff(counter.astype(np.int64)), modulus)
    steps[steps == 0] = 1
    return np.concatenate(([0], np.cumsum(steps))).astype(np.int64)


def _counted_eeg(
    path: Path,
    counter: FloatArray,
    stamps: FloatArray,
    values: FloatArray,
    channels: tuple[str, ...],
    sfreq: float,
    modulus: int,
    device: str,
    max_gap: float,
) -> SampleBlock:
    """EEG whose rows carry a packet counter and a coarse host time (shared by batches)."""
    where = f"{str(path)!r} (EEG)"
    check_finite(values, where)
    ok = np.isfinite(counter) & np.isfinite(stamps)
    if np.count_nonzero(ok) < 2:
        raise ConfigError(f"{where}: fewer than two samples with a counter and a time.")
    counter, stamps, values = counter[ok], stamps[ok], values[ok]
    check_gaps(stamps, where, max_gap)
    pos = counter_positions(counter.astype(np.int64), modulus)
    # Host times arrive in batches (several rows share one); the counter is exact, so the
    # times are the counter's grid placed where the host times say on average.
    origin = float(np.median(stamps - pos / sfreq))
    t = origin + pos / sfreq
    return _eeg_block(path, t, values, channels, sfreq, device, max_gap)


def _read_openbci_gui(
    path: Path, device: str, max_gap: float
) -> tuple[SampleBlock, list[tuple[float, str]]]:
    head = _head(path)
    comments = [line for line in head if line.startswith("%")]
    rate = next(
        (re.search(r"([\d.]+)\s*Hz", line) for line in comments if "Sample Rate" in line), None
    )
    where = f"{str(path)!r} (OpenBCI GUI)"
    if rate is None:
        raise ConfigError(f"{where}: no '%Sample Rate = N Hz' line in the header.")
    frame = _frame(path, comment="%", skipinitialspace=True)
    frame.columns = [str(c).strip() for c in frame.columns]
    exg = [c for c in frame.columns if c.startswith("EXG Channel")]
    if not exg or "Sample Index" not in frame.columns or "Timestamp" not in frame.columns:
        raise ConfigError(
            f"{where}: expected columns 'Sample Index', 'EXG Channel 0'..., 'Timestamp'; "
            f"got {list(frame.columns)[:8]}..."
        )
    counter = pd.to_numeric(frame["Sample Index"], errors="coerce").to_numpy(np.float64)
    stamps = pd.to_numeric(frame["Timestamp"], errors="coerce").to_numpy(np.float64) / 1000.0
    values = frame[exg].apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
    channels = tuple(f"EXG{c.rsplit(' ', 1)[-1]}" for c in exg)
    markers = []
    if "Marker Channel" in frame:
        codes = pd.to_numeric(frame["Marker Channel"], errors="coerce").to_numpy(np.float64)
        markers = _nonzero_markers(stamps, codes)
    block = _counted_eeg(
        path, counter, stamps, values, channels, float(rate.group(1)), 256, device, max_gap
    )
    return block, markers


def _read_brainflow(
    path: Path, device: str, max_gap: float
) -> tuple[SampleBlock, list[tuple[float, str]]]:
    frame = _frame(path, sep="\t", header=None)
    board = BRAINFLOW_BOARDS.get(frame.shape[1])
    where = f"{str(path)!r} (BrainFlow)"
    if board is None:
        raise ConfigError(
            f"{where}: {frame.shape[1]} columns fit no known board "
            f"({', '.join(f'{b.name}: {n}' for n, b in BRAINFLOW_BOARDS.items())})."
        )
    data = frame.apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
    stamps = data[:, board.timestamp]
    if not (np.nanmin(stamps) > 1e9 and np.nanmax(stamps) < 4e9):
        raise ConfigError(
            f"{where}: column {board.timestamp} should hold Unix times for a {board.name} "
            f"board, but holds {np.nanmin(stamps)!r}...; known layouts: {known_layouts()}."
        )
    channels = tuple(f"EXG{i - 1}" for i in board.eeg)
    markers = _nonzero_markers(stamps, data[:, board.marker])
    block = _counted_eeg(
        path,
        data[:, 0],
        stamps,
        data[:, list(board.eeg)],
        channels,
        board.sfreq,
        board.counter_modulus,
        device or f"brainflow-{board.name}",
        max_gap,
    )
    return block, markers
