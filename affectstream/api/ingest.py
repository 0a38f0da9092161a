"""Ingest from remote gateways and apps: sequence numbers in, exactly-once blocks out.

Every stream of a session has a cursor: the next sample sequence number it expects (the
device's own sample index). A block ``[first_seq, first_seq + n)``:

- entirely below the cursor was received before (a resent batch): counted as duplicates,
  not passed on;
- overlapping the cursor: its already-received head is cut off;
- starting above the cursor: the missing samples become a :class:`~affectstream.types.Gap`
  (reason ``"ingest_lost"``) on the block, so the runtime writes the usual gap event and
  its ledger counts them, exactly as for a BLE counter jump.

The cursor lives in the metadata database, so any API replica sharing it applies the same
rule. Writes to the time-series store are idempotent too (a point rewritten at the same
time overwrites itself), so a crash between the store write and the cursor update cannot
duplicate data either.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from affectstream.api.db import IngestCursor
from affectstream.errors import ConfigError
from affectstream.store import SeriesBatch, blocks_to_batches
from affectstream.types import UNITS, Gap, SampleBlock

#: ``Gap.reason`` of samples a gateway's sequence numbers say were sent but never arrived.
INGEST_LOST = "ingest_lost"


@dataclass(frozen=True)
class BlockIn:
    """One block as a gateway sends it (validated by the API schema)."""

    stream: str
    modality: str
    channels: tuple[str, ...]
    sfreq: float | None
    first_seq: int
    t: list[float]
    values: list[list[float | None]]
    device: str = ""


@dataclass
class Accepted:
    """What happened to one block."""

    stream: str
    accepted: int
    duplicates: int
    gap_samples: int


def to_block(block: BlockIn) -> SampleBlock:
    """Turn a received block into a :class:`SampleBlock`, refusing malformed ones.

    Parameters
    ----------
    block : BlockIn

    Returns
    -------
    SampleBlock
    """
    n = len(block.t)
    if block.modality not in UNITS:
        raise ConfigError(
            f"Stream {block.stream!r}: unknown modality {block.modality!r}; use one of "
            f"{', '.join(UNITS)}."
        )
    if len(block.values) != n:
        raise ConfigError(
            f"Stream {block.stream!r}: {len(block.values)} value rows for {n} timestamps; "
            "send one row per timestamp."
        )
    width = len(block.channels)
    if any(len(row) != width for row in block.values):
        raise ConfigError(
            f"Stream {block.stream!r}: every value row must have {width} entries "
            f"(one per channel {list(block.channels)})."
        )
    t = np.asarray(block.t, dtype=np.float64)
    if n and (not np.all(np.isfinite(t)) or np.any(np.diff(t) <= 0)):
        raise ConfigError(
            f"Stream {block.stream!r}: timestamps must be finite and strictly increasing "
            "(seconds since the epoch)."
        )
    # numpy turns None (a missing channel value) into NaN itself, without a Python loop.
    values = np.array(block.values, dtype=np.float64).reshape(n, width)
    return SampleBlock(
        stream=block.stream,
        modality=block.modality,
        channels=block.channels,
        unit=UNITS[block.modality],
        sfreq=block.sfreq,
        t=t,
        values=values,
        index=np.arange(block.first_seq, block.first_seq + n, dtype=np.int64),
        device=block.device,
    )


def new_cursor(session_id: str, stream: str) -> IngestCursor:
    """The cursor of a stream not seen before: placed by its first sample (:func:`apply_cursor`).

    Parameters
    ----------
    session_id, stream : str

    Returns
    -------
    IngestCursor
    """
    return IngestCursor(
        session_id=session_id,
        stream=stream,
        next_seq=0,
        received=0,
        duplicates=0,
        gap_samples=0,
    )


def apply_cursor(cursor: IngestCursor, block: SampleBlock) -> tuple[SampleBlock | None, Accepted]:
    """Cut what the cursor has seen off ``block``, mark what it skipped as a gap, advance it.

    Parameters
    ----------
    cursor : IngestCursor
        The stream's cursor (updated in place; the caller commits).
    block : SampleBlock
        Received block; ``block.index`` holds the sequence numbers.

    Returns
    -------
    block : SampleBlock or None
        What to pass on (``None``: nothing new).
    accepted : Accepted
    """
    n = len(block)
    if n == 0:
        return None, Accepted(block.stream, 0, 0, 0)
    first = int(block.index[0])
    if cursor.received == 0 and cursor.duplicates == 0 and cursor.gap_samples == 0:
        # A stream starts at its first sample's sequence number (an empty block before it,
        # which the schema allows, must not turn that number into a gap).
        cursor.next_seq = first
    skip = max(0, min(n, cursor.next_seq - first))
    if skip == n:
        cursor.duplicates += n
        return None, Accepted(block.stream, 0, n, 0)
    kept = block
    if skip:
        kept = SampleBlock(
            block.stream,
            block.modality,
            block.channels,
            block.unit,
            block.sfreq,
            block.t[skip:],
            block.values[skip:],
            block.index[skip:],
            device=block.device,
        )
    missing = int(kept.index[0]) - cursor.next_seq
    gaps: tuple[Gap, ...] = ()
    if missing > 0:
        period = 1.0 / block.sfreq if block.sfreq else 0.0
        t_end = float(kept.t[0]) - period
        gaps = (
            Gap(
                block.stream,
                cursor.next_seq,
                missing,
                t_start=t_end - (missing - 1) * period,
                t_end=t_end,
                reason=INGEST_LOST,
            ),
        )
        kept = dataclasses.replace(kept, gaps=gaps)
    cursor.duplicates += skip
    cursor.gap_samples += max(missing, 0)
    cursor.received += len(kept)
    cursor.next_seq = int(kept.index[-1]) + 1
    return kept, Accepted(block.stream, len(kept), skip, max(missing, 0))


def orphan_batches(blocks: list[SampleBlock], session: str) -> list[SeriesBatch]:
    """Store batches of blocks whose session ended while they were being accepted.

    Parameters
    ----------
    blocks : list of SampleBlock
    session : str

    Returns
    -------
    list of SeriesBatch
    """
    return blocks_to_batches(blocks, session=session)
