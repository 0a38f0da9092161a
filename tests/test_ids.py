"""The id validator: its rules, its one-line errors, and every entry point using it."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from affectstream.cli import main
from affectstream.errors import ConfigError
from affectstream.ids import ID_RULES, check_id
from affectstream.runtime import SessionConfig
from affectstream.store.influx import delete_predicate, influxql_string

KINDS = sorted(ID_RULES)
SAFE = string.ascii_letters + string.digits + "._-"


@pytest.mark.parametrize("kind", KINDS)
@given(value=st.text(max_size=300))
@settings(max_examples=200, deadline=None)
def test_any_text_is_accepted_exactly_when_it_follows_the_rules(kind: str, value: str) -> None:
    limit, _ = ID_RULES[kind]
    allowed = SAFE + (" :()" if kind == "device" else "")
    ok = (
        0 < len(value) <= limit
        and value[0] in string.ascii_letters + string.digits
        and all(c in allowed for c in value)
    )
    if ok:
        assert check_id(value, kind) == value  # type: ignore[arg-type]
    else:
        with pytest.raises(ConfigError) as info:
            check_id(value, kind)  # type: ignore[arg-type]
        message = str(info.value)
        assert "\n" not in message and len(message) < 300  # one line, bounded
        assert f"the limit is {limit}" in message or "not valid" in message


@given(value=st.text(alphabet=SAFE, min_size=1, max_size=64).filter(lambda v: v[0].isalnum()))
def test_valid_ids_pass_every_kind(value: str) -> None:
    for kind in KINDS:
        assert check_id(value, kind) == value  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value", ["a\\", "a\nb", "x" * 5000, "", "-lead", "a/b", "p,x=y", "q'uote", 'q"uote']
)
def test_hostile_ids_are_refused_by_the_session(value: str) -> None:
    with pytest.raises(ConfigError):
        SessionConfig(participant=value if value else "\x00")
    with pytest.raises(ConfigError):
        SessionConfig(session_id=value)


def test_anonymous_participant_is_allowed() -> None:
    assert SessionConfig(participant="").participant == ""


@pytest.mark.parametrize(
    "argv",
    [
        ["replay", "x.csv", "--participant", "a\\"],
        ["replay", "x.csv", "--session-id", "a\nb"],
        ["record", "--emulate", "eda", "--participant", "x" * 5000],
        ["demo", "--participant", "a b"],
        ["export", "a\nb", "--format", "csv", "--out", "o"],
        ["store", "show", "x" * 200],
        ["store", "rm", "a'b"],
    ],
)
def test_cli_refuses_bad_ids_in_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "id" in err[-1] and "Traceback" not in "\n".join(err)
    assert len(err[-1]) < 300


@pytest.mark.parametrize("device", ["dev\\ice", "a/b", "x" * 65, "name\nnext"])
def test_record_refuses_bad_device_ids(device: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["record", device, "--duration", "1", "--no-markers"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: The device id")


def test_record_accepts_addresses_and_names() -> None:
    from affectstream.runtime.record import parse_targets

    targets = parse_targets(["AA:BB:CC:DD:EE:FF", "Polar H10 1A2B3C4D@polar"])
    assert [t.address for t in targets] == ["AA:BB:CC:DD:EE:FF", "Polar H10 1A2B3C4D"]


def test_influxql_strings_escape_line_breaks() -> None:
    assert influxql_string("a\nb'c\\") == "'a\\nb\\'c\\\\'"
    assert "\n" not in influxql_string("x\n\n")


def test_delete_predicate_validates_and_quotes() -> None:
    assert delete_predicate("S-01") == 'session="S-01"'
    for hostile in ['x" OR session="y', "a\nb", "x" * 500]:
        with pytest.raises(ConfigError):
            delete_predicate(hostile)
    assert re.fullmatch(r'session="[A-Za-z0-9._-]+"', delete_predicate("a.b_c-d"))
