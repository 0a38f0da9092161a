"""``affectstream valence``: fit, show or delete a participant's personal valence model."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from affectstream.cli._ids import id_argument
from affectstream.cli._output import add_json_argument, emit_result, say
from affectstream.cli._store_args import add_store_arguments


def register(subparsers: Any) -> None:
    """Add ``valence calibrate|show|delete`` to ``subparsers`` (see :mod:`affectstream.cli`)."""
    parser = subparsers.add_parser(
        "valence",
        help="personal valence calibration: fit from sessions, show, delete",
        description=(
            "Valence is estimated per person from calibration blocks (protocol phases with "
            "calibration = true) and the SAM self-report after each. 'calibrate' (re)fits the "
            "model on stored sessions, scored leave one episode out against the person's own "
            "mean rating; 'show' prints its card; 'delete' removes it. See docs/models.md."
        ),
    )
    commands = parser.add_subparsers(dest="valence_command", required=True)
    fit = commands.add_parser("calibrate", help="(re)fit on stored calibration sessions")
    fit.add_argument(
        "--session",
        action="append",
        required=True,
        type=id_argument("session"),
        help="session id with calibration blocks and self-reports (repeat for several)",
    )
    fit.add_argument(
        "--participant",
        type=id_argument("participant"),
        help="whose model (default the sessions' participant)",
    )
    add_store_arguments(fit)
    add_json_argument(fit)
    fit.set_defaults(func=_calibrate)
    for name, func, text in (
        ("show", _show, "print a participant's model card"),
        ("delete", _delete, "delete a participant's model (valence is uncalibrated again)"),
    ):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("participant", type=id_argument("participant"), help="participant id")
        add_json_argument(sub)
        sub.set_defaults(func=func)


def _calibrate(args: argparse.Namespace) -> int:
    from affectstream.runtime.calibration import calibrate_participant
    from affectstream.store import open_store

    with open_store(args.store) as store:
        result = calibrate_participant(store, args.session, args.participant)
    acc = result["accuracy"]
    say(
        f"{result['participant']}: {result['status']} - held-out error {acc['mae']:.2f} SAM "
        f"points (95% CI {acc['mae_ci95'][0]:.2f}-{acc['mae_ci95'][1]:.2f}) vs "
        f"{acc['mae_own_mean']:.2f} for their own mean rating, {acc['n_episodes']} episodes"
    )
    say(f"model and card: {result['path']}")
    emit_result(args, result)
    return 0


def _show(args: argparse.Namespace) -> int:
    from affectstream.errors import ConfigError
    from affectstream.models.valence_store import personal_valence_path, read_personal_valence

    data = read_personal_valence(args.participant)
    if data is None:
        raise ConfigError(
            f"Participant {args.participant!r} has no valence model: record a session with "
            f"calibration blocks, or run 'affectstream valence calibrate --session ID'."
        )
    card = personal_valence_path(args.participant) / "card.md"
    if not args.json:
        sys.stdout.write(card.read_text() if card.is_file() else f"{data}\n")  # the result
    emit_result(args, {k: v for k, v in data.items() if k != "linear"})
    return 0


def _delete(args: argparse.Namespace) -> int:
    from affectstream.models.valence_store import delete_personal_valence

    deleted = delete_personal_valence(args.participant)
    say(
        f"{args.participant}: valence model deleted"
        if deleted
        else f"{args.participant}: no valence model to delete"
    )
    emit_result(args, {"participant": args.participant, "deleted": deleted})
    return 0
