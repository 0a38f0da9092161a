"""Live arousal/valence from feature rows: model bundles, the participant's reference, confidence.

Each feature row (one window) becomes one ``affect`` record:

- ``<target>`` (LightGBM probability of the high class), ``<target>_svm`` (the SVM's), and
  ``<target>_high`` for every loaded bundle (normally ``arousal``);
- ``<target>_confidence`` in [0, 1]: ``coverage × agreement × reference``, where
  *coverage* is the share of the bundle's features present in the window, *agreement* is
  ``1 - |p_lightgbm - p_svm|``, and *reference* is 1 once the participant's baseline is
  complete and 0.5 while the centre is still a running mean (see docs/runtime.md); 0 when
  the window is out of the bundle's training distribution (``<target>_in_distribution``
  False, :mod:`affectstream.models.coverage`): the probability is then not an estimate;
- ``<target>_top1..3``: the largest LightGBM contributions as ``"feature:+0.42"`` (log-odds);
- without a valence bundle, ``valence`` and its fields from
  :class:`affectstream.runtime.valence_live.LiveValence`: the participant's personal model
  when it is calibrated (``valence_calibrated=True`` with its measured error and interval),
  else the uncalibrated estimate (frontal alpha asymmetry relative to the baseline, or 0.5),
  smoothed either way, with its confidence spelled out in ``valence_confidence``.

Features are normalised per participant as the bundle was trained: against the mean of the
baseline windows (or a running mean until the baseline is over). A ``baseline_z`` bundle gives
no estimate (NaN, confidence 0) while fewer than :data:`MIN_REFERENCE_WINDOWS` of its windows
are in the reference, and says why in ``<target>_basis``: ``"reference filling, 1 of 2 60-s
windows"`` during the baseline, ``"reference too short (...)"`` once the baseline is over
(:func:`reference_seconds` says how long a baseline each bundle needs).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from affectstream.errors import ModelError
from affectstream.models.bundle import (
    BUNDLES_DIR,
    ModelBundle,
    load_bundle,
    resolve_bundle,
    shipped_bundles,
)
from affectstream.models.features import ContextMean
from affectstream.models.normalize import RunningStats
from affectstream.models.valence import PersonalValenceModel
from affectstream.runtime.combine import bundle_name, combine
from affectstream.runtime.multiwindow import (
    bundle_window,
    bundles_common_rate,
    own_window_length,
    trained_window,
    window_prefix,
)
from affectstream.runtime.valence_live import LiveValence, personal_valence
from affectstream.signal import WindowConfig
from affectstream.signal.columns import feature_family
from affectstream.types import FloatArray

logger = logging.getLogger(__name__)

#: Contributions kept per estimate.
TOP_CONTRIBUTIONS = 3
#: Weight of the confidence while the reference is a provisional running mean.
PROVISIONAL_REFERENCE_WEIGHT = 0.5
#: Fewest reference windows a ``baseline_z`` bundle estimates from once the baseline is over:
#: its scale is the reference windows' own standard deviation, which needs two. With fewer
#: (a baseline shorter than the bundle's window) it gives no estimate and says so, rather
#: than centring on a running mean of the task windows themselves (docs/models.md).
MIN_REFERENCE_WINDOWS = 2


def reference_seconds(bundle: ModelBundle, window: WindowConfig | None = None) -> float:
    """Seconds of data a bundle's reference needs before it can estimate.

    A ``baseline_z`` bundle needs :data:`MIN_REFERENCE_WINDOWS` windows ending inside the
    baseline: windows end on multiples of the step, so the first at the window rounded up
    to a step, then ``MIN_REFERENCE_WINDOWS - 1`` steps more; a ``baseline`` bundle one
    window; ``running`` and ``none`` bundles need no baseline.

    Parameters
    ----------
    bundle : ModelBundle
    window : WindowConfig, optional
        The windows the bundle runs on; default the ones it was trained on.

    Returns
    -------
    float
        Seconds from the first sample (add the devices' start-up lead-in for a protocol).
    """
    method = bundle.meta.get("normalization", {}).get("method", "baseline")
    reads = window if window is not None else trained_window(bundle)
    length, step = reads.window, reads.step
    if method == "baseline_z":  # windows end on multiples of the step
        return (math.ceil(length / step - 1e-9) + MIN_REFERENCE_WINDOWS - 1) * step
    return length if method == "baseline" else 0.0


def _bundle_meta(path: Path) -> dict[str, Any]:
    try:
        meta: dict[str, Any] = json.loads((path / "bundle.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"Cannot read {path / 'bundle.json'}: {exc}.") from None
    return meta


def _coverage(target: str, families: Iterable[str]) -> list[tuple[float, str]]:
    """(share of features the families give, name) of each shipped bundle for ``target``."""
    have = set(families)
    scored: list[tuple[float, str]] = []
    for name in shipped_bundles():
        meta = _bundle_meta(BUNDLES_DIR / name)
        if meta.get("target") != target:
            continue
        features = list(meta.get("features", []))
        covered = sum(feature_family(f) in have for f in features) / max(1, len(features))
        scored.append((covered, name))
    return scored


def choose_bundle(target: str, families: Iterable[str]) -> Path | None:
    """The shipped bundle for ``target`` whose features the given families cover best.

    Parameters
    ----------
    target : str
        ``"arousal"`` or ``"valence"``.
    families : iterable of str
        Feature families the session's streams give (``hrv``, ``eda``, ``eeg``...).

    Returns
    -------
    Path or None
        None when no shipped bundle for ``target`` reads any feature of these families: it
        would estimate from nothing but the reference (:func:`features_only_note`).
    """
    # max() keeps the first of equal scores, as the shipped order (sorted names) decides ties.
    best = max(_coverage(target, families), key=lambda x: x[0], default=None)
    return BUNDLES_DIR / best[1] if best is not None and best[0] > 0 else None


def demo_bundle_path() -> Path:
    """Where the demonstration bundle trained on synthetic data is cached.

    Returns
    -------
    Path
        ``$AFFECTSTREAM_HOME/bundles/demo-synthetic`` (default ``~/.affectstream/...``).
    """
    home = os.environ.get("AFFECTSTREAM_HOME")
    base = Path(home).expanduser() if home else Path.home() / ".affectstream"
    return base / "bundles" / "demo-synthetic"


def ensure_demo_bundle(path: Path | None = None) -> Path:
    """Train (once) a small arousal bundle on synthetic recordings, for demos without one.

    It uses the model layer's own training code on
    :func:`affectstream.models.synthetic.synthetic_recordings`; the result says nothing about
    real people and its model card says so.

    Parameters
    ----------
    path : Path, optional
        Bundle folder; :func:`demo_bundle_path` by default.

    Returns
    -------
    Path
        The bundle folder.
    """
    from affectstream.models.synthetic import synthetic_recordings
    from affectstream.models.training import train

    out = path if path is not None else demo_bundle_path()
    if (out / "bundle.json").is_file():
        try:
            load_bundle(out)
            return out
        except ModelError as exc:
            logger.info("retraining the demo bundle at %s: %s", out, exc)
    logger.warning("training a demonstration arousal model on synthetic data in %s", out)
    recordings = synthetic_recordings(4, duration=600.0, baseline_seconds=120.0)
    train(
        "synthetic",
        "",
        out,
        name="demo-synthetic",
        recordings=recordings,
        n_splits=2,
        command="affectstream demo (synthetic demonstration model)",
    )
    return out


#: The bundle name that means "no model: features only" (``--model none``).
NO_MODEL = "none"


def resolve_arousal_bundle(
    name_or_path: str | Path | None, families: Iterable[str], *, allow_demo: bool
) -> Path | None:
    """Pick the arousal bundle: the one named, else the best shipped one that reads any of
    the families' features (:func:`choose_bundle`), else the demo one.

    Parameters
    ----------
    name_or_path : str or Path or None
        Explicit bundle (folder or shipped name).
    families : iterable of str
        Feature families the session gives.
    allow_demo : bool
        Train the synthetic demonstration bundle when no shipped one reads these families.

    Returns
    -------
    Path or None
        None when nothing fits and the demo bundle is not allowed.
    """
    if name_or_path is not None:
        return resolve_bundle(name_or_path)
    chosen = choose_bundle("arousal", families)
    if chosen is None and allow_demo:
        chosen = ensure_demo_bundle()
    return chosen


#: A shipped bundle joins the live combination when the session's devices give at least this
#: share of its features (docs/runtime.md).
MIN_COVERAGE = 0.5


def choose_bundles(target: str, families: Iterable[str]) -> list[Path]:
    """Every shipped bundle for ``target`` whose features the families cover enough.

    Parameters
    ----------
    target : str
    families : iterable of str
        Feature families the session's devices give.

    Returns
    -------
    list of Path
        Best covered first; each covers at least :data:`MIN_COVERAGE` of its features.
    """
    found = [
        (covered, name) for covered, name in _coverage(target, families) if covered >= MIN_COVERAGE
    ]
    return [BUNDLES_DIR / name for _, name in sorted(found, key=lambda x: (-x[0], x[1]))]


def resolve_arousal_bundles(
    name_or_path: str | Path | None, families: Iterable[str], *, allow_demo: bool
) -> list[Path]:
    """The arousal bundles of a live session: the one named, else every one that fits.

    Every shipped bundle covering at least :data:`MIN_COVERAGE` of its features; if none
    does, the best covered alone, as long as the devices give at least one of its features.

    Parameters
    ----------
    name_or_path : str or Path or None
        Explicit bundle: only that one (whatever its coverage: the user chose it).
    families : iterable of str
        Feature families the session gives.
    allow_demo : bool
        Train the synthetic demonstration bundle when no shipped bundle reads any of them.

    Returns
    -------
    list of Path
        Empty when nothing fits (features only; :func:`features_only_note` says why).
    """
    families = set(families)
    if name_or_path is None:
        chosen = choose_bundles("arousal", families)
        if chosen:
            return chosen
    single = resolve_arousal_bundle(name_or_path, families, allow_demo=allow_demo)
    return [single] if single is not None else []


def features_only_note(families: Iterable[str], *, valence_calibrated: bool = False) -> str:
    """Why a session without a named model has no arousal estimates (one line, for its warnings).

    Parameters
    ----------
    families : iterable of str
        Feature families the session's devices give.
    valence_calibrated : bool
        The participant's personal valence model still gives calibrated valence
        (:meth:`LiveEstimator.for_session`); False: features and quality only.

    Returns
    -------
    str
        What the devices give, what each shipped arousal bundle reads, what the session
        stores instead, and how to run a bundle anyway.
    """
    have = sorted(set(families))
    reads = []
    for name in shipped_bundles():
        meta = _bundle_meta(BUNDLES_DIR / name)
        if meta.get("target") == "arousal":
            needs = sorted({feature_family(f) for f in meta.get("features", [])})
            reads.append(f"{name} reads {'/'.join(needs)}")
    instead = (
        "arousal is features and quality only, valence from the participant's personal calibration"
        if valence_calibrated
        else "features and quality only"
    )
    return (
        f"no arousal model: no shipped arousal bundle reads any feature these devices give "
        f"({', '.join(have) or 'none'}; {', '.join(reads) or 'none shipped'}); {instead} "
        '(name a bundle, --model or "model", to run it anyway)'
    )


@dataclass
class _Reference:
    """The participant's reference state for one bundle: the only live copy of it."""

    rows: list[FloatArray] = field(default_factory=list)
    fallback: list[FloatArray] = field(default_factory=list)
    center: FloatArray | None = None
    scale: FloatArray | None = None  # "baseline_z" bundles: the reference's own spread
    running: RunningStats | None = None  # "running" bundles: the training recursion
    context: ContextMean | None = None  # bundles with context features


class LiveEstimator:
    """Turn feature rows into affect records, one per window, in time order.

    Parameters
    ----------
    bundles : sequence of ModelBundle
        Loaded bundles (normally one arousal bundle; a valence bundle replaces the
        uncalibrated valence guess).
    baseline_end : float or None
        Host time (s) at which the participant's baseline period ends. Windows ending by
        then form the reference; later windows are normalised against their mean. None:
        ``session start + the bundle's baseline_seconds`` must be passed instead.
    top : int
        Contributions kept per estimate.
    personal_valence : PersonalValenceModel, optional
        The participant's stored valence model (:mod:`affectstream.runtime.valence_live`).
    window : float, optional
        The session's feature window (s), checked against the personal model's. Without
        it every bundle reads the rows it is given as they come.
    own_windows : bool
        Required with ``window`` (no default: :func:`~affectstream.runtime.multiwindow.
        reads_own_windows` decides it). True: bundles trained on another window length
        than ``window`` read their own windows' columns (:mod:`affectstream.runtime.
        multiwindow`); False: every bundle uses the session's windows.
    """

    def __init__(
        self,
        bundles: Sequence[ModelBundle],
        *,
        baseline_end: float | None,
        top: int = TOP_CONTRIBUTIONS,
        personal_valence: PersonalValenceModel | None = None,
        window: float | None = None,
        own_windows: bool | None = None,
    ) -> None:
        if window is not None and own_windows is None:
            raise TypeError("LiveEstimator: own_windows is required with a window")
        self.bundles = list(bundles)
        self.baseline_end = baseline_end
        self.top = int(top)
        self._references = {id(b): _Reference(context=b.new_context()) for b in self.bundles}
        self.valence = LiveValence(personal_valence, window=window)
        self.window = window if own_windows else None
        # The session's windows (bind_session): the step a "running" bundle's half-life is
        # counted in. Until then, rows are taken to be on each bundle's trained windows.
        self.session: WindowConfig | None = None
        # Bundles trained on another window read that window's columns (multiwindow.py) and
        # are re-estimated only when a new one of their windows is complete.
        self._prefix = {id(b): self._window_prefix(b) for b in self.bundles}
        self._last: dict[int, tuple[float, dict[str, Any]]] = {}
        self.n_estimates = 0

    @classmethod
    def for_session(
        cls,
        bundles: Sequence[ModelBundle],
        participant: str,
        window: float,
        *,
        own_windows: bool,
    ) -> LiveEstimator | None:
        """The estimator of a live session (``record``, ``demo``, the service's sessions).

        Parameters
        ----------
        bundles : sequence of ModelBundle
            The session's arousal bundles; none: no arousal estimates.
        participant : str
            Pseudonymous id: their stored personal valence model, if any, gives the valence
            (:func:`~affectstream.runtime.valence_live.personal_valence`).
        window : float
            The session's feature window (s).
        own_windows : bool
            As for :class:`LiveEstimator` (:func:`~affectstream.runtime.multiwindow.
            reads_own_windows`).

        Returns
        -------
        LiveEstimator or None
            Its reference period is set when the session starts (``baseline_end=None``).
            Without bundles, an estimator of valence alone when the participant's personal
            model is calibrated on this window length (:attr:`valence_calibrated`; it may
            read features no arousal bundle does, e.g. a heart-rate strap's), else None:
            features only (:func:`features_only_note`).
        """
        personal = personal_valence(participant)
        if not bundles and (personal is None or not personal.calibrated_):
            return None  # nothing to estimate (and nothing to warn about valence)
        estimator = cls(
            bundles,
            baseline_end=None,
            personal_valence=personal,
            window=window,
            own_windows=own_windows,
        )
        # A calibrated model on another window length is not applied (LiveValence says why).
        return estimator if bundles or estimator.valence_calibrated else None

    @property
    def model_id(self) -> str:
        """Model ids of the bundles, joined with ``+`` (the ``model`` tag of estimates)."""
        return "+".join(b.model_id for b in self.bundles) or "none"

    @property
    def valence_calibrated(self) -> bool:
        """Whether the participant's personal valence model gives the valence."""
        return self.valence.personal is not None

    @property
    def own_windows(self) -> bool:
        """Whether bundles trained on another length read their own windows (stored in the
        session's settings, so a replay does the same)."""
        return self.window is not None

    @property
    def has_valence_model(self) -> bool:
        """Whether a bundle estimates valence."""
        return any(b.target == "valence" for b in self.bundles)

    def _in_baseline(self, t_end: float) -> bool:
        return self.baseline_end is None or t_end <= self.baseline_end + 1e-9

    def _center(
        self, bundle: ModelBundle, values: FloatArray, t_end: float
    ) -> tuple[FloatArray, FloatArray | None, bool] | str:
        """The reference centre (and scale) for a row, and whether it is final.

        A ``baseline_z`` bundle with fewer than :data:`MIN_REFERENCE_WINDOWS` reference
        windows cannot estimate: ``"filling"`` during the baseline, ``"short"`` after it.
        """
        norm = bundle.meta.get("normalization", {})
        method = norm.get("method", "baseline")
        if method == "none":
            return np.zeros(values.shape[0]), None, True
        ref = self._references[id(bundle)]
        if method == "running":
            # The exponentially weighted mean and std the bundle was trained and evaluated with.
            if ref.running is None:
                # Counted in the windows this bundle reads here, which may step otherwise
                # than it was trained.
                step = self.reads(bundle).step
                halflife = float(norm.get("halflife", 600.0))
                ref.running = RunningStats(values.shape[0], max(1.0, halflife / step))
            center, scale = ref.running.update(values)
            return center, scale, True
        if self._in_baseline(t_end):
            ref.rows.append(values)
            if method == "baseline_z" and len(ref.rows) < MIN_REFERENCE_WINDOWS:
                # One window has no spread: its z-scores would all be 0, a constant.
                return "filling"
            return self._mean(bundle, ref.rows), self._spread(bundle, ref.rows), False
        if method == "baseline_z" and len(ref.rows) < MIN_REFERENCE_WINDOWS:
            return "short"
        if ref.center is None and ref.rows:
            ref.center = self._mean(bundle, ref.rows)  # the baseline is over: freeze it
            ref.scale = self._spread(bundle, ref.rows)
        if ref.center is not None:
            return ref.center, ref.scale, True
        # No window fell inside the baseline: a running mean, flagged provisional.
        ref.fallback.append(values)
        return self._mean(bundle, ref.fallback), self._spread(bundle, ref.fallback), False

    @staticmethod
    def _mean(bundle: ModelBundle, rows: list[FloatArray]) -> FloatArray:
        frame = pd.DataFrame(np.vstack(rows), columns=bundle.features)
        frame["reference"] = True
        return bundle.normalizer.reference_center(frame)

    def _window_prefix(self, bundle: ModelBundle) -> str:
        length = own_window_length(bundle, self.window)
        return "" if length is None else window_prefix(length)

    def reads(self, bundle: ModelBundle) -> WindowConfig:
        """The windows ``bundle`` reads: :func:`~affectstream.runtime.multiwindow.
        bundle_window` of the bound session (:meth:`bind_session`), else its trained ones.

        Parameters
        ----------
        bundle : ModelBundle

        Returns
        -------
        WindowConfig
        """
        if self.session is None:
            return trained_window(bundle)
        return bundle_window(bundle, self.session, own_windows=self.own_windows)

    def bind_session(self, session: WindowConfig) -> tuple[WindowConfig, list[WindowConfig]]:
        """Take the session's windows; the windows its extractor computes for the bundles.

        Parameters
        ----------
        session : WindowConfig
            The session's feature window.

        Returns
        -------
        primary : WindowConfig
            :meth:`primary_window` of ``session``.
        extra : list of WindowConfig
            :meth:`extra_windows` of ``session``.
        """
        self.session = session
        return self.primary_window(session), self.extra_windows(session)

    def extra_windows(self, session: WindowConfig | None = None) -> list[WindowConfig]:
        """Windows (other than the session's) that some bundle was trained on.

        Parameters
        ----------
        session : WindowConfig, optional
            The session's window: every other setting (origin, ``max_lag``, mains
            frequency...) carries over, so a replay's longer windows follow data time too.

        Returns
        -------
        list of WindowConfig
            For :class:`~affectstream.runtime.multiwindow.MultiWindowExtractor`.
        """
        base = session if session is not None else WindowConfig()
        out: dict[float, WindowConfig] = {}
        for bundle in self.bundles:
            if self._prefix[id(bundle)]:
                own = trained_window(bundle, base)
                readers = [
                    b for b in self.bundles if self._prefix[id(b)] == self._prefix[id(bundle)]
                ]
                out[own.window] = dataclasses.replace(own, common_rate=bundles_common_rate(readers))
        return list(out.values())

    def primary_window(self, window: WindowConfig) -> WindowConfig:
        """The session's window, with the common EDA rate of the bundles that read its rows.

        Parameters
        ----------
        window : WindowConfig
            The session's feature window.

        Returns
        -------
        WindowConfig
            ``window`` with ``common_rate`` set when those bundles were trained at one (and
            it was not set already): live features are computed as in training.
        """
        if window.common_rate is not None:
            return window
        readers = [b for b in self.bundles if not self._prefix[id(b)]]
        return dataclasses.replace(window, common_rate=bundles_common_rate(readers))

    @staticmethod
    def _spread(bundle: ModelBundle, rows: list[FloatArray]) -> FloatArray | None:
        """The reference's own spread for ``baseline_z`` bundles; None (training scale) else."""
        if bundle.normalizer.method != "baseline_z":
            return None
        frame = pd.DataFrame(np.vstack(rows), columns=bundle.features)
        frame["reference"] = True
        return bundle.normalizer.reference_scale(frame)

    def estimate(self, rows: pd.DataFrame) -> list[dict[str, Any]]:
        """One affect record per feature row.

        Parameters
        ----------
        rows : pandas.DataFrame
            Rows from :class:`affectstream.signal.StreamingExtractor` (``t_end`` plus
            features), in time order.

        Returns
        -------
        list of dict
            ``t_end`` plus the fields described in the module docstring.
        """
        records = []
        for _, row in rows.iterrows():
            t_end = float(row["t_end"])
            record: dict[str, Any] = {"t_end": t_end}
            by_target: dict[str, list[tuple[ModelBundle, dict[str, Any]]]] = {}
            for bundle in self.bundles:
                fields = self._fields_for(bundle, row, t_end)
                by_target.setdefault(bundle.target, []).append((bundle, fields))
            for target, results in by_target.items():
                if len(results) == 1:
                    record.update(results[0][1])
                else:
                    record.update(combine(target, results, self.top))
            if not self.has_valence_model:
                record.update(self.valence.fields(row, t_end, self.baseline_end))
            records.append(record)
            self.n_estimates += 1
        return records

    def _fields_for(self, bundle: ModelBundle, row: pd.Series, t_end: float) -> dict[str, Any]:
        """A bundle's fields for this row: on its own window's latest row when that differs."""
        prefix = self._prefix[id(bundle)]
        if not prefix:
            return self._bundle_fields(bundle, row, t_end)
        source = row.get(prefix + "t_end")
        if source is None or not np.isfinite(source):
            # Its first window is not complete yet: a baseline_z bundle's reference is filling,
            # any other bundle has no window yet.
            waiting = bundle.normalizer.method == "baseline_z" and self._in_baseline(t_end)
            return self._no_estimate(bundle, 0.0, "filling" if waiting else "no window")
        cached = self._last.get(id(bundle))
        if cached is not None and cached[0] == float(source):
            return cached[1]
        fields = self._bundle_fields(bundle, row, float(source), prefix)
        self._last[id(bundle)] = (float(source), fields)
        return fields

    def _bundle_fields(
        self, bundle: ModelBundle, row: pd.Series, t_end: float, prefix: str = ""
    ) -> dict[str, Any]:
        features = {
            f: float(row[prefix + f]) if prefix + f in row.index else math.nan
            for f in bundle.features
        }
        context = self._references[id(bundle)].context
        if context is not None:
            features.update(context.observe(t_end, features))
        values = np.array([features[f] for f in bundle.features], dtype=np.float64)
        coverage = float(np.isfinite(values).mean()) if values.size else 0.0
        reference = self._center(bundle, values, t_end)
        if isinstance(reference, str):
            return self._no_estimate(bundle, coverage, reference)
        center, scale, final = reference
        estimate = bundle.estimate(features, center, scale, top=self.top)
        agreement = 1.0 - abs(estimate.probability - estimate.probability_svm)
        confidence = coverage * agreement * (1.0 if final else PROVISIONAL_REFERENCE_WEIGHT)
        confidence *= float(estimate.in_distribution)
        target = bundle.target
        fields: dict[str, Any] = {
            target: estimate.probability,
            f"{target}_svm": estimate.probability_svm,
            f"{target}_high": estimate.high,
            f"{target}_confidence": confidence,
            f"{target}_coverage": coverage,
            f"{target}_in_distribution": estimate.in_distribution,
            f"{target}_input_in_range": estimate.input_in_range,
            f"{target}_calibrated": estimate.calibrated,
            f"{target}_reference_final": final,
        }
        for k in range(self.top):
            text = None
            if k < len(estimate.contributions):
                c = estimate.contributions[k]
                if np.isfinite(c.contribution):
                    text = f"{c.feature}:{c.contribution:+.3f}"
            fields[f"{target}_top{k + 1}"] = text
        return fields

    def _no_estimate(self, bundle: ModelBundle, coverage: float, why: str) -> dict[str, Any]:
        """Fields of a bundle that cannot estimate: ``"no window"`` of its own yet, or its
        reference is ``"filling"`` or ``"short"`` (< :data:`MIN_REFERENCE_WINDOWS` windows)."""
        target = bundle.target
        n = len(self._references[id(bundle)].rows)
        name = bundle_name(bundle)
        own = self._prefix[id(bundle)]
        length = f"{float(bundle.meta['window']['window']):g}-s " if own else ""
        if why == "no window":
            basis = f"{name}: no {length}window yet"
        elif why == "filling":
            basis = f"{name}: reference filling, {n} of {MIN_REFERENCE_WINDOWS} {length}windows"
        else:
            basis = (
                f"{name}: reference too short ({n} of its {length}windows ended inside the "
                f"baseline; it needs {MIN_REFERENCE_WINDOWS} to measure the wearer's own spread)"
            )
        fields: dict[str, Any] = {
            target: math.nan,
            f"{target}_svm": math.nan,
            f"{target}_confidence": 0.0,
            f"{target}_coverage": coverage,
            f"{target}_calibrated": False,
            f"{target}_reference_final": False,
            f"{target}_basis": basis,
        }
        for k in range(self.top):
            fields[f"{target}_top{k + 1}"] = None
        return fields
