"""Exports that never overwrite silently and never leave half-written files.

An export is written into a hidden staging folder inside its destination (same file
system), then each file is moved into place with :func:`os.replace`. Files that already
exist are refused unless ``force``; any ``OSError`` (full disk, read-only folder, a file
where a folder should be) removes what this export wrote and becomes one
:class:`~affectstream.errors.ConfigError` line that says what to do.

File names come from ids (sessions, streams, participants); :func:`unique_names` keeps two
ids that clean up to the same name apart instead of writing both into one file.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from affectstream.errors import ConfigError

logger = logging.getLogger(__name__)

#: Prefix of the staging folders (hidden; removed when an export ends, even on failure).
STAGING_PREFIX = ".affectstream-export-"


def id_hash(text: str) -> str:
    """Eight hex digits that tell ids apart when their cleaned names are equal."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]


def unique_names(ids: Iterable[str], clean: Callable[[str], str]) -> dict[str, str]:
    """Map ids to file-name-safe names, never two ids to one name.

    Each id gets ``clean(id)``; ids whose cleaned names collide (``"dev a/eda"`` and
    ``"dev-a/eda"`` both clean to ``dev-a-eda``) get ``<name>-<id_hash(id)>`` instead, so
    the mapping is the same whatever the order of ``ids``.

    Parameters
    ----------
    ids : iterable of str
    clean : callable
        Id -> file-name-safe name.

    Returns
    -------
    dict of str to str
    """
    distinct = sorted(set(ids))
    cleaned = {i: clean(i) for i in distinct}
    counts: dict[str, int] = {}
    for name in cleaned.values():
        counts[name] = counts.get(name, 0) + 1
    return {i: (n if counts[n] == 1 else f"{n}-{id_hash(i)}") for i, n in cleaned.items()}


def describe_os_error(exc: OSError, where: Path) -> str:
    """One line for an ``OSError`` during an export, with what to do about it.

    Parameters
    ----------
    exc : OSError
    where : Path
        The export's destination.

    Returns
    -------
    str
    """
    path = exc.filename or where
    hints = {
        errno.ENOSPC: "the disk is full; free space or choose another --out",
        errno.EDQUOT: "the disk quota is exceeded; free space or choose another --out",
        errno.EACCES: "permission denied; choose a folder you can write to as --out",
        errno.EPERM: "permission denied; choose a folder you can write to as --out",
        errno.EROFS: "the file system is read-only; choose another --out",
        errno.ENOTDIR: "a file is in the way of a folder; give a folder as --out",
        errno.EEXIST: "a file is in the way of a folder; give a folder as --out",
        errno.ENAMETOOLONG: "a name is too long for this file system (shorten the id)",
    }
    hint = hints.get(exc.errno or 0, "check the --out folder")
    return f"Export to {_short(where)} failed at {_short(path)}: {exc.strerror or exc}; {hint}."


def _short(path: object, limit: int = 160) -> str:
    """A path for a message, shortened in the middle when very long (ids can be)."""
    text = str(path)
    return text if len(text) <= limit else f"{text[: limit // 2]}...{text[-limit // 2 :]}"


@contextlib.contextmanager
def staged(destination: Path) -> Iterator[Path]:
    """A staging folder inside ``destination``, removed on exit whatever happens.

    ``OSError`` raised inside becomes a :class:`ConfigError` (one line, what to do); a
    destination created here is removed again if it is left empty.

    Parameters
    ----------
    destination : Path
        Where the export goes (created if needed).

    Yields
    ------
    Path
        The staging folder to write into.
    """
    created = not destination.exists()
    stage: Path | None = None
    try:
        try:
            if destination.exists() and not destination.is_dir():
                raise ConfigError(
                    f"--out {destination} is a file, not a folder; give a folder as --out."
                )
            destination.mkdir(parents=True, exist_ok=True)
            stage = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=destination))
            yield stage
        except OSError as exc:
            raise ConfigError(describe_os_error(exc, destination)) from exc
    finally:
        if stage is not None:
            shutil.rmtree(stage, ignore_errors=True)
        if created:
            with contextlib.suppress(OSError):
                destination.rmdir()  # only if empty: a failed first export leaves nothing


def existing(stage: Path, destination: Path, keep: Iterable[str] = ()) -> list[Path]:
    """Files of ``stage`` that already exist in ``destination`` (``keep`` names excepted).

    Parameters
    ----------
    stage, destination : Path
    keep : iterable of str
        Relative paths (POSIX) merged or kept rather than replaced.

    Returns
    -------
    list of Path
        Destination paths that would be replaced.
    """
    skip = set(keep)
    return [
        destination / rel
        for rel in _relative_files(stage)
        if rel.as_posix() not in skip and (destination / rel).exists()
    ]


def commit(stage: Path, destination: Path, keep: Iterable[str] = ()) -> list[Path]:
    """Move every file of ``stage`` into ``destination``; undo the moves on failure.

    Parameters
    ----------
    stage, destination : Path
    keep : iterable of str
        Relative paths left as they are when the destination already has them.

    Returns
    -------
    list of Path
        The files moved into ``destination``.
    """
    skip = set(keep)
    moved: list[Path] = []
    try:
        for rel in _relative_files(stage):
            target = destination / rel
            if rel.as_posix() in skip and target.exists():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(stage / rel, target)
            moved.append(target)
    except OSError:
        for path in moved:
            with contextlib.suppress(OSError):
                path.unlink()
        raise
    return moved


def replace_file(path: Path, write: Callable[[Path], object]) -> None:
    """Write ``path`` through a temporary name next to it, renamed when complete.

    Parameters
    ----------
    path : Path
    write : callable
        Writes the content to the path it is given.
    """
    temporary = path.with_name(f".{path.name}.partial")
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


def _relative_files(root: Path) -> list[Path]:
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())
