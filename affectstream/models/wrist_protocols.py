"""Loaders for two more wrist stress protocols: PhysioNet Non-EEG and WESAD's E4 export.

Both give the same kind of :class:`~affectstream.models.datasets.Recording` as Stress-Predict,
so a model trained on one protocol can be scored unchanged on another
(:mod:`affectstream.models.crossprotocol`).

- **PhysioNet Non-EEG** (``noneeg``): Affectiva Q wrist sensor at 8 Hz (acceleration in g,
  skin temperature °C, EDA µS) and a Nonin oximeter at 1 Hz (SpO2 %, heart rate bpm), WFDB
  records with the protocol phases in ``SubjectN_AccTempEDA.atr``.
- **WESAD as distributed** (``wesad-e4``): ``SX/SX_E4_Data/{EDA,BVP,HR,TEMP,ACC,IBI}.csv``
  (Empatica E4 export, the same format as Stress-Predict's) and ``SX/SX_quest.csv`` with the
  protocol's START/END times and SAM valence/arousal per condition. No pickles.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from affectstream.errors import ConfigError
from affectstream.models.datasets import (
    Recording,
    _labels_frame,
    read_e4_folder,
    select_subjects,
)
from affectstream.types import SampleBlock

logger = logging.getLogger(__name__)

#: Non-EEG phases mapped to arousal. Physical stress (walking/jogging) is movement, not
#: psychological stress, and the short emotional cue (~40 s) is too short for a 60-s window:
#: both are left unscored (NaN). Cognitive and emotional stress (the horror clip) are 1,
#: relaxation 0.
NONEEG_AROUSAL = {
    "Relax": 0.0,
    "CognitiveStress": 1.0,
    "EmotionalStress": 1.0,
    "PhysicalStress": np.nan,
}
#: Phases shorter than this are cues, not conditions (the first "EmotionalStress" marker).
NONEEG_MIN_PHASE_SECONDS = 120.0
#: Non-EEG records carry no wall-clock time; sessions are placed at this epoch.
NONEEG_EPOCH = 1_400_000_000.0


def _read_wfdb(path: Path) -> tuple[Any, Any]:
    import wfdb

    if not path.with_suffix(".hea").is_file():
        raise ConfigError(f"Missing WFDB header {str(path.with_suffix('.hea'))!r}.")
    try:
        record = wfdb.rdrecord(str(path))
        annotation = wfdb.rdann(str(path), "atr") if path.with_suffix(".atr").is_file() else None
    # What wfdb 4.3 raises on damaged files: a missing .dat (OSError), short samples or bad
    # header syntax (ValueError), an empty header or unknown format (IndexError, KeyError),
    # a header without signal lines (TypeError).
    except (OSError, ValueError, LookupError, TypeError) as exc:
        raise ConfigError(f"Cannot read WFDB record {str(path)!r}: {exc}.") from None
    return record, annotation


def _channel(record: Any, name: str, path: Path) -> np.ndarray[Any, Any]:
    names = [n.lower() for n in record.sig_name]
    if name.lower() not in names:
        raise ConfigError(f"WFDB record {str(path)!r} lacks channel {name!r} (has {names}).")
    signal = np.asarray(record.p_signal, dtype=np.float64)
    return signal[:, names.index(name.lower())]


def noneeg_phases(
    samples: Sequence[int], notes: Sequence[str], fs: float, n_samples: int
) -> pd.DataFrame:
    """Turn the Non-EEG phase annotations into a label frame (relative seconds).

    Parameters
    ----------
    samples : sequence of int
        Annotation sample indices (phase starts).
    notes : sequence of str
        Phase names (``Relax``, ``PhysicalStress``, ``CognitiveStress``, ``EmotionalStress``).
    fs : float
        Sampling rate of the annotated record.
    n_samples : int
        Record length, for the last phase's end.

    Returns
    -------
    pandas.DataFrame
        Columns ``t`` (seconds from the record start), ``arousal``, ``phase``; a final row at
        the record's end with NaN closes the last phase.
    """
    starts = np.asarray(samples, dtype=np.float64) / fs
    ends = np.r_[starts[1:], n_samples / fs]
    arousal = []
    for note, start, end in zip(notes, starts, ends, strict=True):
        if note not in NONEEG_AROUSAL:
            raise ConfigError(
                f"Unknown Non-EEG phase {note!r}; expected one of {sorted(NONEEG_AROUSAL)}."
            )
        short = end - start < NONEEG_MIN_PHASE_SECONDS
        arousal.append(np.nan if short else NONEEG_AROUSAL[note])
    frame = _labels_frame(np.r_[starts, n_samples / fs], arousal=[*arousal, np.nan])
    frame["phase"] = [*notes, "end"]
    return frame


def load_noneeg(path: Path | str, subjects: Sequence[str] | None = None) -> list[Recording]:
    """Load PhysioNet Non-EEG (wrist EDA/temperature/motion + SpO2/HR; relax vs stress).

    Parameters
    ----------
    path : path
        Folder holding ``SubjectN_AccTempEDA.{hea,dat,atr}`` and ``SubjectN_SpO2HR.*`` (or its
        parent holding ``noneeg/``).
    subjects : sequence of str, optional
        Ids such as ``"Subject1"``; default all.

    Returns
    -------
    list of Recording
        Blocks ``eda`` (µS, 8 Hz), ``temp`` (°C, 8 Hz), ``acc`` (g, 8 Hz) and ``hr`` (bpm,
        1 Hz; SpO2 is not used). ``arousal`` per :data:`NONEEG_AROUSAL`. Both records start
        together (PhysioNet gives no offset); the session is placed at :data:`NONEEG_EPOCH`.
    """
    root = Path(path)
    if not list(root.glob("Subject*_AccTempEDA.hea")) and (root / "noneeg").is_dir():
        root = root / "noneeg"
    heads = sorted(root.glob("Subject*_AccTempEDA.hea"))
    if not heads:
        raise ConfigError(
            f"No Non-EEG records (SubjectN_AccTempEDA.hea) under {str(root)!r}. Pass --data "
            f"pointing at the noneeg folder."
        )
    available = sorted(
        (h.name.split("_")[0] for h in heads), key=lambda s: int(re.sub(r"\D", "", s) or 0)
    )
    recordings = []
    for subject in select_subjects(subjects, available, "Non-EEG", root):
        wrist_path = root / f"{subject}_AccTempEDA"
        pulse_path = root / f"{subject}_SpO2HR"
        wrist, annotation = _read_wfdb(wrist_path)
        pulse, _ = _read_wfdb(pulse_path)
        if annotation is None:
            raise ConfigError(f"Missing phase annotations {str(wrist_path)!r}.atr.")
        fs = float(wrist.fs)
        device = f"affectiva-q-{subject}"
        acc = np.stack([_channel(wrist, c, wrist_path) for c in ("ax", "ay", "az")], axis=1)
        blocks = (
            SampleBlock.regular(
                f"{device}/eda", "eda", ("eda",), _channel(wrist, "EDA", wrist_path), fs,
                NONEEG_EPOCH, device=device,
            ),
            SampleBlock.regular(
                f"{device}/temp", "temp", ("temp",), _channel(wrist, "temp", wrist_path), fs,
                NONEEG_EPOCH, device=device,
            ),
            SampleBlock.regular(
                f"{device}/acc", "acc", ("x", "y", "z"), acc, fs, NONEEG_EPOCH, device=device
            ),
            SampleBlock.regular(
                f"nonin-{subject}/hr", "hr", ("hr",), _channel(pulse, "hr", pulse_path),
                float(pulse.fs), NONEEG_EPOCH, device=f"nonin-{subject}",
            ),
        )  # fmt: skip
        labels = noneeg_phases(
            annotation.sample,
            annotation.aux_note,
            fs,
            int(wrist.sig_len),
        )
        labels["t"] += NONEEG_EPOCH
        recordings.append(
            Recording(
                subject=subject,
                blocks=blocks,
                labels=labels,
                dataset="noneeg",
                files=tuple(
                    str(p)
                    for p in sorted(root.glob(f"{subject}_*"))
                    if p.suffix in (".hea", ".dat", ".atr")
                ),
            )
        )
    return recordings


# -------------------------------------------------------------------------- WESAD E4 + quest

#: WESAD condition names in ``SX_quest.csv`` mapped to arousal (TSST = stress = 1, baseline
#: = 0; amusement and meditation unscored, as for the pickle loader).
WESAD_QUEST_AROUSAL = {"Base": 0.0, "TSST": 1.0}
#: Conditions that have a SAM (DIM) row, in protocol order; the reading tasks have none.
WESAD_SAM_CONDITIONS = ("Base", "TSST", "Medi 1", "Medi 2", "Fun")


def _mmss(value: str, path: Path) -> float:
    """WESAD writes protocol times as minutes.seconds (7.08 = 7 min 8 s)."""
    try:
        minutes, _, seconds = value.strip().partition(".")
        secs = int(seconds.ljust(2, "0")[:2]) if seconds else 0
        if secs >= 60:
            raise ValueError(f"{value}: seconds part >= 60")
        return int(minutes) * 60.0 + secs
    except ValueError as exc:
        raise ConfigError(
            f"Bad time {value!r} in {str(path)!r}: expected minutes.seconds ({exc})."
        ) from None


def read_wesad_quest(path: Path) -> pd.DataFrame:
    """Read ``SX_quest.csv``: conditions with start/end (s) and SAM valence/arousal (1-9).

    Parameters
    ----------
    path : path
        The questionnaire file (``;``-separated rows ``# ORDER``, ``# START``, ``# END``,
        ``# DIM`` ...).

    Returns
    -------
    pandas.DataFrame
        One row per condition: ``condition``, ``start``, ``end`` (seconds from the session
        start), ``sam_valence``, ``sam_arousal`` (NaN when the condition has no SAM row).
    """
    if not path.is_file():
        raise ConfigError(f"Missing WESAD questionnaire {str(path)!r}.")
    rows: dict[str, list[list[str]]] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        cells = [c.strip() for c in line.split(";")]
        if cells and cells[0].startswith("#"):
            key = cells[0].lstrip("#").strip().upper()
            rows.setdefault(key, []).append([c for c in cells[1:] if c])
    for key in ("ORDER", "START", "END"):
        if key not in rows:
            raise ConfigError(f"WESAD questionnaire {str(path)!r} lacks its '# {key}' row.")
    order, start, end = rows["ORDER"][0], rows["START"][0], rows["END"][0]
    if not (len(order) == len(start) == len(end)):
        raise ConfigError(
            f"WESAD questionnaire {str(path)!r}: ORDER, START and END have {len(order)}, "
            f"{len(start)} and {len(end)} entries; expected the same number."
        )
    sam = [r for r in rows.get("DIM", [])]
    with_sam = [c for c in order if c in WESAD_SAM_CONDITIONS]
    if sam and len(sam) != len(with_sam):
        raise ConfigError(
            f"WESAD questionnaire {str(path)!r} has {len(sam)} DIM rows for the "
            f"{len(with_sam)} conditions {with_sam}; expected one per condition."
        )
    ratings = dict(zip(with_sam, sam, strict=False))
    out = []
    for condition, s, e in zip(order, start, end, strict=True):
        val_ar = ratings.get(condition, [])
        try:
            valence = float(val_ar[0]) if len(val_ar) > 0 else np.nan
            arousal = float(val_ar[1]) if len(val_ar) > 1 else np.nan
        except ValueError:
            raise ConfigError(
                f"WESAD questionnaire {str(path)!r}: DIM row for {condition!r} is {val_ar}; "
                f"expected two SAM ratings (valence, arousal) from 1 to 9."
            ) from None
        out.append(
            {
                "condition": condition,
                "start": _mmss(s, path),
                "end": _mmss(e, path),
                "sam_valence": valence,
                "sam_arousal": arousal,
            }
        )
    return pd.DataFrame(out)


def load_wesad_e4(path: Path | str, subjects: Sequence[str] | None = None) -> list[Recording]:
    """Load WESAD as distributed: the E4 export per subject plus its questionnaire.

    Parameters
    ----------
    path : path
        WESAD folder holding ``SX/SX_E4_Data/`` and ``SX/SX_quest.csv``.
    subjects : sequence of str, optional
        Ids such as ``"S2"``; default all found.

    Returns
    -------
    list of Recording
        The E4 streams (:func:`~affectstream.models.datasets.read_e4_folder`). Labels:
        ``arousal`` 1 during TSST, 0 during the baseline; ``valence`` 1 where the condition's
        SAM valence is above the midpoint 5, 0 below, NaN at 5 or without a rating. Condition
        times are taken from the E4 session start (WESAD gives them on the RespiBAN's clock;
        the two were started together, the double-tap sync is in the pickles only).
    """
    root = Path(path)
    found = {p.parent.name: p.parent for p in sorted(root.glob("S*/S*_E4_Data"))}
    if not found:
        raise ConfigError(
            f"No WESAD E4 exports (SX/SX_E4_Data/) under {str(root)!r}. Unzip SX_E4_Data.zip "
            f"in each subject folder and pass --data pointing at the WESAD folder."
        )
    recordings = []
    for subject in select_subjects(subjects, sorted(found), "WESAD", root):
        folder = found[subject]
        blocks = read_e4_folder(folder / f"{subject}_E4_Data", device=f"wesad-e4-{subject}")
        quest = read_wesad_quest(folder / f"{subject}_quest.csv")
        t0 = min(float(b.t[0]) for b in blocks if len(b))
        t, arousal, valence, sam_v, sam_a, is_start = [], [], [], [], [], []
        for row in quest.sort_values("start").to_dict("records"):
            v = float(row["sam_valence"])
            t += [t0 + float(row["start"]), t0 + float(row["end"])]
            is_start += [True, False]
            arousal += [WESAD_QUEST_AROUSAL.get(str(row["condition"]), np.nan), np.nan]
            valence += [np.nan if not np.isfinite(v) or v == 5 else float(v > 5), np.nan]
            sam_v += [v, np.nan]
            sam_a += [float(row["sam_arousal"]), np.nan]
        labels = _labels_frame(
            t, arousal=arousal, valence=valence, sam_valence=sam_v, sam_arousal=sam_a
        )
        # A condition ending where the next starts: the start row wins.
        labels["_start"] = is_start
        labels = labels.sort_values(["t", "_start"], ascending=[True, False], kind="stable")
        labels = labels.drop_duplicates("t").drop(columns="_start")
        recordings.append(
            Recording(
                subject=subject,
                blocks=blocks,
                labels=labels.reset_index(drop=True),
                dataset="wesad-e4",
                files=(
                    *sorted(str(p) for p in (folder / f"{subject}_E4_Data").glob("*.csv")),
                    str(folder / f"{subject}_quest.csv"),
                ),
            )
        )
    return recordings
