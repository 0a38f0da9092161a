"""The scan and record commands over the emulated BLE stack."""

from __future__ import annotations

import json
import sys

import pytest

from affectstream.cli import main
from affectstream.device.emulation import make_emulated
from affectstream.errors import ConfigError
from affectstream.runtime.record import parse_targets
from tests.watchdog import run_watched


def test_scan_lists_every_emulated_profile(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", "--emulate", "all", "--timeout", "0.5", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    profiles = sorted(d["profile"] for d in payload["devices"])
    assert profiles == sorted(p.profile for p in make_emulated("all"))
    by_profile = {d["profile"]: d for d in payload["devices"]}
    assert by_profile["eda"]["name"].startswith("AS-EDA-")
    assert by_profile["polar"]["name"].startswith("Polar H10 ")


def test_record_with_chaos_prints_a_consistent_summary() -> None:
    result = run_watched(
        [
            sys.executable,
            "-m",
            "affectstream",
            "record",
            "--emulate",
            "hr,polar,eda,muse",
            "--duration",
            "8",  # the chaos schedule scales with it: time to reconnect on a loaded machine
            "--speed",
            "2",
            "--chaos",
            "--json",
        ]
    )
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    streams = summary["streams"]
    assert {s.split("/")[1] for s in streams} >= {"hr", "rr", "ecg", "eda", "eeg"}
    for name, s in streams.items():
        assert s["samples_received"] > 0, name
        assert s["samples_received"] + s["gap_samples"] == s["samples_expected"], name
    chaos = summary["chaos"]
    # The schedule starts once every device streams, so each of the 4 devices is dropped.
    assert chaos["disconnects"] == len(summary["devices"]) == 4
    assert chaos["link_losses"] == 1
    # Every device that was dropped came back by itself.
    assert sum(s["reconnects"] for s in streams.values()) >= chaos["disconnects"]
    # Malformed packets were counted (one stream per device takes them), never fatal.
    assert sum(s["malformed"] for s in streams.values()) == chaos["malformed_sent"] > 0
    # Counter streams saw the disconnect as a gap.
    assert all(streams[s]["gap_samples"] > 0 for s in streams if s.endswith(("/ecg", "/eeg")))


def test_record_arguments() -> None:
    targets = parse_targets(["C4:7C:8D:6A:12:34@polar", "AS-EDA-00F1"])
    assert (targets[0].address, targets[0].profile) == ("C4:7C:8D:6A:12:34", "polar")
    assert (targets[1].address, targets[1].profile) == ("AS-EDA-00F1", None)
    with pytest.raises(ConfigError, match="Unknown device profile"):
        parse_targets(["AA:BB:CC:DD:EE:FF@fitbit"])
    assert main(["record"]) == 2  # neither devices nor --emulate: a clear error
    assert main(["record", "AA:BB:CC:DD:EE:FF", "--chaos"]) == 2
