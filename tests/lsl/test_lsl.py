"""LSL in and out on loopback with real pylsl outlets and inlets (liblsl, no fakes)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import numpy as np
import pytest

from affectstream.runtime.lsl_out import LslPublisher
from affectstream.runtime.record import record_session
from affectstream.signal import WindowConfig
from affectstream.store import open_store
from affectstream.types import SampleBlock

pylsl = pytest.importorskip("pylsl", reason="pip install 'affectstream[lsl]'")

SFREQ = 128.0
LABELS = ("Fp1", "Fp2", "C3")


def _outlet(name: str, source_id: str) -> pylsl.StreamOutlet:
    """An external EEG outlet with channel metadata, as a lab instrument would offer."""
    info = pylsl.StreamInfo(name, "EEG", len(LABELS), SFREQ, pylsl.cf_float32, source_id)
    channels = info.desc().append_child("channels")
    for label in LABELS:
        channel = channels.append_child("channel")
        channel.append_child_value("label", label)
        channel.append_child_value("unit", "microvolts")
        channel.append_child_value("type", "EEG")
    return pylsl.StreamOutlet(info)


def _signal(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, 20.0, (n, len(LABELS))).astype(np.float32).astype(np.float64)


async def _push(outlet: pylsl.StreamOutlet, values: np.ndarray, t0: float, first: int) -> None:
    """Push rows at their nominal times (LSL clock) in real time, 1/16 s per chunk."""
    step = int(SFREQ / 16)
    for start in range(0, len(values), step):
        for i in range(start, min(start + step, len(values))):
            outlet.push_sample(values[i].tolist(), t0 + (first + i) / SFREQ)
        await asyncio.sleep(step / SFREQ)


async def _wait_consumer(outlet: pylsl.StreamOutlet, timeout: float = 300.0) -> None:
    # A hang detector, not a pace: it counts from before the recorder has even started (its
    # imports, the BLE emulation), which on a loaded machine takes what it takes.
    deadline = time.monotonic() + timeout
    while not outlet.have_consumers():
        assert time.monotonic() < deadline, f"no inlet connected to the outlet in {timeout} s"
        await asyncio.sleep(0.02)


def _stored_eeg(store_path: Path, session: str) -> tuple[np.ndarray, list[dict[str, object]]]:
    with open_store(f"file://{store_path}") as store:
        raw = store.read("raw_eeg", tags={"session": session})
        events = store.read("events", tags={"session": session})
    values = raw[[label.lower() for label in LABELS]].to_numpy(dtype=np.float64)
    return values, events.to_dict("records")


async def test_our_outlet_is_read_by_a_plain_inlet(lsl_tag: str) -> None:
    session = f"S-outlet-{lsl_tag}"
    publisher = LslPublisher(session)
    values = _signal(64, seed=1)
    t0 = time.time()
    stream = f"emu-{lsl_tag}/eeg"
    block = SampleBlock.regular(stream, "eeg", LABELS, values, SFREQ, t0, device="emu-muse")
    publisher.raw(SampleBlock.regular(stream, "eeg", LABELS, values[:1], SFREQ, t0))
    infos = pylsl.resolve_bypred(f"name='{stream}'", 1, 10.0)
    assert infos, "our outlet was not resolved on loopback"
    inlet = pylsl.StreamInlet(infos[0])
    full = inlet.info(10.0)
    inlet.open_stream(10.0)
    # Push once the outlet has the inlet (not after a guessed pause).
    assert publisher.outlets[stream].wait_for_consumers(30.0), "the inlet never connected"
    sent_at = time.perf_counter()
    publisher.raw(block)
    got: list[list[float]] = []
    stamps: list[float] = []
    while len(got) < len(values):
        sample, stamp = inlet.pull_sample(timeout=10.0)
        assert sample is not None, f"inlet got {len(got)} of {len(values)} samples"
        got.append(sample)
        stamps.append(stamp)
        if len(got) == 1:
            latency = time.perf_counter() - sent_at
    assert np.allclose(np.asarray(got), values.astype(np.float32))
    assert full.nominal_srate() == SFREQ and full.type() == "EEG"
    channel = full.desc().child("channels").child("channel")
    labels = []
    while not channel.empty():
        labels.append(channel.child_value("label"))
        assert channel.child_value("unit") == "µV"
        channel = channel.next_sibling("channel")
    assert tuple(labels) == LABELS
    assert np.allclose(np.diff(stamps), 1 / SFREQ, atol=1e-6)
    # Host times on the LSL clock: the first sample's LSL time maps back to t0.
    assert abs(stamps[0] + publisher.offset - t0) < 1e-3
    publisher.listener("event", {"t": t0, "kind": "marker", "label": "probe"})
    ours = f"starts-with(source_id, 'affectstream/{session}/') and type='Markers'"
    marker_inlet = pylsl.StreamInlet(pylsl.resolve_bypred(ours, 1, 10.0)[0])
    marker_inlet.open_stream(10.0)
    assert publisher.outlets["events"].wait_for_consumers(30.0), "the marker inlet never came"
    publisher.listener("event", {"t": t0 + 1, "kind": "phase", "label": "task"})
    sample, _ = marker_inlet.pull_sample(timeout=10.0)
    assert sample == ["phase:task"]
    print(json.dumps({"bench": "lsl_outlet_to_inlet_first_sample_s", "value": latency}))
    publisher.close()


@pytest.mark.slow
async def test_record_lsl_stores_what_was_pushed_and_restart_is_a_gap(
    tmp_path: Path, lsl_tag: str
) -> None:
    before, skipped, after = 384, 96, 384  # samples: 3 s, 0.75 s lost, 3 s
    values = _signal(before + skipped + after, seed=7)
    store_path = tmp_path / "store"
    eeg_name, markers_name = f"LabEEG-{lsl_tag}", f"LabMarkers-{lsl_tag}"
    outlet = _outlet(eeg_name, f"lab-eeg-{lsl_tag}")
    markers = pylsl.StreamOutlet(
        pylsl.StreamInfo(markers_name, "Markers", 1, 0, pylsl.cf_string, f"lab-mk-{lsl_tag}")
    )
    t0 = pylsl.local_clock() + 0.5

    async def play() -> None:
        nonlocal outlet
        await _wait_consumer(outlet)
        await _wait_consumer(markers)
        await _push(outlet, values[:before], t0, 0)
        markers.push_sample(["stimulus A"], t0 + 1.0)
        del outlet  # the instrument goes away...
        await asyncio.sleep(skipped / SFREQ)
        outlet = _outlet(eeg_name, f"lab-eeg-{lsl_tag}")  # ...and comes back: liblsl re-connects
        await _wait_consumer(outlet)
        await _push(outlet, values[before + skipped :], t0, before + skipped)
        await asyncio.sleep(0.5)
        stop.set()

    stop = asyncio.Event()
    player = asyncio.create_task(play())
    summary = await record_session(
        [],
        store=f"file://{store_path}",
        lsl=[f"name='{eeg_name}'", f"name='{markers_name}'"],
        stop=stop,
        duration=600.0,  # a backstop: play() ends the session
        lsl_resolve_timeout=10.0,
    )
    await player
    stored, events = _stored_eeg(store_path, summary["session"])
    kept = np.r_[0:before, before + skipped : len(values)]
    assert stored.shape == (len(kept), len(LABELS))
    assert np.array_equal(stored, values[kept])
    gaps = [e for e in events if e["kind"] == "gap"]
    assert [(g["label"], g["n_samples"]) for g in gaps] == [("disconnect", skipped)]
    stream = summary["streams"][f"lsl-{eeg_name}/eeg"]
    assert stream["gap_samples"] == skipped and stream["device"]["reconnects"] == 1
    assert stream["stored"] == len(kept)
    labels = [e["label"] for e in events if e["kind"] == "marker"]
    assert labels == ["stimulus A"]
    print(json.dumps({"bench": "lsl_restart_samples_lost", "value": stream["gap_samples"]}))


@pytest.mark.slow
async def test_lsl_and_ble_in_one_session_published_with_lsl_out(
    tmp_path: Path, lsl_tag: str
) -> None:
    import contextlib

    from affectstream.runtime.record import emulated_targets

    values = _signal(int(10 * SFREQ), seed=3)
    eeg_name, participant = f"MixEEG-{lsl_tag}", f"P{lsl_tag}"
    ours = f"starts-with(source_id, 'affectstream/{participant}-')"  # our session's outlets
    outlet = _outlet(eeg_name, f"mix-eeg-{lsl_tag}")
    t0 = pylsl.local_clock() + 0.5
    stop = asyncio.Event()
    heard: dict[str, list[float]] = {}
    connected = {"eeg": asyncio.Event(), "features": asyncio.Event()}

    async def listen(predicate: str, key: str) -> None:
        # Our outlets appear only once the session has its first block (raw) or window
        # (features): look for them while the session runs, not within a fixed time.
        infos: list[pylsl.StreamInfo] = []
        while not infos and not stop.is_set():
            infos = await asyncio.to_thread(pylsl.resolve_bypred, predicate, 1, 1.0)
        assert infos, f"no outlet for {predicate} while the session ran"
        inlet = pylsl.StreamInlet(infos[0])
        await asyncio.to_thread(inlet.open_stream, 10.0)
        connected[key].set()
        while not stop.is_set():
            chunk, _ = inlet.pull_chunk(timeout=0.0)
            heard.setdefault(key, []).extend(row[0] for row in chunk)
            await asyncio.sleep(0.05)

    async def ready(key: str) -> None:
        # A hang detector, not a pace: on a loaded machine this takes what it takes.
        try:
            await asyncio.wait_for(connected[key].wait(), 300.0)
        except TimeoutError:
            raise AssertionError(f"our {key} outlet found no inlet of ours in 300 s") from None

    async def play() -> None:
        await _wait_consumer(outlet)
        # The first second makes our raw outlet; the rest once our inlet reads it.
        first = int(SFREQ)
        await _push(outlet, values[:first], t0, 0)
        await ready("eeg")
        await _push(outlet, values[first:], t0, first)
        # Feature windows keep coming from the heart-rate strap: stop once ours hears them.
        await ready("features")
        deadline = time.monotonic() + 300.0
        while not heard.get("features"):
            assert time.monotonic() < deadline, "no feature row reached our inlet in 300 s"
            await asyncio.sleep(0.1)
        stop.set()

    async with contextlib.AsyncExitStack() as stack:
        targets, options, _ = await emulated_targets(stack, "hr", seed=2)
        tasks = [
            player := asyncio.create_task(play()),
            asyncio.create_task(listen(f"{ours} and name='lsl-{eeg_name}/eeg'", "eeg")),
            asyncio.create_task(listen(f"{ours} and name='affectstream-features'", "features")),
        ]
        summary = await record_session(
            targets,
            store=f"file://{tmp_path / 'store'}",
            participant=participant,
            lsl=[f"name='{eeg_name}'"],
            lsl_out=True,
            stop=stop,
            duration=600.0,  # a backstop: play() ends the session once it has been heard
            supervisor_options=options,
            lsl_resolve_timeout=10.0,
            window=WindowConfig(window=4.0, step=1.0),
        )
        stop.set()
        player.cancel()  # if the backstop ended the session first: what was heard is checked
        with contextlib.suppress(asyncio.CancelledError):
            await player
        await asyncio.gather(*tasks[1:])
    streams = summary["streams"]
    assert streams[f"lsl-{eeg_name}/eeg"]["stored"] == len(values)
    hr = [s for s in streams if s.endswith("/hr")]
    assert hr and streams[hr[0]]["stored"] > 0, f"no BLE heart rate stored: {sorted(streams)}"
    # Our raw outlet re-published the LSL input as it arrived (after our inlet connected).
    got = np.asarray(heard.get("eeg", []))
    assert len(got) > 0 and np.isin(got, values[:, 0].astype(np.float32)).all()
    # Feature windows went out as they were computed (those after our inlet connected).
    assert 0 < len(heard.get("features", [])) <= summary["n_feature_rows"]
