"""What LabRecorder does with our outlets: plain inlets record them, the streams are written
as XDF (with the suite's spec-following writer; pyxdf has none) and the XDF replays with
its markers."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from export.test_io import _chunk, _header, _samples, _stream_xml

from affectstream.cli import main
from affectstream.runtime.lsl_out import LslPublisher
from affectstream.store import open_store
from affectstream.types import SampleBlock

pylsl = pytest.importorskip("pylsl", reason="pip install 'affectstream[lsl]'")

SFREQ = 128.0
LABELS = ("Fp1", "Fp2")


def _pull_all(inlet: pylsl.StreamInlet, n: int) -> tuple[list[list[object]], list[float]]:
    rows: list[list[object]] = []
    stamps: list[float] = []
    deadline = time.monotonic() + 20.0
    while len(rows) < n and time.monotonic() < deadline:
        chunk, ts = inlet.pull_chunk(timeout=0.5)
        rows.extend(chunk)
        stamps.extend(ts)
    assert len(rows) == n, f"inlet got {len(rows)} of {n} samples"
    return rows, stamps


def _marker_xml() -> str:
    return (
        '<?xml version="1.0"?><info><name>affectstream-events</name><type>Markers</type>'
        "<channel_count>1</channel_count><nominal_srate>0</nominal_srate>"
        "<channel_format>string</channel_format></info>"
    )


def _string_samples(stream_id: int, stamps: list[float], labels: list[str]) -> bytes:
    body = b""
    for stamp, label in zip(stamps, labels, strict=True):
        text = label.encode()
        body += bytes([8]) + np.float64(stamp).tobytes() + bytes([1, len(text)]) + text
    head = np.uint32(stream_id).tobytes() + bytes([4]) + np.uint32(len(labels)).tobytes()
    return _chunk(3, head + body)


@pytest.mark.slow
def test_xdf_of_our_outlets_replays_with_its_markers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], lsl_tag: str
) -> None:
    session, stream = f"S-xdf-{lsl_tag}", f"emu-{lsl_tag}/eeg"
    publisher = LslPublisher(session)
    rng = np.random.default_rng(11)
    values = rng.normal(0, 10.0, (int(20 * SFREQ), len(LABELS)))
    t0 = time.time() - 30.0
    first = SampleBlock.regular(stream, "eeg", LABELS, values[:1], SFREQ, t0)
    publisher.raw(first)  # creates the outlet
    publisher.listener("event", {"t": t0, "kind": "session", "label": "start"})
    eeg_in = pylsl.StreamInlet(pylsl.resolve_bypred(f"name='{stream}'", 1, 10.0)[0])
    ours = f"starts-with(source_id, 'affectstream/{session}/') and type='Markers'"
    marker_in = pylsl.StreamInlet(pylsl.resolve_bypred(ours, 1, 10.0)[0])
    eeg_in.open_stream(10.0)
    marker_in.open_stream(10.0)
    time.sleep(0.3)
    publisher.raw(SampleBlock.regular(stream, "eeg", LABELS, values[1:], SFREQ, t0 + 1 / SFREQ))
    labels = ["stimulus A", "stimulus B"]
    for i, label in enumerate(labels):
        publisher.listener("event", {"t": t0 + 5.0 + 5 * i, "kind": "marker", "label": label})
    rows, stamps = _pull_all(eeg_in, len(values) - 1)
    marks, mark_stamps = _pull_all(marker_in, len(labels))
    assert [m[0] for m in marks] == labels
    publisher.close()

    xdf = b"XDF:" + _chunk(1, b'<?xml version="1.0"?><info><version>1.0</version></info>')
    xdf += _header(1, _stream_xml("emu-eeg", "EEG", [(c, "microvolts") for c in LABELS],
                                  SFREQ, "float32"))  # fmt: skip
    xdf += _header(2, _marker_xml())
    xdf += _samples(1, np.asarray(stamps), np.asarray(rows, dtype=np.float32), "f")
    xdf += _string_samples(2, mark_stamps, [str(m[0]) for m in marks])
    path = tmp_path / "labrecorder.xdf"
    path.write_bytes(xdf)

    store = tmp_path / "store"
    code = main(["replay", str(path), "--model", "none", "--save", "--store", f"file://{store}",
                 "--no-progress", "--window", "10", "--step", "5", "--json"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err[-2000:]
    summary = json.loads(captured.out.strip().splitlines()[-1])
    with open_store(f"file://{store}") as opened:
        events = opened.read("events", tags={"session": summary["session"]})
        raw = opened.read("raw_eeg", tags={"session": summary["session"]})
    markers = events[events["kind"] == "marker"]
    assert list(markers["label"]) == labels
    # Each marker keeps its place relative to the samples (LSL clock throughout).
    offset = stamps[0] - raw["time_ns"].iloc[0] / 1e9
    assert np.allclose(markers["time_ns"].to_numpy() / 1e9 + offset, mark_stamps, atol=1e-3)
    assert len(raw) == len(rows)
