"""The emulated physiology follows the arousal/valence script (expectations from its parameters)."""

from __future__ import annotations

import asyncio
import struct

import numpy as np
from bleak import BleakClient
from scipy.signal import find_peaks, welch

from affectstream.device import gatt
from affectstream.device.emulation import AffectScript, HeartRateStrap, Phase, VirtualRadio, signals

BASELINE = Phase("baseline", 30.0, arousal=0.1, valence=0.5)
STRESS = Phase("stress", 30.0, arousal=0.9, valence=0.2)
SCRIPT = AffectScript([BASELINE, STRESS], ramp=0.0, loop=False)


async def test_heart_rate_rises_with_arousal_over_ble(radio: VirtualRadio) -> None:
    strap = HeartRateStrap(script=SCRIPT, speed=40.0)
    await radio.add(strap)
    bpm: list[int] = []
    async with BleakClient(strap.address, **radio.client_kwargs()) as client:
        await client.start_notify(
            gatt.HEART_RATE_MEASUREMENT, lambda _c, d: bpm.append(struct.unpack_from("<B", d, 1)[0])
        )
        async with asyncio.timeout(20):
            while len(strap.sent_indices("hr")) == 0 or strap.sent_indices("hr")[-1] < 58:
                await asyncio.sleep(0.05)
    seconds = strap.sent_indices("hr")[: len(bpm)]
    hr = np.asarray(bpm, dtype=float)
    np.testing.assert_array_equal(hr, strap.sent_samples("hr")[: len(hr), 0])
    # Skip the first seconds of each phase (HR reports average the beats of the last second).
    base = hr[(seconds >= 3) & (seconds < BASELINE.duration)]
    stress = hr[seconds >= BASELINE.duration + 3]
    assert base.size > 10 and stress.size > 10
    expected_rise = signals.HR_GAIN_BPM * (STRESS.arousal - BASELINE.arousal)
    assert stress.mean() - base.mean() > 0.5 * expected_rise
    for observed, phase in ((base, BASELINE), (stress, STRESS)):
        assert abs(
            observed.mean() - signals.mean_hr_bpm(phase.arousal)
        ) < 0.1 * signals.mean_hr_bpm(phase.arousal)


def test_heart_rate_variability_drops_with_arousal() -> None:
    beats = signals.BeatGenerator(SCRIPT, np.random.default_rng(3))
    times, rr = beats.beats_between(0.0, 60.0)
    rr_ms = rr[1:] * 1000.0
    t = times[1:]
    calm = np.diff(rr_ms[(t > 2) & (t < 30)])
    tense = np.diff(rr_ms[t > 32])
    rmssd_calm = np.sqrt(np.mean(calm**2))
    rmssd_tense = np.sqrt(np.mean(tense**2))
    assert rmssd_tense < rmssd_calm


def _alpha_power(x: np.ndarray, sfreq: float) -> float:
    freqs, psd = welch(x, fs=sfreq, nperseg=int(2 * sfreq))
    band = (freqs >= 8) & (freqs <= 12)
    return float(np.trapezoid(psd[band], freqs[band]))


def test_eeg_alpha_drops_with_arousal_and_asymmetry_follows_valence() -> None:
    sfreq = 256.0
    channels = ("TP9", "AF7", "AF8", "TP10", "AUX")
    n_phase = int(BASELINE.duration * sfreq)
    faa: dict[str, list[float]] = {"calm": [], "tense": []}
    for seed in range(5):  # independent heads: averages tame the narrowband variance
        eeg = signals.EegGenerator(SCRIPT, channels, sfreq, np.random.default_rng(seed))
        data = np.concatenate([eeg.samples(i, 512) for i in range(0, 2 * n_phase, 512)])
        calm, tense = data[256:n_phase], data[n_phase + 256 :]
        for column in (0, 3):  # temporal channels
            ratio = _alpha_power(tense[:, column], sfreq) / _alpha_power(calm[:, column], sfreq)
            expected = (
                (1 - signals.ALPHA_AROUSAL_DROP * STRESS.arousal)
                / (1 - signals.ALPHA_AROUSAL_DROP * BASELINE.arousal)
            ) ** 2
            # Alpha power falls as the squared amplitude ratio (the background adds a floor,
            # so the fall is smaller, but at least half the modelled one).
            assert 0.5 * expected < ratio < 0.5 * (1 + expected)
        # AUX carries no alpha.
        assert _alpha_power(calm[:, 4], sfreq) < 0.1 * _alpha_power(calm[:, 0], sfreq)
        for name, segment in (("calm", calm), ("tense", tense)):
            faa[name].append(
                np.log(_alpha_power(segment[:, 2], sfreq))
                - np.log(_alpha_power(segment[:, 1], sfreq))
            )
    # Frontal alpha asymmetry in power: 4 * FAA_GAIN * (valence - 0.5); the background in
    # the alpha band shrinks it towards 0.
    assert abs(np.mean(faa["calm"]) - 4 * signals.FAA_GAIN * (BASELINE.valence - 0.5)) < 0.1
    expected_tense = 4 * signals.FAA_GAIN * (STRESS.valence - 0.5)
    assert expected_tense - 0.1 < np.mean(faa["tense"]) < expected_tense / 2


def test_eda_tonic_level_and_scr_rate_rise_with_arousal() -> None:
    script = AffectScript(
        [
            Phase("calm", 300.0, arousal=0.1, valence=0.5),
            Phase("tense", 300.0, arousal=0.9, valence=0.3),
        ],
        ramp=0.0,
        loop=False,
    )
    eda = signals.EdaGenerator(script, np.random.default_rng(11))
    sfreq = 8.0
    t = np.arange(0, 600.0, 1 / sfreq)
    x = np.concatenate([eda.samples_at(t[i : i + 64]) for i in range(0, t.size, 64)])
    onsets = np.asarray(eda.scr_onsets)  # only the last 30 s are kept
    assert onsets.size > 0
    calm_level = np.median(x[(t > 200) & (t < 300)])
    tense_level = np.median(x[t > 500])
    expected_rise = signals.SCL_GAIN_US * 0.8
    assert tense_level - calm_level > 0.7 * expected_rise
    # SCR rate: count rises (onsets) from the phasic derivative in each phase.
    fresh = signals.EdaGenerator(script, np.random.default_rng(11))
    counted: list[float] = []
    for i in range(0, t.size, 64):
        fresh.samples_at(t[i : i + 64])
        counted.extend(o for o in fresh.scr_onsets if o not in counted)
    onsets = np.asarray(counted)
    rate_calm = np.sum(onsets < 300) / 5.0
    rate_tense = np.sum(onsets >= 300) / 5.0
    assert rate_tense > rate_calm
    expected_calm = signals.SCR_RATE_REST + signals.SCR_RATE_GAIN * 0.1
    expected_tense = signals.SCR_RATE_REST + signals.SCR_RATE_GAIN * 0.9
    # Poisson counts over 5 min: within 4 standard deviations of the expected rate.
    assert abs(rate_calm - expected_calm) < 4 * np.sqrt(expected_calm * 5) / 5
    assert abs(rate_tense - expected_tense) < 4 * np.sqrt(expected_tense * 5) / 5


def test_ecg_r_peaks_fall_on_the_beats() -> None:
    beats = signals.BeatGenerator(SCRIPT, np.random.default_rng(2))
    ecg = signals.EcgGenerator(beats, 130.0, np.random.default_rng(3))
    x = np.concatenate([ecg.samples(i, 73) for i in range(0, 130 * 20, 73)])
    # The same heart again (same seed), kept whole: the ECG generator trims old beats.
    reference = signals.BeatGenerator(SCRIPT, np.random.default_rng(2))
    reference.extend_to(len(x) / 130.0)
    beat_times = np.asarray(reference.times)
    beat_times = beat_times[(beat_times > 1) & (beat_times < len(x) / 130.0 - 1)]
    peaks, _ = find_peaks(x, height=600, distance=int(0.3 * 130))
    peak_times = peaks / 130.0
    peak_times = peak_times[(peak_times > 1) & (peak_times < len(x) / 130.0 - 1)]
    assert len(peak_times) == len(beat_times)
    assert np.max(np.abs(peak_times - beat_times)) <= 1.0 / 130.0
