"""Names shared by the models layer and the CLI, importable without heavy dependencies."""

from __future__ import annotations

#: Names accepted by :func:`affectstream.models.datasets.load_dataset` and ``--dataset``.
DATASETS = ("stress-predict", "noneeg", "wesad-e4", "eegmat", "wesad", "deap", "synthetic")

#: Label columns a recording may carry; 1 = high, 0 = low, NaN = unknown / not scored.
TARGETS = ("arousal", "valence")

#: Per-participant normalisations (:class:`affectstream.models.normalize.ParticipantNormalizer`).
NORMALIZATIONS = ("baseline", "running", "none", "baseline_z")
