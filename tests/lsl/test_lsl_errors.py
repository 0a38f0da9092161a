"""Bad LSL input gives one line that says what to do; metadata maps as documented."""

from __future__ import annotations

import pytest

from affectstream.cli import main
from affectstream.device.lsl_meta import modality_of, parse_mapping
from affectstream.errors import ConfigError

pylsl = pytest.importorskip("pylsl", reason="pip install 'affectstream[lsl]'")


@pytest.mark.parametrize(
    ("predicate", "says"),
    [("name='NoSuchOutlet'", "No LSL stream matches"), ("name='unclosed", "")],
)
def test_record_lsl_without_a_match_fails_in_one_line(
    predicate: str, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["record", "--lsl", predicate, "--lsl-timeout", "0.5", "--duration", "1", "--no-markers"]
    assert main(args) != 0
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in err
    assert predicate in errors[0] and says in errors[0]


def test_lsl_map_refuses_unknown_modalities() -> None:
    assert parse_mapping(["OpenBCI=EEG", "Shimmer = eda"]) == {"OpenBCI": "eeg", "Shimmer": "eda"}
    for bad in ("OpenBCI", "=eeg", "OpenBCI=brainwaves"):
        with pytest.raises(ConfigError, match="STREAM_NAME=MODALITY"):
            parse_mapping([bad])


def _info(kind: str, fmt: int = pylsl.cf_float32, channel_type: str = "") -> pylsl.StreamInfo:
    info = pylsl.StreamInfo("Amp", kind, 2, 250.0, fmt, "amp-1")
    if channel_type:
        channels = info.desc().append_child("channels")
        for label in ("a", "b"):
            channels.append_child("channel").append_child_value("type", channel_type)
            del label
    return info


def test_modality_from_stream_type_channel_types_or_mapping() -> None:
    assert modality_of(_info("GSR"), {}) == "eda"
    assert modality_of(_info("Accelerometer"), {}) == "acc"
    assert modality_of(_info("", channel_type="ECG"), {}) == "ecg"
    assert modality_of(_info("Data"), {}) is None
    assert modality_of(_info("Data"), {"Amp": "ppg"}) == "ppg"
    assert modality_of(_info("Whatever", pylsl.cf_string), {}) == "markers"
