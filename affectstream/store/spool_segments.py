"""The spool's files: record framing, segment and cursor files, and the recovery scan.

A record is ``magic (4 bytes) | payload length (uint32 LE) | CRC-32 of payload (uint32 LE)``
followed by the payload. Records are appended to segment files named
``<16-digit id>.seg``; the ``cursor`` file holds ``<segment id> <byte offset>`` of the first
unacknowledged record and is replaced atomically. :func:`check_segment` is what opening a
spool runs on every segment after the cursor: a torn tail is cut, corrupt bytes are moved
to ``corrupt/``. The queue logic on top (appending, bounds, cursor, replay) is
:class:`affectstream.store.spool.Spool`.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import struct
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

MAGIC = b"ASP1"
HEADER = struct.Struct("<4sII")
HEADER_SIZE = HEADER.size
SEGMENT_SUFFIX = ".seg"
#: errno values meaning "no room": the spool waits for space instead of failing for good.
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})

PUNCH_ALIGN = 4096  # file system block: holes are punched in whole blocks
_FALLOC_FL_KEEP_SIZE = 0x01
_FALLOC_FL_PUNCH_HOLE = 0x02


@dataclass(frozen=True, order=True)
class Position:
    """A byte position in the spool: segment id and offset inside that segment."""

    segment: int
    offset: int


@dataclass(frozen=True)
class SpoolBatch:
    """Consecutive records read from the spool, to send and then acknowledge.

    Parameters
    ----------
    payload : bytes
        The records' payloads joined in order.
    n_records : int
        Number of records.
    start, stop : Position
        Position of the first record and just past the last one.
    """

    payload: bytes
    n_records: int
    start: Position
    stop: Position


def encode_record(payload: bytes) -> bytes:
    """Return ``payload`` framed as a spool record (header + payload).

    Parameters
    ----------
    payload : bytes
        Record content.

    Returns
    -------
    bytes
    """
    return HEADER.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload


def read_record(data: bytes, offset: int) -> tuple[bytes | None, int]:
    """Decode the record at ``offset`` of ``data``.

    Parameters
    ----------
    data : bytes
        Bytes of a segment (or a window of one).
    offset : int
        Where the record starts in ``data``.

    Returns
    -------
    payload : bytes or None
        None when the bytes there are not a whole valid record.
    next_offset : int
        Offset after the record; -1 for "cut short" or -2 for "corrupt" when ``payload``
        is None.
    """
    if offset + HEADER_SIZE > len(data):
        return None, -1
    magic, length, crc = HEADER.unpack_from(data, offset)
    if magic != MAGIC:
        return None, -2
    end = offset + HEADER_SIZE + length
    if end > len(data):
        return None, -1
    payload = data[offset + HEADER_SIZE : end]
    if zlib.crc32(payload) != crc:
        return None, -2
    return payload, end


def next_valid_record(data: bytes, offset: int) -> int | None:
    """Offset of the first whole, valid record at or after ``offset`` (None if none)."""
    while True:
        found = data.find(MAGIC, offset)
        if found < 0:
            return None
        payload, _ = read_record(data, found)
        if payload is not None:
            return found
        offset = found + 1


def is_disk_full(exc: OSError) -> bool:
    """True if ``exc`` says the disk or quota is full (space may come back).

    Parameters
    ----------
    exc : OSError
        An error of a file operation.

    Returns
    -------
    bool
    """
    return exc.errno in DISK_FULL_ERRNOS


def space_hint(exc: OSError) -> str:
    """What to do about an OSError of the spool, in one sentence.

    Parameters
    ----------
    exc : OSError
        An error of a spool file operation.

    Returns
    -------
    str
    """
    if is_disk_full(exc):
        return (
            "The disk (or quota) is full: free space or set AFFECTSTREAM_SPOOL_DIR to a disk "
            "with room; writes succeed again as soon as there is space."
        )
    return "Check that the spool folder is writable (or set AFFECTSTREAM_SPOOL_DIR)."


def segment_name(segment: int) -> str:
    """File name of segment ``segment`` (zero-padded so names sort by id)."""
    return f"{segment:016d}{SEGMENT_SUFFIX}"


def segments_on_disk(directory: Path) -> list[int]:
    """Ids of the segment files in ``directory``, in order."""
    ids = []
    for path in directory.glob("*" + SEGMENT_SUFFIX):
        try:
            ids.append(int(path.stem))
        except ValueError:
            continue
    return sorted(ids)


def segment_size(directory: Path, segment: int) -> int:
    """Size of a segment file in bytes (0 if it does not exist)."""
    try:
        return (directory / segment_name(segment)).stat().st_size
    except FileNotFoundError:
        return 0


def fsync_directory(path: Path) -> None:
    """Make a rename or a new file in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_cursor(directory: Path) -> Position | None:
    """The saved cursor, or None when there is none (or it is unreadable)."""
    path = directory / "cursor"
    try:
        segment_text, offset_text = path.read_text().split()
        return Position(int(segment_text), int(offset_text))
    except FileNotFoundError:
        return None
    except (ValueError, OSError) as exc:
        # The cursor is replaced atomically, so this means outside damage: replaying
        # from the oldest segment may resend acknowledged points, which overwrite.
        logger.error("Spool cursor %s is unreadable (%s); replaying from the start.", path, exc)
        return None


def write_cursor(directory: Path, position: Position) -> None:
    """Replace the cursor file atomically (temporary file, fsync, rename, fsync directory)."""
    temporary = directory / "cursor.tmp"
    with open(temporary, "w") as handle:
        handle.write(f"{position.segment} {position.offset}\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, directory / "cursor")
    fsync_directory(directory)


def quarantine(directory: Path, kind: str, name: str, data: bytes, note: str = "") -> Path:
    """Save ``data`` as ``<directory>/<kind>/<name>`` (and ``note`` beside it as .txt).

    Parameters
    ----------
    directory : Path
        Spool directory.
    kind : str
        ``"rejected"`` or ``"corrupt"``.
    name : str
        File name.
    data : bytes
        What to keep.
    note : str
        Why (the server's answer), saved next to it when given.

    Returns
    -------
    Path
        Where ``data`` was saved.
    """
    folder = directory / kind
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    if note:
        path.with_suffix(".txt").write_text(note)
    return path


def check_segment(directory: Path, segment: int, start: int, *, last: bool) -> int:
    """Validate records from ``start``; truncate a torn tail, quarantine corrupt bytes.

    Parameters
    ----------
    directory : Path
        Spool directory.
    segment : int
        Segment id.
    start : int
        Offset of the first record to check (the cursor's, in its segment).
    last : bool
        The newest segment: only there may a record be cut short by a crashed append.

    Returns
    -------
    int
        Damaged stretches moved to ``corrupt/``.
    """
    path = directory / segment_name(segment)
    data = path.read_bytes()
    offset = start
    good = bytearray(data[:start])
    damaged = 0
    while offset < len(data):
        payload, end = read_record(data, offset)
        if payload is not None:
            good += data[offset:end]
            offset = end
            continue
        resume = next_valid_record(data, offset + 1)
        stop = len(data) if resume is None else resume
        if offset == start and not any(data[offset:stop]):
            # Zeros where acknowledged records were: space reclaimed in place (a hole
            # punched) before a crash kept the cursor from moving on. Nothing to keep.
            logger.info("Spool segment %s: skipping %d reclaimed bytes.", path, stop - offset)
            good += data[offset:stop]
        elif resume is None and last and end == -1:
            quarantine(directory, "corrupt", f"{path.stem}-{offset}.bin", data[offset:])
            damaged += 1
            logger.warning(
                "Spool segment %s ends with %d bytes of a record cut short (a crash in "
                "the middle of an append, which never returned, or a damaged length "
                "field); moved to %s/corrupt/.",
                path,
                len(data) - offset,
                directory,
            )
        else:
            damaged += 1
            quarantine(directory, "corrupt", f"{path.stem}-{offset}.bin", data[offset:stop])
            logger.error(
                "Spool segment %s: %d bytes at offset %d fail their checksum; moved to "
                "%s/corrupt/ (check the disk); the records after them are kept.",
                path,
                stop - offset,
                offset,
                directory,
            )
        if resume is None:
            break
        offset = resume
    if damaged or len(good) != len(data):
        temporary = path.with_suffix(".tmp")
        with open(temporary, "wb") as handle:
            handle.write(good)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        fsync_directory(directory)
    return damaged


def punch_hole(path: Path, offset: int, length: int) -> bool:
    """Deallocate ``length`` bytes at ``offset`` of ``path`` (Linux); False if unsupported.

    Parameters
    ----------
    path : Path
        A segment file.
    offset, length : int
        The byte range, in whole file system blocks (see ``PUNCH_ALIGN``).

    Returns
    -------
    bool
        True if the range was deallocated.
    """
    if not sys.platform.startswith("linux") or length <= 0:
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fallocate = libc.fallocate
        fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
        fd = os.open(path, os.O_WRONLY)
    except (OSError, AttributeError):
        return False
    try:
        mode = _FALLOC_FL_PUNCH_HOLE | _FALLOC_FL_KEEP_SIZE
        return int(fallocate(fd, mode, offset, length)) == 0
    finally:
        os.close(fd)
