"""Scores of out-of-fold probabilities: metrics, calibration bins and the report plot."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import (
    balanced_accuracy_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    roc_auc_score,
)

logger = logging.getLogger(__name__)


def scored_mask(frame: pd.DataFrame, target: str) -> np.ndarray[Any, Any]:
    """Windows that count in metrics: labelled and outside the reference period.

    Parameters
    ----------
    frame : pandas.DataFrame
        Feature table.
    target : str
        Label column.

    Returns
    -------
    ndarray of bool
    """
    y = frame[target].to_numpy(dtype=np.float64)
    return np.asarray(np.isfinite(y) & ~frame["reference"].to_numpy(dtype=bool))


def scored_subjects(frame: pd.DataFrame, target: str) -> list[str]:
    """Participants with at least one window that counts (:func:`scored_mask`), sorted.

    Parameters
    ----------
    frame : pandas.DataFrame
        Feature table with a ``subject`` column.
    target : str
        Label column.

    Returns
    -------
    list of str
    """
    return sorted(map(str, pd.unique(frame.loc[scored_mask(frame, target), "subject"])))


def reliability_bins(
    y: np.ndarray[Any, Any], p: np.ndarray[Any, Any], n_bins: int = 10
) -> list[dict[str, float]]:
    """Calibration table: mean predicted probability vs observed frequency per bin.

    Parameters
    ----------
    y : ndarray of int
        True labels.
    p : ndarray of float
        Predicted probabilities of the high class.
    n_bins : int
        Equal-width bins over [0, 1].

    Returns
    -------
    list of dict
        ``lower``, ``upper``, ``count``, ``mean_predicted``, ``observed`` (empty bins
        included with NaN means).
    """
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, n_bins - 1)
    out = []
    for b in range(n_bins):
        sel = which == b
        out.append(
            {
                "lower": float(edges[b]),
                "upper": float(edges[b + 1]),
                "count": int(sel.sum()),
                "mean_predicted": float(p[sel].mean()) if sel.any() else float("nan"),
                "observed": float(y[sel].mean()) if sel.any() else float("nan"),
            }
        )
    return out


def metrics(
    y: np.ndarray[Any, Any],
    p: np.ndarray[Any, Any],
    threshold: float | np.ndarray[Any, Any],
    subjects: np.ndarray[Any, Any],
) -> dict[str, Any]:
    """Classification, ranking and calibration metrics, pooled and per subject.

    Parameters
    ----------
    y : ndarray of int
        True labels (0/1).
    p : ndarray of float
        Probability of class 1.
    threshold : float or ndarray
        Decision threshold (per row allowed: each fold has its own).
    subjects : ndarray
        Subject of each row.

    Returns
    -------
    dict
        ``balanced_accuracy``, ``macro_f1``, ``auroc``, ``brier``, ``confusion_matrix``
        (rows true 0/1, columns predicted 0/1), ``calibration`` bins, ``per_subject``
        and ``spread`` (mean, std, min, max of per-subject balanced accuracy).
    """
    y = np.asarray(y, dtype=int)
    pred = (p >= threshold).astype(int)
    both = np.unique(y).size == 2
    per_subject: dict[str, dict[str, float | int]] = {}
    for s in pd.unique(subjects):
        sel = subjects == s
        ys, ps = y[sel], p[sel]
        per_subject[str(s)] = {
            "n_windows": int(sel.sum()),
            "balanced_accuracy": float(balanced_accuracy_score(ys, pred[sel]))
            if np.unique(ys).size == 2
            else float("nan"),
            "auroc": float(roc_auc_score(ys, ps)) if np.unique(ys).size == 2 else float("nan"),
        }
    bal = np.array([v["balanced_accuracy"] for v in per_subject.values()], dtype=float)
    bal = bal[np.isfinite(bal)]
    return {
        "balanced_accuracy": float(balanced_accuracy_score(y, pred)),
        "macro_f1": float(f1_score(y, pred, average="macro")),
        "auroc": float(roc_auc_score(y, p)) if both else float("nan"),
        "brier": float(brier_score_loss(y, p)),
        "confusion_matrix": confusion_matrix(y, pred, labels=[0, 1]).tolist(),
        "calibration": reliability_bins(y, p),
        "per_subject": per_subject,
        "spread": {
            "mean": float(bal.mean()) if bal.size else float("nan"),
            "std": float(bal.std()) if bal.size else float("nan"),
            "min": float(bal.min()) if bal.size else float("nan"),
            "max": float(bal.max()) if bal.size else float("nan"),
        },
        "n_subjects": len(per_subject),
        "n_windows": int(y.size),
        "prevalence": float(y.mean()),
    }


def plot_report(results: dict[str, dict[str, Any]], path: Path, title: str) -> Path:
    """Write a PNG: per-subject balanced accuracy, reliability diagram, confusion matrices.

    Parameters
    ----------
    results : dict
        Model name → :func:`metrics` output.
    path : path
        PNG to write.
    title : str
        Figure title.

    Returns
    -------
    Path
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(results)
    fig, axes = plt.subplots(n, 3, figsize=(15, 4 * n), squeeze=False)
    for row, (name, res) in enumerate(results.items()):
        subjects = list(res["per_subject"])
        values = [res["per_subject"][s]["balanced_accuracy"] for s in subjects]
        ax = axes[row, 0]
        ax.bar(range(len(subjects)), values, color="tab:blue")
        ax.axhline(0.5, color="grey", linestyle=":", label="chance")
        ax.axhline(res["balanced_accuracy"], color="tab:red", label="pooled")
        ax.set_xticks(range(len(subjects)), subjects, rotation=90, fontsize=7)
        ax.set_ylim(0, 1)
        ax.set_title(f"{name}: balanced accuracy per held-out subject")
        ax.legend(fontsize=7)
        ax = axes[row, 1]
        bins = [b for b in res["calibration"] if b["count"]]
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
        ax.plot([b["mean_predicted"] for b in bins], [b["observed"] for b in bins], "o-")
        ax.set_xlabel("mean predicted probability")
        ax.set_ylabel("observed frequency")
        ax.set_title(f"{name}: reliability (Brier {res['brier']:.3f})")
        ax = axes[row, 2]
        cm = np.asarray(res["confusion_matrix"])
        ax.imshow(cm, cmap="Blues")
        for (i, j), v in np.ndenumerate(cm):
            colour = "white" if v > cm.max() / 2 else "black"  # readable on dark cells
            ax.text(j, i, str(v), ha="center", va="center", color=colour)
        ax.set_xticks([0, 1], ["low", "high"])
        ax.set_yticks([0, 1], ["low", "high"])
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{name}: confusion matrix")
    fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
