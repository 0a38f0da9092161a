"""Arousal and valence estimators, dataset loaders, evaluation and model bundles.

See docs/models.md. Names are imported lazily so that ``affectstream --help`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Recording": "datasets",
    "load_dataset": "datasets",
    "load_stress_predict": "datasets",
    "load_eegmat": "datasets",
    "load_wesad": "datasets",
    "load_deap": "datasets",
    "synthetic_recordings": "synthetic",
    "synthetic_feature_frame": "synthetic",
    "recording_features": "features",
    "feature_columns": "features",
    "ContextMean": "features",
    "add_context_features": "features",
    "ParticipantNormalizer": "normalize",
    "RunningStats": "normalize",
    "AffectClassifier": "estimators",
    "Contribution": "estimators",
    "contributions": "estimators",
    "cross_validate_by_subject": "evaluation",
    "evaluate_frame": "evaluation",
    "score_bundle": "evaluation",
    "chance_check": "evaluation",
    "AffectEstimate": "bundle",
    "ModelBundle": "bundle",
    "load_bundle": "bundle",
    "save_bundle": "bundle",
    "shipped_bundles": "bundle",
    "train": "training",
    "CalibrationBlock": "valence",
    "PersonalValenceModel": "valence",
    "ValenceEstimate": "valence",
    "ValenceSmoother": "valence",
    "fit_personal_valence": "valence",
    "uncalibrated_valence": "valence",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'affectstream.models' has no attribute {name!r}")
    return getattr(importlib.import_module(f"affectstream.models.{module}"), name)
