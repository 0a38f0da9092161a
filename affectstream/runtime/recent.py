"""The last seconds of each raw stream of a running session, in memory, for live traces.

A live view draws the recent signal a few times a second. The session already sees every
block (:meth:`LiveSession.submit`), so it keeps the first channel of each modality's recent
samples here and a viewer's refresh costs one min/max reduction in memory: no store read,
no database, no worker thread. Measured on a loaded 2-core machine, the service process
spent most of its wall time waiting to be scheduled; per-refresh work that needs several
wake-ups (a request, a worker thread, a store transaction) was what made live data slow
(docs/dashboard.md). :func:`envelope_of` is the one min/max envelope, also used for traces
read back from the store.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from typing import Any

import numpy as np

from affectstream.types import SampleBlock

#: A stream whose newest sample is older than this (s) is drawn up to now, as a gap.
STALE_SECONDS = 3.0


def bin_width(seconds: float, points: int, period: float) -> float:
    """Width (s) of a trace bin: ``seconds / points``, but at least 1.5 sample periods.

    At 1.5 periods or more a bin always holds a sample of a regular stream (heart rate at
    1 Hz included), so an empty bin means samples are missing.
    """
    return max(seconds / points, 1.5 * period)


def _nulls(values: np.ndarray) -> list[float | None]:
    """``values`` as a JSON-ready list, NaN as None."""
    return [None if x != x else x for x in values.tolist()]  # x != x: NaN


def envelope_of(
    t: np.ndarray, v: np.ndarray, seconds: float, points: int, now: float | None = None
) -> dict[str, Any] | None:
    """Min/max envelope of samples ``v`` at times ``t`` over their last ``seconds``.

    The window ends at the newest sample (samples arrive in batches, so "now" would show
    every batch's last moments as missing), or at now when the newest sample is older than
    :data:`STALE_SECONDS` (a stream that stopped shows as a gap). Bins are at least 1.5
    sample periods wide, so a slow stream (heart rate at 1 Hz) has a sample in every bin
    and an empty bin always means samples are missing.

    Parameters
    ----------
    t, v : ndarray
        Sample times (s since the epoch, increasing) and values.
    seconds : float
        Window length.
    points : int
        Most bins.
    now : float, optional
        The current time (default ``time.time()``).

    Returns
    -------
    dict or None
        ``t`` (bin centres, s), ``min``, ``max`` (NaN where a bin has no finite sample),
        ``gaps`` ([t0, t1] spans of such bins), ``stop`` (the window's end, s); None when
        there are no samples.
    """
    if not len(t):
        return None
    now = time.time() if now is None else now
    newest = float(t[-1])
    stop = newest if now - newest < STALE_SECONDS else now
    start = stop - seconds
    period = float(np.median(np.diff(t[-1000:]))) if len(t) > 1 else seconds
    n = int(np.clip(seconds / bin_width(seconds, points, period), 2, points))
    edges = np.linspace(start, stop, n + 1)
    lo = np.full(n, np.nan)
    hi = np.full(n, np.nan)
    ok = np.isfinite(v) & (t >= start) & (t <= stop)
    idx = np.clip(np.searchsorted(edges, t[ok], side="right") - 1, 0, n - 1)
    np.fmin.at(lo, idx, v[ok])
    np.fmax.at(hi, idx, v[ok])
    empty = ~np.isfinite(lo)
    # Spans of empty bins: where ``empty`` switches on and off.
    flips = np.flatnonzero(np.diff(np.concatenate([[0], empty.astype(np.int8), [0]])))
    pairs = zip(flips[::2], flips[1::2], strict=True)
    return {
        "stop": stop,
        "t": ((edges[:-1] + edges[1:]) / 2).tolist(),
        "min": lo.tolist(),
        "max": hi.tolist(),
        "gaps": [[float(edges[i]), float(edges[j])] for i, j in pairs],
    }


class RecentTraces:
    """The first channel of the first stream of each modality, over the last ``max_seconds``.

    Blocks arrive on the session's event loop; readers may be other threads, hence the lock
    (held only to append or to copy references).

    Parameters
    ----------
    max_seconds : float
        Longest window kept (plus :data:`STALE_SECONDS`).
    """

    def __init__(self, max_seconds: float = 120.0) -> None:
        self.max_seconds = max_seconds
        self._chunks: dict[str, deque[tuple[np.ndarray, np.ndarray]]] = {}
        self._source: dict[str, tuple[str, str]] = {}  # modality -> (stream, channel)
        self._period: dict[str, float] = {}  # modality -> nominal sample period (s)
        self._lock = threading.Lock()

    def on_block(self, block: SampleBlock) -> None:
        """Keep ``block``'s first channel if it is its modality's first stream (O(1))."""
        if not len(block) or not block.channels:
            return
        source = self._source.setdefault(block.modality, (block.stream, block.channels[0]))
        if source[0] != block.stream:
            return  # a second stream of the modality (two heart-rate sources): not mixed in
        if block.sfreq and block.modality not in self._period:
            self._period[block.modality] = 1 / block.sfreq
        with self._lock:
            chunks = self._chunks.setdefault(block.modality, deque())
            chunks.append((block.t, block.values[:, 0]))
            oldest = float(block.t[-1]) - self.max_seconds - STALE_SECONDS
            while chunks and float(chunks[0][0][-1]) < oldest:
                chunks.popleft()

    def modalities(self) -> list[str]:
        """Modalities with samples kept."""
        return list(self._source)

    def envelope(
        self, modality: str, seconds: float, points: int, now: float | None = None
    ) -> dict[str, Any] | None:
        """:func:`envelope_of` the modality's recent samples, plus their ``channel``.

        Returns
        -------
        dict or None
            None when the session has no samples of ``modality``.
        """
        with self._lock:
            chunks = list(self._chunks.get(modality, ()))
        if not chunks:
            return None
        # Only the chunks that reach into the window (the deque holds max_seconds).
        since = float(chunks[-1][0][-1]) - seconds - STALE_SECONDS
        chunks = [c for c in chunks if float(c[0][-1]) >= since]
        t = np.concatenate([c[0] for c in chunks])
        v = np.concatenate([c[1] for c in chunks]).astype(np.float64, copy=False)
        env = envelope_of(t, v, min(seconds, self.max_seconds), points, now)
        if env is not None:
            env["channel"] = self._source[modality][1]
        return env

    def bins(
        self,
        modality: str,
        seconds: float,
        points: int,
        since: float | None = None,
        now: float | None = None,
    ) -> dict[str, Any] | None:
        """Min/max of the modality's samples in bins on a fixed time grid, from ``since``.

        The bins are the multiples of one width (:func:`bin_width` of ``seconds``,
        ``points`` and the stream's nominal period), so bins sent at different times line
        up: a live view keeps the bins it has and replaces those from ``t0`` on. That is
        what lets the event stream push only the last second or so of bins ten times a
        second instead of the whole window (docs/dashboard.md, "Measured").

        Parameters
        ----------
        modality : str
        seconds : float
            Window length: bins start no earlier than ``seconds`` before the window's end.
        points : int
            Most bins over ``seconds``.
        since : float, optional
            Send bins from the one holding this time (s since the epoch); default the
            whole window.
        now : float, optional
            The current time (default ``time.time()``).

        Returns
        -------
        dict or None
            ``t0`` (start of the first bin, s), ``w`` (bin width, s), ``min`` and ``max``
            (None where a bin has no finite sample), ``stop`` (the window's end: the newest
            sample, or now once the stream has been silent :data:`STALE_SECONDS`),
            ``newest`` (the newest sample's time) and ``channel``; None when the session
            has no samples of ``modality``.
        """
        with self._lock:
            kept = self._chunks.get(modality)
            if not kept:
                return None
            newest = float(kept[-1][0][-1])
            now = time.time() if now is None else now
            stop = newest if now - newest < STALE_SECONDS else now
            seconds = min(seconds, self.max_seconds)
            period = self._period_of(modality, kept)
            width = min(bin_width(seconds, points, period), seconds / 2)
            start = stop - seconds if since is None else max(since, stop - seconds)
            first = math.floor(min(start, newest) / width)
            # Newest first, only back to the first bin: a frame of the last second walks a
            # few chunks, not the two minutes kept.
            chunks = []
            for chunk in reversed(kept):
                if float(chunk[0][-1]) < first * width:
                    break
                chunks.append(chunk)
            chunks.reverse()
        n = math.floor(newest / width) - first + 1  # up to the bin of the newest sample
        t = np.concatenate([c[0] for c in chunks])
        v = np.concatenate([c[1] for c in chunks]).astype(np.float64, copy=False)
        idx = np.floor(t / width).astype(np.int64) - first
        ok = np.isfinite(v) & (idx >= 0) & (idx < n)
        lo = np.full(n, np.nan)
        hi = np.full(n, np.nan)
        np.fmin.at(lo, idx[ok], v[ok])
        np.fmax.at(hi, idx[ok], v[ok])
        return {
            "t0": first * width,
            "w": width,
            "min": _nulls(lo),
            "max": _nulls(hi),
            "stop": stop,
            "newest": newest,
            "channel": self._source[modality][1],
        }

    def _period_of(self, modality: str, chunks: deque[tuple[np.ndarray, np.ndarray]]) -> float:
        """The stream's nominal sample period: from its rate, else measured once and kept.

        Kept, not measured per read, so the bins of every read sit on the same grid.
        """
        period = self._period.get(modality)
        if period is None:
            t = np.concatenate([c[0] for c in list(chunks)[-50:]])
            if len(t) < 2:
                return 0.0
            period = self._period[modality] = float(f"{float(np.median(np.diff(t))):.2g}")
        return period
