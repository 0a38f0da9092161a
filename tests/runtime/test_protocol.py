"""Protocol files: phases with durations and instructions; clear errors for bad files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from affectstream.errors import ConfigError
from affectstream.runtime import load_protocol


def test_toml_and_json_protocols_read_the_same(tmp_path: Path) -> None:
    phases = [
        {"name": "baseline", "duration": 120, "instruction": "Sit still."},
        {"name": "stress", "duration": 90.5, "instruction": "Count backwards."},
    ]
    (tmp_path / "p.json").write_text(json.dumps({"phases": phases}))
    toml = "".join(
        f'[[phases]]\nname = "{p["name"]}"\nduration = {p["duration"]}\n'
        f'instruction = "{p["instruction"]}"\n'
        for p in phases
    )
    (tmp_path / "p.toml").write_text(toml)
    for name in ("p.json", "p.toml"):
        protocol = load_protocol(tmp_path / name)
        assert [p.name for p in protocol.phases] == [p["name"] for p in phases]
        assert protocol.duration == sum(p["duration"] for p in phases)
        assert protocol.baseline_end() == phases[0]["duration"]
        assert protocol.phase_at(phases[0]["duration"] + 1.0).name == "stress"  # type: ignore[union-attr]
        assert protocol.phase_at(protocol.duration + 1.0) is None


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('{"phases": [{"name": "rest", "duration": -5}]}', "-5"),
        ('{"phases": [{"name": "rest", "duration": 5, "colour": "red"}]}', "colour"),
        ('{"steps": []}', "phases"),
        ("{not json", "not valid"),
    ],
)
def test_bad_protocols_name_the_problem(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match=needle):
        load_protocol(path)


def test_missing_protocol_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Cannot read protocol file"):
        load_protocol(tmp_path / "absent.toml")
