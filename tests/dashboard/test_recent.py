"""The session's in-memory recent samples behind the pushed live traces (no server needed)."""

from __future__ import annotations

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
