"""Exports over the API: create -> progress -> download, one path for the API and the dashboard.

Formats: ``estimates`` (CSV of estimates, quality, features and events, no raw samples: what
an operator may take away) and every format of ``affectstream export``
(:data:`affectstream.export.FORMATS`: ``csv``, ``parquet``, ``edf``, ``bdf``, ``bids``), which
carry raw samples and so need ``raw:read`` (admin, researcher). The writing is
:func:`affectstream.export.export_session` unchanged, run in a worker thread with its progress
callback feeding the job row; the result is one zip per job under ``exports_dir``. Creating
and downloading are audited.

When API replicas share the metadata database (PostgreSQL), a finished zip is also copied
into it (``export_chunks``, :data:`CHUNK_BYTES` a row) before the job is marked done, so a
download through any replica works: the one that made it sends its file, another streams the
rows. The shared database was chosen over a shared directory (one more thing every replica
would have to mount and agree on) and over redirecting to the owner (replicas do not know
each other's addresses, and the owner may have ended).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from affectstream.api import service
from affectstream.api.db import ExportChunk, ExportJob, process_owner
from affectstream.api.security import Principal, audit
from affectstream.export import FORMATS, Progress, export_session, load_session, write_tables
from affectstream.store import RAW_PREFIX, TimeSeriesStore, default_store_path

logger = logging.getLogger(__name__)

#: Every format offered; ``estimates`` is the one without raw samples.
EXPORT_FORMATS = ("estimates", *FORMATS)
#: Seconds between progress writes to the database.
PROGRESS_INTERVAL = 0.5
#: Bytes per ``export_chunks`` row (a download streams one row at a time).
CHUNK_BYTES = 1 << 20


def default_exports_dir() -> Path:
    """Where finished export zips are kept: ``$AFFECTSTREAM_HOME/exports``.

    Returns
    -------
    pathlib.Path
    """
    return default_store_path().parent / "exports"


def permission(fmt: str) -> str:
    """The permission an export format needs (no raw for ``estimates``).

    Parameters
    ----------
    fmt : str

    Returns
    -------
    str
    """
    return "features:read" if fmt == "estimates" else "raw:read"


def write_zip(
    store: TimeSeriesStore,
    session_id: str,
    fmt: str,
    archive: Path,
    progress: Progress | None = None,
) -> int:
    """Worker thread: export ``session_id`` as ``fmt`` into the zip ``archive``.

    Parameters
    ----------
    store : TimeSeriesStore
    session_id, fmt : str
    archive : pathlib.Path
        Written under a temporary name and moved in when complete.
    progress : callable, optional
        ``(stage, done, total)``.

    Returns
    -------
    int
        Size of the zip in bytes.
    """
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="export-", dir=archive.parent) as tmp:
        out = Path(tmp) / "out"
        if fmt == "estimates":
            data = load_session(store, session_id, progress=progress)
            tables = {k: v for k, v in data.tables.items() if not k.startswith(RAW_PREFIX)}
            write_tables(replace(data, tables=tables), out, "csv")
        else:
            export_session(store, session_id, fmt, out, progress=progress)
        partial = Path(tmp) / "archive.zip"
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(out.rglob("*")):
                if path.is_file():
                    zf.write(path, path.relative_to(out).as_posix())
        partial.replace(archive)
    return archive.stat().st_size


class ExportJobs:
    """Creates export jobs and runs them in the background.

    Parameters
    ----------
    sessions : sessionmaker
        The metadata database.
    store : TimeSeriesStore
    folder : pathlib.Path
        Where the zips go.
    shared : bool
        Replicas share the database: finished zips are copied into it too.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        store: TimeSeriesStore,
        folder: Path,
        *,
        shared: bool = False,
    ):
        self._sessions = sessions
        self._store = store
        self.folder = folder
        self.shared = shared
        self._tasks: set[asyncio.Task[None]] = set()

    def archive(self, job: ExportJob) -> Path:
        """The zip of ``job``.

        Parameters
        ----------
        job : ExportJob

        Returns
        -------
        pathlib.Path
        """
        return self._path(job.id, job.session_id, job.format)

    def _path(self, job_id: int, session_id: str, fmt: str) -> Path:
        return self.folder / f"{job_id}-{session_id}-{fmt}.zip"

    def create(
        self, db: Session, who: Principal, session_id: str, fmt: str, running: bool
    ) -> ExportJob:
        """Check access, record and audit a job (worker thread); :meth:`start` runs it.

        Parameters
        ----------
        db : Session
        who : Principal
        session_id, fmt : str
        running : bool
            Whether the session is still running here (409: stop it first).

        Returns
        -------
        ExportJob
        """
        if fmt not in EXPORT_FORMATS:
            raise service.ConflictError(
                f"Unknown export format {fmt!r}; use one of {EXPORT_FORMATS}."
            )
        service.check(who, permission(fmt))
        row = service.get_session(db, who, session_id)
        if running or row.status == "running":
            raise service.ConflictError(
                f"Session {session_id!r} is still running; stop it, then export."
            )
        job = ExportJob(
            session_id=session_id,
            study_id=row.study_id,
            user_id=who.user_id,
            format=fmt,
            owner=process_owner(),
        )
        db.add(job)
        db.flush()
        audit(db, who, "export", f"session/{session_id}", f"format={fmt}")
        db.commit()
        return job

    def start(self, job: ExportJob) -> asyncio.Task[None]:
        """Run ``job`` in a worker thread (event loop only).

        Parameters
        ----------
        job : ExportJob

        Returns
        -------
        asyncio.Task
        """
        task = asyncio.create_task(asyncio.to_thread(self._run, job.id, job.session_id, job.format))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _update(self, job_id: int, **values: object) -> None:
        with self._sessions() as db:
            job = db.get(ExportJob, job_id)
            if job is None:  # erased meanwhile
                return
            for name, value in values.items():
                setattr(job, name, value)
            db.commit()

    def _run(self, job_id: int, session_id: str, fmt: str) -> None:
        last = [0.0]

        def progress(stage: str, done: int, total: int) -> None:
            now = time.monotonic()
            if now - last[0] >= PROGRESS_INTERVAL:
                last[0] = now
                fraction = min(done / total, 1.0) if total else 0.0
                self._update(job_id, stage=stage[:100], progress=round(0.95 * fraction, 3))

        self._update(job_id, status="running")
        archive = self._path(job_id, session_id, fmt)
        try:
            size = write_zip(self._store, session_id, fmt, archive, progress)
            if self.shared:
                # The rows are then the only copy: every replica serves the same bytes, and
                # an erasure on any replica deletes them (a file here would outlive it).
                self._share(job_id, archive)
                archive.unlink()
        except Exception as exc:  # reported in the job, the way a CLI would print it
            logger.warning("export job %d failed: %s", job_id, exc)
            message = f"{type(exc).__name__}: {exc}"[:2000]
            self._update(job_id, status="failed", error=message, finished_at=time.time())
            return
        self._update(
            job_id, status="done", stage="done", progress=1.0, size=size, finished_at=time.time()
        )

    def _share(self, job_id: int, archive: Path) -> None:
        """Worker thread: copy the zip into ``export_chunks`` (one transaction)."""
        with self._sessions() as db, archive.open("rb") as zf:
            seq = 0
            while chunk := zf.read(CHUNK_BYTES):
                db.add(ExportChunk(job_id=job_id, seq=seq, data=chunk))
                db.flush()  # one row in memory at a time
                db.expunge_all()
                seq += 1
            db.commit()

    def chunks(self, job_id: int) -> Iterator[bytes]:
        """The zip of a shared job from the database, one row per read (a download).

        Parameters
        ----------
        job_id : int

        Yields
        ------
        bytes
        """
        seq = 0
        while True:
            with self._sessions() as db:
                data = db.get(ExportChunk, (job_id, seq))
                if data is None:
                    return
                yield data.data
            seq += 1

    def get(self, db: Session, who: Principal, job_id: int) -> ExportJob:
        """A job the caller may see (its format's permission and its session's study).

        Returns
        -------
        ExportJob
        """
        service.check(who, permission("estimates"))  # before the lookup: ids cannot be probed
        job = db.get(ExportJob, job_id)
        if job is None or not who.may_see_study(job.study_id):
            raise service.NotFoundError(f"No export {job_id}.")
        service.check(who, permission(job.format))
        return job

    def download(self, db: Session, who: Principal, job_id: int) -> tuple[ExportJob, Path | None]:
        """The finished job's zip (audited).

        Returns
        -------
        job : ExportJob
        path : pathlib.Path or None
            The zip on this replica; None: another replica made it, read :meth:`chunks`.
        """
        job = self.get(db, who, job_id)
        if job.status == "failed":
            raise service.ConflictError(f"Export {job_id} failed: {job.error}")
        if job.status != "done":
            raise service.ConflictError(f"Export {job_id} is {job.status}; poll it until done.")
        path = self.archive(job)
        here = path.is_file()
        if not here and (
            not self.shared
            or db.scalar(select(ExportChunk.seq).where(ExportChunk.job_id == job_id).limit(1))
            is None
        ):
            raise service.NotFoundError(
                f"Export {job_id}'s file is gone (or on another replica that does not share "
                "its database); create a new export."
            )
        audit(db, who, "download", f"export/{job_id}", f"session/{job.session_id}")
        db.commit()
        return job, path if here else None

    def remove_files(self, job: ExportJob) -> None:
        """Delete the zip of ``job`` (erasure).

        Parameters
        ----------
        job : ExportJob
        """
        self.archive(job).unlink(missing_ok=True)

    async def close(self) -> None:
        """Let running exports finish (they are threads: they cannot be cancelled)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks))


def cleanup_partial(folder: Path) -> None:
    """Remove temporary folders a killed process left behind (start-up).

    Parameters
    ----------
    folder : pathlib.Path
    """
    for leftover in folder.glob("export-*"):
        shutil.rmtree(leftover, ignore_errors=True)
