"""A recording (one session of one participant, streams plus labels) and loader helpers.

Every dataset loader (:mod:`affectstream.models.datasets`) returns a list of
:class:`Recording`: raw streams in the package's canonical units and a label time series.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from affectstream.errors import ConfigError
from affectstream.types import SampleBlock

#: 10-20 neighbours averaged to approximate each Muse electrode.
MUSE_FROM_1020: dict[str, tuple[str, ...]] = {
    "AF7": ("Fp1", "F7"),
    "AF8": ("Fp2", "F8"),
    "TP9": ("T5",),
    "TP10": ("T6",),
}


@dataclass(frozen=True)
class Recording:
    """One continuous session of one subject.

    Parameters
    ----------
    subject : str
        Subject id, unique within the dataset (e.g. ``"S02"``).
    blocks : tuple of SampleBlock
        One block per stream, canonical units (see :data:`affectstream.types.UNITS`).
    labels : pandas.DataFrame
        Column ``"t"`` (seconds since the epoch) and one column per known target in
        :data:`TARGETS` (1 = high, 0 = low, NaN = unknown). A label row holds from its time
        until the next row.
    dataset : str
        Dataset name.
    session : str
        Session id within the subject (e.g. ``"rest"``).
    files : tuple of str
        Source files, for provenance.
    """

    subject: str
    blocks: tuple[SampleBlock, ...]
    labels: pd.DataFrame
    dataset: str
    session: str = "0"
    files: tuple[str, ...] = field(default=())

    @property
    def start(self) -> float:
        """Time of the first sample of any stream (seconds since the epoch)."""
        return min(float(b.t[0]) for b in self.blocks if len(b))

    @property
    def end(self) -> float:
        """Time of the last sample of any stream (seconds since the epoch)."""
        return max(float(b.t[-1]) for b in self.blocks if len(b))

    @property
    def modalities(self) -> tuple[str, ...]:
        """Modalities present, sorted."""
        return tuple(sorted({b.modality for b in self.blocks}))

    def map_blocks(self, change: Callable[[SampleBlock], SampleBlock]) -> Recording:
        """A copy with ``change`` applied to each block, in order (labels and ids kept).

        Parameters
        ----------
        change : callable
            Block -> its replacement (the block itself to keep it).

        Returns
        -------
        Recording
        """
        return replace(self, blocks=tuple(change(b) for b in self.blocks))


def _labels_frame(t: Iterable[float], **targets: Iterable[float]) -> pd.DataFrame:
    frame = pd.DataFrame({"t": np.asarray(list(t), dtype=np.float64)})
    for name, values in targets.items():
        frame[name] = np.asarray(list(values), dtype=np.float64)
    return frame


def channel_block(
    device: str,
    modality: str,
    channels: Sequence[str],
    values: object,
    sfreq: float,
    t0: float,
    where: str,
) -> SampleBlock:
    """A regular block of stream ``<device>/<modality>`` whose columns must be ``channels``.

    Parameters
    ----------
    device, modality : str
        Names the stream ``<device>/<modality>``.
    channels : sequence of str
        Channel names, one per column of ``values``.
    values : array-like, shape (n,) or (n, len(channels))
        Samples, already in the canonical unit.
    sfreq, t0 : float
        Sampling rate (Hz) and time of the first sample (s).
    where : str
        What the values came from (file and key), for the error message.

    Returns
    -------
    SampleBlock

    Raises
    ------
    ConfigError
        When ``values`` has another number of columns than ``channels``.
    """
    array = np.asarray(values, dtype=np.float64)
    array = array.reshape(array.shape[0], -1)
    if array.shape[1] != len(channels):
        raise ConfigError(
            f"{where} has {array.shape[1]} column(s); expected {len(channels)} "
            f"({', '.join(channels)})."
        )
    return SampleBlock.regular(
        f"{device}/{modality}", modality, tuple(channels), array, sfreq, t0, device=device
    )


def select_subjects(
    subjects: Sequence[str] | None, available: Sequence[str], dataset: str, where: Path
) -> list[str]:
    """The subjects to load: all ``available`` ones, or those asked for if all are there.

    Raises :class:`ConfigError` naming the first subject asked for that is missing and the
    available ones; ``dataset`` and ``where`` (the folder searched) are for that message.
    """
    if subjects is None:
        return list(available)
    for subject in subjects:
        if subject not in available:
            raise ConfigError(
                f"{dataset} subject {subject!r} not found in {str(where)!r}; available: "
                f"{', '.join(available)}."
            )
    return list(subjects)


def _find_dataset_folder(path: Path, name: str, marker: str) -> Path:
    """Accept the dataset folder itself or a parent holding ``name/``."""
    path = Path(path)
    if (path / marker).exists():
        return path
    if (path / name / marker).exists():
        return path / name
    raise ConfigError(
        f"No {name} dataset at {str(path)!r}: expected {marker!r} inside it (or inside "
        f"{str(path / name)!r}). Pass --data pointing at the {name} folder."
    )
