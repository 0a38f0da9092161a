"""BrainFlow boards as a device source (``affectstream record --brainflow BOARD[:k=v,...]``).

:class:`BrainFlowSource` opens one board through BrainFlow's ``BoardShim`` (the optional
extra ``affectstream[brainflow]``), reads its rows as BrainFlow's board description lays
them out (``BoardShim.get_board_descr``: EEG with its 10-20 names, ECG rows that are not EEG
rows, EDA, PPG, accelerometer, gyroscope, temperature, battery, markers) and delivers
:class:`~affectstream.types.SampleBlock` objects to ``on_block`` as the BLE
:class:`~affectstream.device.supervisor.Supervisor` does.

Times: BrainFlow stamps rows with the host time they were read, in bursts; the board's
package counter (wrapping at 256) is exact. So each row's index comes from the counter and
its time from the device :class:`~affectstream.device.clock.ClockModel` fitted on (index,
arrival), as for BLE devices. A counter jump is a ``"counter_jump"`` gap of NaN rows; a
silence longer than the counter can express (a board that stalled) is sized from the host
clock. Non-zero values of the marker row become markers (``on_marker``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from affectstream.device.clock import ClockModel
from affectstream.device.device_state import DeviceState, LinkState
from affectstream.device.stream_state import StreamStats
from affectstream.errors import ConfigError, DeviceError
from affectstream.ids import check_id
from affectstream.types import UNITS, Gap, SampleBlock

logger = logging.getLogger(__name__)

#: Seconds between reads of the board's ring buffer.
POLL_INTERVAL_S = 0.05
#: Where BrainFlow's package counter wraps.
COUNTER_MODULUS = 256

#: Description key -> modality, in the order rows are claimed (a row goes to the first).
_ROW_KEYS = (
    ("eeg_channels", "eeg"),
    ("ecg_channels", "ecg"),
    ("eda_channels", "eda"),
    ("ppg_channels", "ppg"),
    ("accel_channels", "acc"),
    ("gyro_channels", "gyro"),
    ("temperature_channels", "temp"),
    ("battery_channel", "battery"),
)

#: ``BrainFlowInputParams`` fields a board spec may set (``serial_port=/dev/ttyUSB0``).
_INT_PARAMS = {"ip_port", "ip_port_aux", "ip_port_anc", "ip_protocol", "timeout", "master_board"}


def load_brainflow() -> Any:
    """Import BrainFlow's board module, or say how to install it.

    Returns
    -------
    module
        ``brainflow.board_shim``.

    Raises
    ------
    ConfigError
        When BrainFlow is not installed.
    """
    try:
        with warnings.catch_warnings():
            # BrainFlow finds its library through pkg_resources, which warns on import;
            # the warning is BrainFlow's to fix and says nothing to our users.
            warnings.filterwarnings("ignore", "pkg_resources is deprecated", UserWarning)
            import brainflow.board_shim as board_shim
    except ImportError as exc:
        raise ConfigError(
            "BrainFlow is not installed: pip install 'affectstream[brainflow]'"
        ) from exc
    return board_shim


def board_id_of(name: str) -> int:
    """A board id from a BrainFlow board name (``synthetic``, ``CYTON_BOARD``) or number.

    Parameters
    ----------
    name : str
        Name of a ``BoardIds`` member, case-insensitive, with or without ``_BOARD``; or
        its number.

    Returns
    -------
    int

    Raises
    ------
    ConfigError
        For a name BrainFlow does not know (lists a few it does).
    """
    ids = load_brainflow().BoardIds
    text = name.strip()
    with contextlib.suppress(ValueError):
        number = int(text)
        if number in {member.value for member in ids}:
            return number
    key = text.upper().replace("-", "_")
    for candidate in (key, f"{key}_BOARD"):
        if candidate in ids.__members__:
            return int(ids[candidate].value)
    boards = [m for m, member in ids.__members__.items() if member.value >= -1][:12]
    known = ", ".join(m.lower().removesuffix("_board") for m in boards)
    raise ConfigError(
        f"--brainflow: unknown board {name!r}; use a BrainFlow board name or id "
        f"(e.g. {known}, ...)."
    )


@dataclass(frozen=True)
class BoardSpec:
    """A parsed ``--brainflow`` value.

    Parameters
    ----------
    board_id : int
        BrainFlow board id.
    params : dict
        ``BrainFlowInputParams`` fields to set.
    """

    board_id: int
    params: dict[str, str | int] = field(default_factory=dict)

    @property
    def descr_id(self) -> int:
        """The board whose description applies (a playback or streaming board's master)."""
        return int(self.params.get("master_board", self.board_id))


def parse_board(spec: str) -> BoardSpec:
    """Parse ``BOARD[:param=value,...]`` (``synthetic``, ``cyton:serial_port=/dev/ttyUSB0``).

    Parameters
    ----------
    spec : str
        The option's value.

    Returns
    -------
    BoardSpec

    Raises
    ------
    ConfigError
        For an unknown board, parameter or malformed ``param=value``.
    """
    name, _, rest = spec.partition(":")
    board_id = board_id_of(name)
    fields = set(vars(load_brainflow().BrainFlowInputParams()))
    params: dict[str, str | int] = {}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in fields:
            raise ConfigError(
                f"--brainflow {spec!r}: {item!r} is not param=value with a BrainFlow input "
                f"parameter ({', '.join(sorted(fields))})."
            )
        if key in _INT_PARAMS:
            params[key] = board_id_of(value) if key == "master_board" else _int(key, value)
        else:
            params[key] = value.strip()
    return BoardSpec(board_id, params)


def _int(key: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"--brainflow: {key} must be a whole number, got {value!r}.") from None


@dataclass
class BoardStream:
    """Rows of one modality of a board, with their gap accounting.

    Parameters
    ----------
    stream_id : str
        ``<device>/<modality>``.
    modality : str
        Modality of the rows.
    rows : list of int
        Rows of BrainFlow's data array.
    channels : tuple of str
        Channel names.
    """

    stream_id: str
    modality: str
    rows: list[int]
    channels: tuple[str, ...]
    stats: StreamStats = field(default_factory=StreamStats)


def board_streams(descr: dict[str, Any], device: str) -> list[BoardStream]:
    """The streams a board description lays out (each row in one stream only).

    Parameters
    ----------
    descr : dict
        ``BoardShim.get_board_descr(board_id)``.
    device : str
        Device id (stream ids are ``<device>/<modality>``).

    Returns
    -------
    list of BoardStream
    """
    claimed: set[int] = set()
    streams = []
    for key, modality in _ROW_KEYS:
        value = descr.get(key)
        rows = [value] if isinstance(value, int) else list(value or [])
        rows = [r for r in rows if r not in claimed]
        if not rows:
            continue
        claimed.update(rows)
        names = [n.strip() for n in str(descr.get("eeg_names", "")).split(",") if n.strip()]
        if modality == "eeg" and len(names) == len(rows):
            channels = tuple(names)
        elif len(rows) == 1:
            channels = (modality,)
        else:
            channels = tuple(f"{modality}{i + 1}" for i in range(len(rows)))
        streams.append(BoardStream(f"{device}/{modality}", modality, rows, channels))
    return streams


def board_modalities(spec: BoardSpec) -> list[str]:
    """Modalities a board delivers (from its description; the board is not opened).

    Parameters
    ----------
    spec : BoardSpec
        Parsed ``--brainflow`` value.

    Returns
    -------
    list of str
    """
    descr = load_brainflow().BoardShim.get_board_descr(spec.descr_id)
    return [s.modality for s in board_streams(descr, "board")]


class BrainFlowSource:
    """One BrainFlow board delivering blocks (a ``BlockSource``).

    Parameters
    ----------
    spec : BoardSpec or str
        Board and input parameters (``"synthetic"``, ``"cyton:serial_port=/dev/ttyUSB0"``).
    on_block : callable
        Receives every block (``LiveSession.submit``).
    on_marker : callable, optional
        Receives ``(label, host_time)`` for each non-zero value of the marker row.
    device : str, optional
        Device id; ``brainflow-<board name>`` by default.
    """

    def __init__(
        self,
        spec: BoardSpec | str,
        *,
        on_block: Callable[[SampleBlock], None],
        on_marker: Callable[[str, float], None] | None = None,
        device: str | None = None,
    ) -> None:
        self.spec = parse_board(spec) if isinstance(spec, str) else spec
        board_shim = load_brainflow()
        board_shim.BoardShim.disable_board_logger()  # its own stderr logger; ours reports
        self.descr: dict[str, Any] = board_shim.BoardShim.get_board_descr(self.spec.descr_id)
        name = str(self.descr.get("name", self.spec.descr_id)).lower().replace(" ", "-")
        self.device = check_id(device or f"brainflow-{name}", "device")
        self.sfreq = float(self.descr["sampling_rate"])
        self.streams = board_streams(self.descr, self.device)
        self.on_block = on_block
        self.on_marker = on_marker
        self.markers_received = 0
        self._board: Any = None
        self._task: asyncio.Task[None] | None = None
        self._clock = ClockModel(self.sfreq)
        self._next_index = 0
        self._last_counter: int | None = None
        self._last_arrival = -np.inf
        self._last_t = -np.inf
        self._battery: float | None = None
        self._link: LinkState = "connecting"

    async def start(self) -> None:
        """Open the board and start streaming.

        Raises
        ------
        DeviceError
            When BrainFlow cannot open or start the board (with BrainFlow's reason).
        """
        board_shim = load_brainflow()
        params = board_shim.BrainFlowInputParams()
        for key, value in self.spec.params.items():
            setattr(params, key, value)
        board = board_shim.BoardShim(self.spec.board_id, params)
        try:
            await asyncio.to_thread(board.prepare_session)
            await asyncio.to_thread(board.start_stream)
        except board_shim.BrainFlowError as exc:
            with contextlib.suppress(board_shim.BrainFlowError):
                board.release_session()
            raise DeviceError(
                f"BrainFlow could not start {self.device} ({exc}); check the "
                "board is on and its parameters (serial_port=..., mac_address=...)."
            ) from exc
        self._board = board
        self._link = "connected"
        logger.info(
            "BrainFlow %s: %s at %g Hz",
            self.device, ", ".join(s.modality for s in self.streams), self.sfreq,
        )  # fmt: skip
        self._task = asyncio.create_task(self._poll(), name=f"brainflow:{self.device}")

    async def _poll(self) -> None:
        while True:
            self._read_once()
            await asyncio.sleep(POLL_INTERVAL_S)

    def _read_once(self) -> None:
        board_shim = load_brainflow()
        try:
            data = self._board.get_board_data()
        except board_shim.BrainFlowError as exc:  # a read error must not end the session
            logger.warning("%s: read failed (%s); retrying", self.device, exc)
            return
        if data.shape[1]:
            self.deliver(np.asarray(data, dtype=np.float64))

    def deliver(self, data: np.ndarray) -> None:
        """Turn rows of BrainFlow's data array into blocks and markers.

        Parameters
        ----------
        data : ndarray, shape (num_rows, n)
            As ``BoardShim.get_board_data`` returns it.
        """
        arrival = data[int(self.descr["timestamp_channel"])]
        index, missing = self._indices(data, arrival)
        for i, a in zip(index, arrival, strict=True):
            self._clock.observe(int(i), float(a))
        t = self._clock.stamp(index)
        gaps_at = np.flatnonzero(missing)
        marker_row = self.descr.get("marker_channel")
        if marker_row is not None and self.on_marker is not None:
            for j in np.flatnonzero(data[int(marker_row)] != 0):
                value = float(data[int(marker_row), j])
                self.markers_received += 1
                self.on_marker(f"{value:g}", float(t[j]))
        for stream in self.streams:
            self.on_block(self._block(stream, data[stream.rows].T, index, t, missing, gaps_at))
            if stream.modality == "battery":
                self._battery = float(data[stream.rows[0], -1])
        self._last_t = float(t[-1])

    def _indices(self, data: np.ndarray, arrival: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Unwrapped sample indices of the rows and the samples missing before each."""
        n = data.shape[1]
        counter_row = self.descr.get("package_num_channel")
        if counter_row is None:
            steps = np.ones(n, dtype=np.int64)
        else:
            counter = data[int(counter_row)].astype(np.int64)
            previous = np.concatenate(
                [[counter[0] - 1 if self._last_counter is None else self._last_counter],
                 counter[:-1]]
            )  # fmt: skip
            steps = np.mod(counter - previous, COUNTER_MODULUS)
            steps[steps == 0] = 1
            self._last_counter = int(counter[-1])
        # A silence the wrapping counter cannot express: size it from the host clock.
        silence = arrival[0] - self._last_arrival
        if np.isfinite(silence) and silence * self.sfreq > COUNTER_MODULUS * 0.75:
            steps[0] = max(int(steps[0]), round(silence * self.sfreq))
        self._last_arrival = float(arrival[-1])
        index = self._next_index - 1 + np.cumsum(steps)
        self._next_index = int(index[-1]) + 1
        return index.astype(np.int64), steps - 1

    def _block(
        self,
        stream: BoardStream,
        values: np.ndarray,
        index: np.ndarray,
        t: np.ndarray,
        missing: np.ndarray,
        gaps_at: np.ndarray,
    ) -> SampleBlock:
        n = index.shape[0]
        stream.stats.samples_received += n
        stream.stats.samples_expected += n + int(missing.sum())
        if not gaps_at.size:
            return self._make(stream, t, values, index, ())
        rows_t, rows_v, rows_i, gaps = [], [], [], []
        start = 0
        period = 1.0 / self.sfreq
        for j in gaps_at:
            k = int(missing[j])
            rows_t.append(t[start:j])
            rows_v.append(values[start:j])
            rows_i.append(index[start:j])
            before = self._last_t if j == 0 else t[j - 1]
            gap_t = np.maximum(t[j] - period * np.arange(k, 0, -1), np.nextafter(before, np.inf))
            first = int(index[j]) - k
            gaps.append(Gap(stream.stream_id, first, k, float(gap_t[0]), float(gap_t[-1])))
            rows_t.append(gap_t)
            rows_v.append(np.full((k, values.shape[1]), np.nan))
            rows_i.append(np.arange(first, first + k, dtype=np.int64))
            stream.stats.gap_samples += k
            stream.stats.gaps += 1
            start = int(j)
        if stream is self.streams[0]:
            logger.warning("%s: %d samples lost", self.device, int(missing.sum()))
        rows_t.append(t[start:])
        rows_v.append(values[start:])
        rows_i.append(index[start:])
        return self._make(
            stream, np.concatenate(rows_t), np.concatenate(rows_v), np.concatenate(rows_i),
            tuple(gaps),
        )  # fmt: skip

    def _make(
        self,
        stream: BoardStream,
        t: np.ndarray,
        values: np.ndarray,
        index: np.ndarray,
        gaps: tuple[Gap, ...],
    ) -> SampleBlock:
        return SampleBlock(
            stream=stream.stream_id,
            modality=stream.modality,
            channels=stream.channels,
            unit=UNITS[stream.modality],
            sfreq=self.sfreq,
            t=np.asarray(t, dtype=np.float64),
            values=np.ascontiguousarray(values, dtype=np.float64),
            index=np.asarray(index, dtype=np.int64),
            gaps=gaps,
            device=self.device,
        )

    async def stop(self) -> None:
        """Stop polling (after a last read) and release the board."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._board is None:
            return
        board_shim = load_brainflow()
        self._read_once()  # what arrived since the last poll
        with contextlib.suppress(board_shim.BrainFlowError):
            await asyncio.to_thread(self._board.stop_stream)
        with contextlib.suppress(board_shim.BrainFlowError):
            await asyncio.to_thread(self._board.release_session)
        self._board = None
        self._link = "stopped"

    def stats(self) -> dict[str, StreamStats]:
        """Counters per stream id.

        Returns
        -------
        dict of str to StreamStats
        """
        return {s.stream_id: s.stats for s in self.streams}

    def device_states(self) -> list[DeviceState]:
        """The board as a device snapshot (a board reports no contact; no reconnects).

        Returns
        -------
        list of DeviceState
        """
        return [
            DeviceState(
                name=self.device,
                address=str(
                    self.spec.params.get("serial_port") or self.spec.params.get("mac_address") or ""
                ),
                profile="brainflow",
                link=self._link,
                reconnects=0,
                gaps=sum(s.stats.gaps for s in self.streams),
                gap_samples=sum(s.stats.gap_samples for s in self.streams),
                battery=self._battery,
                battery_low=None,
                contact=None,
            )
        ]
