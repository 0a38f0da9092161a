"""Features on several window lengths at once, so each model sees the windows it was trained on.

The live session has one feature row per step of its *primary* window (the shortest model
window). A model trained on longer windows (``stress-wrist``: 60 s, next to ``eeg-workload``:
10 s) gets its own :class:`~affectstream.signal.StreamingExtractor`; every primary row then
carries the latest completed row of each longer window **that ended no later than it**
(causal), as columns ``w<W>s__<column>`` plus ``w<W>s__t_end``. Those prefixed columns are
not feature columns (:func:`affectstream.signal.columns.feature_columns`), so the stored
``features`` table stays the primary window's.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING

import pandas as pd

from affectstream.errors import ConfigError
from affectstream.signal import StreamingExtractor, WindowConfig
from affectstream.signal.columns import feature_families
from affectstream.signal.rate import COMMON_RATE_MODALITIES
from affectstream.types import SampleBlock

if TYPE_CHECKING:
    from affectstream.models.bundle import ModelBundle

logger = logging.getLogger(__name__)


def bundles_common_rate(bundles: Sequence[ModelBundle]) -> float | None:
    """The rate EDA and temperature are averaged to for features that ``bundles`` read.

    Parameters
    ----------
    bundles : sequence of ModelBundle
        Bundles reading one extractor's rows.

    Returns
    -------
    float or None
        Their :attr:`~affectstream.models.bundle.ModelBundle.common_rate` (bundles without
        one accept it when they read no EDA or temperature feature); None when none has one.

    Raises
    ------
    ConfigError
        When two of them were trained at different rates, or one trained at each device's
        own rate reads EDA/temperature features beside one with a common rate: one
        extractor cannot give both.
    """
    rates = [(b.model_id, b.common_rate) for b in bundles if b.common_rate is not None]
    own_rate = [
        b.model_id
        for b in bundles
        if b.common_rate is None and feature_families(b.features) & set(COMMON_RATE_MODALITIES)
    ]
    if len({rate for _, rate in rates}) > 1 or (rates and own_rate):
        listed = ", ".join(
            [f"{name} at {rate:g} Hz" for name, rate in rates]
            + [f"{name} at each device's own rate" for name in own_rate]
        )
        raise ConfigError(
            f"These models were trained on EDA at different rates ({listed}) and read the "
            "same feature windows; give them different --window settings or run them in "
            "separate sessions."
        )
    return rates[0][1] if rates else None


def window_prefix(window: float) -> str:
    """Column prefix of a longer window's features (``w60s__``).

    Parameters
    ----------
    window : float
        Window length (s).

    Returns
    -------
    str
    """
    return f"w{window:g}s__"


def own_window_length(bundle: ModelBundle, session: float | None) -> float | None:
    """The length of a bundle's own windows when it reads them instead of the session's.

    Parameters
    ----------
    bundle : ModelBundle
    session : float or None
        The session's window length (s); None when every bundle reads the session's windows.

    Returns
    -------
    float or None
        The bundle's trained window length when it differs from ``session``; None when it
        reads the session's windows (at the session's step).
    """
    trained = bundle.meta.get("window", {}).get("window")
    if session is None or trained is None or abs(float(trained) - session) < 1e-9:
        return None
    return float(trained)


def reads_own_windows(asked: WindowConfig | float | None) -> bool:
    """Whether each model of a session reads the windows it was trained on (the one rule).

    Unless the session's windows were asked for (``--window``, ``record(window=...)``,
    ``Session(window=...)``), every model reads its own trained windows beside the
    session's (the shortest model's); asked for, every model runs on them (illustrative
    for a model trained on another length, as the demo warns). A session stores the
    outcome (``own_windows`` in :meth:`~affectstream.runtime.session.LiveSession.settings`)
    and a replay of it reads that (:func:`~affectstream.runtime.replay_source.
    replay_own_windows`).

    Parameters
    ----------
    asked : WindowConfig or float or None
        The window asked for explicitly; None when none was.

    Returns
    -------
    bool
    """
    return asked is None


def bundle_window(bundle: ModelBundle, session: WindowConfig, *, own_windows: bool) -> WindowConfig:
    """The windows a bundle reads in a session: the session's, or its own as trained.

    A bundle trained on another length than the session's reads its own windows at its
    trained step (when the session gives each model its own, ``own_windows``); a bundle
    trained on the session's length reads the session's rows, at the session's step.

    Parameters
    ----------
    bundle : ModelBundle
    session : WindowConfig
        The session's windows; their other settings (origin, mains frequency...) carry over.
    own_windows : bool
        True: each bundle trained on another length reads its own windows; False: every
        bundle reads the session's (:func:`reads_own_windows`).

    Returns
    -------
    WindowConfig
    """
    if own_window_length(bundle, session.window if own_windows else None) is None:
        return session
    return trained_window(bundle, session)


def trained_window(bundle: ModelBundle, session: WindowConfig | None = None) -> WindowConfig:
    """The window length and step a bundle was trained on, on a session's other settings.

    The one definition of a bundle's trained windows: a bundle whose ``bundle.json`` names
    no length or step (written before it did) gets :class:`~affectstream.signal.
    WindowConfig`'s defaults.

    Parameters
    ----------
    bundle : ModelBundle
    session : WindowConfig, optional
        Origin, mains frequency and the other settings carry over; default the bundle's own
        (its trained mains frequency, the rest :class:`~affectstream.signal.WindowConfig`'s).

    Returns
    -------
    WindowConfig
    """
    trained = bundle.meta.get("window", {})
    default = WindowConfig()
    if session is None:
        line_freq = trained.get("line_freq")
        session = default if line_freq is None else WindowConfig(line_freq=float(line_freq))
    return dataclasses.replace(
        session,
        window=float(trained.get("window", default.window)),
        step=float(trained.get("step", default.step)),
    )


class MultiWindowExtractor:
    """A primary extractor plus one per longer window, with the same interface the session uses.

    Parameters
    ----------
    primary : WindowConfig
        The session's windows (rows come at its step).
    extra : sequence of WindowConfig
        Longer windows some model needs.
    """

    def __init__(self, primary: WindowConfig, extra: Sequence[WindowConfig]) -> None:
        self.primary = StreamingExtractor(primary)
        self.extras = {window_prefix(c.window): StreamingExtractor(c) for c in extra}
        # Each longer window's rows not yet passed by a primary row. Not a fixed number: a
        # replay pushes minutes per call, and a longer window can then run that far ahead
        # of the primary one (a 64-row cap dropped stress-wrist's first five minutes).
        self._rows: dict[str, deque[dict[str, object]]] = {p: deque() for p in self.extras}

    @property
    def config(self) -> WindowConfig:
        """The primary window."""
        return self.primary.config

    @property
    def columns(self) -> list[str]:
        """Primary columns, then each longer window's, prefixed."""
        out = list(self.primary.columns)
        for prefix, extractor in self.extras.items():
            out += [prefix + c for c in extractor.columns]
        return out

    def register(self, block: SampleBlock) -> None:
        """Declare a stream before its data (every extractor)."""
        self.primary.register(block)
        for extractor in self.extras.values():
            extractor.register(block)

    def announce(self, block: SampleBlock) -> None:
        """Say that ``block`` is about to be pushed (every extractor)."""
        self.primary.announce(block)
        for extractor in self.extras.values():
            extractor.announce(block)

    def _attach(self, rows: list[dict[str, object]]) -> list[dict[str, object]]:
        for row in rows:
            t_end = float(row["t_end"])  # type: ignore[arg-type]
            for prefix, extractor in self.extras.items():
                kept = self._rows[prefix]
                # Primary rows come in time order: a longer row older than the latest one
                # that ended by now is never the latest for a later primary row.
                while len(kept) > 1 and _t_end(kept[1]) <= t_end + 1e-9:
                    kept.popleft()
                latest = kept[0] if kept and _t_end(kept[0]) <= t_end + 1e-9 else {}
                for column in extractor.columns:
                    row[prefix + column] = latest.get(column, float("nan"))
        return rows

    def push_rows(self, block: SampleBlock) -> list[dict[str, object]]:
        """Push ``block`` to every extractor; the primary rows it completed, with the rest.

        Parameters
        ----------
        block : SampleBlock

        Returns
        -------
        list of dict
        """
        for prefix, extractor in self.extras.items():
            self._rows[prefix].extend(extractor.push_rows(block))
        return self._attach(self.primary.push_rows(block))

    def expect(
        self, stream: str, t_next: float, index: int | None = None
    ) -> list[dict[str, object]]:
        """Say when ``stream``'s next sample is (every extractor; see
        :meth:`~affectstream.signal.StreamingExtractor.expect`); the primary rows completed.

        Parameters
        ----------
        stream : str
        t_next : float
        index : int, optional

        Returns
        -------
        list of dict
        """
        for prefix, extractor in self.extras.items():
            self._rows[prefix].extend(extractor.expect(stream, t_next, index))
        return self._attach(self.primary.expect(stream, t_next, index))

    def flush(self) -> pd.DataFrame:
        """End of the recording: the remaining primary rows, with the longer windows'.

        Returns
        -------
        pandas.DataFrame
        """
        for prefix, extractor in self.extras.items():
            last = extractor.flush()
            self._rows[prefix].extend(_records(last))
        rows = _records(self.primary.flush())
        return pd.DataFrame(self._attach(rows), columns=self.columns)


def _t_end(row: dict[str, object]) -> float:
    return float(row["t_end"])  # type: ignore[arg-type]


def _records(frame: pd.DataFrame) -> list[dict[str, object]]:
    return [{str(k): v for k, v in r.items()} for r in frame.to_dict("records")]


def session_window(
    bundles: Sequence[ModelBundle],
    window: WindowConfig | None = None,
    line_freq: float | None = None,
) -> WindowConfig:
    """The session's primary feature window: the shortest bundle window, as it was trained.

    ``record`` and ``replay`` both use this, so a replay runs the same bundles on the same
    windows as the live session it reproduces; longer bundle windows get their own
    extractor (:class:`MultiWindowExtractor`).

    Parameters
    ----------
    bundles : sequence of ModelBundle
        The session's bundles (may be empty: the runtime's default window).
    window : WindowConfig, optional
        Asked for explicitly; kept.
    line_freq : float, optional
        Mains frequency; default the first bundle's that names one.

    Returns
    -------
    WindowConfig
    """
    if bundles:
        if window is None:
            shortest = min((trained_window(b) for b in bundles), key=lambda w: w.window)
            window = WindowConfig(window=shortest.window, step=shortest.step)
        freqs = [b.meta.get("window", {}).get("line_freq") for b in bundles]
        if line_freq is None and any(freqs):
            line_freq = float(next(f for f in freqs if f))
    window = window or WindowConfig()
    if line_freq is not None:
        window = dataclasses.replace(window, line_freq=float(line_freq))
    return window
