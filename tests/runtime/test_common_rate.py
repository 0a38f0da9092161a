"""A live session computes EDA features at the rate its model was trained on.

Real parts: the emulated EDA band (32 Hz) and heart-rate strap on bumble's BLE stack driven
through bleak, the connection supervisor, the runtime and the embedded SQLite store. The
model is the shipped ``stress-wrist`` bundle (trained on EDA averaged to 4 Hz) with its
window shortened to WINDOW seconds so that the session lasts seconds, not minutes: its
estimates are illustrative, the features are what is checked.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from affectstream.device.emulation import VirtualRadio, make_emulated
from affectstream.device.supervisor import DeviceTarget, Supervisor
from affectstream.errors import ConfigError
from affectstream.models.bundle import ModelBundle
from affectstream.models.bundle_io import load_bundle, resolve_bundle
from affectstream.models.crossprotocol import shared_frames
from affectstream.models.datasets import load_dataset
from affectstream.runtime import LiveEstimator, LiveSession, SessionConfig
from affectstream.runtime.multiwindow import bundles_common_rate, session_window
from affectstream.runtime.rate_skew import emulated_wrist
from affectstream.runtime.replay import replay_blocks, session_rows
from affectstream.signal import WindowConfig, extract_features
from affectstream.store import EmbeddedStore
from affectstream.types import SampleBlock

WINDOW = 15.0  # s; shorter windows of the emulated band are mostly flat at 4 Hz (no SCR)
SECONDS = 22.0


def _stress_wrist(window: float | None = None, rate: float | None = None) -> ModelBundle:
    """The shipped stress-wrist bundle; a copy with another window or common rate if asked."""
    shipped = load_bundle(resolve_bundle("stress-wrist"), allow_version_mismatch=True)
    if window is None and rate is None:
        return shipped
    meta = copy.deepcopy(shipped.meta)
    if window is not None:
        meta["window"] = {**meta["window"], "window": window}
    if rate is not None:
        meta["provenance"]["common_rate"] = rate
    return ModelBundle(meta, shipped.booster, shipped.svm, shipped.path)


def _by_ms(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows keyed by their window end in whole milliseconds (the store keeps nanoseconds)."""
    return frame.assign(ms=np.floor(frame["t_end"] * 1000.0 + 0.5).astype(np.int64))


def test_the_shipped_stress_bundle_says_it_was_trained_at_4_hz() -> None:
    assert _stress_wrist().common_rate == 4.0
    assert bundles_common_rate([_stress_wrist()]) == 4.0
    with pytest.raises(ConfigError, match="different rates"):
        bundles_common_rate([_stress_wrist(), _stress_wrist(rate=8.0)])


def test_a_bundle_trained_at_each_devices_rate_does_not_read_averaged_eda() -> None:
    own_rate = _stress_wrist()
    own_rate = ModelBundle(
        {**own_rate.meta, "provenance": {**own_rate.meta["provenance"], "common_rate": None}},
        own_rate.booster,
        own_rate.svm,
        own_rate.path,
    )
    assert own_rate.common_rate is None
    with pytest.raises(ConfigError, match="each device's own rate"):
        bundles_common_rate([_stress_wrist(), own_rate])
    eeg = load_bundle(resolve_bundle("eeg-workload"), allow_version_mismatch=True)
    assert eeg.common_rate is None  # reads no EDA: shares a window with stress-wrist freely
    assert bundles_common_rate([_stress_wrist(), eeg]) == 4.0


def test_each_window_gets_the_rate_of_the_bundles_reading_it() -> None:
    estimator = LiveEstimator([_stress_wrist()], baseline_end=None, window=10.0, own_windows=True)
    assert estimator.primary_window(WindowConfig(window=10.0)).common_rate is None
    (longer,) = estimator.extra_windows()
    assert (longer.window, longer.common_rate) == (60.0, 4.0)
    # Every other setting of the session's window carries over (a replay's data-time rules).
    session = WindowConfig(window=10.0, line_freq=60.0, max_lag=None, origin=5.0)
    (longer,) = estimator.extra_windows(session)
    assert (longer.line_freq, longer.max_lag, longer.origin) == (60.0, None, 5.0)
    assert (longer.window, longer.common_rate) == (60.0, 4.0)
    alone = LiveEstimator([_stress_wrist()], baseline_end=None, window=60.0, own_windows=True)
    assert alone.primary_window(WindowConfig()).common_rate == 4.0
    assert alone.extra_windows() == []


@pytest.mark.slow
async def test_a_live_session_gives_the_eda_features_at_the_trained_rate(tmp_path: Path) -> None:
    bundle = _stress_wrist(window=WINDOW)
    window = dataclasses.replace(session_window([bundle]), step=1.0)
    assert window.common_rate is None  # the session's window says nothing: the model does
    config = SessionConfig(participant="P13", window=window, baseline_seconds=30.0)
    delivered: list[SampleBlock] = []
    with EmbeddedStore(tmp_path / "store", synchronous="normal") as store:
        estimator = LiveEstimator(
            [bundle], baseline_end=None, window=window.window, own_windows=True
        )
        session = LiveSession(store, config, estimator)
        stop = asyncio.Event()

        def tap(block: SampleBlock) -> None:
            delivered.append(block)
            session.submit(block)

        async with VirtualRadio() as radio:
            peripherals = make_emulated("hr,eda", seed=13)
            for p in peripherals:
                await radio.add(p)
            supervisor = Supervisor(
                [DeviceTarget(p.address, profile=p.profile, name=p.name) for p in peripherals],
                on_block=tap,
                client_kwargs=radio.client_kwargs(),
                scanner_kwargs=radio.scanner_kwargs(),
                backoff_initial=0.1,
            )

            async def stop_later() -> None:
                await asyncio.sleep(SECONDS)
                for p in peripherals:  # nothing in flight when the devices are stopped
                    p.stall(60.0)
                await asyncio.sleep(0.2)
                stop.set()

            task = asyncio.create_task(stop_later())
            summary = await session.run(supervisor, stop=stop)
            await task
        features = store.read("features", tags={"session": summary["session"]})

    eda_blocks = [b for b in delivered if b.modality == "eda" and len(b)]
    assert eda_blocks and eda_blocks[0].sfreq == 32.0  # the band streams at 32 Hz
    eda = SampleBlock.concat(eda_blocks)
    live = features.assign(ms=((features["time_ns"] + 500_000) // 1_000_000).astype(np.int64))
    assert len(live) >= 5
    # The same samples in batch, on the session's window grid: at 4 Hz, and at 32 Hz.
    origin = float(features["time_ns"].iloc[0]) / 1e9 - window.window
    grid = WindowConfig(window=window.window, step=window.step, origin=origin)
    batch = _by_ms(extract_features([eda], dataclasses.replace(grid, common_rate=4.0)))
    native = _by_ms(extract_features([eda], grid))
    columns = ["eda_tonic_mean", "eda_phasic_std", "eda_scr_rate"]
    both = live.merge(batch, on="ms", suffixes=("", "_batch"))
    both = both.merge(native, on="ms", suffixes=("", "_native"))
    # Every live row whose window the delivered samples cover (the store keeps ns).
    assert len(both) >= len(live) - 1
    for column in columns:
        np.testing.assert_allclose(both[column], both[column + "_batch"], rtol=1e-9, atol=1e-12)
    finite = both[columns].notna().all(axis=1) & both["eda_phasic_std_native"].notna()
    assert finite.sum() >= 3
    differs = ~np.isclose(both["eda_phasic_std"], both["eda_phasic_std_native"], rtol=1e-6)
    assert differs[finite].any(), "the live features are those of the 32-Hz stream"


def test_a_replayed_8_hz_recording_gives_the_eda_features_at_4_hz(tmp_path: Path) -> None:
    """An 8-Hz EDA recording (Non-EEG's Affectiva Q rate) replayed with stress-wrist."""
    recording = emulated_wrist(seed=5, minutes=5.0, eda_rate=8.0)
    with EmbeddedStore(tmp_path / "store", synchronous="normal") as store:
        summary = replay_blocks(recording.blocks, store, bundle="stress-wrist")
        rows = _by_ms(session_rows(store, summary["session"]))
    grid = WindowConfig(origin=recording.start)
    batch = _by_ms(extract_features(recording.blocks, dataclasses.replace(grid, common_rate=4.0)))
    native = _by_ms(extract_features(recording.blocks, grid))
    both = rows.merge(batch, on="ms", suffixes=("", "_batch")).merge(
        native, on="ms", suffixes=("", "_native")
    )
    assert len(both) == len(batch) == (300 - 60) // 5 + 1
    for column in ("eda_tonic_mean", "eda_phasic_std", "eda_scr_rate", "hr_mean"):
        np.testing.assert_allclose(both[column], both[column + "_batch"], rtol=1e-9, atol=1e-12)
    assert both["eda_scr_rate"].notna().all()
    assert not np.allclose(both["eda_scr_rate"], both["eda_scr_rate_native"])


@pytest.mark.shared_data
def test_a_replayed_non_eeg_recording_gives_the_training_table(
    shared_data: Path, tmp_path: Path
) -> None:
    """Real Non-EEG (Affectiva Q EDA at 8 Hz) replayed with stress-wrist: its features are the
    rows stress-wrist was trained on (EDA averaged to 4 Hz), window by window."""
    data = shared_data / "noneeg"
    frames, _, _ = shared_frames({"noneeg": data}, subjects=["Subject3"])
    train = _by_ms(frames["noneeg"])
    (recording,) = load_dataset("noneeg", data, ["Subject3"])
    assert {b.modality: b.sfreq for b in recording.blocks}["eda"] == 8.0
    with EmbeddedStore(tmp_path / "store", synchronous="normal") as store:
        summary = replay_blocks(recording.blocks, store, bundle="stress-wrist")
        rows = _by_ms(session_rows(store, summary["session"]))
    both = train.merge(rows, on="ms", suffixes=("_train", "_live"))
    assert len(both) == len(train) > 400
    for feature in _stress_wrist().features:
        a, b = both[f"{feature}_train"], both[f"{feature}_live"]
        assert a.notna().mean() > 0.9, feature
        np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-12, err_msg=feature)
