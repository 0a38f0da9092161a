"""A stored session built from synthetic sample blocks, shared by the export tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from affectstream.signal import extract_features
from affectstream.signal.synthetic import synthetic_ecg, synthetic_eda, synthetic_eeg, synthetic_rr
from affectstream.store import EmbeddedStore, SeriesBatch, blocks_to_batches, seconds_to_ns
from affectstream.types import Gap, SampleBlock

#: A start on a fractional second, so the EDF start-time padding is exercised.
T0 = 1_764_064_800.125
DURATION = 75.0
PARTICIPANT = "P-07"
SESSION = "s2026-11-25a"
EEG_GAP = (5000, 300)  # first sample index, number of samples missing


@dataclass
class Built:
    """The stored session and the blocks it was made from."""

    store_path: Path
    blocks: dict[str, SampleBlock]
    gap: Gap


def with_gap(block: SampleBlock, first: int, count: int, reason: str) -> tuple[SampleBlock, Gap]:
    """``block`` with samples [first, first+count) missing (NaN rows) and their Gap."""
    values = block.values.copy()
    values[first : first + count] = np.nan
    gap = Gap(
        stream=block.stream,
        first_index=first,
        n_samples=count,
        t_start=float(block.t[first]),
        t_end=float(block.t[first + count - 1]),
        reason=reason,
    )
    gapped = SampleBlock(
        stream=block.stream,
        modality=block.modality,
        channels=block.channels,
        unit=block.unit,
        sfreq=block.sfreq,
        t=block.t,
        values=values,
        index=block.index,
        gaps=(gap,),
        device=block.device,
    )
    return gapped, gap


def make_blocks(seed: int = 3) -> tuple[dict[str, SampleBlock], Gap]:
    """EEG 256 Hz 4 ch with a gap, ECG 130 Hz, EDA 32 Hz and RR intervals."""
    rng = np.random.default_rng(seed)
    beats = synthetic_rr(DURATION, rng)
    eeg = SampleBlock.regular(
        "muse-1/eeg",
        "eeg",
        ("TP9", "AF7", "AF8", "TP10"),
        synthetic_eeg(DURATION, 256.0, (6.0, 5.0, 10.0, 6.0), rng),
        256.0,
        T0,
        device="muse-1",
    )
    eeg, gap = with_gap(eeg, *EEG_GAP, reason="disconnect")
    ecg = SampleBlock.regular(
        "polar-h10/ecg", "ecg", ("ECG",), synthetic_ecg(beats, DURATION, 130.0, rng), 130.0, T0,
        device="polar-h10",
    )  # fmt: skip
    eda = SampleBlock.regular(
        "eda-band/eda", "eda", ("EDA",), synthetic_eda(DURATION, 32.0, rng)[0], 32.0, T0,
        device="eda-band",
    )  # fmt: skip
    rr_ms = np.diff(beats) * 1000.0
    rr = SampleBlock(
        stream="hr-strap/rr",
        modality="rr",
        channels=("RR",),
        unit="ms",
        sfreq=None,
        t=T0 + beats[1:],
        values=rr_ms[:, None],
        index=np.arange(rr_ms.size, dtype=np.int64),
        device="hr-strap",
    )
    return {"eeg": eeg, "ecg": ecg, "eda": eda, "rr": rr}, gap


def derived_batches(blocks: dict[str, SampleBlock]) -> list[SeriesBatch]:
    """Features, quality, affect and events points as the live runtime stores them."""
    from affectstream.signal import WindowConfig

    # One stream per feature family: HRV from the ECG, not from the RR intervals too.
    signals = [blocks[m] for m in ("ecg", "eda", "eeg")]
    rows = extract_features(signals, WindowConfig(window=30.0, step=5.0))
    tags = {"participant": PARTICIPANT, "session": SESSION}
    t_ns = seconds_to_ns(rows["t_end"].to_numpy(np.float64))
    feature_names = [c for c in rows.columns if c.startswith(("hrv_", "eda_", "eeg_"))]
    quality_names = [c for c in rows.columns if c.startswith("quality_")]
    usable_names = [c for c in rows.columns if c.startswith("usable_")]
    p = np.linspace(0.2, 0.8, len(rows))
    events_t = np.array([T0 + 1.0, T0 + 30.0, T0 + 31.5])
    return [
        SeriesBatch(
            "features", tags, t_ns, {n: rows[n].to_numpy(np.float64) for n in feature_names}
        ),
        SeriesBatch(
            "quality",
            tags,
            t_ns,
            {
                **{n: rows[n].to_numpy(np.float64) for n in quality_names},
                **{n: rows[n].to_numpy(bool) for n in usable_names},
            },
        ),
        SeriesBatch(
            "affect",
            {**tags, "model": "test-bundle@0"},
            t_ns,
            {
                "arousal": p,
                "valence": 1.0 - p,
                "arousal_high": p >= 0.5,
                "top_feature": np.array(["hrv_rmssd"] * len(rows), dtype=object),
            },
        ),
        SeriesBatch(
            "events",
            tags,
            seconds_to_ns(events_t),
            {
                "kind": np.array(["phase", "marker", "phase"], dtype=object),
                "label": np.array(["baseline", "stress start", "stress"], dtype=object),
            },
        ),
    ]


@pytest.fixture(scope="package")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """An EmbeddedStore holding one session (raw, features, quality, affect, events)."""
    path = tmp_path_factory.mktemp("store") / "store"
    blocks, gap = make_blocks()
    with EmbeddedStore(path, synchronous="normal") as store:
        store.write(blocks_to_batches(blocks.values(), participant=PARTICIPANT, session=SESSION))
        store.write(derived_batches(blocks))
    return Built(store_path=path, blocks=blocks, gap=gap)
