"""Map 10-20 EEG montages onto the Muse positions the shipped EEG models were trained on.

A clinical EDF names its electrodes after the 10-20 system (``Fp1``, ``F7``, ``T5``...); the
shipped EEG bundle reads Muse positions (``AF7``, ``AF8``, ``TP9``, ``TP10``). Each Muse
position is the mean of its nearest 10-20 neighbours, the mapping the eegmat training loader
uses (:data:`affectstream.models.datasets.MUSE_FROM_1020`):

=======  ==================
Muse     10-20 neighbours
=======  ==================
AF7      mean of Fp1, F7
AF8      mean of Fp2, F8
TP9      T5 (T7/P7 region)
TP10     T6
=======  ==================

:func:`model_channels_missing` tells which EEG channels a model needs that a recording
lacks, so a model is never fed a window without its inputs.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence

import numpy as np

from affectstream.signal._base import normalize_channel
from affectstream.types import SampleBlock

#: EEG feature names that carry a channel: ``eeg_<band>_<abs|rel>_<channel>``.
_CHANNEL_FEATURE = re.compile(r"^eeg_[a-z]+_(?:abs|rel)_(?P<channel>[a-z0-9_]+)$")


def muse_mapping() -> dict[str, tuple[str, ...]]:
    """Muse position → the 10-20 electrodes averaged for it.

    Returns
    -------
    dict of str to tuple of str
    """
    from affectstream.models.datasets import MUSE_FROM_1020

    return dict(MUSE_FROM_1020)


def to_muse_montage(block: SampleBlock) -> SampleBlock | None:
    """The EEG of ``block`` on Muse positions, or None when no mapping is needed or possible.

    Parameters
    ----------
    block : SampleBlock
        An EEG stream named in the 10-20 system (``"Fp1"`` or ``"EEG Fp1"``).

    Returns
    -------
    SampleBlock or None
        None when the block is no EEG, already has a Muse position, or lacks one of the
        10-20 electrodes the mapping needs.
    """
    if block.modality != "eeg":
        return None
    mapping = muse_mapping()
    by_name = {normalize_channel(c): i for i, c in enumerate(block.channels)}
    if any(normalize_channel(m) in by_name for m in mapping):
        return None
    needed = {normalize_channel(n) for group in mapping.values() for n in group}
    if not needed <= set(by_name):
        return None
    values = np.stack(
        [
            np.mean([block.values[:, by_name[normalize_channel(n)]] for n in group], axis=0)
            for group in mapping.values()
        ],
        axis=1,
    )
    return dataclasses.replace(block, channels=tuple(mapping), values=values)


def model_channels_missing(features: Iterable[str], blocks: Sequence[SampleBlock]) -> list[str]:
    """EEG channels a model's features name that no EEG stream of the recording has.

    Parameters
    ----------
    features : iterable of str
        The model's input features (``eeg_alpha_abs_af7``...).
    blocks : sequence of SampleBlock
        The recording.

    Returns
    -------
    list of str
        Missing channels (normalised names), sorted; empty when the model uses no EEG
        channel or the recording has them all.
    """
    wanted = set()
    for name in features:
        match = _CHANNEL_FEATURE.match(name)
        if match is not None:
            wanted.add(match["channel"])
    have = {normalize_channel(c) for b in blocks if b.modality == "eeg" for c in b.channels}
    return sorted(wanted - have)
