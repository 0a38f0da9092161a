"""Arousal and valence estimators, dataset loaders, evaluation and model bundles.

See docs/models.md. Names are imported lazily so that ``affectstream --help`` stays fast.
"""

from __future__ import annotations

from affectstream._lazy import lazy_getattr

_EXPORTS = {
    "Recording": "affectstream.models.datasets",
    "load_dataset": "affectstream.models.datasets",
    "load_stress_predict": "affectstream.models.datasets",
    "load_eegmat": "affectstream.models.datasets",
    "load_wesad": "affectstream.models.datasets",
    "load_deap": "affectstream.models.datasets",
    "synthetic_recordings": "affectstream.models.synthetic",
    "synthetic_feature_frame": "affectstream.models.synthetic",
    "recording_features": "affectstream.models.features",
    "feature_columns": "affectstream.models.features",
    "ContextMean": "affectstream.models.features",
    "add_context_features": "affectstream.models.features",
    "ParticipantNormalizer": "affectstream.models.normalize",
    "RunningStats": "affectstream.models.normalize",
    "AffectClassifier": "affectstream.models.estimators",
    "Contribution": "affectstream.models.estimators",
    "contributions": "affectstream.models.estimators",
    "cross_validate_by_subject": "affectstream.models.evaluation",
    "evaluate_frame": "affectstream.models.evaluation",
    "score_bundle": "affectstream.models.evaluation",
    "chance_check": "affectstream.models.evaluation",
    "AffectEstimate": "affectstream.models.bundle",
    "ModelBundle": "affectstream.models.bundle",
    "load_bundle": "affectstream.models.bundle",
    "save_bundle": "affectstream.models.bundle",
    "shipped_bundles": "affectstream.models.bundle",
    "train": "affectstream.models.training",
    "CalibrationBlock": "affectstream.models.valence",
    "PersonalValenceModel": "affectstream.models.valence",
    "ValenceEstimate": "affectstream.models.valence",
    "ValenceSmoother": "affectstream.models.valence",
    "fit_personal_valence": "affectstream.models.valence",
    "uncalibrated_valence": "affectstream.models.valence",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS)
