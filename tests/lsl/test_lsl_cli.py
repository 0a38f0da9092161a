"""``affectstream record --lsl``: an external outlet plays a real EEG recording (PhysioNet
eegmat, skipped without ../shared/data) and what the store holds equals what was pushed."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from affectstream.cli import main
from affectstream.store import open_store

pylsl = pytest.importorskip("pylsl", reason="pip install 'affectstream[lsl]'")

CHANNELS = ("EEG Fp1", "EEG Fp2", "EEG T5", "EEG T6")  # near the Muse positions
SECONDS = 4.0


def _recording(shared_data: Path) -> tuple[np.ndarray, float]:
    mne = pytest.importorskip("mne")
    raw = mne.io.read_raw_edf(
        shared_data / "eegmat" / "data" / "Subject00_2.edf", include=list(CHANNELS),
        preload=True, verbose="error",
    )  # fmt: skip
    sfreq = float(raw.info["sfreq"])
    volts = raw.get_data(picks=list(CHANNELS), stop=int(SECONDS * sfreq)).T
    # What an LSL float32 channel carries, in the microvolts its metadata names.
    return (volts * 1e6).astype(np.float32).astype(np.float64), sfreq


def _play(values: np.ndarray, sfreq: float, ready: threading.Event, name: str) -> None:
    info = pylsl.StreamInfo(name, "EEG", len(CHANNELS), sfreq, pylsl.cf_float32, f"{name}-00")
    node = info.desc().append_child("channels")
    for name in CHANNELS:
        channel = node.append_child("channel")
        channel.append_child_value("label", name.removeprefix("EEG "))
        channel.append_child_value("unit", "microvolts")
        channel.append_child_value("type", "EEG")
    outlet = pylsl.StreamOutlet(info)
    ready.set()
    assert outlet.wait_for_consumers(30.0), "record --lsl never connected"
    t0 = pylsl.local_clock()
    step = int(sfreq / 10)
    for start in range(0, len(values), step):  # real time, a chunk every 0.1 s
        for i in range(start, min(start + step, len(values))):
            outlet.push_sample(values[i].tolist(), t0 + i / sfreq)
        time.sleep(step / sfreq)
    time.sleep(3.0)  # keep the outlet until the recorder stops (no restart gap)


@pytest.mark.slow
def test_record_lsl_stores_a_real_recording_as_pushed(
    shared_data: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    lsl_tag: str,
) -> None:
    values, sfreq = _recording(shared_data)
    name = f"EEGMAT-{lsl_tag}"
    ready = threading.Event()
    player = threading.Thread(target=_play, args=(values, sfreq, ready, name), daemon=True)
    player.start()
    assert ready.wait(10.0)
    store = tmp_path / "store"
    code = main([
        "record", "--lsl", f"name='{name}'", "--duration", str(SECONDS + 4), "--no-markers",
        "--store", f"file://{store}", "--json",
    ])  # fmt: skip
    player.join(10.0)
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0
    entry = summary["streams"][f"lsl-{name}/eeg"]
    assert entry["samples_received"] == len(values) and entry["gap_samples"] == 0
    with open_store(f"file://{store}") as opened:
        raw = opened.read("raw_eeg", tags={"session": summary["session"]})
    labels = [name.removeprefix("EEG ").lower() for name in CHANNELS]
    stored = raw[labels].to_numpy(dtype=np.float64)
    assert np.array_equal(stored, values)
    # Samples sit 1/sfreq apart on the host clock, as the outlet stamped them (give or take
    # the clock-offset updates proc_clocksync applies, microseconds on loopback).
    assert np.allclose(np.diff(raw["time_ns"].to_numpy()) / 1e9, 1 / sfreq, atol=1e-4)
