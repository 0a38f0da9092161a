"""Read XDF files (Lab Streaming Layer recordings) with pyxdf: one block per stream."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from affectstream.errors import ConfigError
from affectstream.io._grid import MAX_GAP_SECONDS, regular_block
from affectstream.io.units import check_finite, check_plausible, to_canonical
from affectstream.types import UNITS, SampleBlock

logger = logging.getLogger(__name__)

#: LSL stream type (lowercase) -> modality.
LSL_TYPES = {
    "eeg": "eeg",
    "ecg": "ecg",
    "exg": "ecg",
    "eda": "eda",
    "gsr": "eda",
    "ppg": "ppg",
    "bvp": "ppg",
    "rr": "rr",
    "ibi": "rr",
    "hr": "hr",
    "heartrate": "hr",
    "temp": "temp",
    "temperature": "temp",
}


def _text(info: dict[str, Any], key: str, default: str = "") -> str:
    """First text value of an XML element as pyxdf returns it (lists of str or dict)."""
    value = info.get(key)
    if isinstance(value, list) and value and isinstance(value[0], str):
        return value[0]
    return default


def _channels(info: dict[str, Any], count: int) -> list[tuple[str, str]]:
    """(label, unit) per channel from ``desc/channels/channel``, or ``ch1``... without."""
    try:
        entries = info["desc"][0]["channels"][0]["channel"]
    except (KeyError, IndexError, TypeError):
        entries = []
    if len(entries) != count:
        return [(f"ch{i + 1}", "") for i in range(count)]
    return [(_text(e, "label", f"ch{i + 1}"), _text(e, "unit")) for i, e in enumerate(entries)]


def read_xdf(
    path: str | Path,
    *,
    modalities: Sequence[str] | None = None,
) -> list[SampleBlock]:
    """An XDF file's physiological streams: :func:`read_xdf_with_events` without markers."""
    return read_xdf_with_events(path, modalities=modalities)[0]


def read_xdf_with_events(
    path: str | Path,
    *,
    modalities: Sequence[str] | None = None,
    max_gap: float = MAX_GAP_SECONDS,
) -> tuple[list[SampleBlock], list[tuple[float, str]]]:
    """Read the physiological streams of an XDF file, one block per stream.

    The LSL stream ``type`` gives the modality (``EEG``, ``ECG``, ``EDA``/``GSR``,
    ``PPG``, ``RR``, ``HR``...); marker and other streams are skipped. Channel labels and
    units come from ``desc/channels/channel`` and are converted to the canonical units. A
    stream with ``nominal_srate`` 0 is an event stream. Times are pyxdf's synchronised
    (clock-offset corrected, de-jittered) LSL times: seconds on the recording computer's LSL
    clock, not since the Unix epoch.

    Parameters
    ----------
    path : str or Path
        ``.xdf`` or ``.xdfz`` file.
    modalities : sequence of str, optional
        Keep only these modalities.

    ``max_gap`` (s) bounds the gaps filled with NaN rows, as in :func:`read_csv`.
    String streams (LSL ``Markers``) are the recording's markers: each sample's first
    channel is a label, at the stream's synchronised time.

    Returns
    -------
    blocks : list of SampleBlock
    markers : list of (float, str)
        ``(time, label)`` in time order.

    Raises
    ------
    ConfigError
        Missing or unreadable file, or no supported stream.
    """
    import pyxdf

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Recording file {str(path)!r} does not exist.")
    try:
        streams, _ = pyxdf.load_xdf(str(path))
    except Exception as exc:  # pyxdf raises many types on a damaged file
        raise ConfigError(
            f"Cannot read {str(path)!r} as XDF: {exc!r}. Is the file complete (recorded "
            "until LabRecorder stopped) and really XDF?"
        ) from None
    blocks = []
    markers: list[tuple[float, str]] = []
    for stream in streams:
        info = stream["info"]
        name = _text(info, "name", "stream")
        kind = _text(info, "type").strip().lower()
        modality = LSL_TYPES.get(kind)
        if _text(info, "channel_format") == "string":
            for stamp, sample in zip(stream["time_stamps"], stream["time_series"], strict=False):
                label = sample[0] if isinstance(sample, list | tuple) and sample else sample
                markers.append((float(stamp), str(label)))
            continue
        if modality is None:
            logger.info("%s: stream %r of type %r carries no features; skipped", path, name, kind)
            continue
        if modalities is not None and modality not in modalities:
            continue
        series = np.asarray(stream["time_series"], dtype=np.float64)
        stamps = np.asarray(stream["time_stamps"], dtype=np.float64)
        check_finite(series, f"{str(path)!r} stream {name!r}")
        if series.ndim == 1:
            series = series[:, None]
        channels = _channels(info, series.shape[1])
        for i, (label, unit) in enumerate(channels):
            where = f"{str(path)!r} stream {name!r} channel {label!r}"
            series[:, i] = to_canonical(modality, unit, series[:, i], where)
            check_plausible(modality, series[:, i], where)
        rate = float(_text(info, "nominal_srate", "0") or 0.0)
        blocks.append(
            regular_block(
                stream=f"{path.stem}/{name}",
                modality=modality,
                channels=tuple(label for label, _ in channels),
                unit=UNITS[modality],
                t=stamps,
                values=series,
                sfreq=rate if rate > 0 else None,
                device=_text(info, "hostname"),
                max_gap=max_gap,
            )
        )
    if not blocks:
        raise ConfigError(
            f"{str(path)!r} holds no stream of a supported type ({sorted(set(LSL_TYPES))})."
        )
    return blocks, sorted(markers)
