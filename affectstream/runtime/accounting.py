"""Per-stream accounting: every sample a device sent is stored or marked as a gap.

The ledger counts, per stream, the samples the device layer delivered (data rows, not the
NaN rows that stand for missing samples), the samples its gaps mark as missing, and what
the runtime did with the data rows: stored, dropped under back-pressure (then written as a
``"store_backlog"`` gap), or still pending. At the end of a session ``delivered == stored +
dropped`` for every stream, or the difference is reported as ``unflushed``.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np

from affectstream.types import SampleBlock

logger = logging.getLogger(__name__)

#: ``Gap.reason`` of data rows the runtime dropped because the store fell too far behind.
BACKLOG_REASON = "store_backlog"


def data_rows(block: SampleBlock) -> int:
    """Rows of ``block`` that hold a sample (not all-NaN gap rows).

    Parameters
    ----------
    block : SampleBlock
        A delivered block.

    Returns
    -------
    int
    """
    if len(block) == 0:
        return 0
    return int(np.count_nonzero(~np.all(np.isnan(block.values), axis=1)))


@dataclass
class StreamLedger:
    """What happened to the samples of one stream.

    Parameters
    ----------
    stream : str
        Stream id.
    modality : str
        Modality of the stream.
    delivered : int
        Data rows the device layer delivered to the runtime.
    device_gap_samples : int
        Samples the device layer marked missing (counter jumps, disconnects, overflow).
    gap_events : int
        Gap annotations seen (including time-only gaps of streams without a counter).
    stored : int
        Data rows written to the store.
    dropped : int
        Data rows dropped because the store fell behind; each becomes part of a
        ``"store_backlog"`` gap event.
    pending : int
        Data rows waiting for the store.
    feature_skipped : int
        Data rows the feature extractor did not see because it fell behind (they are still
        stored).
    feature_errors : int
        Blocks the feature extractor refused (logged; the session goes on).
    first_index, last_index : int
        Device sample indices of the first and last row delivered (-1 before any).
    """

    stream: str
    modality: str = ""
    delivered: int = 0
    device_gap_samples: int = 0
    gap_events: int = 0
    stored: int = 0
    dropped: int = 0
    pending: int = 0
    feature_skipped: int = 0
    feature_errors: int = 0
    first_index: int = -1
    last_index: int = -1

    def on_block(self, block: SampleBlock, n_data: int) -> None:
        """Count a block the device layer delivered.

        Parameters
        ----------
        block : SampleBlock
            The block.
        n_data : int
            Its data rows (:func:`data_rows`).
        """
        self.modality = block.modality
        self.delivered += n_data
        self.pending += n_data
        self.device_gap_samples += sum(g.n_samples for g in block.gaps)
        self.gap_events += len(block.gaps)
        if len(block):
            if self.first_index < 0:
                self.first_index = int(block.index[0])
            self.last_index = int(block.index[-1])

    @property
    def gap_samples(self) -> int:
        """Samples marked as missing: device gaps plus rows dropped under back-pressure."""
        return self.device_gap_samples + self.dropped

    @property
    def unflushed(self) -> int:
        """Delivered rows neither stored nor marked as a gap (non-zero only if the store
        never came back before the session ended)."""
        return self.delivered - self.stored - self.dropped

    def as_dict(self) -> dict[str, int | str]:
        """The counters, with ``gap_samples`` and ``unflushed``, as a plain dict.

        Returns
        -------
        dict
        """
        out: dict[str, int | str] = asdict(self)
        out["gap_samples"] = self.gap_samples
        out["unflushed"] = self.unflushed
        return out


class OrderCheck:
    """Count (and log the first) block whose times do not strictly increase.

    The device layer stamps every stream strictly increasing (RR values at their beat
    times, regular samples never before the previous delivery), so this should never
    happen. If it does, the store keeps one of two tied points and the extractor refuses
    the block (a feature error): the count says why.
    """

    def __init__(self) -> None:
        self.unordered_blocks = 0
        self._last_t: dict[str, float] = {}  # stream -> time of its last sample

    def check(self, block: SampleBlock) -> None:
        """Check ``block`` against its stream's previous block.

        Parameters
        ----------
        block : SampleBlock
        """
        if len(block) == 0:
            return
        last = self._last_t.get(block.stream)
        self._last_t[block.stream] = float(block.t[-1])
        if (last is None or block.t[0] > last) and bool(np.all(np.diff(block.t) > 0)):
            return
        self.unordered_blocks += 1
        if self.unordered_blocks == 1:
            logger.warning(
                "%s: a block's times do not strictly increase (first %.6f after %s); "
                "tied points overwrite each other in the store and features skip the block",
                block.stream,
                float(block.t[0]),
                "nothing" if last is None else f"{last:.6f}",
            )
