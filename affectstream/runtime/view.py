"""Live view of a session on stderr: per-stream rates, signal quality, arousal and valence.

On a terminal it is a :class:`rich.live.Live` table refreshed a few times a second; when
stderr is not a terminal (CI, a pipe) it prints one line every few seconds instead.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from affectstream.runtime.session import LiveSnapshot

logger = logging.getLogger(__name__)


def _pct(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{float(value):.2f}"


def estimate_text(estimate: dict[str, Any] | None) -> str:
    """One line with arousal and valence and their confidence.

    Parameters
    ----------
    estimate : dict or None
        An affect record.

    Returns
    -------
    str
    """
    if estimate is None:
        return "arousal -  valence -  (waiting for the first full window)"
    parts = []
    if "arousal" in estimate:
        confidence = _pct(estimate.get("arousal_confidence"))
        provisional = "" if estimate.get("arousal_reference_final", True) else ", baseline so far"
        parts.append(f"arousal {_pct(estimate['arousal'])} (confidence {confidence}{provisional})")
        if estimate.get("arousal_basis"):
            # Which models estimated, and why the others did not (runtime/combine.py).
            parts.append(f"models: {estimate['arousal_basis']}")
    if "valence" in estimate:
        calibrated = estimate.get("valence_calibrated")
        basis = estimate.get("valence_basis") or ""
        note = "calibrated" if calibrated else f"uncalibrated, {basis or 'prior'}"
        parts.append(f"valence {_pct(estimate['valence'])} ({note})")
    top = estimate.get("arousal_top1")
    if top:
        parts.append(f"top: {top}")
    return "  ".join(parts)


def render(snapshot: LiveSnapshot, title: str = "affectstream") -> Group:
    """The view of one snapshot as rich renderables.

    Parameters
    ----------
    snapshot : LiveSnapshot
        Session state.
    title : str
        Heading.

    Returns
    -------
    rich.console.Group
    """
    planned = f"/{snapshot.duration:g}" if snapshot.duration else ""
    table = Table(
        title=f"{title}  session {snapshot.session}  {snapshot.elapsed:5.1f}{planned} s",
        title_justify="left",
    )
    for column in ("stream", "rate/s", "received", "gap samples", "stored", "waiting", "features"):
        table.add_column(column, justify="left" if column == "stream" else "right")
    for stream in snapshot.streams:
        table.add_row(
            stream.stream,
            f"{stream.rate:.1f}",
            str(stream.delivered),
            str(stream.gap_samples),
            str(stream.stored),
            str(stream.pending),
            "yes" if stream.features else "-",
        )
    lines = []
    if snapshot.phase is not None:
        instruction = f": {snapshot.phase.instruction}" if snapshot.phase.instruction else ""
        lines.append(Text(f"phase {snapshot.phase.name}{instruction}", style="bold"))
    if snapshot.devices:
        devices = "  ".join(
            f"{d.device} {d.state}" + (f" ({d.reconnects} reconnects)" if d.reconnects else "")
            for d in snapshot.devices
        )
        lines.append(Text(f"devices  {devices}"))
    quality = "  ".join(f"{k} {v:.2f}" for k, v in sorted(snapshot.quality.items()))
    lines.append(Text(f"signal quality  {quality or '-'}"))
    lines.append(Text(estimate_text(snapshot.estimate)))
    window = snapshot.window
    reference = f"; {snapshot.reference}" if snapshot.reference else ""
    lines.append(
        Text(
            f"windows {window.window:g} s every {window.step:g} s; model {snapshot.model}; "
            f"{snapshot.n_estimates} estimates{reference}",
            style="dim",
        )
    )
    if not snapshot.store_ok:
        lines.append(
            Text(
                f"store unavailable, {snapshot.backlog_samples} samples waiting: "
                f"{snapshot.store_message}",
                style="red",
            )
        )
    return Group(table, *lines)


def snapshot_line(snapshot: LiveSnapshot) -> str:
    """The snapshot as one plain line (for logs and non-terminal stderr).

    Parameters
    ----------
    snapshot : LiveSnapshot
        Session state.

    Returns
    -------
    str
    """
    rates = "; ".join(
        f"{s.stream.rsplit('/', 1)[-1]} {s.rate:.0f}/s gap {s.gap_samples}"
        for s in snapshot.streams
    )
    store = "" if snapshot.store_ok else f" [store down, {snapshot.backlog_samples} waiting]"
    phase = f" {snapshot.phase.name}" if snapshot.phase is not None else ""
    if not phase and snapshot.reference_s is not None and snapshot.elapsed < snapshot.reference_s:
        # No protocol: say the wearer's reference is still being taken (docs/runtime.md).
        phase = f" reference until {round(snapshot.reference_s, 1):g}s"
    return f"[{snapshot.elapsed:5.1f}s{phase}] {rates} | {estimate_text(snapshot.estimate)}{store}"


class LiveView:
    """Show snapshots on stderr; use as a context manager around the session.

    Parameters
    ----------
    title : str
        Heading.
    console : rich.console.Console, optional
        Defaults to a console on stderr.
    line_interval : float
        Seconds between lines when stderr is not a terminal.
    enabled : bool
        False shows nothing (``--json`` runs can keep the view; tests turn it off).
    """

    def __init__(
        self,
        title: str = "affectstream",
        *,
        console: Console | None = None,
        line_interval: float = 5.0,
        enabled: bool = True,
    ) -> None:
        self.title = title
        self.console = console if console is not None else Console(stderr=True)
        self.line_interval = line_interval
        self.enabled = enabled
        self._live: Live | None = None
        self._next_line = 0.0
        self.last: LiveSnapshot | None = None

    def __enter__(self) -> LiveView:
        if self.enabled and self.console.is_terminal:
            self._live = Live(console=self.console, refresh_per_second=4, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            if self.last is not None:
                self._live.update(render(self.last, self.title))
            self._live.__exit__(None, None, None)
            self._live = None

    def update(self, snapshot: LiveSnapshot) -> None:
        """Show one snapshot.

        Parameters
        ----------
        snapshot : LiveSnapshot
            Session state.
        """
        self.last = snapshot
        if not self.enabled:
            return
        if self._live is not None:
            self._live.update(render(snapshot, self.title))
            return
        now = time.monotonic()
        if now >= self._next_line:
            self.console.print(snapshot_line(snapshot), highlight=False, soft_wrap=True)
            self._next_line = now + self.line_interval
