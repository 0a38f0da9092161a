"""Every export format replays with nothing lost: samples, gaps, markers and phases.

The stored session of ``conftest`` (EEG with a 300-sample gap, ECG, EDA, RR; a baseline
phase, a marker, a stress phase) is exported in each format and read back by the replay's
own source loader; the streams and events must be those of the stored session.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from affectstream.errors import ConfigError
from affectstream.export import export_session
from affectstream.io import load_recording
from affectstream.runtime.replay import ReplayInput, load_source, replay_blocks, stored_session
from affectstream.store import EmbeddedStore
from affectstream.types import SampleBlock

from .conftest import EEG_GAP, SESSION, Built
from .test_io import _chunk, _header, _samples, _stream_xml


@pytest.fixture(scope="module")
def original(built: Built) -> ReplayInput:
    with EmbeddedStore(built.store_path) as store:
        return stored_session(store, SESSION)


@pytest.fixture(scope="module")
def exports(built: Built, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("exports")
    with EmbeddedStore(built.store_path) as store:
        return {
            fmt: Path(export_session(store, SESSION, fmt, root / fmt).out)
            for fmt in ("csv", "parquet", "edf", "bdf", "bids")
        }


def by_modality(blocks: list[SampleBlock]) -> dict[str, SampleBlock]:
    return {b.modality: b for b in blocks}


def assert_same_stream(got: SampleBlock, want: SampleBlock, atol: float) -> None:
    assert got.sfreq == want.sfreq and len(got) == len(want)
    assert [c.lower() for c in got.channels] == [c.lower() for c in want.channels]
    np.testing.assert_allclose(got.t, want.t, rtol=0, atol=0.5 / (want.sfreq or 1e3))
    np.testing.assert_allclose(got.values, want.values, rtol=0, atol=atol)  # NaN where NaN
    assert [(g.first_index, g.n_samples) for g in got.gaps] == [
        (g.first_index, g.n_samples) for g in want.gaps
    ]


def assert_same_events(got: ReplayInput, want: ReplayInput, atol: float = 1e-6) -> None:
    assert [(e.kind, e.label) for e in got.events] == [(e.kind, e.label) for e in want.events]
    np.testing.assert_allclose(
        [e.t for e in got.events], [e.t for e in want.events], rtol=0, atol=atol
    )


def test_the_stored_session_has_what_the_round_trips_check(original: ReplayInput) -> None:
    kinds = {(e.kind, e.label) for e in original.events}
    assert {("phase", "baseline"), ("marker", "stress start"), ("phase", "stress")} <= kinds
    eeg = by_modality(original.blocks)["eeg"]
    assert [(g.first_index, g.n_samples) for g in eeg.gaps] == [EEG_GAP]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_table_exports_replay_exactly(
    fmt: str, exports: dict[str, Path], original: ReplayInput
) -> None:
    got = load_source(exports[fmt])
    assert got.kind == "export" and got.participant == original.participant
    want = by_modality(original.blocks)
    for modality, block in by_modality(got.blocks).items():
        assert_same_stream(block, want[modality], atol=0.0)
    assert set(by_modality(got.blocks)) == set(want)
    assert_same_events(got, original)
    assert got.baseline_end == original.baseline_end
    # One raw table of the export: that stream, with the events beside it.
    (table,) = exports[fmt].glob(f"raw_eeg_*.{fmt}")
    one = load_source(table)
    assert [b.modality for b in one.blocks] == ["eeg"]
    assert_same_stream(one.blocks[0], want["eeg"], atol=0.0)
    assert_same_events(one, original)


@pytest.mark.parametrize("fmt", ["edf", "bdf"])
def test_edf_and_bdf_exports_replay_with_gaps_markers_and_phases(
    fmt: str, exports: dict[str, Path], original: ReplayInput
) -> None:
    want = by_modality(original.blocks)
    for path in sorted(exports[fmt].glob(f"*.{fmt}")):
        got = load_source(path)
        (block,) = got.blocks
        reference = want[block.modality]
        finite = reference.values[np.isfinite(reference.values)]
        # One step of the file's integer resolution (docs/export.md, "Resolution").
        step = (finite.max() - finite.min()) / (65534 if fmt == "edf" else 16777214)
        assert_same_stream(block, reference, atol=step)
        # Annotations keep onsets to the file's time resolution.
        assert_same_events(got, original, atol=1e-3)


def test_bids_export_replays_every_stream_and_event(
    exports: dict[str, Path], original: ReplayInput
) -> None:
    (session,) = exports["bids"].glob("sub-*/ses-*")
    got = load_source(session)
    want = by_modality(original.blocks)
    blocks = by_modality(got.blocks)
    assert set(blocks) == set(want)
    for modality, block in blocks.items():
        if block.sfreq is None:  # RR: one row per beat, times and values as stored
            np.testing.assert_allclose(block.t, want[modality].t, atol=1e-6)
            np.testing.assert_allclose(block.values, want[modality].values, rtol=1e-12)
            continue
        finite = want[modality].values[np.isfinite(want[modality].values)]
        step = (finite.max() - finite.min()) / 65534 if modality == "eeg" else 1e-9
        assert_same_stream(block, want[modality], atol=step)
    assert_same_events(got, original, atol=1e-6)
    # A physio file on its own replays its whole session.
    (physio,) = session.glob("*/*recording-ecg_physio.tsv.gz")
    assert {b.modality for b in load_recording(physio).blocks} == set(want)


def test_replayed_session_keeps_markers_and_phases(
    exports: dict[str, Path], original: ReplayInput, tmp_path: Path
) -> None:
    source = load_source(exports["parquet"])
    with EmbeddedStore(tmp_path / "replayed") as store:
        replay_blocks(source.blocks, store, session_id="again", events=source.events,
                      baseline_end=source.baseline_end)  # fmt: skip
        again = stored_session(store, "again")
    assert_same_events(again, original)
    eeg = by_modality(again.blocks)["eeg"]
    assert [(g.first_index, g.n_samples) for g in eeg.gaps] == [EEG_GAP]


def test_xdf_marker_streams_are_markers(tmp_path: Path) -> None:
    sfreq, n = 128.0, 128 * 40
    stamps = 500.0 + np.arange(n) / sfreq
    eeg = np.random.default_rng(1).normal(0, 20.0, (n, 2))
    data = b"XDF:" + _chunk(1, b'<?xml version="1.0"?><info><version>1.0</version></info>')
    data += _header(
        1, _stream_xml("Muse", "EEG", [("AF7", "uV"), ("AF8", "uV")], sfreq, "double64")
    )
    data += _header(2, _stream_xml("Marks", "Markers", [("label", "")], 0, "string"))
    data += _samples(1, stamps, eeg, "d")
    marks = [(510.25, "stress start"), (530.5, "stress end")]
    body = struct.pack("<I", 2) + bytes([4]) + struct.pack("<I", len(marks))
    for stamp, label in marks:
        text = label.encode()
        body += bytes([8]) + struct.pack("<d", stamp) + bytes([1, len(text)]) + text
    data += _chunk(3, body)
    path = tmp_path / "session.xdf"
    path.write_bytes(data)
    recording = load_recording(path)
    assert [(e.t, e.label, e.kind) for e in recording.events] == [
        (t, label, "marker") for t, label in marks
    ]
    assert [b.modality for b in recording.blocks] == ["eeg"]


def test_recording_shorter_than_a_window_is_an_error(original: ReplayInput, tmp_path: Path) -> None:
    eda = by_modality(original.blocks)["eda"]
    short = SampleBlock.regular("x/eda", "eda", ("eda",), eda.values[:320], 32.0, 1e9)
    with (
        EmbeddedStore(tmp_path / "s") as store,
        pytest.raises(ConfigError, match=r"spans 10\.0 s, shorter than one 60-s feature window"),
    ):
        replay_blocks([short], store, bundle=None)
