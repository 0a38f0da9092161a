"""The command line answers --help and --version and turns errors into messages."""

from __future__ import annotations

import argparse
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from affectstream import __version__
from affectstream.cli import build_parser, main
from affectstream.cli._output import JSON_HELP
from affectstream.store import EmbeddedStore, SeriesBatch


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
        [sys.executable, "-m", "affectstream", "info", "--json"],
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


def test_line_freq_choices_are_the_signal_packages() -> None:
    from affectstream.cli._line_freq import LINE_FREQS
    from affectstream.signal.mains import LINE_FREQS as SIGNAL_LINE_FREQS

    assert LINE_FREQS == SIGNAL_LINE_FREQS
    train = ["train", "--dataset", "wesad", "--data", "d", "--out", "o"]
    for command in (["replay", "x.csv"], ["record"], train):
        assert build_parser().parse_args(command).line_freq is None
        assert build_parser().parse_args([*command, "--line-freq", "60"]).line_freq == 60.0
        with pytest.raises(SystemExit):  # argparse refuses anything but the mains frequencies
            build_parser().parse_args([*command, "--line-freq", "55"])


def _parsers(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every parser with the words that reach it (``("store", "ls")``), parents first."""
    found = [(path, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found += _parsers(child, (*path, name))
    return found


def _is_group(parser: argparse.ArgumentParser) -> bool:
    return any(isinstance(a, argparse._SubParsersAction) for a in parser._actions)


def test_every_command_and_option_has_help_text() -> None:
    parser = build_parser()
    for path, child in _parsers(parser)[1:]:
        for action in child._actions:
            if action.option_strings or isinstance(action, argparse._SubParsersAction):
                continue
            assert action.help, (path, action.dest)
        for action in child._actions:
            if action.option_strings and action.help != argparse.SUPPRESS:
                assert action.help, (path, action.option_strings)
    # Sub-command help lines (shown by `affectstream --help` / `affectstream bench --help`).
    for path, child in _parsers(parser):
        for action in child._actions:
            if isinstance(action, argparse._SubParsersAction):
                helps = {a.dest: a.help for a in action._choices_actions}
                for name in action.choices:
                    assert helps.get(name), (*path, name)


def test_train_and_evaluate_describe_themselves() -> None:
    text = {name: build_parser()._subparsers._group_actions[0].choices[name].format_help()  # type: ignore[union-attr]
            for name in ("train", "evaluate")}  # fmt: skip
    for name, help_text in text.items():
        assert "Example: affectstream " + name in " ".join(help_text.split()), name
        assert "which dataset layout" in help_text, name


def test_json_means_the_same_in_every_command() -> None:
    """Every command (each leaf of the tree) takes --json, with one help text."""
    leaves = [(p, c) for p, c in _parsers(build_parser())[1:] if not _is_group(c)]
    assert {("info",), ("store", "ls"), ("store", "show"), ("bench", "store")} <= {
        p for p, _ in leaves
    }
    for path, child in leaves:
        action = child._option_string_actions.get("--json")
        assert action is not None, path
        assert action.help == JSON_HELP, path


@pytest.mark.parametrize(
    ("after", "before"),
    [
        (["store", "ls", "--store", "X"], ["store", "--store", "X", "ls"]),
        (
            ["store", "show", "S", "--store", "X", "--measurement", "affect", "--json"],
            ["store", "--store", "X", "--json", "show", "S", "--measurement", "affect"],
        ),
        (
            ["store", "rm", "S", "--yes", "--store", "X"],
            ["store", "--store", "X", "rm", "S", "--yes"],
        ),
        (["info", "-v"], ["-v", "info"]),
        (["store", "ls", "-vv"], ["-vv", "store", "ls"]),
    ],
)
def test_options_parse_the_same_after_the_sub_command(after: list[str], before: list[str]) -> None:
    parser = build_parser()
    assert vars(parser.parse_args(after)) == vars(parser.parse_args(before))


def test_a_value_given_before_the_sub_command_is_kept() -> None:
    args = build_parser().parse_args(["store", "--store", "X", "ls"])
    assert args.store == "X"  # the copy after `ls` defaults to "not given", not None


def test_info_is_human_without_json_and_one_json_line_with_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["info"]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"affectstream {__version__}" in captured.err
    assert main(["info", "--json"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0])["affectstream"] == __version__


def test_error_advice_runs_as_printed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The command an error suggests runs verbatim (here: on a store path with a space)."""
    store = tmp_path / "my store"
    with EmbeddedStore(store) as opened:
        opened.write(
            [SeriesBatch("raw_hr", {"participant": "p1", "session": "s1"},
                         np.array([10**18], dtype=np.int64), {"hr": np.array([60.0])})]
        )  # fmt: skip
    assert main(["store", "show", "nope", "--store", str(store)]) == 2
    err = capsys.readouterr().err
    suggested = [c for c in re.findall(r"`(affectstream [^`]+)`", err)]
    assert suggested, err
    for command in suggested:
        assert main([*shlex.split(command)[1:], "--json"]) == 0, command
        listed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert [s["session"] for s in listed["sessions"]] == ["s1"]


def test_bench_store_takes_store_like_every_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AFFECTSTREAM_INFLUX_URL", raising=False)
    folder = tmp_path / "bench-store"
    assert main(["bench", "store", "--points", "3000", "--store", str(folder), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["embedded"]["counted_back"] == 3000
    with EmbeddedStore(folder) as store:  # the run went where --store said
        assert [s.session for s in store.sessions()] == ["bench-embedded"]
    # A folder that already holds data is never written into.
    assert main(["bench", "store", "--points", "3000", "--store", str(folder)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["bench", "store", "--store", "ftp://host/x"]) == 2


def test_saved_replays_are_marked_in_store_ls(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from affectstream.signal.synthetic import synthetic_eda

    store = tmp_path / "store"
    with EmbeddedStore(store) as opened:  # a session that is not a replay
        opened.write(
            [SeriesBatch("raw_hr", {"participant": "p1", "session": "live1"},
                         np.array([10**18], dtype=np.int64), {"hr": np.array([60.0])})]
        )  # fmt: skip
    csv = tmp_path / "eda.csv"
    eda = np.ravel(synthetic_eda(90.0, 32.0, np.random.default_rng(0))[0])
    csv.write_text("eda\n" + "\n".join(f"{v:.5f}" for v in eda) + "\n")
    code = main(["replay", str(csv), "--sfreq", "32", "--t0", "1300000000", "--unit", "eda=uS",
                 "--store", str(store), "--save", "--session-id", "r1", "--window", "30",
                 "--step", "5", "--no-progress"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    capsys.readouterr()
    assert main(["store", "ls", "--store", str(store), "--json"]) == 0
    captured = capsys.readouterr()
    rows = {r["session"]: r for r in json.loads(captured.out.strip().splitlines()[-1])["sessions"]}
    assert rows["r1"]["replay"] is True
    assert rows["live1"]["replay"] is False
    r1_line = next(line for line in captured.err.splitlines() if line.startswith("r1 "))
    assert r1_line.endswith("(replay)")
