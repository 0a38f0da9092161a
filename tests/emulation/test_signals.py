"""The emulated physiology follows the arousal/valence script (expectations from its parameters)."""

from __future__ import annotations

import asyncio
import struct

import numpy as np
from bleak import BleakClient

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
