"""Muse-like EEG made from a 10-20 recording: what a headband would have given.

The ``eeg-workload`` bundle is trained on eegmat's Muse-position analogues (500 Hz, a cap's
reference). A Muse headband samples at 256 Hz, has dry electrodes (more noise) and loses
contact now and then; its amplitudes need not match the cap's. :func:`muse_like` turns
recordings into that: EEG resampled to 256 Hz (polyphase, anti-aliased), an amplitude
``gain``, white sensor noise and contact-loss bursts (a channel drifting by hundreds of µV
for a few seconds, which the signal layer's artefact checks reject). :func:`validate` scores a
bundle unchanged on them and reports the share of windows its input-coverage check
(:mod:`affectstream.models.coverage`) accepts.

Run: ``python -m affectstream.models.muselike --data ../shared/data/eegmat --gain 1 4``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import numpy as np

from affectstream.models.datasets import Recording
from affectstream.types import SampleBlock

logger = logging.getLogger(__name__)

#: Muse 2 / S EEG sampling rate (Hz).
MUSE_RATE = 256.0
#: Dry-electrode sensor noise added to every sample (µV, standard deviation).
NOISE_UV = 4.0
#: Contact-loss bursts per channel per minute, and their length (s).
LOSS_PER_MINUTE = 0.5
LOSS_SECONDS = 4.0
#: Amplitude of a contact-loss drift (µV).
LOSS_UV = 400.0


def _resample(values: np.ndarray[Any, Any], sfreq: float, rate: float) -> np.ndarray[Any, Any]:
    from scipy.signal import resample_poly

    ratio = Fraction(rate / sfreq).limit_denominator(1000)
    return np.asarray(resample_poly(values, ratio.numerator, ratio.denominator, axis=0))


def muse_like(
    recordings: Sequence[Recording],
    *,
    rate: float = MUSE_RATE,
    gain: float = 1.0,
    noise_uv: float = NOISE_UV,
    loss_per_minute: float = LOSS_PER_MINUTE,
    seed: int = 0,
) -> list[Recording]:
    """Copies of ``recordings`` whose EEG looks like a Muse headband's.

    Parameters
    ----------
    recordings : sequence of Recording
        Sessions with ``eeg`` blocks (µV).
    rate : float
        Output EEG rate (Hz).
    gain : float
        Amplitude factor (band powers scale by its square).
    noise_uv : float
        White noise standard deviation (µV).
    loss_per_minute : float
        Contact-loss bursts per channel per minute.
    seed : int
        Random seed.

    Returns
    -------
    list of Recording
        Same subjects, labels and sessions; other modalities unchanged.
    """
    rng = np.random.default_rng(seed)

    def degrade(b: SampleBlock) -> SampleBlock:
        if b.modality != "eeg" or not b.sfreq:
            return b
        x = _resample(np.asarray(b.values, dtype=np.float64), float(b.sfreq), rate) * gain
        x = x + rng.normal(0.0, noise_uv, x.shape)
        n_loss = rng.poisson(loss_per_minute * x.shape[0] / rate / 60.0 * x.shape[1])
        span = int(LOSS_SECONDS * rate)
        for _ in range(n_loss):
            ch = int(rng.integers(x.shape[1]))
            start = int(rng.integers(max(1, x.shape[0] - span)))
            drift = np.cumsum(rng.normal(0.0, 1.0, span))
            drift *= LOSS_UV / max(float(np.abs(drift).max()), 1e-9)
            x[start : start + span, ch] += drift[: x.shape[0] - start]
        return SampleBlock.regular(
            b.stream, b.modality, b.channels, x, rate, float(b.t[0]), device=b.device
        )

    # Blocks are changed in order, so the random stream (and the result) is as before.
    return [rec.map_blocks(degrade) for rec in recordings]


def validate(
    recordings: Sequence[Recording], bundle_name: str = "eeg-workload", gain: float = 1.0
) -> dict[str, Any]:
    """Score a bundle unchanged on Muse-like copies of ``recordings``.

    Parameters
    ----------
    recordings : sequence of Recording
        Labelled EEG sessions.
    bundle_name : str
        Bundle name or folder.
    gain : float
        Amplitude factor (:func:`muse_like`).

    Returns
    -------
    dict
        LightGBM balanced accuracy and AUROC over all scored windows, the standard
        deviation of its probabilities, ``eeg_segments_accepted`` (mean ``quality_eeg`` of the
        scored windows) and ``in_distribution``: the share of scored windows the
        input-coverage check accepts, with balanced accuracy on those alone.
    """
    from sklearn.metrics import balanced_accuracy_score, roc_auc_score

    from affectstream.models.bundle import load_bundle
    from affectstream.models.evaluation import scored_mask
    from affectstream.models.features import recording_features
    from affectstream.signal import WindowConfig

    bundle = load_bundle(bundle_name)
    window = bundle.meta["window"]
    frame = recording_features(
        muse_like(recordings, gain=gain),
        config=WindowConfig(
            window=float(window["window"]),
            step=float(window["step"]),
            line_freq=float(window.get("line_freq", 50.0)),
        ),
        baseline_seconds=float(bundle.meta["normalization"]["baseline_seconds"]),
        modalities=("eeg",),
    )
    scored = bundle.predict_frame(frame)[scored_mask(frame, bundle.target)]
    y = frame.loc[scored.index, bundle.target].to_numpy(dtype=int)
    p = scored["probability"].to_numpy()
    high = scored["high"].to_numpy()
    ok = scored["in_distribution"].to_numpy(dtype=bool)
    both = ok.any() and np.unique(y[ok]).size == 2
    return {
        "gain": gain,
        "n_windows": int(y.size),
        "balanced_accuracy": float(balanced_accuracy_score(y, high)),
        "auroc": float(roc_auc_score(y, p)),
        "probability_std": float(np.std(p)),
        "in_distribution": float(ok.mean()),
        # the share of (2-s segment, channel) pairs the signal layer's artefact rules accept
        "eeg_segments_accepted": float(frame.loc[scored.index, "quality_eeg"].mean()),
        "balanced_accuracy_in_distribution": float(balanced_accuracy_score(y[ok], high[ok]))
        if both
        else float("nan"),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: score a bundle on Muse-like eegmat at one or more gains."""
    from affectstream.models.datasets import load_eegmat

    parser = argparse.ArgumentParser(prog="python -m affectstream.models.muselike")
    parser.add_argument("--data", default="../shared/data/eegmat")
    parser.add_argument("--model", default="eeg-workload")
    parser.add_argument("--gain", type=float, nargs="+", default=[1.0])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    recordings = load_eegmat(args.data)
    results = [validate(recordings, args.model, g) for g in args.gain]
    sys.stdout.write(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
