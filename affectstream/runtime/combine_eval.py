"""How accurate the live multi-bundle combination is, scored as live on labelled sessions.

Each labelled recording is replayed through :func:`~affectstream.runtime.replay.replay_blocks`
(the runtime's own path: every shipped bundle that fits, each on its own window, combined by
:mod:`affectstream.runtime.combine`), once with every modality and once per left-out
family (wrist only, EEG only). Every estimate is scored against the label at its window's
end (as live). The result names, per setting, the combined estimate and each bundle alone:
AUROC, balanced accuracy at 0.5 (the ``arousal_high`` cut) and how many windows each had.

The only sessions here with wrist, cardiac and EEG streams and labels are synthetic
(:func:`~affectstream.models.synthetic.synthetic_labelled_recording`, whose arousal effect
is the same across modalities by construction), so the numbers measure the mechanism, not
accuracy on people.

Run: ``python -m affectstream.runtime.combine_eval --subjects 4 --json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

from affectstream.models.recording import Recording
from affectstream.models.synthetic import synthetic_recordings
from affectstream.runtime.replay import ReplayStore, replay_blocks, session_rows

logger = logging.getLogger(__name__)

#: Settings scored: name → modalities kept.
SETTINGS: dict[str, tuple[str, ...]] = {
    "all modalities": ("rr", "eda", "temp", "acc", "eeg"),
    "wrist + cardiac only": ("rr", "eda", "temp", "acc"),
    "EEG only": ("eeg",),
}


def _label_at(recording: Recording, t_end: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """The recording's arousal label at each window end (NaN outside the labels)."""
    labels = recording.labels.sort_values("t")
    idx = np.searchsorted(labels["t"].to_numpy(), t_end, side="right") - 1
    y = labels["arousal"].to_numpy(dtype=np.float64)
    return np.where(idx >= 0, y[np.clip(idx, 0, len(y) - 1)], np.nan)


def _score(y: np.ndarray[Any, Any], p: np.ndarray[Any, Any]) -> dict[str, Any]:
    ok = np.isfinite(y) & np.isfinite(p)
    y, p = y[ok].astype(int), p[ok]
    if np.unique(y).size < 2:
        return {"n_windows": int(y.size), "auroc": None, "balanced_accuracy": None}
    return {
        "n_windows": int(y.size),
        "auroc": float(roc_auc_score(y, p)),
        "balanced_accuracy": float(balanced_accuracy_score(y, (p >= 0.5).astype(int))),
    }


def session_scores(recordings: Sequence[Recording], modalities: Sequence[str]) -> dict[str, Any]:
    """Replay ``recordings`` keeping ``modalities``; score each arousal column as live.

    Parameters
    ----------
    recordings : sequence of Recording
        Labelled sessions (``arousal`` labels; the first 240 s are the reference).
    modalities : sequence of str
        Streams kept.

    Returns
    -------
    dict
        ``model`` (the bundles the runtime used) and, per arousal column (``arousal`` =
        combined, ``arousal_by_<bundle>``), :func:`_score` over every session's windows
        after the reference period.
    """
    ys: list[np.ndarray[Any, Any]] = []
    columns: dict[str, list[np.ndarray[Any, Any]]] = {}
    model = ""
    for rec in recordings:
        blocks = [b for b in rec.blocks if b.modality in modalities]
        with ReplayStore(None, save=False) as store:
            summary = replay_blocks(blocks, store, participant=rec.subject)
            rows = session_rows(store, str(summary["session"]))
        model = str(summary.get("model", ""))
        if "arousal" not in rows.columns:
            continue
        start = min(float(b.t[0]) for b in blocks)
        rows = rows[rows["t_end"].to_numpy() > start + 240.0]
        ys.append(_label_at(rec, rows["t_end"].to_numpy()))
        for col in rows.columns:
            by_bundle = col.startswith("arousal_by_") and not col.endswith(
                ("_confidence", "_coverage")
            )
            if col == "arousal" or by_bundle:
                columns.setdefault(col, [])
        for col in columns:
            values = rows[col] if col in rows.columns else pd.Series(np.nan, index=rows.index)
            columns[col].append(pd.to_numeric(values, errors="coerce").to_numpy(np.float64))
    out: dict[str, Any] = {"model": model}
    if not ys:
        return out
    y = np.concatenate(ys)
    for col, parts in columns.items():
        if len(parts) == len(ys):
            out[col] = _score(y, np.concatenate(parts))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: score the combination on synthetic multi-modality sessions."""
    parser = argparse.ArgumentParser(prog="python -m affectstream.runtime.combine_eval")
    parser.add_argument("--subjects", type=int, default=4, help="synthetic sessions")
    parser.add_argument("--duration", type=float, default=900.0, help="seconds per session")
    parser.add_argument("--seed", type=int, default=70)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    recordings = synthetic_recordings(
        args.subjects, seed=args.seed, duration=args.duration, eeg_rate=256.0
    )
    result = {
        "sessions": args.subjects,
        "duration_s": args.duration,
        "data": "synthetic (affectstream.models.synthetic), arousal effect in every modality",
        **{name: session_scores(recordings, mods) for name, mods in SETTINGS.items()},
    }
    text = json.dumps(result, indent=2)
    if args.out:
        Path(args.out).write_text(text)
    if args.json:
        sys.stdout.write(text + "\n")
    else:
        for name in SETTINGS:
            for col, res in result[name].items():
                if isinstance(res, dict):
                    sys.stdout.write(f"{name:22s} {col:32s} {res}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
