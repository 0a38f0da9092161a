"""Write synthetic participants in the WESAD layout (E4 export + questionnaire with SAM).

For testing the WESAD-layout loader and evaluating the personal valence calibration on files
shaped like the real ones (which cannot be shipped). Physiology comes from
:func:`affectstream.models.synthetic.synthetic_labelled_recording` with WESAD's protocol as its
schedule: Base, Fun, Medi 1, TSST, Medi 2. The wrist signals follow arousal only (the
generator's valence acts on EEG, which an E4 does not record), as on real wrists, where
valence without arousal leaves little trace.

Each condition's SAM rating follows the scripted state with per-person jitter. With
``calm_unpleasant=True`` both meditations are experienced (and rated) as unpleasant and
calm, so the episodes meet the calibration rules; WESAD's own protocol (the default) has
one unpleasant condition, TSST, and does not.

Run ``python -m affectstream.models.wesad_layout OUT [--subjects N] [--calm-unpleasant]``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from affectstream.models.synthetic import synthetic_labelled_recording
from affectstream.types import SampleBlock

logger = logging.getLogger(__name__)

#: WESAD's conditions in protocol order: (name, seconds, arousal, valence).
CONDITIONS = (
    ("Base", 300.0, 0.0, 1.0),
    ("Fun", 240.0, 1.0, 1.0),
    ("Medi 1", 240.0, 0.0, 1.0),
    ("TSST", 300.0, 1.0, 0.0),
    ("Medi 2", 240.0, 0.0, 1.0),
)
#: Seconds before the first condition (device settling).
LEAD_SECONDS = 60.0


def _mmss(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 60}.{whole % 60:02d}"


def _e4_file(path: Path, start: float, rate: float, values: np.ndarray) -> None:
    values = values.reshape(len(values), -1)
    cols = values.shape[1]
    head = ", ".join([f"{start:.6f}"] * cols) + "\n" + ", ".join([f"{rate:.6f}"] * cols)
    body = "\n".join(",".join(f"{v:.6g}" for v in row) for row in values)
    path.write_text(head + "\n" + body + "\n")


def _write_e4(folder: Path, blocks: dict[str, SampleBlock], start: float, seconds: float) -> None:
    folder.mkdir(parents=True)
    for name, modality in (("EDA.csv", "eda"), ("TEMP.csv", "temp")):
        b = blocks[modality]
        _e4_file(folder / name, start, float(b.sfreq or 4.0), b.values[:, 0])
    acc = blocks["acc"]
    _e4_file(folder / "ACC.csv", start, float(acc.sfreq or 32.0), np.round(acc.values * 64.0))
    rr = blocks["rr"]
    beats = rr.t - start
    ibi_s = rr.values[:, 0] / 1000.0
    rows = "\n".join(f"{b:.6f},{i:.6f}" for b, i in zip(beats, ibi_s, strict=True))
    (folder / "IBI.csv").write_text(f"{start:.6f}, IBI\n{rows}\n")
    seconds_grid = np.arange(int(seconds))
    hr = 60.0 / np.interp(seconds_grid, beats, ibi_s)
    _e4_file(folder / "HR.csv", start, 1.0, hr)
    grid = np.arange(int(seconds * 64)) / 64.0
    # One pulse per beat: the phase advances by a full cycle from beat to beat.
    phase = np.interp(grid, beats, np.arange(beats.size) * 2.0 * np.pi)
    _e4_file(folder / "BVP.csv", start, 64.0, -40.0 * np.cos(phase))


def write_wesad_layout(
    root: Path | str, n_subjects: int = 6, *, seed: int = 0, calm_unpleasant: bool = False
) -> Path:
    """Write ``SX/SX_E4_Data/*.csv`` and ``SX/SX_quest.csv`` for synthetic participants.

    Parameters
    ----------
    root : path
        Folder to create (the WESAD folder).
    n_subjects : int
        Participants ``S2``, ``S3``...
    seed : int
        Base seed (participant ``k`` uses ``seed + k``).
    calm_unpleasant : bool
        Meditations experienced as unpleasant and calm (see the module docstring).

    Returns
    -------
    Path
        ``root``.
    """
    root = Path(root)
    conditions = [
        (n, d, a, 0.0 if calm_unpleasant and n.startswith("Medi") else v)
        for n, d, a, v in CONDITIONS
    ]
    starts = LEAD_SECONDS + np.concatenate([[0.0], np.cumsum([d for _, d, _, _ in conditions])])
    total = float(starts[-1])
    for k in range(n_subjects):
        subject = f"S{k + 2}"
        rng = np.random.default_rng(seed + 1000 + k)
        schedule = [(0.0, 0.0, float("nan"))] + [
            (float(s), a, v) for s, (_, _, a, v) in zip(starts[:-1], conditions, strict=True)
        ]
        recording = synthetic_labelled_recording(
            subject,
            seed=seed + k,
            duration=total,
            modalities=("rr", "eda", "temp", "acc"),
            schedule=schedule,
        )
        blocks = {b.modality: b for b in recording.blocks}
        start = float(min(b.t[0] for b in recording.blocks))
        folder = root / subject
        _write_e4(folder / f"{subject}_E4_Data", blocks, start, total)
        dims = []
        for _, _, a, v in conditions:
            valence = np.clip(round(5.0 + 2.5 * (2 * v - 1) + rng.normal(0, 0.7)), 1, 9)
            arousal = np.clip(round(5.0 + 2.5 * (2 * a - 1) + rng.normal(0, 0.7)), 1, 9)
            if valence == 5:  # the midpoint says nothing; a person leans one way
                valence = 6 if v > 0.5 else 4
            dims.append(f"# DIM;{int(valence)};{int(arousal)};;;;;;")
        names = [n for n, _, _, _ in conditions]
        quest = [
            f"# Subj;{subject};;;;;;;",
            "# ORDER;" + ";".join(names),
            "# START;" + ";".join(_mmss(s) for s in starts[:-1]),
            "# END;" + ";".join(_mmss(s) for s in starts[1:]),
            ";;;;;;;;",
            *dims,
        ]
        (folder / f"{subject}_quest.csv").write_text("\n".join(quest) + "\n")
    logger.info("wrote %d WESAD-layout participants to %s", n_subjects, root)
    return root


def main(argv: list[str] | None = None) -> int:
    """Command line: write the files.

    Parameters
    ----------
    argv : list of str, optional

    Returns
    -------
    int
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--subjects", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--calm-unpleasant", action="store_true")
    args = parser.parse_args(argv)
    write_wesad_layout(
        args.out, args.subjects, seed=args.seed, calm_unpleasant=args.calm_unpleasant
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
