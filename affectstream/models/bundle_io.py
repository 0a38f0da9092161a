"""Reading and writing model bundle folders, and the trust rules for what they may hold.

Layout of a bundle folder::

    bundle.json     format version, affectstream version, target, exact feature list,
                    normalisation (method, scale, clip, training participants' centres),
                    decision thresholds, window settings, provenance, evaluation summary
    lightgbm.txt    LightGBM Booster in its native text format
    svm.skops       the SVM's imputer + calibrated SVC, in skops format
    MODEL_CARD.md   what the model is for, what was measured, on what, with which command

Nothing is unpickled: LightGBM's text is parsed by LightGBM, and skops loads only the types
in :data:`SKOPS_TRUSTED_TYPES` (anything else in the file is refused). The loaded bundle
type is :class:`~affectstream.models.bundle.ModelBundle`.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from affectstream._version import __version__
from affectstream.errors import ConfigError, FeatureMismatchError, ModelError
from affectstream.models.lgb_text import check_model_text

if TYPE_CHECKING:
    from affectstream.models.bundle import ModelBundle
    from affectstream.models.estimators import AffectClassifier

logger = logging.getLogger(__name__)

BUNDLE_FORMAT = 1
#: Shipped bundles live here, one folder per name.
BUNDLES_DIR = Path(__file__).resolve().parent / "bundles"

#: The only types ``svm.skops`` may contain beyond skops' own defaults.
SKOPS_TRUSTED_TYPES = (
    "sklearn.calibration.CalibratedClassifierCV",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.impute._base.MissingIndicator",
    "sklearn.impute._base.SimpleImputer",
    "sklearn.pipeline.Pipeline",
    "sklearn.svm._classes.SVC",
    "sklearn.preprocessing._label.LabelEncoder",
    "sklearn.utils._bunch.Bunch",
    "numpy.dtype",
    "numpy.ndarray",
    "builtins.slice",
)


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"affectstream": __version__, "python": platform.python_version()}
    for name in (
        "numpy",
        "scipy",
        "pandas",
        "scikit-learn",
        "lightgbm",
        "skops",
        "neurokit2",
        "mne",
    ):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_bundle(
    out: Path | str,
    *,
    name: str,
    lightgbm: AffectClassifier,
    svm: AffectClassifier,
    window: Mapping[str, Any],
    baseline_seconds: float,
    provenance: Mapping[str, Any],
    evaluation: Mapping[str, Any],
    card: str,
    context_seconds: float = 0.0,
) -> Path:
    """Write a bundle folder.

    Parameters
    ----------
    out : path
        Folder to create (or overwrite the bundle files in).
    name : str
        Bundle name.
    lightgbm, svm : AffectClassifier
        Fitted classifiers with the same features, target and normalisation.
    window : mapping
        Window settings used for the features (``window``, ``step``).
    baseline_seconds : float
        Length of the reference period at session start.
    provenance : mapping
        Dataset, subjects, files, command.
    evaluation : mapping
        Summary metrics measured by the training command.
    card : str
        Model card markdown.
    context_seconds : float
        Span of the context features (:class:`~affectstream.models.features.ContextMean`)
        among the features; 0 for none.

    Returns
    -------
    Path
        The bundle folder.
    """
    import skops.io as sio

    if lightgbm.features_ != svm.features_ or lightgbm.target != svm.target:
        raise ModelError("Both classifiers of a bundle must share features and target.")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lightgbm.booster.save_model(str(out / "lightgbm.txt"))
    sio.dump(svm._rest(), out / "svm.skops")
    normalizer = lightgbm.pipeline_.named_steps["normalize"]
    meta = {
        "format": BUNDLE_FORMAT,
        "name": name,
        "target": lightgbm.target,
        "features": list(lightgbm.features_),
        "normalization": {
            "method": normalizer.method,
            "scale": normalizer.scale_.tolist(),
            "clip": normalizer.clip,
            "halflife": normalizer.halflife,
            "baseline_seconds": baseline_seconds,
            "training_centers": getattr(normalizer, "centers_", {}),
        },
        "input_range": getattr(lightgbm, "input_range_", None),
        "thresholds": {"lightgbm": lightgbm.threshold_, "svm": svm.threshold_},
        "window": dict(window),
        "context": {
            "seconds": float(context_seconds),
            "features": [
                f for f in lightgbm.features_ if not f.endswith(f"_ctx{context_seconds:g}s")
            ]
            if context_seconds > 0
            else [],
        },
        "provenance": dict(provenance),
        "evaluation": dict(evaluation),
        "versions": _versions(),
        "files": {
            "lightgbm.txt": _sha256(out / "lightgbm.txt"),
            "svm.skops": _sha256(out / "svm.skops"),
        },
    }
    (out / "bundle.json").write_text(json.dumps(_json_safe(meta), indent=1, sort_keys=True))
    (out / "MODEL_CARD.md").write_text(card)
    if out.resolve().parent == BUNDLES_DIR.resolve():
        write_shipped_manifest()  # a retrained shipped bundle: the package manifest follows
    return out


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


#: The files every bundle has, each with a mandatory SHA-256 in ``bundle.json``.
BUNDLE_FILES = ("lightgbm.txt", "svm.skops")


def _check_files(path: Path, meta: dict[str, Any]) -> None:
    """Every bundle file has a checksum in ``bundle.json`` and matches it."""
    files = meta.get("files")
    if not isinstance(files, dict):
        raise ModelError(
            f"bundle.json in {str(path)!r} has no 'files' checksums, so its model files "
            "cannot be verified; refusing to load it. Re-copy or retrain the bundle."
        )
    for file in BUNDLE_FILES:
        digest = files.get(file)
        if not isinstance(digest, str) or len(digest) != 64:
            raise ModelError(
                f"bundle.json in {str(path)!r} has no SHA-256 for {file}; refusing to load "
                "an unverifiable bundle. Re-copy or retrain it."
            )
        if not (path / file).is_file() or _sha256(path / file) != digest:
            raise ModelError(
                f"Bundle file {str(path / file)!r} is missing or altered (checksum differs "
                f"from bundle.json). Re-copy or retrain the bundle."
            )


def _load_svm(path: Path) -> Any:
    """Load ``svm.skops`` with only trusted types; a classifier, or a one-line ModelError."""
    import zipfile

    import skops.io as sio

    file = path / "svm.skops"
    try:
        untrusted = sio.get_untrusted_types(file=file)
        refused = sorted(set(untrusted) - set(SKOPS_TRUSTED_TYPES))
        if refused:
            raise ModelError(
                f"svm.skops in {str(path)!r} contains types outside the trusted list: "
                f"{refused}. Refusing to load it."
            )
        svm = sio.load(file, trusted=[t for t in untrusted if t in SKOPS_TRUSTED_TYPES])
    except ModelError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, TypeError, KeyError) as exc:
        raise ModelError(
            f"svm.skops in {str(path)!r} is not a valid skops file ({type(exc).__name__}: "
            f"{str(exc)[:120]}); re-copy or retrain the bundle."
        ) from None
    if not (hasattr(svm, "predict_proba") and hasattr(svm, "n_features_in_")):
        raise ModelError(
            f"svm.skops in {str(path)!r} holds a {type(svm).__name__}, not a fitted "
            "classifier; re-copy or retrain the bundle."
        )
    return svm


def shipped_bundles() -> list[str]:
    """Names of the bundles shipped inside the package.

    Returns
    -------
    list of str
    """
    if not BUNDLES_DIR.is_dir():
        return []
    return sorted(p.name for p in BUNDLES_DIR.iterdir() if (p / "bundle.json").is_file())


def resolve_bundle(name_or_path: Path | str) -> Path:
    """Turn a bundle folder path or a shipped bundle name into a folder.

    A bare shipped name (``stress-wrist``) always means the shipped bundle, even when the
    working directory holds a folder of that name (a warning says so); write ``./NAME``
    for the folder.

    Parameters
    ----------
    name_or_path : path or str

    Returns
    -------
    Path
    """
    path = Path(name_or_path)
    text = str(name_or_path)
    shipped = BUNDLES_DIR / text
    bare = isinstance(name_or_path, str) and "/" not in text and text not in (".", "..")
    if bare and (shipped / "bundle.json").is_file():
        if (path / "bundle.json").is_file():
            logger.warning(
                "model %r: using the shipped bundle, not the folder %s in the working "
                "directory (pass ./%s to use that folder).",
                text,
                path.resolve(),
                text,
            )
        return shipped
    if (path / "bundle.json").is_file():
        return path
    raise ConfigError(
        f"No model bundle at {text!r}: expected a folder with bundle.json or "
        f"one of the shipped names {shipped_bundles()}."
    )


#: Checksums of every file of the shipped bundles, written by ``write_shipped_manifest``.
MANIFEST = BUNDLES_DIR / "MANIFEST.json"


def _shipped_files() -> dict[str, str]:
    return {
        f"{p.parent.name}/{p.name}": _sha256(p)
        for name in shipped_bundles()
        for p in sorted((BUNDLES_DIR / name).iterdir())
        if p.is_file()
    }


def write_shipped_manifest() -> Path:
    """Record the SHA-256 of every shipped bundle file in ``bundles/MANIFEST.json``.

    Run after retraining a shipped bundle (``python -c "from affectstream.models.bundle
    import write_shipped_manifest; write_shipped_manifest()"``).

    Returns
    -------
    Path
    """
    MANIFEST.write_text(json.dumps(_shipped_files(), indent=1, sort_keys=True) + "\n")
    return MANIFEST


def verify_shipped(name: str | None = None) -> None:
    """Check shipped bundles (all, or ``name``) against the manifest in the package.

    Parameters
    ----------
    name : str, optional
        One shipped bundle.

    Raises
    ------
    ModelError
        A file is missing, added or altered since the package was built.
    """
    try:
        expected = json.loads(MANIFEST.read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(
            f"The shipped bundle manifest {MANIFEST} is unreadable ({exc}); reinstall affectstream."
        ) from None
    actual = _shipped_files()
    keys = set(expected) | set(actual)
    if name is not None:
        keys = {k for k in keys if k.split("/", 1)[0] == name}
    bad = sorted(k for k in keys if expected.get(k) != actual.get(k))
    if bad:
        raise ModelError(
            f"Shipped bundle file(s) {bad[:4]} differ from the package manifest (missing, "
            "added or altered); reinstall affectstream."
        )


def load_bundle(
    name_or_path: Path | str,
    *,
    expected_features: Sequence[str] | None = None,
    allow_version_mismatch: bool = False,
) -> ModelBundle:
    """Load a bundle, checking format, version, file integrity and feature list.

    Parameters
    ----------
    name_or_path : path or str
        Bundle folder, or the name of a shipped bundle.
    expected_features : sequence of str, optional
        If given, the bundle's feature list must equal it exactly.
    allow_version_mismatch : bool
        Accept a bundle written by another affectstream version (feature definitions may
        have changed; scores may then be wrong).

    Returns
    -------
    ModelBundle

    Raises
    ------
    FeatureMismatchError
        Feature list or affectstream version differs.
    ModelError
        Files missing, corrupt or containing untrusted types.
    """
    import lightgbm as lgb

    from affectstream.models.bundle import ModelBundle  # the type imports this module

    path = resolve_bundle(name_or_path)
    if path.resolve().parent == BUNDLES_DIR.resolve():
        verify_shipped(path.name)
    try:
        meta = json.loads((path / "bundle.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"Corrupt bundle.json in {str(path)!r}: {exc}.") from None
    if meta.get("format") != BUNDLE_FORMAT:
        raise ModelError(
            f"Bundle {str(path)!r} has format {meta.get('format')!r}; this affectstream reads "
            f"format {BUNDLE_FORMAT}. Retrain with `affectstream train`."
        )
    written_by = meta.get("versions", {}).get("affectstream")
    if written_by != __version__ and not allow_version_mismatch:
        raise FeatureMismatchError(
            f"Bundle {str(path)!r} was written by affectstream {written_by}, this is "
            f"{__version__}: feature definitions may differ. Retrain, or pass "
            f"allow_version_mismatch=True (CLI: --allow-version-mismatch) to score anyway."
        )
    _check_files(path, meta)
    features = meta.get("features")
    if (
        not isinstance(features, list)
        or not features
        or not all(isinstance(f, str) for f in features)
    ):
        raise ModelError(
            f"bundle.json in {str(path)!r} has no 'features' list of names; the bundle is "
            "incomplete. Re-copy or retrain it."
        )
    features = list(features)
    if expected_features is not None and list(expected_features) != features:
        extra = sorted(set(features) - set(expected_features))
        absent = sorted(set(expected_features) - set(features))
        raise FeatureMismatchError(
            f"Bundle {str(path)!r} features differ from the expected list: only in bundle "
            f"{extra[:8]}, only expected {absent[:8]}, or a different order. Use a bundle "
            f"trained on these features."
        )
    model_text = (path / "lightgbm.txt").read_bytes()
    # LightGBM can abort the process on a malformed file: check its structure first.
    check_model_text(model_text, str(path / "lightgbm.txt"))
    try:
        booster = lgb.Booster(model_str=model_text.decode("ascii"))
    except lgb.basic.LightGBMError as exc:
        raise ModelError(
            f"lightgbm.txt in {str(path)!r} cannot be loaded ({str(exc).splitlines()[0]}); "
            "re-copy or retrain the bundle."
        ) from None
    if booster.feature_name() != features:
        raise FeatureMismatchError(
            f"lightgbm.txt in {str(path)!r} takes {booster.num_feature()} features "
            f"({booster.feature_name()[:5]}...) but bundle.json lists {len(features)} "
            f"({features[:5]}...). The bundle's files do not belong together; retrain."
        )
    svm = _load_svm(path)
    if int(getattr(svm, "n_features_in_", len(features))) != len(features):
        raise FeatureMismatchError(
            f"svm.skops in {str(path)!r} takes {svm.n_features_in_} features but bundle.json "
            f"lists {len(features)}."
        )
    return ModelBundle(meta, booster, svm, path)
