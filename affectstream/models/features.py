"""From recordings to the labelled feature table the estimators learn from.

Features come only from :func:`affectstream.signal.extract_features`, the same batch code
path live inference uses; this module adds the bookkeeping columns (subject, session,
reference flag, labels) and picks which columns a model may see.
"""

from __future__ import annotations

import logging
import warnings
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from affectstream.errors import ModelError
from affectstream.models.datasets import TARGETS, Recording
from affectstream.signal.columns import feature_columns as feature_columns  # public here too
from affectstream.types import FloatArray

logger = logging.getLogger(__name__)

#: Bookkeeping columns added here.
META_COLUMNS = ("subject", "session", "t_end", "reference", *TARGETS)
#: Suffix of the label holding at a window's end (scored as live: every window counts).
END_SUFFIX = "_end"
#: Seconds since the participant's first sample: only the protocol-clock baseline reads it.
CLOCK_COLUMN = "session_seconds"


def mask_unusable(frame: pd.DataFrame) -> pd.DataFrame:
    """Set a modality's features to NaN in windows where ``usable_<modality>`` is False.

    Parameters
    ----------
    frame : pandas.DataFrame
        Feature table.

    Returns
    -------
    pandas.DataFrame
        A copy with unusable values masked (missing data is NaN, never zero).
    """
    out = frame.copy()
    features = feature_columns(frame)
    for column in frame.columns:
        if not (isinstance(column, str) and column.startswith("usable_")):
            continue
        modality = column.removeprefix("usable_")
        prefixes = {"rr": ("hrv_", "rr_"), "ppg": ("hrv_", "ppg_"), "ecg": ("hrv_", "ecg_")}.get(
            modality, (f"{modality}_",)
        )
        unusable = ~frame[column].fillna(False).astype(bool).to_numpy()
        cols = [c for c in features if c.startswith(prefixes)]
        # HRV may come from several streams; leave it when another source is usable.
        if "hrv_" in prefixes:
            others = [f"usable_{m}" for m in ("rr", "ppg", "ecg") if m != modality]
            others = [o for o in others if o in frame.columns]
            if others:
                any_other = frame[others].fillna(False).astype(bool).any(axis=1).to_numpy()
                hrv = [c for c in cols if c.startswith("hrv_")]
                out.loc[unusable & ~any_other, hrv] = np.nan
                cols = [c for c in cols if not c.startswith("hrv_")]
        out.loc[unusable, cols] = np.nan
    return out


def _labelled_span(
    labels: pd.DataFrame, target: str
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], float]:
    """Label times, values and the end of the labelled span (of a non-empty label table)."""
    times = labels["t"].to_numpy(dtype=np.float64)
    values = labels[target].to_numpy(dtype=np.float64)
    # A dense series ends one step after its last row; a change-point series ends at NaN.
    step = np.median(np.diff(times)) if times.size > 1 else 0.0
    return times, values, float(times[-1] + (step if step <= 5.0 else 0.0))


def window_labels(
    labels: pd.DataFrame, t_end: np.ndarray[Any, Any], window: float, target: str
) -> np.ndarray[Any, Any]:
    """Label each window by the label holding over its whole span.

    Parameters
    ----------
    labels : pandas.DataFrame
        Column ``t`` and ``target`` (see :class:`~affectstream.models.datasets.Recording`).
    t_end : ndarray
        Window end times.
    window : float
        Window length in seconds.
    target : str
        Label column.

    Returns
    -------
    ndarray of float
        1, 0, or NaN where the window straddles a change of label, lies outside the labelled
        span, or the label is unknown.
    """
    t_end = np.asarray(t_end, dtype=np.float64)
    out = np.full(t_end.shape, np.nan)
    if target not in labels.columns or labels.empty:
        return out
    times, values, last_t = _labelled_span(labels, target)
    # Collapse runs so a 1 Hz label series becomes change points.
    keep = np.r_[
        True, (values[1:] != values[:-1]) & ~(np.isnan(values[1:]) & np.isnan(values[:-1]))
    ]
    times, values = times[keep], values[keep]
    start_idx = np.searchsorted(times, t_end - window, side="right") - 1
    end_idx = np.searchsorted(times, t_end, side="left") - 1
    inside = (start_idx >= 0) & (start_idx == end_idx) & (t_end <= last_t)
    out[inside] = values[start_idx[inside]]
    return out


def window_labels_at_end(
    labels: pd.DataFrame, t_end: np.ndarray[Any, Any], target: str
) -> np.ndarray[Any, Any]:
    """Label each window by the label holding at its end, as a live session would be judged.

    Transition windows (straddling a change of label) get the label of their end, unlike
    :func:`window_labels`, which leaves them out.

    Parameters
    ----------
    labels : pandas.DataFrame
        Column ``t`` and ``target``.
    t_end : ndarray
        Window end times.
    target : str
        Label column.

    Returns
    -------
    ndarray of float
        1, 0, or NaN outside the labelled span or where the label is unknown.
    """
    t_end = np.asarray(t_end, dtype=np.float64)
    out = np.full(t_end.shape, np.nan)
    if target not in labels.columns or labels.empty:
        return out
    times, values, last_t = _labelled_span(labels, target)
    # The last label row strictly before t_end: the window's samples end just before t_end,
    # the same convention as window_labels' end index.
    idx = np.searchsorted(times, t_end, side="left") - 1
    inside = (idx >= 0) & (t_end <= last_t)
    out[inside] = values[idx[inside]]
    return out


def recording_features(
    recordings: Sequence[Recording],
    *,
    config: Any = None,
    baseline_seconds: float = 240.0,
    modalities: Sequence[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Compute windowed features for every recording and attach labels and reference flags.

    Parameters
    ----------
    recordings : sequence of Recording
        Sessions to process.
    config : affectstream.signal.WindowConfig, optional
        Windowing; default the signal layer's default.
    baseline_seconds : float
        Windows ending within this many seconds of a subject's first session start form
        the reference (rest) period used for that subject's normalisation. They are
        flagged ``reference=True`` and never scored.
    progress : callable, optional
        Called as ``progress(done, total)`` after each recording.

    Returns
    -------
    pandas.DataFrame
        Signal-layer columns plus ``subject``, ``session``, ``reference``,
        ``session_seconds`` (for the protocol-clock baseline only; never a model input), one
        column per target in :data:`~affectstream.models.datasets.TARGETS` (label over the
        whole window) and ``<target>_end`` (label at the window's end, for as-live scoring).
    """
    from affectstream.errors import SignalError
    from affectstream.signal import WindowConfig, extract_features

    config = config if config is not None else WindowConfig()
    window = float(config.window)
    subject_start: dict[str, float] = {}
    for rec in recordings:
        subject_start[rec.subject] = min(subject_start.get(rec.subject, np.inf), rec.start)
    frames = []
    for done, rec in enumerate(recordings, start=1):
        blocks = [b for b in rec.blocks if modalities is None or b.modality in modalities]
        try:
            frame = extract_features(blocks, config)
        except SignalError as exc:
            logger.warning("%s %s skipped: %s", rec.subject, rec.session, exc)
            frame = pd.DataFrame()
        if frame.empty:
            if progress:
                progress(done, len(recordings))
            continue
        frame = frame.copy()
        t_end = frame["t_end"].to_numpy(dtype=np.float64)
        frame["subject"] = rec.subject
        frame["session"] = rec.session
        frame["reference"] = t_end <= subject_start[rec.subject] + baseline_seconds
        frame[CLOCK_COLUMN] = t_end - subject_start[rec.subject]
        for target in TARGETS:
            frame[target] = window_labels(rec.labels, t_end, window, target)
            frame[target + END_SUFFIX] = window_labels_at_end(rec.labels, t_end, target)
        frames.append(frame)
        if progress:
            progress(done, len(recordings))
    if not frames:
        raise ModelError("No feature windows: the recordings are shorter than one window.")
    return mask_unusable(pd.concat(frames, ignore_index=True))


def protocol_features(
    recordings: Sequence[Recording],
    *,
    window: float,
    step: float,
    baseline_seconds: float,
    modalities: Sequence[str],
    common_rate: float | None,
    line_freq: float = 50.0,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Features of one protocol's recordings, EDA/temperature at a common rate.

    The table ``train``/``evaluate`` cache (:func:`~affectstream.models.training.build_features`):
    it lives here, beside :func:`recording_features`, so the feature cache's code fingerprint
    (:data:`~affectstream.models.feature_cache.FEATURE_CODE`) covers it.

    Parameters
    ----------
    recordings : sequence of Recording
        Sessions.
    window, step, baseline_seconds : float
        Windowing and reference period (the same on both sides).
    modalities : sequence of str
        Modalities to use.
    common_rate : float or None
        Rate for EDA and temperature
        (:func:`~affectstream.models.crossprotocol.to_common_rate`); ``None`` keeps each
        device's.
    line_freq : float
        Mains frequency (Hz) of the notch filters.
    progress : callable, optional
        ``progress(done, total)``.

    Returns
    -------
    pandas.DataFrame
    """
    from affectstream.signal import WindowConfig

    # The extractor averages EDA/temperature down (WindowConfig.common_rate), as it does live
    # for a bundle trained at this rate: one definition for training and sessions.
    return recording_features(
        recordings,
        config=WindowConfig(window=window, step=step, line_freq=line_freq, common_rate=common_rate),
        baseline_seconds=baseline_seconds,
        modalities=modalities,
        progress=progress,
    )


def context_name(feature: str, seconds: float) -> str:
    """Name of the context column of ``feature``: ``"<feature>_ctx<seconds>s"``.

    Parameters
    ----------
    feature : str
        Window feature.
    seconds : float
        Context span.

    Returns
    -------
    str
        Keeps the modality prefix, so the column counts as a feature of that family.
    """
    return f"{feature}_ctx{seconds:g}s"


class ContextMean:
    """Causal context: the mean of each feature over the windows ending in the last ``seconds``.

    A 60-s window sees one minute of physiology; stress blocks last minutes. The context
    columns add the mean of the participant's own recent windows (those ending within
    ``seconds`` before the current one, the current one included), so the model sees
    both the last minute and the last few minutes. Only past and present windows are used,
    never labels or time in session. The same recursion serves batch feature tables
    (:func:`add_context_features`) and live sessions (:meth:`observe`).

    Parameters
    ----------
    features : sequence of str
        Window features, in order.
    seconds : float
        Span; windows with ``t_end > now - seconds`` count.
    """

    def __init__(self, features: Sequence[str], seconds: float) -> None:
        if not seconds > 0:
            raise ModelError(f"Context span must be positive seconds, got {seconds!r}.")
        self.features = list(features)
        self.seconds = float(seconds)
        self.names = [context_name(f, self.seconds) for f in self.features]
        self._rows: deque[tuple[float, FloatArray]] = deque()

    def update(self, t_end: float, values: FloatArray) -> FloatArray:
        """Add one window (in time order) and return the context means including it.

        Parameters
        ----------
        t_end : float
            Window end time (s).
        values : ndarray, shape (n_features,)
            The window's features; NaN = missing, ignored in the mean.

        Returns
        -------
        ndarray, shape (n_features,)
            NaN where no window in the span has the feature.
        """
        self._rows.append((float(t_end), np.asarray(values, dtype=np.float64)))
        while self._rows and self._rows[0][0] <= t_end - self.seconds:
            self._rows.popleft()
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN column: missing
            return np.asarray(np.nanmean(np.vstack([r for _, r in self._rows]), axis=0))

    def observe(self, t_end: float, features: Mapping[str, float]) -> dict[str, float]:
        """Live form of :meth:`update`: feature mapping in, context columns out.

        Parameters
        ----------
        t_end : float
            Window end time (s).
        features : mapping
            Feature name → value (absent names count as missing).

        Returns
        -------
        dict
            Context column name → value.
        """
        values = np.array([float(features.get(f, np.nan)) for f in self.features])
        return dict(zip(self.names, self.update(t_end, values).tolist(), strict=True))


def add_context_features(
    frame: pd.DataFrame, seconds: float, features: Sequence[str] | None = None
) -> pd.DataFrame:
    """Append the :class:`ContextMean` columns to a feature table, per participant session.

    Parameters
    ----------
    frame : pandas.DataFrame
        Feature table with ``t_end`` (and ``subject`` / ``session`` when several).
    seconds : float
        Context span.
    features : sequence of str, optional
        Features to summarise; default every model feature (:func:`feature_columns`).

    Returns
    -------
    pandas.DataFrame
        A copy with one ``<feature>_ctx<seconds>s`` column per feature.
    """
    features = list(features) if features is not None else feature_columns(frame)
    values = frame[features].to_numpy(dtype=np.float64)
    times = frame["t_end"].to_numpy(dtype=np.float64)
    keys = [c for c in ("subject", "session") if c in frame.columns]
    groups = frame.groupby(keys, sort=False).indices.values() if keys else [np.arange(len(frame))]
    context = np.full_like(values, np.nan)
    for rows in groups:
        rows = np.asarray(rows)[np.argsort(times[rows], kind="stable")]
        state = ContextMean(features, seconds)
        for i in rows:
            context[i] = state.update(times[i], values[i])
    names = [context_name(f, seconds) for f in features]
    return pd.concat([frame, pd.DataFrame(context, columns=names, index=frame.index)], axis=1)
