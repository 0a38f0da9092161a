"""Process memory: where resident memory sits, and giving allocator retention back.

A long live session allocates in bursts (a device's backlog after a stall, a larger
feature batch). The Python heap gives that memory back, but two allocators below it keep
it resident after it is freed, so RSS creeps up with every new, larger burst
(``affectstream bench soak``, docs/runtime.md):

- glibc's per-thread malloc arenas (the compute and store worker threads each get one):
  free chunks inside an arena stay resident. Worse, glibc raises its mmap threshold (up
  to 32 MiB) each time a block it had mapped on its own is freed, so after one large
  array every array up to that size comes from an arena, and the holes they leave stay
  resident. :func:`pin_malloc_thresholds` turns that raise off; ``malloc_trim(0)``
  returns the free pages of every arena.
- pyarrow's default memory pool (pandas >= 3 keeps ``str`` columns in Arrow buffers), which
  is mimalloc in a 1 GiB reservation advised for transparent huge pages: one small string
  column makes 2 MiB pages resident, and the pool keeps them after the column is freed.
  ``MemoryPool.release_unused()`` returns them.

:class:`MemoryKeeper` pins glibc's thresholds once and runs both releases at most once per
interval in the session's compute worker thread (mimalloc returns only the calling
thread's free pages; the worker allocates them).
:func:`native_memory` and :func:`mapping_breakdown` (``/proc/self/smaps``) show the parts.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import threading
import time
from typing import Any

from affectstream._validate import check_positive

logger = logging.getLogger(__name__)

__all__ = [
    "RELEASE_INTERVAL_S",
    "MemoryKeeper",
    "mapping_breakdown",
    "native_memory",
    "pin_malloc_thresholds",
    "release_retained",
    "rss_bytes",
]

#: Seconds between two :func:`release_retained` calls of a live session. A trim costs a few
#: milliseconds of the event loop (``bench soak`` reports it); once a minute bounds the
#: retention to about one minute's worth of bursts.
RELEASE_INTERVAL_S = 60.0
#: Blocks of at least this many bytes get a mapping of their own, unmapped when freed.
MMAP_THRESHOLD = 64 << 10
#: Free space above an arena's last block in use is given back beyond this many bytes.
TRIM_THRESHOLD = 128 << 10
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (<malloc.h>)
_pinned = False
_GLIBC_HEAP_MAX = 64 << 20  # a glibc thread arena's reservation (HEAP_MAX_SIZE, 64-bit)
_RESERVATION = 256 << 20  # anonymous mappings this large are an allocator's reserved space


def rss_bytes() -> int:
    """Resident memory of this process in bytes (Linux ``/proc``; else the peak).

    Returns
    -------
    int
    """
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def native_memory() -> dict[str, float]:
    """Where memory outside the Python heap sits: threads, glibc's heap, pyarrow's pool.

    Returns
    -------
    dict
        ``threads`` (Python's); on Linux ``os_threads`` and ``anon_mb``, ``file_mb``,
        ``shmem_mb`` (the parts of RSS) and :func:`mapping_breakdown`; with glibc
        ``malloc_used_mb`` (in use), ``malloc_free_mb`` (free but kept by the allocator)
        and ``mmap_mb``; with a shared SQLite library ``sqlite_mb`` and ``sqlite_peak_mb``
        (its page caches and statements, part of ``malloc_used_mb``); with pyarrow loaded
        ``arrow_pool_mb`` (allocated from its pool) and ``arrow_peak_mb``.
    """
    out: dict[str, float] = {"threads": float(threading.active_count())}
    out.update(_rss_parts())
    out.update(mapping_breakdown())
    info = _mallinfo2()
    if info is not None:
        out.update(info)
    sqlite = _sqlite_memory()
    if sqlite is not None:
        out.update(sqlite)
    arrow = sys.modules.get("pyarrow")
    if arrow is not None:
        pool = arrow.default_memory_pool()
        out["arrow_pool_mb"] = round(pool.bytes_allocated() / 1e6, 2)
        out["arrow_peak_mb"] = round(pool.max_memory() / 1e6, 2)
    return out


def mapping_breakdown(path: str = "/proc/self/smaps") -> dict[str, float]:
    """Anonymous resident memory by kind of mapping (Linux; empty elsewhere).

    Parameters
    ----------
    path : str
        An ``smaps`` file (another process's for diagnosis).

    Returns
    -------
    dict
        MB of anonymous RSS in ``map_heap_mb`` (the brk heap: glibc's main arena),
        ``map_arenas_mb`` (glibc's per-thread arenas: 64 MiB-aligned reservations),
        ``map_reserved_mb`` (mappings of 256 MiB or more: an allocator's reservation such
        as pyarrow's mimalloc), ``map_stacks_mb`` (thread stacks: after a guard page),
        ``map_other_mb`` (the rest: CPython's 1 MiB object arenas, large ``malloc`` blocks,
        numpy and BLAS buffers) and ``anon_huge_mb`` (transparent huge pages among them).
    """
    try:
        with open(path) as handle:
            maps = _parse_smaps(handle)
    except OSError:
        return {}
    sums = dict.fromkeys(("heap", "arenas", "reserved", "stacks", "other", "huge"), 0)
    previous: dict[str, Any] | None = None
    for index, mapping in enumerate(maps):
        kind = _kind(mapping, previous, maps[index + 1] if index + 1 < len(maps) else None)
        previous = mapping
        if kind is not None:
            sums[kind] += mapping["Anonymous"]
            sums["huge"] += mapping["AnonHugePages"]
    names = {"huge": "anon_huge_mb"}
    return {names.get(key, f"map_{key}_mb"): round(kb / 1e3, 2) for key, kb in sums.items()}


def _parse_smaps(lines: Any) -> list[dict[str, Any]]:
    maps: list[dict[str, Any]] = []
    for line in lines:
        head, _, rest = line.partition(" ")
        if "-" in head and not head.endswith(":"):  # "start-end perms offset dev inode path"
            start, _, end = head.partition("-")
            fields = rest.split(maxsplit=4)
            maps.append(
                {
                    "start": int(start, 16),
                    "end": int(end, 16),
                    "perms": fields[0],
                    "path": fields[4].strip() if len(fields) > 4 else "",
                    "Anonymous": 0,
                    "AnonHugePages": 0,
                }
            )
        elif maps and head in ("Anonymous:", "AnonHugePages:"):
            maps[-1][head[:-1]] = int(rest.split()[0])
    return maps


def _kind(
    mapping: dict[str, Any], previous: dict[str, Any] | None, following: dict[str, Any] | None
) -> str | None:
    """Which part of anonymous memory a mapping is (None: file-backed or special)."""
    path = mapping["path"]
    if path == "[heap]":
        return "heap"
    if path or not mapping["Anonymous"]:
        return None
    size = mapping["end"] - mapping["start"]
    if size >= _RESERVATION:
        return "reserved"
    # glibc maps a thread arena at a 64 MiB boundary and opens it (read-write) as it grows;
    # the rest of the reservation follows as a PROT_NONE mapping.
    if mapping["start"] % _GLIBC_HEAP_MAX == 0 and size <= _GLIBC_HEAP_MAX:
        closed_rest = (
            following is not None
            and following["start"] == mapping["end"]
            and following["perms"].startswith("---")
        )
        if size == _GLIBC_HEAP_MAX or closed_rest:
            return "arenas"
    guard = previous is not None and previous["end"] == mapping["start"]
    if guard and previous is not None and previous["perms"].startswith("---"):
        return "stacks"  # a thread stack sits just above its (anonymous) guard page
    return "other"


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
            "uordblks", "fordblks", "keepcost",
        )
    ]  # fmt: skip


def _rss_parts() -> dict[str, float]:
    """RSS split by kind (Linux): anonymous (heaps, arrays) vs file-backed (code pages of
    libraries faulted in as new code paths run, memory-mapped files)."""
    out: dict[str, float] = {}
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key in ("RssAnon", "RssFile", "RssShmem"):
                    out[f"{key[3:].lower()}_mb"] = round(int(value.split()[0]) / 1e3, 2)
                elif key == "Threads":  # native ones too (OpenMP, OpenBLAS, liblsl)
                    out["os_threads"] = float(value)
    except (OSError, ValueError, IndexError):
        pass
    return out


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(None)
    except OSError:
        return None


def _mallinfo2() -> dict[str, float] | None:
    """glibc's own account of its heap, all arenas (None off glibc or before glibc 2.33)."""
    libc = _libc()
    call = getattr(libc, "mallinfo2", None)
    if call is None:
        return None
    call.restype = _MallInfo2
    info = call()
    return {
        "malloc_used_mb": round(info.uordblks / 1e6, 2),
        "malloc_free_mb": round(info.fordblks / 1e6, 2),
        "mmap_mb": round(info.hblkhd / 1e6, 2),
    }


def _sqlite_memory() -> dict[str, float] | None:
    """SQLite's count of its own heap (None when the sqlite3 module links it statically or
    it is not loaded: ``RTLD_NOLOAD`` never loads a second copy)."""
    try:
        lib = ctypes.CDLL("libsqlite3.so.0", mode=getattr(os, "RTLD_NOLOAD", 0))
        used, peak = lib.sqlite3_memory_used, lib.sqlite3_memory_highwater
    except (OSError, AttributeError):
        return None
    used.restype = peak.restype = ctypes.c_int64
    peak.argtypes = [ctypes.c_int]
    return {"sqlite_mb": round(used() / 1e6, 2), "sqlite_peak_mb": round(peak(0) / 1e6, 2)}


def pin_malloc_thresholds(
    mmap_threshold: int = MMAP_THRESHOLD, trim_threshold: int = TRIM_THRESHOLD
) -> bool:
    """Fix glibc's mmap and trim thresholds for this process, so large freed blocks go back.

    By default glibc raises both thresholds whenever a block it had mapped on its own is
    freed; after a burst, blocks up to that size come from an arena instead, and the holes
    they leave stay resident. In a long session that was most of the RSS growth after
    warm-up (docs/runtime.md, "Long runs"). Setting the thresholds (``mallopt``, the same as
    ``GLIBC_TUNABLES=glibc.malloc.mmap_threshold=...:glibc.malloc.trim_threshold=...``)
    turns the raise off. It applies to the whole process, from then on.

    Nothing is changed off glibc, when the environment already tunes glibc's malloc
    (``GLIBC_TUNABLES`` naming ``glibc.malloc``, or a ``MALLOC_*_`` variable: the user's
    choice wins), or when it was done before in this process.

    Parameters
    ----------
    mmap_threshold : int
        Bytes from which a block gets its own mapping.
    trim_threshold : int
        Free bytes at the top of an arena above which glibc gives them back.

    Returns
    -------
    bool
        True when this call set them.
    """
    global _pinned
    user_tuned = "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", "") or any(
        key.startswith("MALLOC_") and key.endswith("_") for key in os.environ
    )
    libc = _libc()
    # musl has a mallopt that does nothing: only glibc's (which has this function) counts.
    mallopt = getattr(libc, "mallopt", None) if hasattr(libc, "gnu_get_libc_version") else None
    if _pinned or user_tuned or mallopt is None:
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    done = bool(mallopt(_M_MMAP_THRESHOLD, mmap_threshold)) and bool(
        mallopt(_M_TRIM_THRESHOLD, trim_threshold)
    )
    _pinned = True
    if not done:
        logger.warning("memory: glibc refused the malloc thresholds; RSS may creep up")
    return done


def release_retained() -> float:
    """Give memory that allocators hold free back to the OS (see the module docstring).

    Calls glibc's ``malloc_trim(0)`` (every arena, free pages inside them too) and, when
    pyarrow is loaded, ``release_unused()`` of its default memory pool. Elsewhere (musl,
    macOS, no pyarrow) the missing part is skipped.

    Returns
    -------
    float
        Bytes of RSS given back (RSS before minus after; can be slightly negative when
        another thread allocated meanwhile).
    """
    before = rss_bytes()
    libc = _libc()
    trim = getattr(libc, "malloc_trim", None)
    if trim is not None:
        trim.argtypes = [ctypes.c_size_t]
        trim(0)
    arrow = sys.modules.get("pyarrow")  # never import it just for this
    # getattr: another thread may be importing pyarrow right now (a half-made module).
    pool = getattr(arrow, "default_memory_pool", None)
    if pool is not None:
        pool().release_unused()
    return float(before - rss_bytes())


class MemoryKeeper:
    """Run :func:`release_retained` at most once per ``interval`` seconds, and count it.

    A keeper with an interval also pins glibc's thresholds (:func:`pin_malloc_thresholds`).

    Parameters
    ----------
    interval : float or None
        Seconds between releases; None turns them off, and leaves the thresholds alone
        (for comparison runs).

    Attributes
    ----------
    releases : int
        How many releases ran.
    released_bytes : float
        RSS they gave back in total.
    seconds : float
        Time they took in total (the caller's thread is blocked meanwhile).
    """

    def __init__(self, interval: float | None = RELEASE_INTERVAL_S) -> None:
        if interval is not None:
            check_positive("memory release interval", interval)
            pin_malloc_thresholds()
        self.interval = interval
        self.releases = 0
        self.released_bytes = 0.0
        self.seconds = 0.0
        self._last = time.monotonic()

    def due(self) -> bool:
        """Whether an interval has passed since the last release (or the start).

        Returns
        -------
        bool
        """
        return self.interval is not None and time.monotonic() - self._last >= self.interval

    def maybe_release(self) -> bool:
        """Release when :meth:`due`. Call it in the thread that allocates most: pyarrow's
        mimalloc gives back only the calling thread's free pages (glibc's trim covers all).

        Returns
        -------
        bool
            True when it released.
        """
        if not self.due():
            return False
        now = time.monotonic()
        try:
            freed = release_retained()
        except (OSError, RuntimeError, ValueError, MemoryError) as exc:
            # Best effort: a failed release must never stop the session's features.
            logger.warning("memory: could not give back retained memory (%s)", exc)
            freed = 0.0
        self._last = time.monotonic()
        self.releases += 1
        self.released_bytes += freed
        self.seconds += self._last - now
        logger.debug("memory: gave back %.2f MB in %.1f ms", freed / 1e6, (self._last - now) * 1e3)
        return True

    def stats(self) -> dict[str, float]:
        """The counters for a report.

        Returns
        -------
        dict
            ``releases``, ``released_mb`` and ``release_ms`` (total time).
        """
        return {
            "releases": float(self.releases),
            "released_mb": round(self.released_bytes / 1e6, 2),
            "release_ms": round(self.seconds * 1e3, 1),
        }
