"""The session's in-memory recent samples behind the pushed live traces (no server needed)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from affectstream.runtime.recent import STALE_SECONDS, RecentTraces
from affectstream.types import SampleBlock


def _block(stream: str, t: np.ndarray, values: np.ndarray) -> SampleBlock:
    return SampleBlock(
        stream=stream,
        modality="ecg",
        channels=("ecg", "second"),
        unit="uV",
        sfreq=100.0,
        t=t,
        values=np.column_stack([values, values + 1000.0]),
        index=np.arange(len(t), dtype=np.int64),
    )


def test_envelope_of_first_channel_of_first_stream() -> None:
    recent = RecentTraces(max_seconds=5.0)
    t = 1000.0 + np.arange(1000) / 100.0  # 10 s at 100 Hz, in two blocks
    v = np.sin(np.arange(1000) / 7.0) * 100.0
    v[850:870] = np.nan  # 0.2 s lost
    recent.on_block(_block("polar/ecg", t[:500], v[:500]))
    recent.on_block(_block("polar/ecg", t[500:], v[500:]))
    # A second ECG stream is not mixed in (its values are far outside the first's).
    recent.on_block(_block("other/ecg", t, v + 5000.0))
    env = recent.envelope("ecg", seconds=4.0, points=100, now=float(t[-1]) + 0.1)
    assert env is not None
    assert env["channel"] == "ecg"  # the first channel, not "second"
    assert env["stop"] == pytest.approx(t[-1])
    window = (t >= t[-1] - 4.0) & np.isfinite(v)
    assert max(x for x in env["max"] if x == x) == pytest.approx(v[window].max())
    assert min(x for x in env["min"] if x == x) == pytest.approx(v[window].min())
    # The lost samples are one gap between the samples around them.
    inside = [g for g in env["gaps"] if g[0] >= t[849] - 0.05 and g[1] <= t[870] + 0.05]
    assert len(inside) == 1
    assert recent.envelope("eda", 4.0, 100) is None


def test_old_samples_dropped_and_stale_stream_drawn_to_now() -> None:
    recent = RecentTraces(max_seconds=2.0)
    for k in range(10):  # 10 one-second blocks
        t = 1000.0 + k + np.arange(100) / 100.0
        recent.on_block(_block("polar/ecg", t, np.full(100, float(k))))
    # Only blocks ending within max_seconds + STALE_SECONDS of the newest sample are kept.
    env = recent.envelope("ecg", seconds=60.0, points=100, now=1010.0)
    assert env is not None
    kept = [x for x in env["max"] if x is not None and x == x]
    assert min(kept) >= 9 - 2.0 - STALE_SECONDS - 1
    # Silent for longer than STALE_SECONDS: the window ends now and the silence is a gap.
    later = recent.envelope("ecg", seconds=2.0, points=100, now=1020.0)
    assert later is not None
    assert later["stop"] == 1020.0
    assert later["gaps"] and later["gaps"][-1][1] == pytest.approx(1020.0)


def _merge(have: dict, frame: dict) -> dict:
    """What the live page does with a frame: replace its bins from the frame's t0 on."""
    assert frame["w"] == have["w"]  # one grid for the whole stream
    i = round((frame["t0"] - have["t0"]) / have["w"])
    assert i >= 0 and abs(frame["t0"] - (have["t0"] + i * have["w"])) < 1e-6
    pad = [None] * max(0, i - len(have["min"]))
    return {
        **have,
        "min": have["min"][:i] + pad + frame["min"],
        "max": have["max"][:i] + pad + frame["max"],
    }


def test_bins_on_a_fixed_grid_merge_into_the_whole_window() -> None:
    """Frames of the last bins, merged as the page merges them, equal one whole read."""
    recent = RecentTraces(max_seconds=30.0)
    rng = np.random.default_rng(3)
    t = 1000.0 + np.arange(2000) / 100.0  # 20 s at 100 Hz, in 0.37-s blocks
    v = rng.normal(0.0, 50.0, len(t))
    v[1200:1250] = np.nan  # 0.5 s lost
    edges = [*range(0, len(t), 37), len(t)]
    have: dict | None = None
    newest = None
    for a, b in itertools.pairwise(edges):
        recent.on_block(_block("polar/ecg", t[a:b], v[a:b]))
        since = None if newest is None else newest - 1.0
        frame = recent.bins("ecg", 10.0, 300, since=since, now=float(t[b - 1]))
        assert frame is not None
        newest = frame["newest"]
        assert newest == t[b - 1]
        have = frame if have is None else _merge(have, frame)
        if since is not None:  # a frame holds about a second, not the whole window
            assert len(frame["min"]) <= 1.0 / frame["w"] + 2 + 37 / 100 / frame["w"]
    assert have is not None
    whole = recent.bins("ecg", 10.0, 300, now=float(t[-1]))
    assert whole is not None
    width = whole["w"]
    assert width == pytest.approx(10.0 / 300)  # 1.5 periods (15 ms) is narrower
    n = len(whole["min"])
    start = round((whole["t0"] - have["t0"]) / width)
    assert have["min"][start : start + n] == whole["min"]
    assert have["max"][start : start + n] == whole["max"]
    # Each bin is the min/max of the samples on its grid cell; the lost stretch is empty.
    k = np.floor(t / width).astype(np.int64) - round(whole["t0"] / width)
    for j in (0, n // 2, n - 1):
        cell = v[(k == j) & np.isfinite(v)]
        assert whole["max"][j] == (cell.max() if len(cell) else None)
        assert whole["min"][j] == (cell.min() if len(cell) else None)
    lost = set(k[1201:1249].tolist())
    assert all(whole["min"][j] is None for j in lost if 0 <= j < n)


def test_bins_of_a_slow_stream_without_a_rate_hold_a_sample_each() -> None:
    """Heart rate at ~1 Hz with no nominal rate: bins 1.5 periods wide, none empty."""
    recent = RecentTraces()
    t = 1000.0 + np.arange(30) * 1.0
    for i in range(30):
        block = SampleBlock(
            stream="strap/hr",
            modality="hr",
            channels=("hr",),
            unit="bpm",
            sfreq=None,
            t=t[i : i + 1],
            values=np.array([[60.0 + i]]),
            index=np.array([i], dtype=np.int64),
        )
        recent.on_block(block)
    frame = recent.bins("hr", 10.0, 300, now=float(t[-1]))
    assert frame is not None
    assert frame["w"] == pytest.approx(1.5)
    assert None not in frame["min"]
    assert frame["max"][-1] == 89.0  # the newest sample is in the last bin
