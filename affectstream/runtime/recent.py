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

import threading
import time
from collections import deque
from typing import Any

import numpy as np

from affectstream.types import SampleBlock

#: A stream whose newest sample is older than this (s) is drawn up to now, as a gap.
STALE_SECONDS = 3.0


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
    n = int(np.clip(seconds / max(seconds / points, 1.5 * period), 2, points))
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
        self._lock = threading.Lock()

    def on_block(self, block: SampleBlock) -> None:
        """Keep ``block``'s first channel if it is its modality's first stream (O(1))."""
        if not len(block) or not block.channels:
            return
        source = self._source.setdefault(block.modality, (block.stream, block.channels[0]))
        if source[0] != block.stream:
            return  # a second stream of the modality (two heart-rate sources): not mixed in
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
