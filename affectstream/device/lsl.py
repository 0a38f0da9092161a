"""Lab Streaming Layer inlets as a device source (``affectstream record --lsl 'type="EEG"'``).

:class:`LslSource` resolves the streams that match LSL predicates (XPath 1.0 on the
stream's ``name``, ``type``, ``source_id``...), maps each to a modality from its XML
metadata (stream ``type``, channel ``type`` and ``unit``; an explicit mapping wins), and
delivers :class:`~affectstream.types.SampleBlock` objects to ``on_block`` exactly as the
BLE :class:`~affectstream.device.supervisor.Supervisor` does. Timestamps are LSL's, with
the inlet's clock-offset correction applied (``proc_clocksync``), moved onto the host's
epoch clock. An outlet that goes away and comes back (liblsl re-connects the inlet by
itself) leaves a hole in the timestamps of a regular stream: the missing samples become
NaN rows plus a ``"disconnect"`` :class:`~affectstream.types.Gap` and count as a
reconnect, the same accounting as a BLE drop. String streams are marker streams: each
sample goes to ``on_marker`` (the session's :meth:`mark`).

:class:`CombinedSource` runs several sources (LSL inlets and BLE devices) as one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from affectstream.device.lsl_meta import (
    UNIT_SCALE,
    channel_meta,
    device_id,
    load_pylsl,
    lsl_epoch_offset,
    modality_of,
)
from affectstream.device.stream_state import StreamStats
from affectstream.errors import ConfigError, DeviceError
from affectstream.types import UNITS, Gap, SampleBlock

if TYPE_CHECKING:
    from affectstream.device.device_state import DeviceState

logger = logging.getLogger(__name__)

#: Seconds a pull loop sleeps between non-blocking pulls.
POLL_INTERVAL_S = 0.02
#: At stop, samples already on their way (in liblsl's buffers or on the socket) are still
#: taken in until each stream delivers a later stamp or is quiet for DRAIN_QUIET_S, for at
#: most DRAIN_MAX_S.
DRAIN_QUIET_S = 0.3
DRAIN_MAX_S = 2.0


class LslStream:
    """One resolved LSL stream: its inlet, mapping and gap accounting.

    Parameters
    ----------
    inlet : pylsl.StreamInlet
        Opened inlet.
    info : pylsl.StreamInfo
        Full info of the stream.
    modality : str
        Modality (or ``"markers"``).
    epoch_offset : float
        Seconds from LSL time to host epoch time.
    """

    def __init__(self, inlet: Any, info: Any, modality: str, epoch_offset: float) -> None:
        self.inlet = inlet
        self.info = info
        self.modality = modality
        self.epoch_offset = epoch_offset
        self.device = device_id(info)
        self.stream_id = f"{self.device}/{modality}"
        meta = channel_meta(info)
        n = int(info.channel_count())
        labels = [m["label"].strip() for m in meta] if len(meta) == n else []
        if len(labels) != n or len({label.lower() for label in labels}) != n or "" in labels:
            labels = [f"ch{i + 1}" for i in range(n)]
        self.channels = tuple(labels)
        self.unit = UNITS.get(modality, "au")
        self.scale = np.ones(n)
        for i, m in enumerate(meta[:n]):
            factor = UNIT_SCALE.get(self.unit, {}).get(m["unit"].strip().lower())
            if factor is not None:
                self.scale[i] = factor
            elif m["unit"].strip() and m["unit"].strip() != self.unit:
                logger.warning(
                    "%s: channel %s unit %r is not converted to %s",
                    self.stream_id, labels[i], m["unit"], self.unit,
                )  # fmt: skip
        rate = float(info.nominal_srate())
        self.sfreq = rate if rate > 0 else None
        self.stats = StreamStats()
        self._next_index = 0
        self._last_ts: float | None = None
        self._last_t = -np.inf

    def block(self, values: np.ndarray, stamps: np.ndarray) -> SampleBlock | None:
        """Turn one pulled chunk into a block, with holes in the timestamps as gaps.

        Parameters
        ----------
        values : ndarray, shape (n, n_channels)
            Samples as pulled.
        stamps : ndarray, shape (n,)
            Their LSL timestamps (clock-corrected).

        Returns
        -------
        SampleBlock or None
            None for an empty chunk or one that only repeats earlier samples.
        """
        keep = stamps > (self._last_ts if self._last_ts is not None else -np.inf)
        self.stats.duplicates += int((~keep).sum())
        values, stamps = values[keep], stamps[keep]
        n = stamps.shape[0]
        if n == 0:
            return None
        values = values * self.scale
        if self.sfreq is None:
            steps = np.ones(n, dtype=np.int64)
        else:
            previous = np.concatenate([[stamps[0] if self._last_ts is None else self._last_ts],
                                       stamps[:-1]])  # fmt: skip
            # Samples of a regular stream are 1/sfreq apart; a hole of k periods is k-1
            # samples the outlet sent while this inlet was not connected (TCP loses none).
            steps = np.maximum(1, np.rint((stamps - previous) * self.sfreq)).astype(np.int64)
            if self._last_ts is None:
                steps[0] = 1
        missing = steps - 1
        index = self._next_index - 1 + np.cumsum(steps)
        self._next_index = int(index[-1]) + 1
        t = stamps + self.epoch_offset
        gaps: list[Gap] = []
        rows_t: list[np.ndarray] = []
        rows_v: list[np.ndarray] = []
        rows_i: list[np.ndarray] = []
        start = 0
        assert self.sfreq is not None or not missing.any()
        for j in np.flatnonzero(missing):
            k = int(missing[j])
            rows_t.append(t[start:j])
            rows_v.append(values[start:j])
            rows_i.append(index[start:j])
            period = 1.0 / self.sfreq  # type: ignore[operator]
            gap_t = t[j] - period * np.arange(k, 0, -1)
            gap_t = np.maximum(gap_t, np.nextafter(self._last_t if j == 0 else t[j - 1], np.inf))
            first = int(index[j]) - k
            gaps.append(Gap(self.stream_id, first, k, float(gap_t[0]), float(gap_t[-1]),
                            "disconnect"))  # fmt: skip
            rows_t.append(gap_t)
            rows_v.append(np.full((k, values.shape[1]), np.nan))
            rows_i.append(np.arange(first, first + k, dtype=np.int64))
            self.stats.gap_samples += k
            self.stats.gaps += 1
            self.stats.reconnects += 1
            logger.warning("%s: outlet came back; %d samples missing", self.stream_id, k)
            start = int(j)
        rows_t.append(t[start:])
        rows_v.append(values[start:])
        rows_i.append(index[start:])
        self.stats.samples_received += n
        self.stats.samples_expected += n + int(missing.sum())
        self._last_ts = float(stamps[-1])
        self._last_t = float(t[-1])
        return SampleBlock(
            stream=self.stream_id,
            modality=self.modality,
            channels=self.channels,
            unit=self.unit,
            sfreq=self.sfreq,
            t=np.concatenate(rows_t),
            values=np.concatenate(rows_v),
            index=np.concatenate(rows_i).astype(np.int64),
            gaps=tuple(gaps),
            device=self.device,
        )


class LslSource:
    """Resolve LSL streams and deliver their samples as blocks (a ``BlockSource``).

    Parameters
    ----------
    predicates : sequence of str
        LSL predicates, e.g. ``'type="EEG"'`` or ``"name='Muse' and type='PPG'"``; each must
        match at least one stream within ``resolve_timeout``.
    on_block : callable
        Receives every block (``LiveSession.submit``).
    on_marker : callable, optional
        Receives ``(label, host_time)`` for each sample of a marker stream.
    mapping : mapping of str to str, optional
        Stream name -> modality when the metadata does not say (``--lsl-map``).
    resolve_timeout : float
        Seconds to wait for each predicate's streams.
    """

    def __init__(
        self,
        predicates: Sequence[str],
        *,
        on_block: Callable[[SampleBlock], None],
        on_marker: Callable[[str, float], None] | None = None,
        mapping: Mapping[str, str] | None = None,
        resolve_timeout: float = 5.0,
    ) -> None:
        self.predicates = list(predicates)
        self.on_block = on_block
        self.on_marker = on_marker
        self.mapping = dict(mapping or {})
        self.resolve_timeout = resolve_timeout
        self.streams: list[LslStream] = []
        self.markers_received = 0
        self._tasks: list[asyncio.Task[None]] = []

    async def _open(self, info: Any, epoch_offset: float) -> LslStream | None:
        pylsl = load_pylsl()
        inlet = pylsl.StreamInlet(
            info, max_buflen=360, recover=True, processing_flags=pylsl.proc_clocksync
        )
        full = await asyncio.to_thread(inlet.info, self.resolve_timeout)
        await asyncio.to_thread(inlet.open_stream, self.resolve_timeout)
        modality = modality_of(full, self.mapping)
        if modality is None:
            logger.warning(
                "LSL stream %r (type %r) has no known modality: skipped; name it with "
                "--lsl-map '%s=eeg' (or ecg, eda, ppg...)",
                full.name(), full.type(), full.name(),
            )  # fmt: skip
            inlet.close_stream()
            return None
        return LslStream(inlet, full, modality, epoch_offset)

    async def start(self) -> None:
        """Resolve every predicate, open the inlets and start pulling.

        Raises
        ------
        DeviceError
            If a predicate matches no stream (says which and what to check).
        """
        try:
            await self._resolve_all()
        except BaseException:
            for stream in self.streams:  # inlets opened before the failure
                # Broad on purpose: the error that stopped the start is the one to report.
                with contextlib.suppress(Exception):
                    stream.inlet.close_stream()
            self.streams = []
            raise
        self._tasks = [
            asyncio.create_task(self._pull(s), name=f"lsl:{s.stream_id}") for s in self.streams
        ]

    async def _resolve_all(self) -> None:
        pylsl = load_pylsl()
        epoch_offset = lsl_epoch_offset()
        seen: set[str] = set()
        for predicate in self.predicates:
            try:
                infos = await asyncio.to_thread(
                    pylsl.resolve_bypred, predicate, 1, self.resolve_timeout
                )
            except (ValueError, RuntimeError) as exc:
                raise ConfigError(f"LSL predicate {predicate!r} is not valid: {exc}") from exc
            if not infos:
                raise DeviceError(
                    f"No LSL stream matches {predicate!r} within {self.resolve_timeout:g} s: "
                    "check that the outlet runs on this network and the predicate "
                    "(e.g. type='EEG' or name='Muse')."
                )
            for info in infos:
                if info.uid() in seen:
                    continue
                seen.add(info.uid())
                stream = await self._open(info, epoch_offset)
                if stream is not None:
                    self.streams.append(stream)
                    logger.info(
                        "LSL %r -> %s (%d ch, %s Hz)",
                        info.name(), stream.stream_id, len(stream.channels), stream.sfreq,
                    )  # fmt: skip
        ids = [s.stream_id for s in self.streams]
        if len(set(ids)) != len(ids):
            raise ConfigError(
                f"Several LSL streams map to one stream id ({', '.join(sorted(ids))}); "
                "give the outlets distinct names."
            )

    def _pull_once(self, stream: LslStream, until: float = math.inf) -> float:
        """Deliver what the inlet holds now, stamped before ``until`` (never waits).

        Returns the last stamp pulled (LSL clock), ``-inf`` if nothing came.
        """
        try:
            samples, stamps = stream.inlet.pull_chunk(timeout=0.0)
        except RuntimeError as exc:  # liblsl's errors (pylsl's LostError, TimeoutError, ...)
            logger.warning("%s: pull failed (%s); retrying", stream.stream_id, exc)
            return -math.inf
        if not stamps:
            return -math.inf
        last = float(stamps[-1])
        if last >= until:  # pushed after the stop: not this session's
            keep = sum(1 for stamp in stamps if stamp < until)
            samples, stamps = samples[:keep], stamps[:keep]
            if not stamps:
                return last
        if stream.modality == "markers":
            self._markers(stream, samples, stamps)
            return last
        values = np.asarray(samples, dtype=np.float64).reshape(len(stamps), len(stream.channels))
        block = stream.block(values, np.asarray(stamps, dtype=np.float64))
        if block is not None:
            self.on_block(block)
        return last

    async def _drain(self) -> None:
        """Pull what was pushed before now: a stream is done once it delivers a later stamp
        or is quiet for DRAIN_QUIET_S (at most DRAIN_MAX_S in all)."""
        loop = asyncio.get_running_loop()
        t_stop = float(load_pylsl().local_clock())  # the inlets' clock (proc_clocksync)
        deadline = loop.time() + DRAIN_MAX_S
        quiet_since = dict.fromkeys(range(len(self.streams)), loop.time())
        while quiet_since and loop.time() < deadline:
            for i in list(quiet_since):
                last = self._pull_once(self.streams[i], until=t_stop)
                if last > -math.inf and last < t_stop:
                    quiet_since[i] = loop.time()
                elif last >= t_stop or loop.time() - quiet_since[i] >= DRAIN_QUIET_S:
                    del quiet_since[i]
            await asyncio.sleep(POLL_INTERVAL_S)

    async def _pull(self, stream: LslStream) -> None:
        while True:
            self._pull_once(stream)
            await asyncio.sleep(POLL_INTERVAL_S)

    def _markers(self, stream: LslStream, samples: list[Any], stamps: list[float]) -> None:
        for sample, stamp in zip(samples, stamps, strict=True):
            if stream._last_ts is not None and stamp <= stream._last_ts:
                continue
            stream._last_ts = stamp
            stream.stats.samples_received += 1
            stream.stats.samples_expected += 1
            self.markers_received += 1
            label = " ".join(str(v) for v in sample).strip() or "marker"
            if self.on_marker is not None:
                self.on_marker(label, stamp + stream.epoch_offset)

    async def stop(self) -> None:
        """Stop pulling, after taking in what is on its way (bounded), and close the inlets.

        An outlet cannot say what it pushed, so what is "on its way" is what keeps arriving:
        each stream is pulled until it delivers a sample stamped after the stop (those are
        not kept) or is quiet for ``DRAIN_QUIET_S`` (at most ``DRAIN_MAX_S`` in all), so
        samples pushed just before the stop and still in liblsl's buffers or on the socket
        of a loaded machine are stored, not dropped.
        """
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self._drain()
        for stream in self.streams:
            with contextlib.suppress(RuntimeError):  # pylsl's errors: the stream is gone
                stream.inlet.close_stream()

    def stats(self) -> dict[str, StreamStats]:
        """Counters per stream id.

        Returns
        -------
        dict of str to StreamStats
        """
        return {s.stream_id: s.stats for s in self.streams}


class CombinedSource:
    """Several block sources (BLE supervisor, LSL inlets) run as one.

    Parameters
    ----------
    sources : sequence
        Each has ``start``, ``stop`` and ``stats`` (a ``BlockSource``).
    """

    def __init__(self, sources: Sequence[Any]) -> None:
        self.sources = list(sources)

    async def start(self) -> None:
        """Start every source (those started are stopped again if one fails)."""
        started = []
        try:
            for source in self.sources:
                await source.start()
                started.append(source)
        except BaseException:
            for source in started:
                # Broad on purpose: the error that stopped the start is the one to report.
                with contextlib.suppress(Exception):
                    await source.stop()
            raise

    async def stop(self) -> None:
        """Stop every source."""
        for source in self.sources:
            await source.stop()

    def stats(self) -> dict[str, Any]:
        """Counters of every source's streams.

        Returns
        -------
        dict
        """
        out: dict[str, Any] = {}
        for source in self.sources:
            out.update(source.stats())
        return out

    def device_states(self) -> list[DeviceState]:
        """The device snapshots of the sources that have them (the BLE supervisor's).

        Returns
        -------
        list of DeviceState
            See :meth:`affectstream.device.supervisor.Supervisor.device_states`; LSL inlets
            add none.
        """
        out: list[DeviceState] = []
        for source in self.sources:
            states = getattr(source, "device_states", None)
            if states is not None:
                out.extend(states())
        return out
