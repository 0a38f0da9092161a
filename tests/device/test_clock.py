"""Clock model: timestamps follow the device clock, not the BLE delivery jitter.

Derivation of the bound used below (no number is copied from a run).

Let L(x) be the true host time of sample x plus the constant minimum latency d_min (a
constant latency cannot be told apart from an offset, so it is part of the target), and let
each packet arrive at L(x_last) + δ with excess delay δ ~ U(0, J). The fitted line F lies
under every retained point, so e = F − L is a linear function with e(x_i) ≤ δ_i at every
retained point, and, because F maximises the mean height over the retained points while L
is also a feasible line, e(x̄) ≥ 0 at the points' mean index x̄ (≈ the window centre, within
one bucket b). Take the packet with the smallest δ in the last quarter of the window (x_b,
δ = m) and in the first quarter (x_a, δ = m'). Because each bucket keeps its earliest
packet judged with the nominal slope, the retained point of that bucket has an excess of at
most m + D·b where D is the drift (the nominal and true slopes differ by D over one bucket).
Then, at the newest index x_N:
    e(x_N) ≤ (m + D b) · (1 + (W/4) / (W/4 − b))      (extrapolating from x̄ through x_b)
    e(x_N) ≥ −(m' + D b) · (W/2 + b) / (W/4 − b)      (from x_a through x̄)
so |e(x_N)| ≤ g (ε + D b) with g = (W/2 + b)/(W/4 − b), as long as the smallest excess delay
among the k packets of every quarter is ≤ ε. P(min > ε) = (1 − ε/J)^k; over E evaluations and
two quarters each, P(any failure) ≤ 2E(1 − ε/J)^k := p. Solving for ε with p = 1e-6 gives the
bound. Samples inside a packet lie between x̄ and x_N, where |e| is at most the same bound.
"""

from __future__ import annotations

import numpy as np
import pytest

from affectstream.device.clock import ClockModel, lower_hull, strictly_after
from affectstream.errors import ConfigError, SignalError

RATE = 256.0
PER_PACKET = 12  # Muse EEG packets
WINDOW = 30.0
BUCKET = 0.5
JITTER = 0.05  # s, U(0, J) excess delay
D_MIN = 0.007  # s, constant part of the latency
P_FAIL = 1e-6


def _bound(n_evaluations: int, drift: float) -> float:
    packets_per_quarter = int(WINDOW / 4 * RATE / PER_PACKET)
    eps = JITTER * (1 - (P_FAIL / (2 * n_evaluations)) ** (1 / packets_per_quarter))
    geometry = (WINDOW / 2 + BUCKET) / (WINDOW / 4 - BUCKET)
    return geometry * (eps + abs(drift) * BUCKET)


def _simulate(
    drifts: list[float], seconds_each: float, seed: int, stamps: list[np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return per-packet (last index, true time of every sample, estimated times, arrival).

    With ``stamps`` (a list to fill), times come from ``ClockModel.stamp`` and each packet's
    stamps are appended to it.
    """
    rng = np.random.default_rng(seed)
    clock = ClockModel(RATE, window=WINDOW, bucket=BUCKET)
    t_device0 = 1.7e9 + 123.456  # host time of sample 0
    index = 0
    true_time = t_device0
    lasts, errors, arrivals_err, times = [], [], [], []
    for drift in drifts:
        # The device samples at RATE·(1 + drift) in host seconds.
        period = 1.0 / (RATE * (1.0 + drift))
        n_packets = int(seconds_each * RATE / PER_PACKET)
        for _ in range(n_packets):
            sample_times = true_time + period * np.arange(PER_PACKET)
            true_time = sample_times[-1] + period
            last = index + PER_PACKET - 1
            arrival = sample_times[-1] + D_MIN + rng.uniform(0, JITTER)
            clock.observe(last, arrival)
            if stamps is None:
                estimate = clock.time_of(np.arange(index, last + 1))
            else:
                estimate = clock.stamp(np.arange(index, last + 1))
                stamps.append(estimate)
            errors.append(np.max(np.abs(estimate - (sample_times + D_MIN))))
            arrivals_err.append(arrival - (sample_times[-1] + D_MIN))
            lasts.append(last)
            times.append(sample_times[-1])
            index = last + 1
    return np.array(lasts), np.array(times), np.array(errors), np.array(arrivals_err)


def test_error_within_derived_bound_with_jitter_and_50_ppm_drift() -> None:
    drift = 50e-6
    _, times, errors, arrival_err = _simulate([drift], 120.0, seed=7)
    settled = times - times[0] >= WINDOW  # the bound assumes a full window
    bound = _bound(len(errors), drift)
    assert bound < JITTER / 2  # the derivation is worth something
    assert errors[settled].max() <= bound
    # And the timestamps jitter far less than delivery does.
    assert errors[settled].std() < arrival_err[settled].std() / 3


def test_forgetting_window_follows_a_drift_change() -> None:
    # +50 ppm for 60 s, then −50 ppm: one window after the change the bound holds again.
    _lasts, times, errors, _ = _simulate([50e-6, -50e-6], 60.0, seed=11)
    change = times[0] + 60.0
    settled = times >= change + WINDOW
    assert settled.sum() > 100
    assert errors[settled].max() <= _bound(len(errors), 50e-6)


def test_fitted_drift_sign_and_size() -> None:
    clock = ClockModel(100.0, window=20.0, bucket=0.5)
    drift = 200e-6
    for i in range(0, 100 * 40, 10):
        clock.observe(i + 9, 1000.0 + (i + 9) / (100.0 * (1 + drift)))
    clock.time_of([0])
    # Without jitter every point is on the envelope: the slope is exact to rounding.
    assert clock.drift_ppm_ == pytest.approx(drift * 1e6, rel=1e-3)


def test_nominal_rate_before_min_span_and_errors() -> None:
    clock = ClockModel(10.0)
    with pytest.raises(SignalError):
        clock.time_of([0])
    clock.observe(9, 100.9)
    clock.observe(19, 102.5)  # late packet: the envelope keeps the earlier one
    assert clock.time_of([9, 19]).tolist() == pytest.approx([100.9, 101.9])
    with pytest.raises(ConfigError, match="nominal_rate"):
        ClockModel(0.0)


def test_lower_hull() -> None:
    points = [(0.0, 1.0), (1.0, 0.0), (2.0, 0.5), (3.0, 0.2), (4.0, 2.0)]
    assert lower_hull(points) == [(0.0, 1.0), (1.0, 0.0), (3.0, 0.2), (4.0, 2.0)]


def test_stamps_strictly_increase_and_keep_the_derived_bound() -> None:
    """A refit lowers the line whenever an earlier-arriving packet shows up; stamps must not
    follow it back, and, moved or not, stay within the same bound as the fit (a moved stamp
    has less error than the one before it; see ClockModel.stamp)."""
    drift = 50e-6
    stamps: list[np.ndarray] = []
    _, times, errors, _ = _simulate([drift], 120.0, seed=7, stamps=stamps)
    fitted = _simulate([drift], 120.0, seed=7)[2]
    flat = np.concatenate(stamps)
    assert np.all(np.diff(flat) >= 0.5 / RATE - 1e-9)
    # Stamps were moved (the fit went back, or nearly, between packets), else no test.
    assert np.any(errors != fitted)
    starts = np.array([s[0] for s in stamps[1:]])
    ends = np.array([s[-1] for s in stamps[:-1]])
    assert np.all(starts > ends)
    settled = times - times[0] >= WINDOW
    assert errors[settled].max() <= _bound(len(errors), drift)


def test_stamp_never_goes_back_when_a_refit_lowers_the_line() -> None:
    rate = 10.0
    clock = ClockModel(rate)
    clock.observe(9, 100.9)
    first = clock.stamp(np.arange(10))
    np.testing.assert_allclose(first, 100.0 + np.arange(10) / rate)
    # A packet with 0.4 s less latency: the fitted line drops below what was stamped.
    clock.observe(19, 101.5)
    index = np.arange(10, 20)
    fitted = clock.time_of(index)
    assert fitted[0] <= first[-1]  # the refit would move time backwards
    min_step = 0.5 / rate
    lead_first = first[-1] + min_step - fitted[0]
    stamped = clock.stamp(index)
    assert stamped[0] > first[-1]
    assert np.all(np.diff(stamped) >= 0.5 / rate - 1e-9)
    assert np.all(stamped >= fitted - 1e-9)
    lead = stamped - fitted
    assert np.all(np.diff(lead) <= 1e-9)  # the lead only shrinks...
    # ...by a period less the minimum step per sample, until it is gone.
    caught_up = int(np.ceil(lead_first / (1 / rate - min_step) - 1e-9))
    assert 1 < caught_up < len(index)
    np.testing.assert_allclose(stamped[caught_up:], fitted[caught_up:])
    assert lead[caught_up - 1] > 1e-9
    # Stamps keep increasing across a reset (device restart).
    clock.reset()
    clock.observe(0, float(stamped[-1]) - 5.0)
    assert clock.stamp([0])[0] > stamped[-1]


def test_strictly_after() -> None:
    t = np.array([1.0, 1.0, 1.5, 3.0])
    out = strictly_after(t, 1.2, 0.1)
    np.testing.assert_allclose(out, [1.3, 1.4, 1.5, 3.0])
    untouched = np.array([2.0, 3.0])
    assert strictly_after(untouched, 1.0, 0.1) is untouched
    assert strictly_after(np.array([]), 0.0, 0.1).size == 0


@pytest.mark.parametrize(("speed", "drift_ppm"), [(1.0, 80.0), (2.0, 0.0), (0.5, 0.0)])
def test_rate_follows_a_device_far_from_nominal_and_ignores_jitter_near_it(
    speed: float, drift_ppm: float
) -> None:
    """The rate used to predict a counter across a disconnect: a device sampling at
    ``speed`` times nominal (the emulator's knob) is measured; one within a crystal's error
    gives the nominal rate, whatever the jitter of four seconds of packets."""
    rng = np.random.default_rng(3)
    model = ClockModel(RATE, window=WINDOW)
    assert model.rate() == RATE  # nothing observed yet
    true_rate = RATE * speed * (1 + drift_ppm * 1e-6)
    for last in range(PER_PACKET - 1, int(4.0 * true_rate), PER_PACKET):
        model.observe(last, 100.0 + last / true_rate + D_MIN + rng.uniform(0, JITTER))
    if speed == 1.0:
        assert model.rate() == RATE * (1 + model.drift_ppm_ * 1e-6)
    else:
        # Earliest arrivals of the first and last buckets: off by at most the jitter
        # over the span between them (at least one bucket of nominal time).
        span = (int(4.0 * true_rate) - 2 * BUCKET * RATE) / true_rate
        assert abs(model.rate() / true_rate - 1) <= JITTER / span
