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

import logging
import pickle
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from affectstream.errors import ConfigError
from affectstream.models._names import DATASETS, TARGETS
from affectstream.types import FloatArray, SampleBlock

logger = logging.getLogger(__name__)

__all__ = ["DATASETS", "TARGETS", "Recording", "load_dataset"]


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


# --------------------------------------------------------------------------- Stress-Predict


def _read_e4_csv(path: Path) -> tuple[float, float, FloatArray]:
    """Read an Empatica E4 CSV: start time row, sampling-rate row, then samples."""
    if not path.is_file():
        raise ConfigError(f"Missing E4 file {str(path)!r}; re-extract the dataset.")
    try:
        raw = pd.read_csv(path, header=None, skipinitialspace=True, dtype=np.float64)
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ConfigError(
            f"Corrupt E4 file {str(path)!r}: expected numeric rows (start time, sampling "
            f"rate, samples) ({exc}). Re-extract the dataset."
        ) from None
    if raw.shape[0] < 3:
        raise ConfigError(
            f"E4 file {str(path)!r} has {raw.shape[0]} rows; expected a start-time row, a "
            f"sampling-rate row and samples."
        )
    head = raw.to_numpy(dtype=np.float64)
    start, rate = float(head[0, 0]), float(head[1, 0])
    if not (np.isfinite(start) and start > 1e9) or not (np.isfinite(rate) and rate > 0):
        raise ConfigError(
            f"E4 file {str(path)!r} starts with start time {start!r} and rate {rate!r}; "
            f"expected a Unix time in seconds and a positive sampling rate in Hz."
        )
    return start, rate, raw.iloc[2:].to_numpy(dtype=np.float64)


def _read_e4_ibi(path: Path, stream: str, device: str) -> SampleBlock:
    if not path.is_file():
        raise ConfigError(f"Missing E4 file {str(path)!r}; re-extract the dataset.")
    try:
        first = path.read_text().splitlines()[0]
        start = float(first.split(",")[0])
        rows = pd.read_csv(path, header=None, skiprows=1, dtype=np.float64).to_numpy()
    except pd.errors.EmptyDataError:
        rows = np.empty((0, 2))
        start = float(path.read_text().split(",")[0])
    except (ValueError, IndexError, pd.errors.ParserError) as exc:
        raise ConfigError(
            f"Corrupt E4 IBI file {str(path)!r}: expected a 'start, IBI' header then rows of "
            f"(seconds since start, interval in s) ({exc})."
        ) from None
    if rows.ndim != 2 or (rows.size and rows.shape[1] != 2):
        raise ConfigError(f"E4 IBI file {str(path)!r} must have two columns, got {rows.shape}.")
    return SampleBlock(
        stream=stream,
        modality="rr",
        channels=("rr",),
        unit="ms",
        sfreq=None,
        t=start + rows[:, 0],
        values=rows[:, 1:2] * 1000.0,
        index=np.arange(rows.shape[0], dtype=np.int64),
        device=device,
    )


def read_e4_folder(folder: Path, *, device: str = "empatica-e4") -> tuple[SampleBlock, ...]:
    """Read one Empatica E4 session export (EDA, BVP, TEMP, ACC, HR and IBI CSV files).

    Parameters
    ----------
    folder : path
        Folder holding ``EDA.csv``, ``BVP.csv``, ``TEMP.csv``, ``ACC.csv``, ``HR.csv`` and
        ``IBI.csv``.
    device : str
        Device name written into the blocks.

    Returns
    -------
    tuple of SampleBlock
        ``eda`` (µS), ``ppg`` (BVP, arbitrary units), ``temp`` (°C), ``acc`` (g, from the
        E4's 1/64 g), ``hr`` (bpm) and ``rr`` (IBI in ms, beat times as ``t``).
    """
    folder = Path(folder)
    blocks: list[SampleBlock] = []
    spec = (
        ("EDA.csv", "eda", ("eda",), 1.0),
        ("BVP.csv", "ppg", ("bvp",), 1.0),
        ("TEMP.csv", "temp", ("temp",), 1.0),
        ("ACC.csv", "acc", ("x", "y", "z"), 1.0 / 64.0),  # E4 counts are 1/64 g
        ("HR.csv", "hr", ("hr",), 1.0),
    )
    for name, modality, channels, scale in spec:
        start, rate, values = _read_e4_csv(folder / name)
        if values.shape[1] != len(channels):
            raise ConfigError(
                f"E4 file {str(folder / name)!r} has {values.shape[1]} columns; expected "
                f"{len(channels)} ({', '.join(channels)})."
            )
        blocks.append(
            SampleBlock.regular(
                stream=f"{device}/{modality}",
                modality=modality,
                channels=channels,
                values=values * scale,
                sfreq=rate,
                t0=start,
                device=device,
            )
        )
    blocks.append(_read_e4_ibi(folder / "IBI.csv", f"{device}/rr", device))
    return tuple(blocks)


def load_stress_predict(path: Path | str, subjects: Sequence[str] | None = None) -> list[Recording]:
    """Load Stress-Predict (Empatica E4, stress tasks vs baseline/relaxation).

    Parameters
    ----------
    path : path
        The ``stress-predict`` folder (holding ``Raw_data/`` and ``Processed_data/``) or its
        parent.
    subjects : sequence of str, optional
        Subject ids such as ``"S02"``; default all folders under ``Raw_data``.

    Returns
    -------
    list of Recording
        One per subject; ``arousal`` = 1 during stress tasks, 0 during baseline/relaxation,
        joined on Unix time from ``Processed_data/labels_hr_rsp_binary.csv``. Subjects without
        labels (S01) come with an empty label frame.
    """
    root = _find_dataset_folder(Path(path), "stress-predict", "Raw_data")
    labels_path = root / "Processed_data" / "labels_hr_rsp_binary.csv"
    if not labels_path.is_file():
        raise ConfigError(f"Missing Stress-Predict labels {str(labels_path)!r}.")
    try:
        labels = pd.read_csv(labels_path, usecols=["Participant", "Time(sec)", "Label"])
    except ValueError as exc:
        raise ConfigError(
            f"Corrupt labels file {str(labels_path)!r}: expected columns Participant, "
            f"Time(sec), Label ({exc})."
        ) from None
    available = sorted(p.name for p in (root / "Raw_data").iterdir() if p.is_dir())
    recordings = []
    for subject in select_subjects(subjects, available, "Stress-Predict", root / "Raw_data"):
        folder = root / "Raw_data" / subject
        blocks = read_e4_folder(folder)
        try:
            number = int(subject.lstrip("Ss"))
        except ValueError:
            raise ConfigError(f"Subject folder {subject!r} is not named like 'S02'.") from None
        rows = labels[labels["Participant"] == number].sort_values("Time(sec)")
        if rows.empty:
            logger.warning(
                "Stress-Predict %s has no labels; its windows will not be scored", subject
            )
        recordings.append(
            Recording(
                subject=subject,
                blocks=blocks,
                labels=_labels_frame(rows["Time(sec)"], arousal=rows["Label"]),
                dataset="stress-predict",
                files=(*sorted(str(p) for p in folder.glob("*.csv")), str(labels_path)),
            )
        )
    return recordings


# --------------------------------------------------------------------------------- eegmat


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


# ------------------------------------------------------------------------ pickled formats


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
            values = np.asarray(_require(group, key, file, "WESAD"), dtype=np.float64)
            values = values.reshape(values.shape[0], -1)
            if values.shape[1] != len(channels):
                raise ConfigError(
                    f"WESAD {key} in {str(file)!r} has shape {values.shape}; expected "
                    f"{len(channels)} column(s)."
                )
            blocks.append(
                SampleBlock.regular(
                    f"{device}/{modality}",
                    modality,
                    channels,
                    values * scale,
                    rate,
                    0.0,
                    device=device,
                )
            )
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
