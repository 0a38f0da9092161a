"""Personal valence models on disk: one small bundle with a card per participant.

Layout (``$AFFECTSTREAM_HOME``, default ``~/.affectstream``)::

    valence/<participant>/model.json   # PersonalValenceModel.to_dict(): arrays, no pickle
    valence/<participant>/card.md      # what it was fitted on and how well it did

A participant whose calibration did not beat their own mean rating still gets the files
(``"calibrated": false``): the live estimate then stays uncalibrated and says why.
Every function takes ``home`` (default :func:`valence_home`) as :func:`personal_valence_path`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

from affectstream.errors import ConfigError, ModelError
from affectstream.models.valence import PERMUTATION_ALPHA, PersonalValenceModel

logger = logging.getLogger(__name__)

_PARTICIPANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def valence_home() -> Path:
    """Folder of the personal valence models.

    Returns
    -------
    Path
        ``$AFFECTSTREAM_HOME/valence`` (default ``~/.affectstream/valence``).
    """
    home = os.environ.get("AFFECTSTREAM_HOME")
    base = Path(home).expanduser() if home else Path.home() / ".affectstream"
    return base / "valence"


def personal_valence_path(participant: str, home: Path | None = None) -> Path:
    """The folder of one participant's model.

    Parameters
    ----------
    participant : str
        Pseudonymous id (letters, digits, ``.``, ``_``, ``-``; up to 64).
    home : Path, optional
        Default :func:`valence_home`.

    Returns
    -------
    Path
    """
    if not isinstance(participant, str) or not _PARTICIPANT.fullmatch(participant):
        raise ConfigError(
            f"Participant id {participant!r} cannot name a valence model: use letters, digits, "
            f"'.', '_' or '-' (up to 64, e.g. --participant P07)."
        )
    return (home or valence_home()) / participant


def _card(participant: str, model: PersonalValenceModel, sources: list[str]) -> str:
    acc = model.accuracy_
    low, high = acc["mae_ci95"]
    d_low, d_high = acc["mae_margin_ci95"]
    lines = [
        f"# Personal valence model: {participant}",
        "",
        f"- status: **{'calibrated' if model.calibrated_ else 'uncalibrated'}** ("
        + (
            "beats the person's own mean rating, beyond chance"
            if model.calibrated_
            else acc.get("reason") or "does not beat the person's own mean rating"
        )
        + ")",
        f"- fitted on {acc['n_episodes']} calibration episodes, {acc['n_windows']} windows of "
        f"{model.window_:g} s, {len(model.features_)} features; sessions: {', '.join(sources)}",
        "- method: ridge regression of the SAM valence rating (1-9) on standardised window "
        "features; scored leave one episode out (no window of a held-out episode in training)",
        f"- held-out error: {acc['mae']:.2f} SAM points (95% bootstrap CI over episodes "
        f"{low:.2f}-{high:.2f}); the person's own mean rating: {acc['mae_own_mean']:.2f}; "
        f"difference CI {d_low:+.2f} to {d_high:+.2f}",
        f"- held-out side (above/below 5) accuracy per episode: {acc['side_accuracy']:.2f}",
        f"- permutation test (valence ratings re-ordered within the same arousal side): "
        f"p = {acc.get('permutation_p', float('nan')):.3f} over "
        f"{acc.get('permutation_orders', 0)} orders (calibrated needs p <= "
        f"{PERMUTATION_ALPHA:g}, and the difference CI below 0)",
        "- validated on: this participant's calibration episodes only. Not validated on other "
        "days, devices or stimuli; re-calibrate when those change.",
        "",
        "| episode | rating | predicted (held out) | own mean | stressful |",
        "|---|---|---|---|---|",
    ]
    for e in acc["episodes"]:
        lines.append(
            f"| {e['label'] or '-'} | {e['rating']:g} | {e['predicted']:.2f} | "
            f"{acc['own_mean']:.2f} | {'yes' if e['stressful'] else 'no'} |"
        )
    return "\n".join(lines) + "\n"


def save_personal_valence(
    participant: str,
    model: PersonalValenceModel,
    *,
    sources: list[str] | None = None,
    home: Path | None = None,
) -> Path:
    """Write (or replace) a participant's model and card.

    Parameters
    ----------
    participant : str
    model : PersonalValenceModel
        A fitted model.
    sources : list of str, optional
        Sessions it was calibrated on (for the card).
    home : Path, optional
        Default :func:`valence_home`.

    Returns
    -------
    Path
        The participant's folder.
    """
    folder = personal_valence_path(participant, home)
    folder.mkdir(parents=True, exist_ok=True)
    data = model.to_dict()
    data["participant"] = participant
    data["sources"] = list(sources or [])
    data["created"] = time.time()
    tmp = folder / "model.json.tmp"
    tmp.write_text(json.dumps(data, indent=1, allow_nan=True))
    tmp.replace(folder / "model.json")  # a reader never sees half a model
    (folder / "card.md").write_text(_card(participant, model, list(sources or [])))
    logger.info("personal valence model for %s written to %s", participant, folder)
    return folder


def read_personal_valence(participant: str, home: Path | None = None) -> dict[str, Any] | None:
    """The stored JSON of a participant's model, or None when there is none."""
    file = personal_valence_path(participant, home) / "model.json"
    if not file.is_file():
        return None
    try:
        data: dict[str, Any] = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"Cannot read {file}: {exc}; re-calibrate or delete it.") from None
    return data


def load_personal_valence(
    participant: str, home: Path | None = None
) -> PersonalValenceModel | None:
    """A participant's model, or None when they were never calibrated."""
    data = read_personal_valence(participant, home)
    return None if data is None else PersonalValenceModel.from_dict(data)


def delete_personal_valence(participant: str, home: Path | None = None) -> bool:
    """Delete a participant's model and card.

    Parameters
    ----------
    participant : str
    home : Path, optional

    Returns
    -------
    bool
        Whether there was one.
    """
    folder = personal_valence_path(participant, home)
    if not folder.exists():
        return False
    shutil.rmtree(folder)
    logger.info("personal valence model for %s deleted", participant)
    return True
