"""Data types shared by every layer (device → signal → models → store).

Conventions (see ARCHITECTURE.md): time is float64 seconds since the Unix epoch on the host
clock after clock correction; ECG and EEG in µV, EDA in µS, RR in ms, heart rate in bpm,
temperature in °C. Missing samples are NaN rows plus a :class:`Gap`, never zeros.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from affectstream.errors import SignalError

Modality = Literal["hr", "rr", "ecg", "ppg", "eda", "eeg", "acc", "gyro", "temp", "battery"]

#: Canonical unit of each modality.
UNITS: dict[str, str] = {
    "hr": "bpm",
    "rr": "ms",
    "ecg": "µV",
    "ppg": "au",
    "eda": "µS",
    "eeg": "µV",
    "acc": "g",
    "gyro": "deg/s",
    "temp": "°C",
    "battery": "%",
}

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Gap:
    """Samples that a device counter says were sent but never arrived.

    Parameters
    ----------
    stream : str
        Stream the gap belongs to.
    first_index : int
        Unwrapped device sample index of the first missing sample.
    n_samples : int
        Number of missing samples.
    t_start, t_end : float
        Estimated host times of the first and last missing sample.
    reason : str
        Why the samples are missing, e.g. ``"counter_jump"`` or ``"disconnect"``.
    """

    stream: str
    first_index: int
    n_samples: int
    t_start: float
    t_end: float
    reason: str = "counter_jump"


@dataclass(frozen=True, slots=True)
class SampleBlock:
    """Timestamped samples of one stream: a BLE delivery, a chunk, or a whole recording.

    Parameters
    ----------
    stream : str
        Unique stream id, e.g. ``"polar-h10-ABCD/ecg"``.
    modality : str
        One of :data:`Modality`.
    channels : tuple of str
        Channel names, one per column of ``values``.
    unit : str
        Unit of ``values`` (see :data:`UNITS`).
    sfreq : float or None
        Nominal sampling rate in Hz; ``None`` for event streams (RR intervals, HR).
    t : ndarray, shape (n,)
        Host time of each sample, seconds since the Unix epoch.
    values : ndarray, shape (n, n_channels)
        Samples; NaN rows where samples are missing.
    index : ndarray of int64, shape (n,)
        Unwrapped device sample index (the device's own counter), so gaps are known.
    gaps : tuple of Gap
        Gaps inside or just before this block.
    device : str
        Device the stream comes from (address or emulator name).
    """

    stream: str
    modality: str
    channels: tuple[str, ...]
    unit: str
    sfreq: float | None
    t: FloatArray
    values: FloatArray
    index: IntArray
    gaps: tuple[Gap, ...] = field(default=())
    device: str = ""

    def __post_init__(self) -> None:
        n = self.t.shape[0]
        if self.t.ndim != 1:
            raise SignalError(f"SampleBlock.t must be 1-D, got shape {self.t.shape}.")
        if self.values.ndim != 2 or self.values.shape != (n, len(self.channels)):
            raise SignalError(
                f"SampleBlock.values must have shape (n_samples, n_channels) = "
                f"({n}, {len(self.channels)}) for stream {self.stream!r}, "
                f"got {self.values.shape}."
            )
        if self.index.shape != (n,):
            raise SignalError(
                f"SampleBlock.index must have shape ({n},) for stream {self.stream!r}, "
                f"got {self.index.shape}."
            )

    def __len__(self) -> int:
        return int(self.t.shape[0])

    def rows(self, start: int, stop: int) -> SampleBlock:
        """Rows ``[start, stop)`` of this block, with the gaps that begin inside them.

        Parameters
        ----------
        start, stop : int
            Row positions (as in ``values[start:stop]``).

        Returns
        -------
        SampleBlock
        """
        first = int(self.index[start]) if stop > start else 0
        last = int(self.index[stop - 1]) if stop > start else -1
        return replace(
            self,
            t=self.t[start:stop],
            values=self.values[start:stop],
            index=self.index[start:stop],
            gaps=tuple(g for g in self.gaps if first <= g.first_index <= last),
        )

    @classmethod
    def regular(
        cls,
        stream: str,
        modality: str,
        channels: Sequence[str],
        values: FloatArray,
        sfreq: float,
        t0: float,
        *,
        unit: str | None = None,
        first_index: int = 0,
        device: str = "",
    ) -> SampleBlock:
        """Build a block of regularly sampled data starting at host time ``t0``.

        Parameters
        ----------
        stream, modality, channels : see class parameters.
        values : ndarray, shape (n,) or (n, n_channels)
            Samples.
        sfreq : float
            Sampling rate in Hz.
        t0 : float
            Host time of the first sample.
        unit : str, optional
            Defaults to the modality's canonical unit.
        first_index : int
            Device index of the first sample.
        device : str
            Device name.

        Returns
        -------
        SampleBlock
        """
        data = np.asarray(values, dtype=np.float64)
        if data.ndim == 1:
            data = data[:, None]
        n = data.shape[0]
        index = np.arange(first_index, first_index + n, dtype=np.int64)
        return cls(
            stream=stream,
            modality=modality,
            channels=tuple(channels),
            unit=unit if unit is not None else UNITS.get(modality, ""),
            sfreq=float(sfreq),
            t=t0 + (index - first_index) / float(sfreq),
            values=data,
            index=index,
            device=device,
        )

    @classmethod
    def concat(cls, blocks: Sequence[SampleBlock]) -> SampleBlock:
        """Join consecutive blocks of one stream (gaps stay as NaN rows and annotations).

        Parameters
        ----------
        blocks : sequence of SampleBlock
            Blocks of the same stream, in time order.

        Returns
        -------
        SampleBlock
        """
        if not blocks:
            raise SignalError("SampleBlock.concat needs at least one block.")
        first = blocks[0]
        for block in blocks[1:]:
            if block.stream != first.stream or block.channels != first.channels:
                raise SignalError(
                    f"Cannot join stream {block.stream!r} {block.channels} onto "
                    f"{first.stream!r} {first.channels}: blocks must come from one stream."
                )
        return cls(
            stream=first.stream,
            modality=first.modality,
            channels=first.channels,
            unit=first.unit,
            sfreq=first.sfreq,
            t=np.concatenate([b.t for b in blocks]),
            values=np.concatenate([b.values for b in blocks]),
            index=np.concatenate([b.index for b in blocks]),
            gaps=tuple(g for b in blocks for g in b.gaps),
            device=first.device,
        )
