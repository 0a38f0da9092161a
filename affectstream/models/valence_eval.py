"""Evaluate the personal valence method on datasets with self-reports per episode.

For every participant of a dataset, the episodes are its rated conditions (WESAD: the
questionnaire's SAM valence and arousal per condition; the synthetic generator: its blocks,
whose binary valence/arousal knobs are given the ratings 7 (high) and 3 (low)). Each person
gets the calibration that :class:`~affectstream.models.valence.PersonalValenceModel` would
give them, scored leave one episode out against their own mean rating, plus:

- ``protocol_ok``: whether the episodes meet the calibration rules (two per side of the
  midpoint, one unpleasant and calm); people whose protocol does not are also scored without
  the rule (``diagnostic``), to show what such a calibration would claim;
- a **chance check**: the same fit with the ratings shuffled across each person's episodes
  (``shuffles`` per person, five by default); the share of shuffled fits that still pass as
  calibrated is the method's false-calibration rate on that data.

Both verdicts are reported, so one run measures what the permutation test changed:
``n_calibrated`` / ``false_calibration_rate`` under the current rule (interval *and*
permutation test, :func:`~affectstream.models.valence.calibration_verdict`) and
``..._interval_only`` under the former rule (the 95 % interval of the error difference below
zero). A shuffle can hand every episode its own rating back (1 in 70 orders of 8 binary
ratings); the ``..._changed`` rates leave those out.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from affectstream.errors import ModelError
from affectstream.models.datasets import Recording
from affectstream.models.valence import SCALE_MID, CalibrationBlock, PersonalValenceModel
from affectstream.models.valence_scoring import PERMUTATION_ALPHA

logger = logging.getLogger(__name__)

#: Ratings given to the synthetic generator's binary knobs.
SYNTHETIC_HIGH, SYNTHETIC_LOW = 7.0, 3.0
#: Shuffled refits per person in the chance check.
CHANCE_SHUFFLES = 5


def recording_episodes(recording: Recording, end: float) -> list[CalibrationBlock]:
    """The rated episodes of a recording, from its label rows.

    Parameters
    ----------
    recording : Recording
        With ``labels`` rows at condition starts (``sam_valence``/``sam_arousal``, or the
        binary ``valence``/``arousal`` of the synthetic generator).
    end : float
        End of the recording (s), the end of its last episode.

    Returns
    -------
    list of CalibrationBlock
    """
    labels = recording.labels.sort_values("t").reset_index(drop=True)
    t = labels["t"].to_numpy(np.float64)
    if "sam_valence" in labels:
        valence = labels["sam_valence"].to_numpy(np.float64)
        arousal = labels.get("sam_arousal", pd.Series(np.nan, index=labels.index)).to_numpy()
    else:
        binary = labels.get("valence", pd.Series(np.nan, index=labels.index)).to_numpy()
        valence = np.where(
            np.isfinite(binary), np.where(binary > 0.5, SYNTHETIC_HIGH, SYNTHETIC_LOW), np.nan
        )
        a = labels.get("arousal", pd.Series(np.nan, index=labels.index)).to_numpy()
        arousal = np.where(np.isfinite(a), np.where(a > 0.5, SYNTHETIC_HIGH, SYNTHETIC_LOW), np.nan)
    blocks = []
    for k in range(len(t)):
        stop = t[k + 1] if k + 1 < len(t) else end
        if np.isfinite(valence[k]) and stop > t[k]:
            a_k = float(arousal[k]) if np.isfinite(arousal[k]) else None
            blocks.append(
                CalibrationBlock(float(t[k]), float(stop), float(valence[k]), a_k, f"episode {k}")
            )
    return blocks


def _fit(
    frame: pd.DataFrame, blocks: list[CalibrationBlock], window: float, check: bool
) -> PersonalValenceModel | str:
    try:
        return PersonalValenceModel().fit(frame, blocks, window, protocol_check=check)
    except ModelError as exc:
        return str(exc)


def _rate(count: int, total: int) -> float:
    return count / total if total else math.nan


def _interval_only(model: PersonalValenceModel) -> bool:
    """The former verdict: the whole 95 % interval of the error difference below zero."""
    return bool(model.accuracy_["mae_margin_ci95"][1] < 0.0)


def _summary(rows: list[dict[str, Any]], key: str) -> dict[str, Any]:
    scored = [r[key] for r in rows if isinstance(r.get(key), dict)]
    if not scored:
        return {"n_people": 0}
    mae = np.array([s["mae"] for s in scored])
    own = np.array([s["mae_own_mean"] for s in scored])
    diff = mae - own
    rng = np.random.default_rng(0)
    boot = diff[rng.integers(0, diff.size, (2000, diff.size))].mean(axis=1)
    return {
        "n_people": len(scored),
        "n_calibrated": int(sum(s["calibrated"] for s in scored)),
        "n_calibrated_interval_only": int(sum(s["calibrated_interval_only"] for s in scored)),
        "mae": float(mae.mean()),
        "mae_own_mean": float(own.mean()),
        "mae_margin": float(diff.mean()),
        "mae_margin_ci95_over_people": [
            float(np.quantile(boot, 0.025)),
            float(np.quantile(boot, 0.975)),
        ],
        "side_accuracy": float(np.nanmean([s["side_accuracy"] for s in scored])),
    }


def evaluate_personal_valence(
    frame: pd.DataFrame,
    recordings: Sequence[Recording],
    window: float,
    *,
    seed: int = 0,
    shuffles: int = CHANCE_SHUFFLES,
) -> dict[str, Any]:
    """Score the personal valence calibration on every participant of a dataset.

    Parameters
    ----------
    frame : pandas.DataFrame
        The dataset's window features (``subject``, ``t_end``, features).
    recordings : sequence of Recording
        The same participants' recordings (their rated episodes).
    window : float
        Window length (s).
    seed : int
        Seed of the chance check's shuffles.
    shuffles : int
        Shuffled refits per person in the chance check.

    Returns
    -------
    dict
        ``people`` (one entry per participant), ``calibration`` (people whose protocol
        meets the rules), ``diagnostic`` (everyone, rules off), ``chance`` (shuffled
        ratings: share still passing as calibrated).
    """
    rng = np.random.default_rng(seed)
    people: list[dict[str, Any]] = []
    shuffled_pass, shuffled_pass_interval, shuffled_total = 0, 0, 0
    # the same counts over shuffles that changed at least one episode's rating
    changed_pass, changed_pass_interval, changed_total = 0, 0, 0
    for recording in recordings:
        own = frame[frame["subject"] == recording.subject]
        if own.empty:
            continue
        end = float(own["t_end"].max())
        blocks = recording_episodes(recording, end)
        entry: dict[str, Any] = {
            "subject": recording.subject,
            "n_episodes": len(blocks),
            "n_low": sum(b.rating < SCALE_MID for b in blocks),
            "n_high": sum(b.rating > SCALE_MID for b in blocks),
        }
        for key, check in (("calibration", True), ("diagnostic", False)):
            fitted = _fit(own, blocks, window, check)
            if isinstance(fitted, str):
                entry[key] = fitted
                continue
            acc = {k: v for k, v in fitted.accuracy_.items() if k != "episodes"}
            entry[key] = {
                **acc,
                "calibrated": fitted.calibrated_,
                "calibrated_interval_only": _interval_only(fitted),
            }
        entry["protocol_ok"] = isinstance(entry["calibration"], dict)
        if isinstance(entry["diagnostic"], dict):
            for _ in range(shuffles):
                order = rng.permutation(len(blocks))
                fake = [
                    CalibrationBlock(
                        b.t_start, b.t_end, blocks[j].rating, blocks[j].arousal, b.label
                    )
                    for b, j in zip(blocks, order, strict=True)
                ]
                fitted = _fit(own, fake, window, False)
                if not isinstance(fitted, str):
                    shuffled_total += 1
                    # a shuffle may hand every episode its own rating back: a true calibration
                    same = all(f.rating == b.rating for f, b in zip(fake, blocks, strict=True))
                    shuffled_pass += int(fitted.calibrated_)
                    shuffled_pass_interval += int(_interval_only(fitted))
                    if not same:
                        changed_total += 1
                        changed_pass += int(fitted.calibrated_)
                        changed_pass_interval += int(_interval_only(fitted))
        people.append(entry)
    return {
        "method": "personal ridge on SAM valence, leave one episode out vs own mean rating, "
        f"calibrated when the margin's 95% interval is below 0 and permutation p <= "
        f"{PERMUTATION_ALPHA}",
        "people": people,
        "calibration": _summary(people, "calibration"),
        "diagnostic": _summary(people, "diagnostic"),
        "chance": {
            "shuffled_fits": shuffled_total,
            "false_calibration_rate": _rate(shuffled_pass, shuffled_total),
            "false_calibration_rate_interval_only": _rate(shuffled_pass_interval, shuffled_total),
            "shuffles_identical_to_real": shuffled_total - changed_total,
            "false_calibration_rate_changed": _rate(changed_pass, changed_total),
            "false_calibration_rate_changed_interval_only": _rate(
                changed_pass_interval, changed_total
            ),
        },
    }
