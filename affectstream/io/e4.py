"""Read an Empatica E4 export (a folder or the .zip E4 connect gives) into sample blocks.

The files are read by :func:`affectstream.models.datasets.read_e4_folder`, the reader the
Stress-Predict loader uses, so a replayed E4 session and a training recording are the same
numbers. ``tags*.csv`` (the button presses) are the session's markers.
"""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path

import numpy as np

from affectstream.errors import ConfigError
from affectstream.types import FloatArray, SampleBlock

#: Files an E4 export holds (the reader needs all of them).
E4_FILES = ("EDA.csv", "BVP.csv", "HR.csv", "TEMP.csv", "ACC.csv", "IBI.csv")
#: Largest total size of a zip's members read (bytes): a zip bomb is refused, not unpacked.
MAX_ZIP_BYTES = 2 * 1024**3


def is_e4_folder(path: Path) -> bool:
    """Whether ``path`` is a folder holding an E4 export."""
    return path.is_dir() and all((path / name).is_file() for name in E4_FILES)


def read_e4_tags(folder: Path) -> FloatArray:
    """Unix times of the E4 button presses (``tags.csv`` or ``tags_<id>.csv``), if any."""
    times: list[float] = []
    for path in sorted(folder.glob("tags*.csv")):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                times.append(float(line.split(",")[0]))
            except ValueError:
                raise ConfigError(
                    f"{str(path)!r}: line {line!r} is no Unix time; E4 tag files hold one "
                    "time per line."
                ) from None
    return np.asarray(sorted(times), dtype=np.float64)


def read_e4(path: Path) -> tuple[list[SampleBlock], FloatArray]:
    """Read an E4 export folder or zip.

    Parameters
    ----------
    path : Path
        A folder with :data:`E4_FILES`, or a ``.zip`` holding them (at its root or in one
        folder).

    Returns
    -------
    blocks : list of SampleBlock
        EDA, BVP (as ``ppg``), temperature, acceleration, heart rate and RR intervals.
    tags : ndarray
        Unix times of the tag presses.
    """
    from affectstream.models.datasets import read_e4_folder

    if path.is_dir():
        return list(read_e4_folder(path)), read_e4_tags(path)
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            if sum(m.file_size for m in members) > MAX_ZIP_BYTES:
                raise ConfigError(
                    f"{str(path)!r} unpacks to more than {MAX_ZIP_BYTES // 1024**3} GB; "
                    "unpack it yourself and replay the folder."
                )
            with tempfile.TemporaryDirectory(prefix="affectstream-e4-") as tmp:
                archive.extractall(tmp)
                root = Path(tmp)
                folders = [root, *(p for p in root.rglob("*") if p.is_dir())]
                found = next((f for f in folders if is_e4_folder(f)), None)
                if found is None:
                    raise ConfigError(
                        f"{str(path)!r} holds no E4 export: expected {', '.join(E4_FILES)}."
                    )
                return list(read_e4_folder(found)), read_e4_tags(found)
    except zipfile.BadZipFile:
        raise ConfigError(f"{str(path)!r} is not a readable zip file.") from None
