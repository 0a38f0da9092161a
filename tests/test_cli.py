"""The command line answers --help and --version and turns errors into messages."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from affectstream import __version__
from affectstream.cli import build_parser, main


def test_version_flag_prints_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"affectstream {__version__}"


def test_help_lists_every_registered_command() -> None:
    parser = build_parser()
    text = parser.format_help()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    for name in subparsers.choices:  # type: ignore[union-attr]
        assert name in text


def test_console_script_runs_in_a_fresh_process() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "affectstream", "info"],
        capture_output=True,
        text=True,
        check=True,
    )
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert payload["affectstream"] == __version__


def test_influx_flags_override_the_variables_the_store_reads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from affectstream.cli._store_args import apply_store_arguments
    from affectstream.store import influx

    for name in (influx.ENV_TOKEN, influx.ENV_ORG, influx.ENV_BUCKET):
        monkeypatch.setenv(name, "before")  # recorded, so teardown restores the original
    args = build_parser().parse_args(
        [
            "store",
            "--store",
            "http://127.0.0.1:1",
            "--influx-token",
            "t0k",
            "--influx-org",
            "lab",
            "--influx-bucket",
            "b1",
            "ls",
        ]
    )
    apply_store_arguments(args)
    import os

    assert os.environ[influx.ENV_TOKEN] == "t0k"
    assert os.environ[influx.ENV_ORG] == "lab"
    assert os.environ[influx.ENV_BUCKET] == "b1"
