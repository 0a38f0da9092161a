"""eegmat loader: PhysioNet mental arithmetic vs rest, on Muse-like channels."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from affectstream.errors import ConfigError
from affectstream.models.recording import (
    MUSE_FROM_1020,
    Recording,
    _find_dataset_folder,
    _labels_frame,
    select_subjects,
)
from affectstream.types import SampleBlock


def read_muse_like_edf(path: Path) -> tuple[SampleBlock, float]:
    """Read a 10-20 EDF and return an ``eeg`` block on Muse-like channels (AF7, AF8, TP9, TP10).

    Parameters
    ----------
    path : path
        EDF file with channels named ``EEG Fp1`` ... (``EEG `` prefix optional).

    Returns
    -------
    block : SampleBlock
        EEG in µV; each Muse electrode is the mean of its 10-20 neighbours
        (:data:`MUSE_FROM_1020`).
    duration : float
        Recording length in seconds.
    """
    import mne

    if not Path(path).is_file():
        raise ConfigError(f"Missing EDF file {str(path)!r}.")
    try:
        raw = mne.io.read_raw_edf(path, preload=False, verbose="error")
    except (OSError, ValueError, RuntimeError, IndexError, KeyError, EOFError) as exc:
        # What MNE raises on a damaged or truncated header; anything else is a bug here.
        raise ConfigError(f"Cannot read EDF {str(path)!r}: {exc}. Is the file complete?") from None
    names = {ch.replace("EEG ", "").strip(): ch for ch in raw.ch_names}
    needed = sorted({n for group in MUSE_FROM_1020.values() for n in group})
    missing = [n for n in needed if n not in names]
    if missing:
        raise ConfigError(
            f"EDF {str(path)!r} lacks channels {missing}; expected the 10-20 channels "
            f"{needed} (found {raw.ch_names})."
        )
    data = raw.get_data(picks=[names[n] for n in needed]) * 1e6  # MNE returns volts
    by_name = dict(zip(needed, data, strict=True))
    values = np.stack(
        [np.mean([by_name[n] for n in group], axis=0) for group in MUSE_FROM_1020.values()],
        axis=1,
    )
    meas = raw.info["meas_date"]
    t0 = meas.timestamp() if meas is not None else 0.0
    block = SampleBlock.regular(
        stream="eegmat/eeg",
        modality="eeg",
        channels=tuple(MUSE_FROM_1020),
        values=values,
        sfreq=float(raw.info["sfreq"]),
        t0=t0,
        device="neurocom",
    )
    return block, raw.n_times / float(raw.info["sfreq"])


def load_eegmat(path: Path | str, subjects: Sequence[str] | None = None) -> list[Recording]:
    """Load PhysioNet eegmat (rest vs mental arithmetic) on Muse-like channels.

    Parameters
    ----------
    path : path
        The ``eegmat`` folder (holding ``data/``) or its parent.
    subjects : sequence of str, optional
        Subject ids such as ``"Subject00"``; default all.

    Returns
    -------
    list of Recording
        Two per subject: session ``"rest"`` (``arousal`` 0) and ``"arithmetic"``
        (``arousal`` 1, a cognitive-load contrast). The files' dates are anonymised, so the
        arithmetic session is placed 60 s after the rest session ends.
    """
    root = _find_dataset_folder(Path(path), "eegmat", "data")
    files = sorted((root / "data").glob("Subject*_1.edf"))
    available = [f.name.split("_")[0] for f in files]
    recordings = []
    for subject in select_subjects(subjects, available, "EEGMAT", root / "data"):
        rest_path = root / "data" / f"{subject}_1.edf"
        task_path = root / "data" / f"{subject}_2.edf"
        rest, rest_duration = read_muse_like_edf(rest_path)
        task, task_duration = read_muse_like_edf(task_path)
        shift = float(rest.t[0]) + rest_duration + 60.0 - float(task.t[0])
        task = SampleBlock.regular(
            stream=task.stream,
            modality="eeg",
            channels=task.channels,
            values=task.values,
            sfreq=float(task.sfreq or 0.0),
            t0=float(task.t[0]) + shift,
            device=task.device,
        )
        for session, block, duration, label, file in (
            ("rest", rest, rest_duration, 0.0, rest_path),
            ("arithmetic", task, task_duration, 1.0, task_path),
        ):
            t0 = float(block.t[0])
            recordings.append(
                Recording(
                    subject=subject,
                    blocks=(block,),
                    labels=_labels_frame([t0, t0 + duration], arousal=[label, np.nan]),
                    dataset="eegmat",
                    session=session,
                    files=(str(file),),
                )
            )
    return recordings
