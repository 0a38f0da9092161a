"""Without a usable Bluetooth stack, scan and record say what to do instead of crashing.

The platform stack is made unreachable for real: on Linux bleak talks to BlueZ over the
D-Bus system bus, and the test points that bus at a socket that does not exist.
"""

from __future__ import annotations

import os
import sys

import pytest

from tests.watchdog import run_watched

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="BlueZ/D-Bus is Linux only")


@pytest.mark.parametrize(
    "args",
    [
        ["scan", "--timeout", "1"],
        ["record", "AA:BB:CC:DD:EE:FF@hr", "--duration", "2", "--no-markers"],
    ],
)
def test_missing_bluetooth_stack_gives_advice(args: list[str], tmp_path: object) -> None:
    env = dict(os.environ)
    env["DBUS_SYSTEM_BUS_ADDRESS"] = "unix:path=/nonexistent/affectstream-test-bus"
    env["AFFECTSTREAM_HOME"] = str(tmp_path)
    result = run_watched([sys.executable, "-m", "affectstream", *args], env=env)
    assert result.returncode == 2, result.stderr
    assert "Bluetooth is not available" in result.stderr
    assert "--emulate" in result.stderr
    assert "Traceback" not in result.stderr
