"""Play recorded sample blocks back in time order, as a device layer would deliver them.

:class:`ReplaySource` has the ``start``/``stop``/``stats`` shape of the live runtime's block
source, so the live session runtime consumes a recording exactly as it consumes devices;
``affectstream replay`` wires the two.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from affectstream._validate import check_positive
from affectstream.types import SampleBlock

logger = logging.getLogger(__name__)


def chunk_blocks(blocks: Sequence[SampleBlock], seconds: float) -> list[SampleBlock]:
    """Cut recordings into chunks of ``seconds`` and order them as they would arrive.

    Parameters
    ----------
    blocks : sequence of SampleBlock
        Whole recordings (one or more per stream).
    seconds : float
        Chunk length.

    Returns
    -------
    list of SampleBlock
        Sorted by the time of each chunk's last sample (ties keep the input order).
    """
    seconds = check_positive("chunk seconds", seconds)
    chunks: list[tuple[float, int, SampleBlock]] = []
    for order, block in enumerate(blocks):
        if not len(block):
            continue
        edges = np.searchsorted(
            block.t, np.arange(float(block.t[0]) + seconds, float(block.t[-1]), seconds)
        )
        bounds = [0, *[int(e) for e in edges], len(block)]
        for start, stop in itertools.pairwise(bounds):
            if stop > start:
                chunks.append((float(block.t[stop - 1]), order, block.rows(start, stop)))
    chunks.sort(key=lambda item: (item[0], item[1]))
    return [chunk for _, _, chunk in chunks]


class ReplaySource:
    """Deliver recorded blocks to ``on_block`` in time order, paced or as fast as possible.

    Parameters
    ----------
    blocks : sequence of SampleBlock
        The recording.
    on_block : callable
        Called with each chunk (e.g. ``LiveSession.submit``).
    speed : float or None
        Playback speed relative to real time (``10`` = ten times faster); ``None`` as fast
        as the consumer keeps up.
    chunk_seconds : float
        Seconds of data per delivered chunk (like a BLE notification batch).
    finished : asyncio.Event, optional
        Set once everything has been delivered (pass the session's stop event).
    progress : callable, optional
        ``progress("replaying", samples_done, samples_total)`` after each chunk.
    """

    def __init__(
        self,
        blocks: Sequence[SampleBlock],
        on_block: Callable[[SampleBlock], None],
        *,
        speed: float | None = None,
        chunk_seconds: float = 1.0,
        finished: asyncio.Event | None = None,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> None:
        self.speed = None if speed is None else check_positive("speed", speed)
        self.chunks = chunk_blocks(blocks, chunk_seconds)
        self.on_block = on_block
        self.finished = finished if finished is not None else asyncio.Event()
        self.progress = progress
        self.delivered: dict[str, int] = {}
        self.total = sum(len(c) for c in self.chunks)
        self.started = math.nan
        self.ended = math.nan
        self._task: asyncio.Task[None] | None = None

    @property
    def streams(self) -> dict[str, str]:
        """Stream id → modality of the recording."""
        return {c.stream: c.modality for c in self.chunks}

    @property
    def data_seconds(self) -> float:
        """Time span of the recording."""
        if not self.chunks:
            return 0.0
        return max(float(c.t[-1]) for c in self.chunks) - min(float(c.t[0]) for c in self.chunks)

    async def start(self) -> None:
        """Start delivering in a task."""
        self._task = asyncio.create_task(self._play(), name="replay")

    async def stop(self) -> None:
        """Stop delivering (what was delivered stays delivered)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def stats(self) -> dict[str, Any]:
        """Samples delivered per stream."""
        return {stream: {"delivered": n} for stream, n in self.delivered.items()}

    async def _play(self) -> None:
        self.started = time.monotonic()
        origin = min((float(c.t[0]) for c in self.chunks), default=0.0)
        done = 0
        try:
            for chunk in self.chunks:
                if self.speed is not None:
                    due = self.started + (float(chunk.t[-1]) - origin) / self.speed
                    await asyncio.sleep(max(0.0, due - time.monotonic()))
                else:
                    await asyncio.sleep(0)  # let the session's tasks run between chunks
                self.on_block(chunk)
                self.delivered[chunk.stream] = self.delivered.get(chunk.stream, 0) + len(chunk)
                done += len(chunk)
                if self.progress is not None:
                    self.progress("replaying", done, self.total)
        finally:
            self.ended = time.monotonic()
            self.finished.set()
