"""The shared synthetic shapes: one ECG beat template and one skin-conductance response."""

from __future__ import annotations

import numpy as np

from affectstream.waveforms import ECG_BEAT_SPAN, ECG_WAVES, ecg_beat, scr_response


def test_scr_response_has_a_unit_peak_and_nothing_before_its_onset() -> None:
    lag = np.linspace(-5.0, 30.0, 350_001)
    for decay, rise in ((4.0, 0.75), (2.5, 0.75)):
        shape = scr_response(lag, decay=decay, rise=rise)
        assert np.all(shape[lag <= 0] == 0.0)
        assert abs(shape.max() - 1.0) < 1e-6
        # Past the peak it decays with the slow time constant.
        late = lag > 20.0
        ratio = shape[late][1:] / shape[late][:-1]
        assert np.allclose(ratio, np.exp(-(lag[1] - lag[0]) / decay), rtol=1e-6)


def test_ecg_beat_peaks_at_r_and_stretches_t_with_rr() -> None:
    dt = np.linspace(*ECG_BEAT_SPAN, 110_001)
    r_amplitude = max(amplitude for _, amplitude, _, _ in ECG_WAVES)
    for rr in (0.6, 1.0, 1.4):
        beat = ecg_beat(dt, rr)
        assert abs(dt[np.argmax(beat)]) < 1e-4
        assert abs(beat.max() - r_amplitude) < 0.02 * r_amplitude
        # T wave: the largest value after the S wave sits at its offset times sqrt(RR).
        t_offset = next(offset for offset, _, _, scales in ECG_WAVES if scales)
        after_s = dt > 0.1
        assert abs(dt[after_s][np.argmax(beat[after_s])] - t_offset * np.sqrt(rr)) < 0.01
    # The span holds the whole beat: its ends are flat for the RR range the generators use.
    assert np.all(np.abs(ecg_beat(np.array(ECG_BEAT_SPAN), 1.5)) < 0.5)
