"""Options and set-up shared by the benchmarks that run emulated participants live."""

from __future__ import annotations

import argparse
import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from affectstream.models.bundle import ModelBundle


def add_emulated_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--store`` (embedded, default a temp dir) and ``--model`` to ``parser``."""
    parser.add_argument("--store", metavar="PATH", help="embedded store (default: a temp dir)")
    parser.add_argument("--model", metavar="BUNDLE", help="arousal model bundle")


def emulated_bundle(model: str | None) -> ModelBundle | None:
    """The arousal bundle for the emulated devices' modalities (``--model``, or the demo's)."""
    from affectstream.models.bundle import load_bundle
    from affectstream.runtime.estimator import resolve_arousal_bundle

    path = resolve_arousal_bundle(model, {"hr", "hrv", "eda", "eeg"}, allow_demo=True)
    return load_bundle(path, allow_version_mismatch=True) if path is not None else None


@contextlib.contextmanager
def run_store(store: str | None, prefix: str) -> Iterator[Path]:
    """The ``--store`` folder, or a temporary one removed when the run ends."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        yield Path(store) if store else Path(tmp) / "store"
