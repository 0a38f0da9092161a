"""The EDA-rate train/serve skew: live features and arousal against the training definition.

A bundle trained on EDA averaged to a common rate (``stress-wrist``: 4 Hz) learned features
of that rate. :func:`measure_rate_skew` computes, on the same recordings, the bundle's
features three ways: as in training (:func:`~affectstream.models.features.recording_features`
with ``WindowConfig.common_rate``, the definition ``train`` and ``evaluate`` use), at each
stream's own rate (what live sessions computed before they honoured the common rate), and
through the live path (a :class:`~affectstream.signal.StreamingExtractor` on the window a
:class:`~affectstream.runtime.LiveEstimator` gives its features, fed BLE-sized chunks of
all streams in time order), and compares each with training: per feature, and the arousal
the bundle outputs. ``benchmarks/bench_eda_rate_skew.py`` runs it on emulated 32-Hz EDA and
on real recordings; :func:`emulated_wrist` builds the emulated input.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from affectstream.device.emulation.script import AffectScript
from affectstream.device.emulation.signals import BeatGenerator, EdaGenerator
from affectstream.models.bundle import ModelBundle
from affectstream.models.features import mask_unusable, recording_features
from affectstream.models.recording import Recording
from affectstream.runtime.estimator import LiveEstimator
from affectstream.runtime.multiwindow import trained_window
from affectstream.signal import StreamingExtractor, WindowConfig
from affectstream.signal.columns import feature_families
from affectstream.signal.extractor import FAMILY
from affectstream.signal.synthetic import split_block
from affectstream.types import SampleBlock

#: Seconds of samples per pushed chunk (a BLE notification carries a few samples).
CHUNK_SECONDS = 0.25
#: Emulated band resolution (µS): it sends conductance in nS (device/emulation/eda.py).
EDA_STEP_US = 0.001


def emulated_wrist(seed: int, minutes: float, eda_rate: float = 32.0) -> Recording:
    """An emulated wearer: EDA band samples and heart-rate events following the default script.

    Parameters
    ----------
    seed : int
        Randomness of the SCRs and beats.
    minutes : float
        Length.
    eda_rate : float
        EDA band rate (Hz; the band's default is 32).

    Returns
    -------
    Recording
        ``eda`` (µS, quantised as the band sends it) and ``hr`` (bpm at each beat), labels
        ``arousal`` = 1 in the script's stress phases.
    """
    script = AffectScript.default()
    rng = np.random.default_rng(seed)
    t0 = 1_700_000_000.0 + 86_400.0 * seed
    n = int(minutes * 60.0 * eda_rate)
    t = np.arange(n) / eda_rate
    generator = EdaGenerator(script, rng)
    chunks = [generator.samples_at(t[i : i + 256]) for i in range(0, n, 256)]
    eda = np.round(np.concatenate(chunks) / EDA_STEP_US) * EDA_STEP_US
    beats, rr = BeatGenerator(script, rng).beats_between(0.0, minutes * 60.0)
    ok = np.isfinite(rr)
    hr = SampleBlock(
        stream="strap/hr",
        modality="hr",
        channels=("HR",),
        unit="bpm",
        sfreq=None,
        t=t0 + beats[ok],
        values=(60.0 / rr[ok])[:, None],
        index=np.arange(int(ok.sum()), dtype=np.int64),
    )
    phases = np.arange(0.0, minutes * 60.0, 1.0)
    labels = pd.DataFrame(
        {"t": t0 + phases, "arousal": (script.arousal(phases) > 0.5).astype(np.float64)}
    )
    band = SampleBlock.regular("band/eda", "eda", ("EDA",), eda, eda_rate, t0, device="band")
    return Recording(f"E{seed}", (band, hr), labels, dataset="emulated")


def _live_rows(rec: Recording, config: WindowConfig) -> pd.DataFrame:
    """The live path's rows of one recording: chunks of every stream pushed in time order."""
    extractor = StreamingExtractor(config, origin=rec.start)
    chunks = []
    for block in rec.blocks:
        size = max(1, round((block.sfreq or 1.0) * CHUNK_SECONDS)) if block.sfreq else 1
        chunks += split_block(block, [size])
    chunks.sort(key=lambda c: float(c.t[0]))
    rows: list[dict[str, object]] = []
    for chunk in chunks:
        rows += extractor.push_rows(chunk)
    flushed = extractor.flush()
    return pd.concat([pd.DataFrame(rows, columns=extractor.columns), flushed], ignore_index=True)


def _live_frame(recordings: Sequence[Recording], config: WindowConfig) -> pd.DataFrame:
    """The live path's rows of every recording, with a ``subject`` column."""
    parts = [_live_rows(rec, config).assign(subject=rec.subject) for rec in recordings]
    return pd.concat(parts, ignore_index=True)


def _aligned(frame: pd.DataFrame, trained: pd.DataFrame) -> pd.DataFrame:
    """``trained`` with the signal columns ``frame`` has, taken from ``frame`` row by row.

    Rows are matched on subject and window end (a stream whose tail is averaged away may end
    one window earlier); a window ``frame`` lacks gets NaN.
    """
    keys = ["subject", "t_end"]
    index = pd.MultiIndex.from_frame(trained[keys])
    values = frame.set_index(keys).reindex(index)
    out = trained.copy()
    for column in values.columns:
        if column in out.columns and column not in ("session", "reference"):
            out[column] = values[column].to_numpy()
    return mask_unusable(out)


def _compare(a: pd.Series, b: pd.Series) -> dict[str, float]:
    """How far ``a`` is from ``b`` (the training definition) over rows where both exist."""
    x, y = a.to_numpy(np.float64), b.to_numpy(np.float64)
    both = np.isfinite(x) & np.isfinite(y)
    nonzero = both & (y != 0)
    diff = np.abs(x[both] - y[both])
    return {
        "n": int(both.sum()),
        "missing_mismatch": int((np.isfinite(x) != np.isfinite(y)).sum()),
        "mean_ratio_minus_1": float(x[both].mean() / y[both].mean() - 1.0)
        if both.any() and y[both].mean() != 0
        else math.nan,
        "median_abs_relative": float(np.median(np.abs(x[nonzero] / y[nonzero] - 1.0)))
        if nonzero.any()
        else math.nan,
        "max_abs": float(diff.max()) if diff.size else math.nan,
    }


def _arousal(a: pd.DataFrame, b: pd.DataFrame) -> dict[str, float]:
    """Probability differences and flipped decisions of the bundle's LightGBM output."""
    pa, pb = a["probability"].to_numpy(), b["probability"].to_numpy()
    ok = np.isfinite(pa) & np.isfinite(pb)
    diff = np.abs(pa[ok] - pb[ok])
    return {
        "n": int(ok.sum()),
        "median_abs_diff": float(np.median(diff)) if diff.size else math.nan,
        "p95_abs_diff": float(np.quantile(diff, 0.95)) if diff.size else math.nan,
        "max_abs_diff": float(diff.max()) if diff.size else math.nan,
        "decisions_flipped": float(np.mean(a["high"].to_numpy()[ok] != b["high"].to_numpy()[ok]))
        if ok.any()
        else math.nan,
    }


def measure_rate_skew(
    recordings: Sequence[Recording], bundle: ModelBundle, *, baseline_seconds: float
) -> dict[str, Any]:
    """Features and arousal of ``bundle``: own-rate and live path, each against training.

    Parameters
    ----------
    recordings : sequence of Recording
        Sessions with the bundle's modalities.
    bundle : ModelBundle
        A bundle trained at a common rate (:attr:`ModelBundle.common_rate`).
    baseline_seconds : float
        Reference period of each participant (the bundle's normalisation needs it).

    Returns
    -------
    dict
        ``common_rate``, ``stream_rates`` and, for ``own_rate`` (before: each stream at
        its own rate) and ``live`` (after: the live path), per-feature comparisons
        (``features``) and the arousal comparison (``arousal``) against training.
    """
    window = trained_window(bundle)
    families = feature_families(bundle.features)  # only the streams the bundle reads
    modalities = sorted(m for m, family in FAMILY.items() if family in families)
    recordings = [
        dataclasses.replace(rec, blocks=tuple(b for b in rec.blocks if b.modality in modalities))
        for rec in recordings
    ]

    def table(config: WindowConfig) -> pd.DataFrame:
        return recording_features(
            recordings, config=config, baseline_seconds=baseline_seconds, modalities=modalities
        )

    trained = table(dataclasses.replace(window, common_rate=bundle.common_rate))
    own = _aligned(table(window), trained)
    live_window = LiveEstimator([bundle], baseline_end=None).primary_window(window)
    live = _aligned(_live_frame(recordings, live_window), trained)
    p_trained = bundle.predict_frame(trained)
    out: dict[str, Any] = {
        "common_rate": bundle.common_rate,
        "live_common_rate": live_window.common_rate,
        "stream_rates": sorted({f"{b.modality}:{b.sfreq}" for r in recordings for b in r.blocks}),
        "subjects": len(recordings),
        "windows": len(trained),
    }
    for name, frame in (("own_rate", own), ("live", live)):
        out[name] = {
            "features": {f: _compare(frame[f], trained[f]) for f in bundle.features},
            "arousal": _arousal(bundle.predict_frame(frame), p_trained),
        }
    return out
