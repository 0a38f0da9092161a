"""The feature-table cache: parquet files keyed by the settings *and the code* that made them.

A cached table is only as current as the code that computed it. The key therefore holds,
beside the dataset, windowing and rates the caller passes and the package version, a
fingerprint of the source of every module between a dataset folder and a feature row
(:data:`FEATURE_CODE`: the signal package, the dataset loaders, the window labelling and
every package module they import, which tests/models/test_feature_cache.py checks by walking
the imports). Editing any of them -- a fixed EDA filter, a loader that reads a column
differently -- gives new keys, so ``train``/``evaluate`` recompute instead of silently
reusing stale features. The fingerprint is computed once per process: 41 files, 0.37 MB,
about 3 ms (docs/models.md, "Feature cache", gives the command).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pandas as pd

logger = logging.getLogger(__name__)

#: Package root the :data:`FEATURE_CODE` patterns are relative to.
PACKAGE_ROOT = Path(__file__).resolve().parent.parent
#: Source files (glob patterns under :data:`PACKAGE_ROOT`) whose code decides a cached
#: feature table: the feature extraction itself, the file readers, the dataset loaders, the
#: window labelling and every package module they import (tests/models/test_feature_cache.py
#: walks the imports from what ``build_features`` computes a table with and checks each file
#: is here). Changing any of them changes :func:`feature_code_fingerprint`.
FEATURE_CODE = (
    "signal/*.py",
    "io/*.py",
    "types.py",
    "waveforms.py",  # the ECG and SCR shapes of the synthetic dataset (signal/synthetic.py)
    "errors.py",
    "_validate.py",
    "models/_names.py",
    "models/features.py",
    "models/recording.py",
    "models/datasets.py",
    "models/stress_predict.py",
    "models/wrist_protocols.py",
    "models/eegmat.py",
    "models/pickled.py",
    "models/synthetic.py",
)


def code_fingerprint(files: Iterable[Path], root: Path = PACKAGE_ROOT) -> str:
    """Hash of the contents of source files, each under its path relative to ``root``.

    Parameters
    ----------
    files : iterable of Path
        The source files; the order does not matter.
    root : Path
        Paths are hashed relative to it, so the same code at another place hashes the same.

    Returns
    -------
    str
        16 hex digits; the same files with the same contents give the same value.
    """
    digest = hashlib.sha256()
    for path in sorted(Path(f) for f in files):
        name = path.relative_to(root) if path.is_relative_to(root) else Path(path.name)
        # as_posix: the same relative path hashes the same on every platform.
        digest.update(name.as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def feature_code_files(root: Path = PACKAGE_ROOT) -> list[Path]:
    """The files :data:`FEATURE_CODE` names, under ``root``.

    Parameters
    ----------
    root : Path

    Returns
    -------
    list of Path
        Sorted, without duplicates.
    """
    return sorted({p for pattern in FEATURE_CODE for p in root.glob(pattern) if p.is_file()})


@functools.cache
def feature_code_fingerprint() -> str:
    """Fingerprint of the installed feature code (:data:`FEATURE_CODE`), once per process.

    Returns
    -------
    str
        ``"no-source"`` when the sources are not installed (the package version then
        stands alone in :func:`cache_key`).
    """
    files = feature_code_files()
    if not files:
        logger.warning(
            "no feature source files under %s: cached features are keyed by the package "
            "version only",
            PACKAGE_ROOT,
        )
        return "no-source"
    return code_fingerprint(files)


def cache_key(**parts: Any) -> str:
    """Stable short hash of the settings and the code that determine a feature table.

    Parameters
    ----------
    **parts
        JSON-serialisable settings (dataset, folder, windowing, modalities, rates...).

    Returns
    -------
    str
        16 hex digits over ``parts``, the package version and
        :func:`feature_code_fingerprint`.
    """
    from affectstream import __version__

    blob = json.dumps(
        {**parts, "version": __version__, "code": feature_code_fingerprint()},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cached_recording_features(
    cache_dir: Path | None,
    key: str,
    compute: Callable[[], pd.DataFrame],
) -> pd.DataFrame:
    """Return the feature table stored under ``key``, computing and storing it when absent.

    Parameters
    ----------
    cache_dir : path or None
        Folder of ``<key>.parquet`` files; ``None`` disables caching.
    key : str
        From :func:`cache_key`.
    compute : callable
        Builds the table.

    Returns
    -------
    pandas.DataFrame
    """
    if cache_dir is None:
        return compute()
    path = Path(cache_dir) / f"{key}.parquet"
    if path.is_file():
        logger.info("features from cache %s", path)
        return pd.read_parquet(path)
    frame = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path)
    logger.info("features cached at %s", path)
    return frame
