"""Read EDF/EDF+ and BDF recordings into sample blocks with MNE."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from affectstream.errors import ConfigError
from affectstream.io._grid import regular_block
from affectstream.io.units import check_plausible
from affectstream.types import UNITS, SampleBlock

logger = logging.getLogger(__name__)

#: MNE channel type -> (modality, factor from MNE's SI unit to the canonical unit).
MNE_TYPES: dict[str, tuple[str, float]] = {
    "eeg": ("eeg", 1e6),
    "ecg": ("ecg", 1e6),
    "gsr": ("eda", 1e6),
    "temperature": ("temp", 1.0),
}
#: EDF physical dimension (ASCII, 8 characters) of each modality MNE does not scale: what
#: ``affectstream export`` writes, and how a ``bio``/``misc`` channel is recognised on reading.
EDF_DIMENSIONS = {
    "eda": "uS",
    "ppg": "au",
    "temp": "degC",
    "acc": "g",
    "gyro": "deg/s",
    "hr": "bpm",
    "rr": "ms",
    "battery": "%",
}
_BY_DIMENSION = {unit: modality for modality, unit in EDF_DIMENSIONS.items()}
#: Annotation marking samples that were never acquired (MNE's name; our EDF export uses it).
ACQ_SKIP = "BAD_ACQ_SKIP"
#: Event kinds an annotation ``<kind>/<label>`` carries (as ``affectstream export`` writes).
EVENT_KINDS = ("marker", "phase", "session", "self_report")


def read_edf(
    path: str | Path,
    *,
    modalities: Sequence[str] | None = None,
    device: str = "",
) -> list[SampleBlock]:
    """Read an EDF, EDF+ or BDF file: :func:`read_edf_with_events` without the events."""
    return read_edf_with_events(path, modalities=modalities, device=device)[0]


def physical_dimensions(path: Path) -> list[str]:
    """Physical dimension of each data signal in the EDF/BDF header (annotations left out).

    MNE reports units it does not know (``uS``, ``degC``) as ``n/a``; the header has them.

    Parameters
    ----------
    path : Path
        ``.edf`` or ``.bdf`` file (its header already checked by :func:`check_complete`).

    Returns
    -------
    list of str
        In signal order, as MNE lists the channels.
    """
    with path.open("rb") as handle:
        n_signals = int(handle.read(256)[252:256].decode("ascii").strip())
        labels = [handle.read(16).decode("ascii", "replace").strip() for _ in range(n_signals)]
        handle.seek(256 + n_signals * (16 + 80))
        units = [handle.read(8).decode("ascii", "replace").strip() for _ in range(n_signals)]
    return [u for label, u in zip(labels, units, strict=True) if not label.endswith("Annotations")]


def check_complete(path: Path) -> None:
    """Refuse an EDF/BDF file shorter than its header says (a cut or unfinished copy).

    MNE reads such a file up to where it ends and only warns; a replay would then give
    fewer windows than the recording had, with nothing said.

    Parameters
    ----------
    path : Path
        ``.edf`` or ``.bdf`` file.

    Raises
    ------
    ConfigError
        Naming how many data records the header promises and how many the file holds.
    """
    size = path.stat().st_size
    with path.open("rb") as handle:
        fixed = handle.read(256)
        try:
            header_bytes = int(fixed[184:192].decode("ascii").strip())
            n_records = int(fixed[236:244].decode("ascii").strip())
            n_signals = int(fixed[252:256].decode("ascii").strip())
            handle.seek(256 + n_signals * 216)
            per_record = [int(handle.read(8).decode("ascii").strip()) for _ in range(n_signals)]
        except (ValueError, UnicodeDecodeError):
            raise ConfigError(
                f"{str(path)!r}: the EDF header is damaged (sizes are not numbers). Is the "
                "file really EDF/BDF?"
            ) from None
    width = 3 if path.suffix.lower() == ".bdf" else 2
    record_bytes = sum(per_record) * width
    if n_records < 0 or record_bytes <= 0:
        return  # -1: "unknown" (recording not closed); MNE infers it from the size
    expected = header_bytes + n_records * record_bytes
    if size < expected:
        held = max(0, size - header_bytes) // record_bytes
        raise ConfigError(
            f"{str(path)!r} is truncated: its header promises {n_records} data records "
            f"({expected} bytes) but the file has {size} bytes ({held} whole records). "
            "Copy the complete file again."
        )


def read_edf_with_events(
    path: str | Path,
    *,
    modalities: Sequence[str] | None = None,
    device: str = "",
) -> tuple[list[SampleBlock], list[tuple[float, str, str]]]:
    """Read an EDF, EDF+ or BDF file: one block per modality (EEG, ECG, EDA, temperature).

    Channel types come from the signal labels (``"EEG Fp1"``, ``"ECG ECG"``; MNE's
    ``infer_types``); unlabelled channels count as EEG, as in MNE. Values are converted from
    the file's physical dimension to µV (EEG, ECG), µS (EDA) or °C. Spans annotated
    ``BAD_ACQ_SKIP`` (samples never acquired, e.g. a gap written by ``affectstream export``)
    become NaN rows and :class:`~affectstream.types.Gap` entries; such spans at the very
    start or end (padding to whole seconds) are dropped.

    Parameters
    ----------
    path : str or Path
        ``.edf`` or ``.bdf`` file.
    modalities : sequence of str, optional
        Keep only these modalities.
    device : str
        Device name for the blocks (default: the file's equipment code, if any).

    Annotations other than ``BAD_ACQ_SKIP`` are events: ``<kind>/<label>`` (as
    ``affectstream export`` writes markers and phases) or a plain description (a marker).

    Returns
    -------
    blocks : list of SampleBlock
        Times are seconds since the Unix epoch from the file's start date and time.
    events : list of (float, str, str)
        ``(time, kind, label)`` of each annotation, in time order.

    Raises
    ------
    ConfigError
        Missing, unreadable or truncated file, or no channel of a supported type.
    """
    import mne

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Recording file {str(path)!r} does not exist.")
    check_complete(path)
    reader = mne.io.read_raw_bdf if path.suffix.lower() == ".bdf" else mne.io.read_raw_edf
    try:
        raw = reader(path, preload=True, infer_types=True, verbose="error")
    except Exception as exc:  # MNE raises ValueError, RuntimeError, OSError... on bad headers
        raise ConfigError(
            f"Cannot read {str(path)!r} as {path.suffix.lstrip('.').upper() or 'EDF'}: {exc}. "
            "Is the file complete and really EDF/BDF?"
        ) from None
    sfreq = float(raw.info["sfreq"])
    meas = raw.info["meas_date"]
    t0 = meas.timestamp() if meas is not None else 0.0
    n = raw.n_times
    t = t0 + np.arange(n) / sfreq
    present = np.ones(n, dtype=bool)
    reasons: dict[float, str] = {}
    events: list[tuple[float, str, str]] = []
    for annotation in raw.annotations:
        if annotation["description"] != ACQ_SKIP:
            kind, sep, label = str(annotation["description"]).partition("/")
            if not sep or kind not in EVENT_KINDS:
                kind, label = "marker", str(annotation["description"])
            onset = float(annotation["onset"]) - raw.first_time
            events.append((t0 + onset, kind, label))
            continue
        onset = float(annotation["onset"]) - raw.first_time
        first = max(0, round(onset * sfreq))
        stop = min(n, round((onset + float(annotation["duration"])) * sfreq))
        present[first:stop] = False
        reasons[t0 + first / sfreq] = "acq_skip"
    if not present.any():
        raise ConfigError(f"{str(path)!r}: every sample lies in a {ACQ_SKIP} annotation.")
    types = raw.get_channel_types()
    dimensions = physical_dimensions(path)
    units = dict(zip(raw.ch_names, dimensions, strict=False))
    # Channel index -> (modality, factor to its canonical unit): by MNE type, else (bio and
    # misc channels) by the physical dimension in the header, as our export writes them.
    chosen: dict[int, tuple[str, float]] = {}
    for index, (name, kind) in enumerate(zip(raw.ch_names, types, strict=True)):
        if kind in MNE_TYPES:
            chosen[index] = MNE_TYPES[kind]
        elif kind in ("bio", "misc") and units.get(name) in _BY_DIMENSION:
            chosen[index] = (_BY_DIMENSION[units[name]], 1.0)
    blocks = []
    for modality, factor in dict.fromkeys(chosen.values()):
        if modalities is not None and modality not in modalities:
            continue
        picks = [i for i, found in chosen.items() if found == (modality, factor)]
        values = raw.get_data(picks=picks).T * factor
        for column, pick in enumerate(picks):
            check_plausible(modality, values[present, column], f"{str(path)!r} channel {pick}")
        blocks.append(
            regular_block(
                stream=f"{path.stem}/{modality}",
                modality=modality,
                channels=tuple(raw.ch_names[i] for i in picks),
                unit=UNITS[modality],
                t=t[present],
                values=values[present],
                sfreq=sfreq,
                device=device,
                gap_reasons=reasons,
            )
        )
    skipped = sorted({kind for i, kind in enumerate(types) if i not in chosen})
    if skipped:
        logger.info("%s: channel types %s carry no features; skipped", path, skipped)
    if not blocks:
        raise ConfigError(
            f"{str(path)!r} has no EEG, ECG, EDA or temperature channel (channel types "
            f"{sorted(set(types))}); label signals 'EEG <name>', 'ECG <name>'..."
        )
    return blocks, sorted(events)
