"""Counters across a reconnect, per profile with a counter, replayed without BLE or timing.

Issue 17: a Ganglion sample that arrived was stored as NaN inside a gap after a reconnect
(stats ``reconnects=1, duplicates=1``). The cause: across a disconnect the supervisor
predicts how far the device counter moved from host time; a delivery delayed under load
(or a device sampling faster than nominal, like the emulator at ``speed=2``) made the
prediction short, so the raw packet after the resume was unwrapped one 200-sample cycle
back, behind the last received sample, and dropped as a duplicate. The next packet was
predicted again, landed in the right cycle, and the dropped sample became part of the gap.

Each test drives the profile's real driver decoder and the supervisor's own ingest and
link-down code with hand-made notifications and given arrival times (the device samples
on a known clock; the injected delays are the only irregularity), then checks every sent
sample against what was delivered. Expectations come from the injected sequence.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

from affectstream.device import eda_band, ganglion, gatt, muse, polar
from affectstream.device.driver import Frame
from affectstream.device.emulation.eda import encode_eda
from affectstream.device.emulation.ganglion import pack_deltas
from affectstream.device.emulation.muse import eeg_counts, pack_eeg
from affectstream.device.emulation.polar import encode_ecg_frame
from affectstream.device.stream_state import StreamState
from affectstream.device.supervisor import DeviceTarget, Supervisor
from affectstream.types import SampleBlock

T0 = 1_000.0  # host time of device sample 0


class Replay:
    """One device's profile driver and stream states, fed notifications by hand through
    the supervisor's ingest and link-down code, with arrival times given, not measured."""

    def __init__(self, profile: str, **options: object) -> None:
        self.blocks: list[SampleBlock] = []
        target = DeviceTarget("AA:BB:CC:DD:EE:FF", profile=profile, name="dev", options=options)
        self.sup = Supervisor([target], on_block=self.blocks.append)
        self.device = self.sup._devices[0]
        assert self.device.profile is not None
        self.driver = self.device.profile.new_driver(**options)
        self.device.driver = self.driver
        for spec in self.driver.streams:
            self.device.streams[spec.kind] = StreamState(spec, f"dev/{spec.kind}", "dev")

    def notify(self, uuid: str, payload: bytes, arrival: float) -> None:
        self.sup._ingest(self.device, self.driver.decode(uuid, payload), arrival)

    def drop(self, arrival: float) -> None:
        """The link goes down: what the supervisor does before reconnecting."""
        self.sup._mark_link_down(self.device, arrival)

    def resume(self) -> None:
        """A new connection: what the supervisor does before subscribing again."""
        self.driver.on_reconnect()

    def stream(self, kind: str) -> SampleBlock:
        return SampleBlock.concat([b for b in self.blocks if b.stream == f"dev/{kind}"])


def assert_delivered(block: SampleBlock, index: np.ndarray, values: np.ndarray) -> None:
    """Rows at output ``index`` hold ``values`` exactly (NaN where ``values`` has NaN: the
    cut channels of a partial Muse row); every other row is NaN inside a gap."""
    assert np.all(np.diff(block.index) > 0)
    position = {int(i): k for k, i in enumerate(block.index)}
    missing = [int(i) for i in index if int(i) not in position]
    assert not missing, f"received samples not delivered: {missing[:5]}"
    rows = np.array([position[int(i)] for i in index])
    np.testing.assert_array_equal(block.values[rows], values)
    others = np.ones(len(block), dtype=bool)
    others[rows] = False
    in_gap = np.zeros(len(block), dtype=bool)
    for gap in block.gaps:
        span = (block.index >= gap.first_index) & (block.index < gap.first_index + gap.n_samples)
        assert not (span & ~others).any(), f"a received sample is inside gap {gap}"
        in_gap |= span
    assert np.isnan(block.values[others]).all()
    assert (others == in_gap).all()


# -- Ganglion ----------------------------------------------------------------------------


def _ganglion_run(
    rng: np.random.Generator, start: int, n_delta: int
) -> tuple[list[bytes], list[np.ndarray], np.ndarray]:
    """A raw packet at device sample ``start`` (a cycle start) and ``n_delta`` 18-bit
    delta packets: payloads, the device indices of each, and the counts of all samples."""
    assert start % ganglion.COUNTER_MODULUS == 0
    counts = [rng.integers(-(2**20), 2**20, size=4)]
    raw = b"\x00" + b"".join(int(c & 0xFFFFFF).to_bytes(3, "big") for c in counts[0])
    payloads, indices = [raw], [np.array([start])]
    for k in range(n_delta):
        first = start + 1 + 2 * k
        deltas = rng.integers(-500, 500, size=(2, 4)) * 2
        deltas = np.where(deltas < 0, deltas + 1, deltas)  # odd negative, even positive
        one = counts[-1] - deltas[0]
        counts += [one, one - deltas[1]]
        packet_id = ((first - 1) % ganglion.COUNTER_MODULUS) // 2 + 1
        payloads.append(bytes([packet_id]) + pack_deltas(deltas, 18))
        indices.append(np.array([first, first + 1]))
    return payloads, indices, np.array(counts)


@pytest.mark.parametrize(
    ("rate", "late_before", "late_after"),
    [
        (200.0, 0.55, 0.1),  # a real board: the last packet before the drop came late
        (400.0, 0.15, 0.1),  # twice nominal, like the emulator at speed=2
    ],
)
def test_ganglion_raw_packet_after_a_resume_is_not_taken_for_a_duplicate(
    rate: float, late_before: float, late_after: float
) -> None:
    rng = np.random.default_rng(17)
    replay = Replay("ganglion")
    before = _ganglion_run(rng, 0, 125)  # samples 0-250
    after = _ganglion_run(rng, 400, 50)  # samples 400-500 after the reconnect

    def send(run: tuple[list[bytes], list[np.ndarray], np.ndarray], late: dict[int, float]) -> None:
        for k, (payload, index) in enumerate(zip(run[0], run[1], strict=True)):
            arrival = T0 + index[-1] / rate + late.get(k, 0.0)
            replay.notify(gatt.GANGLION_RECEIVE, payload, arrival)

    send(before, {len(before[0]) - 1: late_before})  # the last packet before the drop
    replay.drop(T0 + 300 / rate)
    replay.resume()
    send(after, {1: late_after})  # the first delta packet after the raw one

    block = replay.stream("eeg")
    sent = np.concatenate([np.concatenate(before[1]), np.concatenate(after[1])])
    counts = np.concatenate([before[2], after[2]])
    assert_delivered(block, sent, counts.astype(np.float64) * ganglion.SCALE_UV)
    (gap,) = block.gaps
    assert (gap.first_index, gap.n_samples, gap.reason) == (251, 400 - 251, "disconnect")
    stats = replay.sup.stats()["dev/eeg"]
    assert stats.duplicates == 0 and stats.gap_samples == 400 - 251
    assert stats.samples_received == sent.size


# -- Muse --------------------------------------------------------------------------------


def _muse_packets(rng: np.random.Generator, counters: range) -> np.ndarray:
    """µV the 12-bit wire carries: (len(counters), 12, 4)."""
    raw = rng.integers(0, 4096, size=(len(counters), muse.EEG_SAMPLES_PER_PACKET, 4))
    out: np.ndarray = (raw - muse.EEG_OFFSET) * muse.EEG_SCALE_UV
    return out


@pytest.mark.parametrize(
    ("resume_counter", "restart"),
    [
        (1030, False),  # the counter went on: 9 packet counters lost
        (3, False),  # ... and wrapped past 65535 meanwhile (uptime near the wrap below)
        (0, True),  # the headset restarted its counter: behind the last packet received
    ],
)
def test_muse_partial_packet_then_resume(resume_counter: int, restart: bool) -> None:
    rng = np.random.default_rng(resume_counter)
    wrap = resume_counter == 3
    first = 65_510 if wrap else 1_000
    replay = Replay("muse")
    spp = muse.EEG_SAMPLES_PER_PACKET
    channels = [gatt.MUSE_EEG[name] for name in muse.EEG_CHANNELS[:4]]
    before = _muse_packets(rng, range(first, first + 21))
    resumed = 65_536 + resume_counter if wrap else resume_counter
    after = _muse_packets(rng, range(resumed, resumed + 10))
    for k, values in enumerate(before):
        counter = first + k
        # The drop cuts the last packet counter after two of the four channels.
        for c, uuid in enumerate(channels if k < 20 else channels[:2]):
            arrival = T0 + ((counter - first + 1) * spp + c) / muse.EEG_SAMPLE_RATE
            replay.notify(uuid, pack_eeg(counter, eeg_counts(values[:, c])), arrival)
    lost_counters = (resumed - (first + 21)) if not restart else 0
    resume_arrival = T0 + (21 + lost_counters + 1) * spp / muse.EEG_SAMPLE_RATE
    replay.drop(T0 + 21 * spp / muse.EEG_SAMPLE_RATE)
    replay.resume()
    for k, values in enumerate(after):
        for c, uuid in enumerate(channels):
            arrival = resume_arrival + (k * spp + c) / muse.EEG_SAMPLE_RATE
            replay.notify(uuid, pack_eeg(resumed + k, eeg_counts(values[:, c])), arrival)

    block = replay.stream("eeg")
    partial = before[20].copy()
    partial[:, 2:] = np.nan  # the two channels cut by the drop
    expected = np.concatenate([before[:20].reshape(-1, 4), partial, after.reshape(-1, 4)])
    after_first = 21 * spp + lost_counters * spp
    index = np.concatenate([np.arange(21 * spp), after_first + np.arange(10 * spp)])
    # Partial rows are delivered rows with NaN only in the cut channels, not gap rows.
    assert_delivered(block, index, expected)
    stats = replay.sup.stats()["dev/eeg"]
    assert stats.duplicates == 0
    assert stats.gap_samples == lost_counters * spp
    if restart:  # no sample count is known across a counter restart, only the time
        assert [g.reason for g in block.gaps] == ["restart"]
        assert block.gaps[0].n_samples == 0
    else:
        assert [(g.first_index, g.n_samples, g.reason) for g in block.gaps] == [
            (21 * spp, lost_counters * spp, "disconnect")
        ]


# -- EDA band ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("last_before", "resume_at", "restart"),
    [
        (65_499, 65_600, False),  # 100 samples lost, the sequence wrapped at 65535
        (5_099, 0, True),  # the band restarted its sequence: behind the last received
        (5_099, 4_990, True),  # ... or restarted and ran a while: still behind
    ],
)
def test_eda_band_resume(last_before: int, resume_at: int, restart: bool) -> None:
    rate = float(eda_band.DEFAULT_RATE)
    replay = Replay("eda")
    first = last_before + 1 - 100
    rng = np.random.default_rng(last_before)
    values = np.round(rng.uniform(0.5, 20.0, size=(15, 10)) * 1000) / 1000  # µS, nS grid

    def send(sequence: int, samples: np.ndarray, arrival: float) -> None:
        replay.notify(gatt.EDA_MEASUREMENT, encode_eda(sequence, samples), arrival)

    for k in range(10):
        send(first + 10 * k, values[k], T0 + (10 * k + 10) / rate)
    replay.drop(T0 + 100 / rate)
    replay.resume()
    lost = 0 if restart else resume_at - (last_before + 1)
    for k in range(5):
        arrival = T0 + (100 + lost + 10 * k + 10) / rate
        send(resume_at + 10 * k, values[10 + k], arrival)

    block = replay.stream("eda")
    index = np.concatenate([np.arange(100), 100 + lost + np.arange(50)])
    assert_delivered(block, index, values.reshape(-1, 1))
    stats = replay.sup.stats()["dev/eda"]
    assert stats.duplicates == 0 and stats.gap_samples == lost
    assert stats.samples_received == 150
    expected = (100, 0, "restart") if restart else (100, lost, "disconnect")
    assert [(g.first_index, g.n_samples, g.reason) for g in block.gaps] == [expected]


# -- Polar PMD ---------------------------------------------------------------------------


def _pmd(samples: np.ndarray, last_index: int, epoch_ns: int = 10**17) -> bytes:
    """A PMD ECG frame whose last sample is device sample ``last_index``."""
    timestamp = epoch_ns + round(last_index * 1e9 / polar.ECG_SAMPLE_RATE)
    return encode_ecg_frame(samples, timestamp)


@pytest.mark.parametrize("repeat", [False, True])
def test_polar_resume_counts_the_outage_and_drops_a_repeated_frame(repeat: bool) -> None:
    """PMD frames carry a timestamp, not a counter; the strap's clock tells the samples
    lost. A frame notified twice around the drop (the strap repeating its last frame on the
    new link) is the same samples, not new ones."""
    rate = polar.ECG_SAMPLE_RATE
    n = 73
    rng = np.random.default_rng(5)
    frames = rng.integers(-2000, 2000, size=(8, n))
    replay = Replay("polar")
    ends = [n * (k + 1) - 1 for k in range(5)]  # device samples 0-364
    resumed = [ends[-1] + 200 + n * (k + 1) for k in range(3)]  # 200 lost
    for k, end in enumerate(ends):
        replay.notify(gatt.PMD_DATA, _pmd(frames[k], end), T0 + end / rate)
    replay.drop(T0 + ends[-1] / rate + 0.05)
    replay.resume()
    if repeat:
        replay.notify(gatt.PMD_DATA, _pmd(frames[4], ends[-1]), T0 + resumed[0] / rate - 0.5)
    for k, end in enumerate(resumed):
        replay.notify(gatt.PMD_DATA, _pmd(frames[5 + k], end), T0 + end / rate)

    block = replay.stream("ecg")
    index = np.concatenate([np.arange(5 * n), 5 * n + 200 + np.arange(3 * n)])
    assert_delivered(block, index, frames.reshape(-1, 1).astype(np.float64))
    stats = replay.sup.stats()["dev/ecg"]
    assert stats.gap_samples == 200 and stats.duplicates == (n if repeat else 0)


def test_polar_restart_after_a_resume_starts_a_new_segment() -> None:
    """The strap's clock went back (it restarted): no loss can be computed, so the frames
    follow the last received sample; nothing received is dropped or turned into NaN."""
    rate = polar.ECG_SAMPLE_RATE
    n = 73
    frames = np.random.default_rng(6).integers(-2000, 2000, size=(6, n))
    replay = Replay("polar")
    for k in range(3):
        end = n * (k + 1) - 1
        replay.notify(gatt.PMD_DATA, _pmd(frames[k], end), T0 + end / rate)
    replay.drop(T0 + 3 * n / rate)
    replay.resume()
    for k in range(3):
        end = n * (k + 1) - 1
        replay.notify(gatt.PMD_DATA, _pmd(frames[3 + k], end, 10**15), T0 + 10 + end / rate)
    block = replay.stream("ecg")
    assert_delivered(block, np.arange(6 * n), frames.reshape(-1, 1).astype(np.float64))
    assert replay.sup.stats()["dev/ecg"].duplicates == 0


def test_a_decoder_bug_is_logged_with_its_traceback_and_the_stream_goes_on(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A malformed packet (DecodeError) is a warning; any other decoder exception is a bug:
    logged as an error with its traceback. Neither ends the stream."""
    replay = Replay("eda")
    on_notify = replay.sup._handler(replay.device, replay.driver)

    class Characteristic:  # stand-in for bleak's characteristic: the handler reads .uuid
        uuid = gatt.EDA_MEASUREMENT

    decode = replay.driver.decode

    def buggy(uuid: str, data: bytes) -> list[Frame]:
        if data == b"bug":
            raise TypeError("a bug in the decoder")
        return decode(uuid, data)

    monkeypatch.setattr(replay.driver, "decode", buggy)
    with caplog.at_level(logging.WARNING, logger="affectstream.device.supervisor"):
        on_notify(Characteristic(), bytearray(b"\x01"))  # too short: DecodeError
        on_notify(Characteristic(), bytearray(b"bug"))
        on_notify(Characteristic(), bytearray(encode_eda(0, [1.0, 2.0])))
    warning, error = [r for r in caplog.records if "malformed packet" in r.getMessage()]
    assert warning.levelno == logging.WARNING and warning.exc_info is None
    assert error.levelno == logging.ERROR and error.exc_info is not None
    assert error.exc_info[0] is TypeError
    assert replay.sup.stats()["dev/eda"].malformed == 2
    np.testing.assert_array_equal(replay.stream("eda").values[:, 0], [1.0, 2.0])
