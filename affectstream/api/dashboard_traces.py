"""Recent raw samples for trace envelopes of sessions not running in this process.

A session running here serves its traces from memory
(:class:`affectstream.runtime.recent.RecentTraces`); a stopped one, or one running in another
replica, is read from the store here. Reading a window from the store per request and per
viewer costs several milliseconds per modality (chunk decompression), which N viewers of M
sessions multiply. Here each (session, modality) keeps its recent samples in memory: a
request within :data:`REFRESH_SECONDS` of the last read of that stream is served from
memory; later, only the samples stored since are read and appended, and anything older than
the longest window is dropped. All viewers of a session share one cache, so the store reads
scale with sessions, not with viewers.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from affectstream.errors import StoreError
from affectstream.runtime.recent import STALE_SECONDS, envelope_of
from affectstream.store import RAW_PREFIX, TimeSeriesStore, seconds_to_ns

#: How long (s) a read of one stream is reused before the store is asked for newer samples.
REFRESH_SECONDS = 0.25

#: Streams kept (least recently used dropped first).
MAX_STREAMS = 256

_NOT_CHANNELS = frozenset({"time_ns", "session", "participant", "device", "stream", "model"})


@dataclass
class _Recent:
    t: np.ndarray  # s since the epoch
    v: np.ndarray  # first channel
    channel: str
    read_at: float  # monotonic
    last_ns: int  # newest sample's exact time: the next read starts after it


class RecentSamples:
    """Recent samples of the first channel of each (session, modality).

    Parameters
    ----------
    max_seconds : float
        Longest window a caller may ask for; older samples are dropped.
    """

    def __init__(self, max_seconds: float) -> None:
        self.max_seconds = max_seconds
        self._streams: OrderedDict[tuple[str, str], _Recent] = OrderedDict()
        self._lock = threading.Lock()
        self.store_reads = 0

    def _samples(self, store: TimeSeriesStore, session: str, modality: str) -> _Recent | None:
        key = (session, modality)
        now_mono = time.monotonic()
        with self._lock:
            recent = self._streams.get(key)
            if recent is not None and now_mono - recent.read_at < REFRESH_SECONDS:
                self._streams.move_to_end(key)
                return recent
            oldest = time.time() - self.max_seconds - STALE_SECONDS
            if recent is not None:
                start_ns = recent.last_ns + 1
            else:
                start_ns = int(seconds_to_ns(np.array([oldest]))[0])
            try:
                frame = store.read(
                    f"{RAW_PREFIX}{modality}", tags={"session": session}, start_ns=start_ns
                )
            except StoreError:
                return None
            self.store_reads += 1
            columns = [c for c in frame.columns if c not in _NOT_CHANNELS]
            if recent is None and (not len(frame) or not columns):
                return None
            t_new = frame["time_ns"].to_numpy(dtype=np.int64) / 1e9 if len(frame) else np.empty(0)
            if recent is None:
                v_new = frame[columns[0]].to_numpy(np.float64)
                recent = _Recent(t_new, v_new, columns[0], 0.0, start_ns - 1)
            elif len(frame) and recent.channel in frame.columns:
                v_new = frame[recent.channel].to_numpy(dtype=np.float64)
                recent.t = np.concatenate([recent.t, t_new])
                recent.v = np.concatenate([recent.v, v_new])
            if len(frame):
                recent.last_ns = max(recent.last_ns, int(frame["time_ns"].iloc[-1]))
            keep = recent.t >= oldest
            recent.t, recent.v = recent.t[keep], recent.v[keep]
            recent.read_at = now_mono
            self._streams[key] = recent
            self._streams.move_to_end(key)
            while len(self._streams) > MAX_STREAMS:
                self._streams.popitem(last=False)
            return recent

    def envelope(
        self, store: TimeSeriesStore, session: str, modality: str, seconds: float, points: int
    ) -> dict[str, Any] | None:
        """Min/max of the first channel of ``raw_<modality>`` over its last ``seconds``.

        The window ends at the newest stored sample (samples reach the store in batches, so
        "now" would show every batch's last moments as missing), or at now when the newest
        sample is older than :data:`STALE_SECONDS` (a stream that stopped shows as a gap).
        Bins are at least 1.5 sample periods wide, so a slow stream (heart rate at 1 Hz) has
        a sample in every bin and an empty bin always means samples are missing.

        Returns
        -------
        dict or None
            ``t`` (bin centres, s), ``min``, ``max`` (NaN where a bin has no finite
            sample; ``null`` once JSON-safe), ``gaps`` ([t0, t1] spans of such bins),
            ``channel``, ``stop`` (the window's end, s); None if nothing is stored.
        """
        recent = self._samples(store, session, modality)
        if recent is None:
            return None
        env = envelope_of(recent.t, recent.v, seconds, points)
        if env is not None:
            env["channel"] = recent.channel
        return env
