"""Dataset loaders: per-subject :class:`~affectstream.types.SampleBlock` streams plus labels.

Every loader returns a list of :class:`Recording`: one continuous session of one subject, with
its raw streams in the package's canonical units and a label time series. Features are then
computed by :func:`affectstream.models.features.recording_features`, which calls the signal
layer's batch extractor, so training and live inference share one feature code path.

Two of the public formats (WESAD, DEAP) are Python pickles. Unpickling can execute code, so
their loaders refuse to run unless the caller passes ``trust_pickle=True`` after checking where
the files come from.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from affectstream.models._names import DATASETS, TARGETS
from affectstream.models.eegmat import load_eegmat, read_muse_like_edf
from affectstream.models.pickled import (
    DEAP_CHANNELS,
    DEAP_MUSE,
    DEAP_PRETRIAL_S,
    DEAP_RATE,
    WESAD_AROUSAL,
    load_deap,
    load_wesad,
)
from affectstream.models.recording import (
    MUSE_FROM_1020,
    Recording,
    _find_dataset_folder,
    _labels_frame,
    select_subjects,
)
from affectstream.models.stress_predict import load_stress_predict, read_e4_folder

# The loaders live in one module per dataset (recording.py, stress_predict.py, eegmat.py,
# pickled.py, wrist_protocols.py); their names stay importable from here.
__all__ = [
    "DATASETS",
    "DEAP_CHANNELS",
    "DEAP_MUSE",
    "DEAP_PRETRIAL_S",
    "DEAP_RATE",
    "MUSE_FROM_1020",
    "TARGETS",
    "WESAD_AROUSAL",
    "Recording",
    "_find_dataset_folder",
    "_labels_frame",
    "load_dataset",
    "load_deap",
    "load_eegmat",
    "load_stress_predict",
    "load_wesad",
    "read_e4_folder",
    "read_muse_like_edf",
    "select_subjects",
]


def load_dataset(
    name: str,
    path: Path | str,
    subjects: Sequence[str] | None = None,
    *,
    trust_pickle: bool = False,
) -> list[Recording]:
    """Load a dataset by name.

    Parameters
    ----------
    name : str
        One of :data:`DATASETS`.
    path : path
        Dataset folder (for ``"synthetic"``, ignored).
    subjects : sequence of str, optional
        Restrict to these subjects.
    trust_pickle : bool
        Required for the pickle formats (``"wesad"``, ``"deap"``).

    Returns
    -------
    list of Recording
    """
    from affectstream._validate import check_option
    from affectstream.models.synthetic import synthetic_recordings
    from affectstream.models.wrist_protocols import load_noneeg, load_wesad_e4

    check_option("dataset", name, DATASETS)
    if name == "stress-predict":
        return load_stress_predict(path, subjects)
    if name == "noneeg":
        return load_noneeg(path, subjects)
    if name == "wesad-e4":
        return load_wesad_e4(path, subjects)
    if name == "eegmat":
        return load_eegmat(path, subjects)
    if name == "wesad":
        return load_wesad(path, subjects, trust_pickle=trust_pickle)
    if name == "deap":
        return load_deap(path, subjects, trust_pickle=trust_pickle)
    return synthetic_recordings()
