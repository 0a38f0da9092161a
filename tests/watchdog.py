"""Run a subprocess under a hang detector instead of a fixed deadline.

A fixed ``timeout=120`` counts start-up (importing numpy, scipy, MNE...) and every second
the process waits for a CPU: on a machine shared by several suites a healthy run can take
longer than that. What a test wants to catch is a process that is stuck, so the watchdog
kills it only once it has made no progress at all (no new output and no CPU time used) for
``quiet_s`` seconds, and fails with its stderr tail. ``limit_s`` remains as a generous
backstop for a process that spins without end.

An interactive test (answer a prompt, send Ctrl-C once the process is streaming) passes
``on_line``: it sees every output line as it arrives, with the process, and may write to its
stdin or signal it, under the same hang detector.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

#: Seconds without output or CPU use after which a process is taken to hang.
QUIET_S = 90.0
#: Backstop on the whole run (a process that keeps using CPU but never ends).
LIMIT_S = 900.0
_POLL_S = 0.5

#: Called with (stream name "stdout" or "stderr", the line, the process) for each line.
OnLine = Callable[[str, str, "subprocess.Popen[str]"], None]


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of ``pid`` and its waited-for children (None without /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # After the command name: state is field 3, utime..cstime are fields 14..17.
    ticks = sum(int(v) for v in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def _pump(
    stream: IO[str],
    into: list[str],
    beat: list[float],
    on_line: Callable[[str], None] | None = None,
) -> None:
    for line in iter(stream.readline, ""):
        into.append(line)
        beat[0] = time.monotonic()
        if on_line is not None:
            on_line(line)


def run_watched(
    argv: Sequence[str],
    *,
    input: str | None = None,
    stdin: Any = None,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    preexec_fn: Any = None,
    quiet_s: float = QUIET_S,
    limit_s: float = LIMIT_S,
    on_line: OnLine | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` to its end like ``subprocess.run(capture_output=True, text=True)``.

    Parameters
    ----------
    argv : sequence of str
    input : str, optional
        Written to its stdin, which is then closed.
    stdin : file, optional
        Its stdin otherwise (default: none, ``DEVNULL``; a pipe left open for ``on_line``
        when that is given).
    env : mapping, optional
    cwd : path, optional
    preexec_fn : callable, optional
        Run in the child before it starts (resource limits).
    quiet_s : float
        Kill it (and fail) after this long with no output and no CPU time used.
    limit_s : float
        Kill it (and fail) after this long in any case.
    on_line : callable, optional
        ``on_line(stream, line, process)`` for each output line as it arrives (``stream``
        is ``"stdout"`` or ``"stderr"``), from the thread reading that stream: it may
        write to ``process.stdin`` or send the process a signal. An exception it raises
        kills the process and fails the run.

    Returns
    -------
    subprocess.CompletedProcess
    """
    interactive = on_line is not None and input is None and stdin is None
    piped = input is not None or interactive
    process = subprocess.Popen(
        list(argv),
        stdin=subprocess.PIPE if piped else (stdin or subprocess.DEVNULL),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=None if env is None else dict(env),
        cwd=cwd,
        preexec_fn=preexec_fn,
    )
    out: list[str] = []
    err: list[str] = []
    beat = [time.monotonic()]
    failed: list[str] = []

    def handler(name: str) -> Callable[[str], None] | None:
        if on_line is None:
            return None
        callback = on_line

        def handle(line: str) -> None:
            try:
                callback(name, line, process)
            except BaseException as exc:  # fail the run with it, not a lost thread
                failed.append(f"on_line raised {exc!r} on {name} line {line!r}")
                process.kill()

        return handle

    assert process.stdout is not None and process.stderr is not None
    pumps = [
        threading.Thread(
            target=_pump, args=(process.stdout, out, beat, handler("stdout")), daemon=True
        ),
        threading.Thread(
            target=_pump, args=(process.stderr, err, beat, handler("stderr")), daemon=True
        ),
    ]
    for pump in pumps:
        pump.start()
    if input is not None:
        assert process.stdin is not None
        process.stdin.write(input)
        process.stdin.close()
    started = time.monotonic()
    cpu = cpu_seconds(process.pid)
    why = ""
    while process.poll() is None:
        time.sleep(_POLL_S)
        now = time.monotonic()
        used = cpu_seconds(process.pid)
        if used is not None and used != cpu:
            cpu, beat[0] = used, max(beat[0], now)
        if now - beat[0] > quiet_s:
            why = f"made no progress (no output, no CPU time) for {quiet_s:.0f} s"
        elif now - started > limit_s:
            why = f"did not end within {limit_s:.0f} s although it kept running"
        if why:
            process.kill()
            break
    process.wait()
    for pump in pumps:
        pump.join(10.0)
    if interactive and process.stdin is not None:
        with contextlib.suppress(BrokenPipeError):  # what on_line wrote and nobody read
            process.stdin.close()
    stdout, stderr = "".join(out), "".join(err)
    if failed:
        raise AssertionError(f"{' '.join(argv)}: {failed[0]}. stderr tail:\n{stderr[-2000:]}")
    if why:
        raise AssertionError(f"{' '.join(argv)} {why}; killed. stderr tail:\n{stderr[-2000:]}")
    return subprocess.CompletedProcess(list(argv), process.returncode, stdout, stderr)
