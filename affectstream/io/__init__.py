"""Read recording files into :class:`~affectstream.types.SampleBlock` objects.

:func:`read_recording` picks the reader by file extension: CSV (:func:`read_csv`, layout in
docs/export.md), EDF/BDF (:func:`read_edf`, through MNE) and XDF (:func:`read_xdf`, through
pyxdf, for Lab Streaming Layer users). Every reader converts to the canonical units and
turns missing samples into NaN rows plus gaps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from affectstream.errors import ConfigError
from affectstream.io._grid import estimate_sfreq, regular_block, regular_positions
from affectstream.io.csv import parse_column, read_csv
from affectstream.io.edf import read_edf
from affectstream.io.xdf import read_xdf
from affectstream.types import SampleBlock

__all__ = [
    "RECORDING_SUFFIXES",
    "estimate_sfreq",
    "parse_column",
    "read_csv",
    "read_edf",
    "read_recording",
    "read_xdf",
    "regular_block",
    "regular_positions",
]

#: File extensions :func:`read_recording` understands.
RECORDING_SUFFIXES = (".csv", ".tsv", ".txt", ".edf", ".bdf", ".xdf", ".xdfz")


def read_recording(
    path: str | Path,
    *,
    sfreq: float | None = None,
    t0: float = 0.0,
    units: Mapping[str, str] | None = None,
    modalities: Sequence[str] | None = None,
    skip_unknown: bool = False,
) -> list[SampleBlock]:
    """Read a CSV, EDF/BDF or XDF recording, chosen by the file extension.

    Parameters
    ----------
    path : str or Path
        The file.
    sfreq, t0, units, skip_unknown
        CSV only; see :func:`read_csv`.
    modalities : sequence of str, optional
        Keep only these modalities.

    Returns
    -------
    list of SampleBlock
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv", ".txt"):
        return read_csv(
            path, sfreq=sfreq, t0=t0, units=units, modalities=modalities, skip_unknown=skip_unknown
        )
    if suffix in (".edf", ".bdf"):
        return read_edf(path, modalities=modalities)
    if suffix in (".xdf", ".xdfz"):
        return read_xdf(path, modalities=modalities)
    raise ConfigError(
        f"Cannot tell the format of {str(path)!r} from its extension {suffix!r}; "
        f"use one of {', '.join(RECORDING_SUFFIXES)}."
    )
