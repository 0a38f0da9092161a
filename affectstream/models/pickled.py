"""Loaders of the pickle-based formats (WESAD, DEAP): they run only with ``trust_pickle``.

Unpickling can execute code, so these loaders refuse to run unless the caller passes
``trust_pickle=True`` after checking where the files come from.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from affectstream.errors import ConfigError
from affectstream.models.recording import (
    Recording,
    _labels_frame,
    channel_block,
    select_subjects,
)
from affectstream.types import SampleBlock


def _load_trusted_pickle(path: Path, trust_pickle: bool, what: str) -> Any:
    if not trust_pickle:
        raise ConfigError(
            f"{what} files are Python pickles, and unpickling can execute code. Refusing to "
            f"load {str(path)!r}: pass trust_pickle=True (CLI: --trust-pickle) only for files "
            f"you obtained from the dataset authors."
        )
    if not path.is_file():
        raise ConfigError(f"Missing {what} file {str(path)!r}.")
    try:
        with path.open("rb") as handle:
            # Trusted by the caller's explicit choice above; the formats are pickles (py2).
            return pickle.load(handle, encoding="latin1")
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        AttributeError,
        ImportError,
        IndexError,
        KeyError,
        TypeError,
        OverflowError,
    ) as exc:
        # A damaged pickle runs its own opcodes, which fail in any of these ways; they
        # are the file's errors, not this module's (nothing of ours runs inside load).
        raise ConfigError(f"Corrupt {what} file {str(path)!r}: {exc!r}.") from None


def _require(mapping: Any, key: str, path: Path, what: str) -> Any:
    if not isinstance(mapping, dict) or key not in mapping:
        keys = sorted(mapping) if isinstance(mapping, dict) else type(mapping).__name__
        raise ConfigError(f"{what} file {str(path)!r} lacks {key!r} (found {keys}).")
    return mapping[key]


#: WESAD's protocol codes mapped to arousal: 2 = stress is high; 1 = baseline is low.
#: Amusement (3), meditation (4), transient (0) and 5-7 are not scored.
WESAD_AROUSAL = {1: 0.0, 2: 1.0}


def load_wesad(
    path: Path | str, subjects: Sequence[str] | None = None, *, trust_pickle: bool = False
) -> list[Recording]:
    """Load WESAD per-subject pickles (wrist E4 streams plus chest ECG).

    Parameters
    ----------
    path : path
        WESAD folder holding ``SX/SX.pkl`` (or ``SX.pkl`` directly).
    subjects : sequence of str, optional
        Subject ids such as ``"S2"``; default all found.
    trust_pickle : bool
        Must be True: the files are pickles and loading them can run code.

    Returns
    -------
    list of Recording
        Wrist ``eda``, ``ppg``, ``temp``, ``acc`` (1/64 g → g) and chest ``ecg`` (mV → µV);
        ``arousal`` from :data:`WESAD_AROUSAL`. The pickles carry no wall-clock time, so
        the session starts at t = 0.
    """
    root = Path(path)
    found = {p.stem: p for p in sorted(root.glob("S*/S*.pkl")) + sorted(root.glob("S*.pkl"))}
    if not found:
        raise ConfigError(f"No WESAD pickles (SX/SX.pkl) under {str(root)!r}.")
    recordings = []
    for subject in select_subjects(subjects, sorted(found), "WESAD", root):
        file = found[subject]
        content = _load_trusted_pickle(file, trust_pickle, "WESAD")
        signal = _require(content, "signal", file, "WESAD")
        wrist = _require(signal, "wrist", file, "WESAD")
        chest = _require(signal, "chest", file, "WESAD")
        codes = np.asarray(_require(content, "label", file, "WESAD"), dtype=np.float64).ravel()
        device = f"wesad-{subject}"
        spec = (
            (wrist, "EDA", "eda", ("eda",), 4.0, 1.0),
            (wrist, "BVP", "ppg", ("bvp",), 64.0, 1.0),
            (wrist, "TEMP", "temp", ("temp",), 4.0, 1.0),
            (wrist, "ACC", "acc", ("x", "y", "z"), 32.0, 1.0 / 64.0),
            (chest, "ECG", "ecg", ("ecg",), 700.0, 1000.0),
        )
        blocks = []
        for group, key, modality, channels, rate, scale in spec:
            values = np.asarray(_require(group, key, file, "WESAD"), dtype=np.float64) * scale
            where = f"WESAD {key} in {str(file)!r}"
            blocks.append(channel_block(device, modality, channels, values, rate, 0.0, where))
        # Labels come at the chest rate (700 Hz); keep only the rows where the code changes.
        change = np.flatnonzero(np.r_[True, np.diff(codes) != 0])
        arousal = [WESAD_AROUSAL.get(int(c), np.nan) for c in codes[change]]
        recordings.append(
            Recording(
                subject=subject,
                blocks=tuple(blocks),
                labels=_labels_frame(change / 700.0, arousal=arousal),
                dataset="wesad",
                files=(str(file),),
            )
        )
    return recordings


#: DEAP preprocessed channel order (Geneva layout), used to pick Muse-like EEG channels.
DEAP_CHANNELS = (
    "Fp1", "AF3", "F3", "F7", "FC5", "FC1", "C3", "T7", "CP5", "CP1", "P3", "P7", "PO3", "O1",
    "Oz", "Pz", "Fp2", "AF4", "Fz", "F4", "F8", "FC6", "FC2", "Cz", "C4", "T8", "CP6", "CP2", "P4",
    "P8", "PO4", "O2", "hEOG", "vEOG", "zEMG", "tEMG", "GSR", "Resp", "Plet", "Temp",
)  # fmt: skip
#: DEAP has no T5/T6; TP9/TP10 sit between T7/P7 and T8/P8.
DEAP_MUSE = {"AF7": ("Fp1", "F7"), "AF8": ("Fp2", "F8"), "TP9": ("T7", "P7"), "TP10": ("T8", "P8")}
DEAP_RATE = 128.0
DEAP_PRETRIAL_S = 3.0


def load_deap(
    path: Path | str, subjects: Sequence[str] | None = None, *, trust_pickle: bool = False
) -> list[Recording]:
    """Load DEAP's preprocessed Python files (``sXX.dat``): EEG and plethysmograph per trial.

    Parameters
    ----------
    path : path
        Folder holding ``s01.dat`` ...
    subjects : sequence of str, optional
        Subject ids such as ``"s01"``; default all found.
    trust_pickle : bool
        Must be True: the files are pickles and loading them can run code.

    Returns
    -------
    list of Recording
        One per trial (session ``"trial01"`` ...): Muse-like ``eeg`` (µV, :data:`DEAP_MUSE`)
        and ``ppg``; ``valence`` and ``arousal`` are 1 when the 1-9 rating is above 5. The
        3-s pre-trial segment is dropped. Trials are placed 100 s apart from t = 0.
    """
    root = Path(path)
    found = {p.stem: p for p in sorted(root.glob("s*.dat"))}
    if not found:
        raise ConfigError(f"No DEAP preprocessed files (sXX.dat) under {str(root)!r}.")
    index = {name: i for i, name in enumerate(DEAP_CHANNELS)}
    recordings = []
    for subject in select_subjects(subjects, sorted(found), "DEAP", root):
        file = found[subject]
        content = _load_trusted_pickle(file, trust_pickle, "DEAP")
        data = np.asarray(_require(content, "data", file, "DEAP"), dtype=np.float64)
        ratings = np.asarray(_require(content, "labels", file, "DEAP"), dtype=np.float64)
        if data.ndim != 3 or data.shape[1] != len(DEAP_CHANNELS):
            raise ConfigError(
                f"DEAP data in {str(file)!r} has shape {data.shape}; expected (trials, "
                f"{len(DEAP_CHANNELS)} channels, samples)."
            )
        if ratings.shape != (data.shape[0], 4):
            raise ConfigError(
                f"DEAP labels in {str(file)!r} have shape {ratings.shape}; expected "
                f"({data.shape[0]}, 4) = valence, arousal, dominance, liking."
            )
        skip = int(DEAP_PRETRIAL_S * DEAP_RATE)
        for trial in range(data.shape[0]):
            t0 = trial * 100.0
            signals = data[trial, :, skip:]
            eeg = np.stack(
                [np.mean([signals[index[n]] for n in g], axis=0) for g in DEAP_MUSE.values()],
                axis=1,
            )
            device = f"deap-{subject}"
            blocks = (
                SampleBlock.regular(
                    f"{device}/eeg", "eeg", tuple(DEAP_MUSE), eeg, DEAP_RATE, t0, device=device
                ),
                SampleBlock.regular(
                    f"{device}/ppg",
                    "ppg",
                    ("plet",),
                    signals[index["Plet"]],
                    DEAP_RATE,
                    t0,
                    device=device,
                ),
            )
            valence, arousal = ratings[trial, 0], ratings[trial, 1]
            duration = signals.shape[1] / DEAP_RATE
            recordings.append(
                Recording(
                    subject=subject,
                    blocks=blocks,
                    labels=_labels_frame(
                        [t0, t0 + duration],
                        valence=[float(valence > 5), np.nan],
                        arousal=[float(arousal > 5), np.nan],
                    ),
                    dataset="deap",
                    session=f"trial{trial + 1:02d}",
                    files=(str(file),),
                )
            )
    return recordings
