"""The suite's subprocess hang detector: it kills a process that makes no progress, and
only such a process (a slow one that keeps working or talking runs to its end)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.watchdog import run_watched


def test_a_silent_idle_process_is_killed_with_a_message() -> None:
    script = "import sys, time; print('started', file=sys.stderr, flush=True); time.sleep(60)"
    with pytest.raises(AssertionError, match=r"no progress .* for 1 s.*\n.*started"):
        run_watched([sys.executable, "-c", script], quiet_s=1.0)


def test_a_process_that_keeps_talking_runs_past_the_quiet_time() -> None:
    # 3 s in all, a line every 0.3 s: longer than quiet_s, never quiet for that long.
    script = "import time\nfor i in range(10):\n    print(i, flush=True); time.sleep(0.3)"
    done = run_watched([sys.executable, "-c", script], quiet_s=1.5)
    assert done.returncode == 0
    assert done.stdout.split() == [str(i) for i in range(10)]


def test_a_process_that_keeps_computing_runs_past_the_quiet_time() -> None:
    script = "import time\nend = time.monotonic() + 3\nwhile time.monotonic() < end: pass"
    assert run_watched([sys.executable, "-c", script], quiet_s=1.5).returncode == 0


def test_input_reaches_stdin_and_the_backstop_holds() -> None:
    echo = "import sys; sys.stdout.write(sys.stdin.read().upper())"
    assert run_watched([sys.executable, "-c", echo], input="abc").stdout == "ABC"
    spin = "while True: pass"
    with pytest.raises(AssertionError, match="did not end within 2 s"):
        run_watched([sys.executable, "-c", spin], quiet_s=60.0, limit_s=2.0)


def test_on_line_answers_a_prompt_and_its_errors_fail_the_run() -> None:
    ask = "import sys\nprint('name?', file=sys.stderr, flush=True)\nprint(input().upper())"
    seen: list[tuple[str, str]] = []

    def answer(stream: str, line: str, process: subprocess.Popen[str]) -> None:
        seen.append((stream, line))
        if line.startswith("name?"):
            assert process.stdin is not None
            process.stdin.write("ada\n")
            process.stdin.flush()

    done = run_watched([sys.executable, "-c", ask], on_line=answer, quiet_s=30.0)
    assert done.returncode == 0 and done.stdout == "ADA\n"
    assert seen == [("stderr", "name?\n"), ("stdout", "ADA\n")]

    def broken(stream: str, line: str, process: subprocess.Popen[str]) -> None:
        raise ValueError("no answer")

    # The prompt is never answered: the run fails with the callback's error, not a hang.
    with pytest.raises(AssertionError, match="on_line raised ValueError"):
        run_watched([sys.executable, "-c", ask], on_line=broken, quiet_s=30.0)
