"""Window and feature-extraction settings."""

from __future__ import annotations

import math
from dataclasses import dataclass

from affectstream._validate import check_positive
from affectstream.errors import ConfigError

#: EEG frequency bands in Hz, lower edge inclusive, upper edge exclusive.
EEG_BANDS: dict[str, tuple[float, float]] = {
    "delta": (1.0, 4.0),
    "theta": (4.0, 8.0),
    "alpha": (8.0, 13.0),
    "beta": (13.0, 30.0),
    "gamma": (30.0, 45.0),
}


@dataclass(frozen=True)
class WindowConfig:
    """Sliding-window settings shared by the batch and the streaming extractor.

    Parameters
    ----------
    window : float
        Window length in seconds (default 60).
    step : float
        Seconds between consecutive window ends (default 5). Window ends fall on
        ``origin + k * step``.
    origin : float or None
        Time (seconds since the epoch) the window grid is aligned to. ``None``: the earliest
        first-sample time of the given blocks (batch) or of the first block pushed (streaming).
        Pass the same value to both to get identical rows.
    min_quality : float
        Windows whose quality index (0..1) is below this are marked unusable.
    mask_unusable : bool
        If True (default), the features of an unusable window are NaN; if False they are kept
        and only ``usable_<family>`` says not to trust them.
    line_freq : float
        Mains frequency in Hz (50 or 60) for the ECG and EEG notch filters.
    beat_segment : float
        Unused, kept so that saved configs still load: ECG R peaks and PPG pulse peaks are
        found as the samples arrive (:mod:`affectstream.signal.beats`, look-ahead 0.05 s
        for ECG, 0.2 s for PPG), not in segments.
    beat_margin : float
        Unused, as ``beat_segment``.
    lf_min_window : float
        LF power (and LF/HF) is computed only when the window is at least this long: two
        cycles of 0.04 Hz. HF needs ``2 / 0.15`` s.
    eeg_welch_seconds : float
        Welch segment length in seconds; segments overlap by half.
    eeg_max_ptp : float
        Absolute ceiling: a Welch segment (per channel) whose filtered peak-to-peak amplitude
        exceeds this (µV) is rejected whatever the channel's scale. Set where no scalp EEG
        reaches, so it only catches a detached electrode or a saturating amplifier; artefacts
        are judged against the channel's own scale (``eeg_max_ptp_scale``).
    eeg_min_std : float
        Absolute floor: a Welch segment whose standard deviation is below this (µV) is a flat
        channel whatever the channel's scale.
    eeg_max_ptp_scale : float
        A Welch segment whose filtered peak-to-peak amplitude exceeds this many times the
        channel's robust scale (median over its recent segments of the segment's median
        absolute deviation, times 1.4826) is rejected: blinks and contact loss are judged
        the same on a device of any gain.
    eeg_min_std_scale : float
        A Welch segment whose standard deviation is below this share of the channel's
        robust scale is flat relative to the channel (an electrode that stopped following
        the scalp).
    faa_channels : tuple of str
        Left and right channel of frontal alpha asymmetry, ``ln(alpha right) - ln(alpha left)``.
    scr_min_amplitude : float
        Smallest skin-conductance response amplitude counted, µS.
    scr_max_risetime : float
        Longest onset-to-peak time of a counted SCR, s (typical SCRs rise in 0.5-5 s; slower
        rises are the phasic signal drifting back after a response, not a response).
    reasons : bool
        If True, add ``reason_<family>`` text columns saying why a window is NaN or unusable.
    max_lag : float or None
        Streaming only: seconds the data of the other streams may advance while a stream
        delivers nothing before rows stop waiting for it (default 30; ``None`` waits for
        ever). Its windows are then computed from the data it sent (NaN, quality 0,
        unusable where it sent none) and, when it resumes, its data continue after a gap
        (see docs/features.md). Longer than a BLE
        reconnect (supervision timeout plus scan and connect, about 10-20 s), so a device
        that comes back in time loses nothing; short enough that a device switched off
        holds estimates back for at most half a default window. :func:`extract_features`
        sees whole recordings and never needs it.
    """

    window: float = 60.0
    step: float = 5.0
    origin: float | None = None
    min_quality: float = 0.5
    mask_unusable: bool = True
    line_freq: float = 50.0
    beat_segment: float = 10.0
    beat_margin: float = 1.5
    lf_min_window: float = 50.0
    eeg_welch_seconds: float = 2.0
    eeg_max_ptp: float = 1000.0
    eeg_min_std: float = 0.5
    eeg_max_ptp_scale: float = 15.0
    eeg_min_std_scale: float = 0.1
    faa_channels: tuple[str, str] = ("AF7", "AF8")
    scr_min_amplitude: float = 0.05
    scr_max_risetime: float = 5.0
    reasons: bool = False
    max_lag: float | None = 30.0
    common_rate: float | None = None

    def __post_init__(self) -> None:
        for name in (
            "window",
            "step",
            "beat_segment",
            "beat_margin",
            "lf_min_window",
            "eeg_welch_seconds",
            "eeg_max_ptp",
            "eeg_min_std",
            "eeg_max_ptp_scale",
            "eeg_min_std_scale",
            "scr_min_amplitude",
            "scr_max_risetime",
        ):
            check_positive(f"WindowConfig.{name}", getattr(self, name))
        if self.max_lag is not None:
            check_positive("WindowConfig.max_lag", self.max_lag)
        if self.common_rate is not None:
            check_positive("WindowConfig.common_rate", self.common_rate)
        if self.step > self.window:
            raise ConfigError(
                f"WindowConfig.step ({self.step} s) must not exceed WindowConfig.window "
                f"({self.window} s): windows would leave data out. Use a smaller step."
            )
        if self.window < 2 * self.eeg_welch_seconds:
            raise ConfigError(
                f"WindowConfig.window ({self.window} s) is too short: it must hold at least two "
                f"EEG Welch segments of eeg_welch_seconds={self.eeg_welch_seconds} s. Use a "
                f"longer window or shorter eeg_welch_seconds."
            )
        if not 0.0 <= self.min_quality <= 1.0:
            raise ConfigError(
                f"WindowConfig.min_quality must be within [0, 1], got {self.min_quality!r}."
            )
        if self.line_freq not in (50.0, 60.0):
            raise ConfigError(
                f"WindowConfig.line_freq must be 50 or 60 (Hz), got {self.line_freq!r}."
            )
        if self.origin is not None and not math.isfinite(self.origin):
            raise ConfigError(f"WindowConfig.origin must be finite or None, got {self.origin!r}.")
        if len(self.faa_channels) != 2:
            raise ConfigError(
                f"WindowConfig.faa_channels must be (left, right), got {self.faa_channels!r}."
            )
