"""LSL stream metadata -> affectstream streams: modality, channel labels, units, ids.

Used by :mod:`affectstream.device.lsl` (inlets); kept apart so the mapping rules can be read
(and tested) without liblsl running.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

from affectstream.errors import ConfigError
from affectstream.types import UNITS

#: LSL stream or channel ``type`` (lowercase) -> modality. XDF/LSL naming conventions
#: (https://github.com/sccn/xdf/wiki/Meta-Data) plus common vendor spellings.
TYPE_MODALITY: dict[str, str] = {
    "eeg": "eeg",
    "exg": "eeg",
    "ecg": "ecg",
    "ekg": "ecg",
    "eda": "eda",
    "gsr": "eda",
    "ppg": "ppg",
    "bvp": "ppg",
    "hr": "hr",
    "heartrate": "hr",
    "rr": "rr",
    "ibi": "rr",
    "acc": "acc",
    "accelerometer": "acc",
    "gyro": "gyro",
    "gyroscope": "gyro",
    "temp": "temp",
    "temperature": "temp",
}
#: Stream types of marker streams (any string-valued stream is one too).
MARKER_TYPES = frozenset({"markers", "marker", "events"})
#: Unit spellings -> factor to the modality's canonical unit (see :data:`UNITS`).
UNIT_SCALE: dict[str, dict[str, float]] = {
    "µV": {"v": 1e6, "volts": 1e6, "mv": 1e3, "millivolts": 1e3, "uv": 1.0, "µv": 1.0,
           "μv": 1.0, "microvolts": 1.0, "nv": 1e-3},
    "µS": {"s": 1e6, "siemens": 1e6, "ms": 1e3, "us": 1.0, "µs": 1.0, "μs": 1.0,
           "microsiemens": 1.0},
    "g": {"g": 1.0, "m/s^2": 1 / 9.80665, "m/s2": 1 / 9.80665, "mg": 1e-3},
}  # fmt: skip


def load_pylsl() -> Any:
    try:
        import pylsl
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ConfigError(
            "LSL needs pylsl: pip install 'affectstream[lsl]' (its wheels bundle liblsl)."
        ) from exc
    return pylsl


def lsl_epoch_offset() -> float:
    """Seconds to add to an LSL ``local_clock()`` time to get host epoch time.

    Returns
    -------
    float
    """
    pylsl = load_pylsl()
    before = time.time()
    lsl_now = float(pylsl.local_clock())
    after = time.time()
    return (before + after) / 2 - lsl_now


def parse_mapping(items: Sequence[str]) -> dict[str, str]:
    """Turn ``STREAM_NAME=MODALITY`` options into a mapping.

    Parameters
    ----------
    items : sequence of str
        E.g. ``["OpenBCI=eeg", "Shimmer=eda"]``.

    Returns
    -------
    dict of str to str

    Raises
    ------
    ConfigError
        If an item is not ``NAME=MODALITY`` with a known modality (or ``markers``).
    """
    out: dict[str, str] = {}
    for item in items:
        name, sep, modality = item.partition("=")
        modality = modality.strip().lower()
        if not sep or not name.strip() or (modality not in UNITS and modality != "markers"):
            known = ", ".join([*UNITS, "markers"])
            raise ConfigError(
                f"--lsl-map takes STREAM_NAME=MODALITY with a modality among {known}; got {item!r}."
            )
        out[name.strip()] = modality
    return out


def _children(node: Any, name: str) -> list[Any]:
    out = []
    child = node.child(name)
    while not child.empty():
        out.append(child)
        child = child.next_sibling(name)
    return out


def channel_meta(info: Any) -> list[dict[str, str]]:
    """Per-channel ``label``, ``type`` and ``unit`` from a stream's ``desc/channels``.

    Parameters
    ----------
    info : pylsl.StreamInfo
        Full info (from ``inlet.info()``).

    Returns
    -------
    list of dict
        One dict per described channel (may be fewer than the channel count, or empty).
    """
    channels = info.desc().child("channels")
    if channels.empty():
        return []
    return [
        {key: ch.child_value(key) for key in ("label", "type", "unit")}
        for ch in _children(channels, "channel")
    ]


def modality_of(info: Any, mapping: Mapping[str, str]) -> str | None:
    """The modality of an LSL stream, ``"markers"``, or None when it cannot be told.

    Parameters
    ----------
    info : pylsl.StreamInfo
        The stream's info.
    mapping : mapping of str to str
        Explicit ``stream name -> modality`` (wins over the metadata).

    Returns
    -------
    str or None
    """
    if info.name() in mapping:
        return mapping[info.name()]
    kind = info.type().strip().lower()
    if info.channel_format() == load_pylsl().cf_string or kind in MARKER_TYPES:
        return "markers"
    if kind in TYPE_MODALITY:
        return TYPE_MODALITY[kind]
    types = {c["type"].strip().lower() for c in channel_meta(info)}
    if len(types) == 1 and (only := types.pop()) in TYPE_MODALITY:
        return TYPE_MODALITY[only]
    return None


def device_id(info: Any) -> str:
    """A valid device id (see :mod:`affectstream.ids`) naming the LSL stream."""
    name = re.sub(r"[^A-Za-z0-9._\-]+", "-", info.name()).strip("-.") or "stream"
    return f"lsl-{name}"[:64]
