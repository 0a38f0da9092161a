"""Every export format, read back with the standard reader and compared with the store."""

from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import edfio
import mne
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from affectstream.errors import ConfigError
from affectstream.export import export_session
from affectstream.export.session import channel_display_name
from affectstream.export.units import feature_unit
from affectstream.io.csv import ASK_ROUND_TRIP
from affectstream.store import EmbeddedStore, open_store

from .conftest import PARTICIPANT, SESSION, Built

#: Exact float parsing: pandas < 3 needs the option, 3.x does it by default (and deprecates it).
ROUND_TRIP: dict[str, Any] = {"float_precision": "round_trip"} if ASK_ROUND_TRIP else {}

MEASUREMENTS = ("features", "quality", "affect", "events")


def stored(built: Built, measurement: str, **tags: str) -> pd.DataFrame:
    with EmbeddedStore(built.store_path) as store:
        return store.read(measurement, tags={"session": SESSION, **tags})


def export(built: Built, fmt: str, out: Path) -> list[Path]:
    reports: list[tuple[str, int, int]] = []
    with open_store(str(built.store_path)) as store:
        result = export_session(
            store, SESSION, fmt, out, progress=lambda *report: reports.append(report)
        )
    assert result.session == SESSION and result.participant == PARTICIPANT
    # Progress ends complete for every stage it reported.
    last = {stage: (done, total) for stage, done, total in reports}
    assert last and all(done == total for done, total in last.values())
    return result.files


def assert_same_table(read: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Same columns (besides ``time``) and exactly the same values, missing where missing."""
    assert list(read.columns) == ["time_ns", "time", *expected.columns[1:]]
    assert len(read) == len(expected)
    np.testing.assert_array_equal(read["time_ns"].to_numpy(np.int64), expected["time_ns"])
    for column in expected.columns[1:]:
        want, got = expected[column], read[column]
        if want.dtype.kind == "f":
            # Exact, NaN where NaN.
            np.testing.assert_array_equal(got.to_numpy(np.float64), want.to_numpy(np.float64))
        else:
            if str(want.dtype) in ("Int64", "int64"):
                got = got.astype("Int64")  # CSV readers make an int column with blanks float
            # Tags, int, bool and str fields: an empty tag and a missing value are both
            # an empty cell in CSV.
            assert [_text(v) for v in got] == [_text(v) for v in want], column


def _text(value: object) -> str:
    return "" if value is None or value is pd.NA or value != value else str(value)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_tables_hold_exactly_what_was_stored(built: Built, tmp_path: Path, fmt: str) -> None:
    files = export(built, fmt, tmp_path)
    names = {p.name for p in files}
    for measurement in MEASUREMENTS:
        assert f"{measurement}.{fmt}" in names
    raw_streams = {block.stream: m for m, block in built.blocks.items()}
    expected_files: dict[str, pd.DataFrame] = {m: stored(built, m) for m in MEASUREMENTS}
    for stream, modality in raw_streams.items():
        frame = stored(built, f"raw_{modality}", stream=stream)
        # Channels as every export spells them (EDF and BIDS too): AF7, not the store's af7.
        frame = frame.rename(columns={c: channel_display_name(modality, c) for c in frame})
        expected_files[f"raw_{modality}_{stream.replace('/', '-')}"] = frame
    for stem, expected in expected_files.items():
        path = tmp_path / f"{stem}.{fmt}"
        if fmt == "csv":
            read = pd.read_csv(path, **ROUND_TRIP, keep_default_na=False, na_values=[""])
            stamps = pd.to_datetime(read["time"], format="ISO8601").astype("int64")
        else:
            read = pq.read_table(path).to_pandas()
            assert str(pq.read_schema(path).field("time").type) == "timestamp[ns, tz=UTC]"
            stamps = read["time"].astype("int64")
        np.testing.assert_array_equal(stamps.to_numpy(), expected["time_ns"].to_numpy())
        assert_same_table(read, expected)
    eeg = pd.read_csv(tmp_path / "raw_eeg_muse-1-eeg.csv") if fmt == "csv" else None
    if eeg is not None:
        # The gap's samples are not rows; the gap is an event.
        block = built.blocks["eeg"]
        assert len(eeg) == int(np.isfinite(block.values[:, 0]).sum())


#: Digital steps over the physical range: MNE writes the symmetric range ±(2**(bits-1) - 1).
STEPS = {"edf": 2 * (2**15 - 1), "bdf": 2 * (2**23 - 1)}


def edf_tolerance(values: np.ndarray, fmt: str = "edf") -> float:
    """One digital step over the physical range the exporter uses (min..max of the data)."""
    finite = values[np.isfinite(values)]
    return float(finite.max() - finite.min()) / STEPS[fmt]


def check_edf_signal(raw: mne.io.BaseRaw, built: Built, modality: str, fmt: str = "edf") -> None:
    """Samples at their times within one step; gap samples NaN via BAD_ACQ_SKIP."""
    block = built.blocks[modality]
    assert raw.info["sfreq"] == block.sfreq
    start = raw.info["meas_date"].timestamp()
    # Volts for EEG/ECG (MNE's unit); the stored unit for others (µS for EDA).
    data = raw.get_data(reject_by_annotation="NaN").T * (1e6 if modality in ("eeg", "ecg") else 1)
    positions = np.rint((block.t - start) * block.sfreq).astype(int)
    # Every sample time is on the file's grid (the start was padded to a whole second).
    np.testing.assert_allclose(start + positions / block.sfreq, block.t, atol=0.5 / block.sfreq)
    got = data[positions]
    missing = np.isnan(block.values)
    np.testing.assert_array_equal(np.isnan(got), missing)
    np.testing.assert_allclose(
        got[~missing], block.values[~missing], rtol=0, atol=edf_tolerance(block.values, fmt)
    )
    # Outside the recording (padding to whole seconds) the file is marked, not invented.
    outside = np.ones(data.shape[0], dtype=bool)
    outside[positions] = False
    assert np.isnan(data[outside]).all()


@pytest.mark.parametrize("fmt", ["edf", "bdf"])
def test_edf_export_reads_back_with_mne(built: Built, tmp_path: Path, fmt: str) -> None:
    files = export(built, fmt, tmp_path)
    # Every regular stream (EEG, ECG and EDA here); the RR intervals cannot be, and say so.
    names = {
        m: f"{SESSION}_{built.blocks[m].stream.replace('/', '-')}.{fmt}"
        for m in ("eeg", "ecg", "eda")
    }
    assert sorted(p.name for p in files) == sorted([*names.values(), f"{fmt}_manifest.json"])
    manifest = json.loads((tmp_path / f"{fmt}_manifest.json").read_text())
    assert list(manifest["left_out"]) == [built.blocks["rr"].stream]
    reader = mne.io.read_raw_bdf if fmt == "bdf" else mne.io.read_raw_edf
    for modality, name in names.items():
        raw = reader(tmp_path / name, infer_types=True, preload=True, verbose="error")
        assert set(raw.get_channel_types()) == {"bio" if modality == "eda" else modality}
        read_header = edfio.read_bdf if fmt == "bdf" else edfio.read_edf
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a garbled file makes edfio warn about its size
            signals = read_header(tmp_path / name).signals
        dimensions = {s.physical_dimension for s in signals if "Annotations" not in s.label}
        assert dimensions == {"uV" if modality != "eda" else "uS"}
        channels = built.blocks[modality].channels
        assert raw.ch_names == [c if modality == "eeg" else c.lower() for c in channels]
        check_edf_signal(raw, built, modality, fmt)
        assert "marker/stress start" in set(raw.annotations.description)
    eeg = reader(tmp_path / names["eeg"], verbose="error")
    gap_spans = [
        (a["onset"], a["duration"]) for a in eeg.annotations if a["description"] == "BAD_ACQ_SKIP"
    ]
    gap = built.gap
    start = eeg.info["meas_date"].timestamp()
    assert any(
        abs(onset + start - gap.t_start) < 1e-6 and abs(duration * 256 - gap.n_samples) < 1e-6
        for onset, duration in gap_spans
    )


def test_bids_export_reads_back_with_mne_bids(built: Built, tmp_path: Path) -> None:
    from mne_bids import BIDSPath, read_raw_bids

    export(built, "bids", tmp_path)
    subject, session = "P07", "1"  # short labels: the first session of P07
    bids_path = BIDSPath(
        subject=subject, session=session, task="affectstream", datatype="eeg", root=tmp_path
    )
    raw = read_raw_bids(bids_path, verbose="error")
    raw.load_data()
    check_edf_signal(raw, built, "eeg")
    reference = raw.info["meas_date"].timestamp()

    folder = tmp_path / f"sub-{subject}" / f"ses-{session}"
    prefix = f"sub-{subject}_ses-{session}_task-affectstream"
    for modality in ("ecg", "eda"):
        stem = folder / "eeg" / f"{prefix}_recording-{modality}_physio"
        sidecar = json.loads(stem.with_name(stem.name + ".json").read_text())
        block = built.blocks[modality]
        assert sidecar["SamplingFrequency"] == block.sfreq
        assert sidecar["Columns"] == [modality]
        assert reference + sidecar["StartTime"] == pytest.approx(block.t[0], abs=1e-6)
        with gzip.open(stem.with_name(stem.name + ".tsv.gz"), "rt") as handle:
            values = pd.read_csv(handle, sep="\t", header=None, na_values="n/a", **ROUND_TRIP)
        np.testing.assert_array_equal(values.to_numpy(np.float64), block.values)

    events = pd.read_csv(folder / "beh" / f"{prefix}_events.tsv", sep="\t", na_values="n/a")
    expected = stored(built, "events")
    np.testing.assert_array_equal(events["time_ns"], expected["time_ns"])
    assert list(events["trial_type"]) == list(expected["kind"])
    np.testing.assert_allclose(events["onset"], expected["time_ns"] / 1e9 - reference, atol=1e-6)

    rr = pd.read_csv(folder / "beh" / f"{prefix}_acq-rr_events.tsv", sep="\t", **ROUND_TRIP)
    np.testing.assert_array_equal(rr["value"], built.blocks["rr"].values[:, 0])

    derived = (
        tmp_path / "derivatives" / "affectstream" / f"sub-{subject}" / f"ses-{session}" / "beh"
    )
    features = pd.read_csv(
        derived / f"{prefix}_desc-features_timeseries.tsv",
        sep="\t",
        na_values="n/a",
        **ROUND_TRIP,
    )
    want = stored(built, "features")
    for column in want.columns[4:]:
        np.testing.assert_array_equal(features[column], want[column])

    participants = pd.read_csv(tmp_path / "participants.tsv", sep="\t")
    assert list(participants["participant_id"]) == [f"sub-{subject}"]
    description = json.loads((tmp_path / "dataset_description.json").read_text())
    assert description["BIDSVersion"] and description["Name"] == "affectstream recordings"


def test_unknown_session_lists_the_stored_ones(built: Built, tmp_path: Path) -> None:
    with EmbeddedStore(built.store_path) as store, pytest.raises(ConfigError) as caught:
        export_session(store, "no-such-session", "csv", tmp_path)
    message = str(caught.value)
    assert "no-such-session" in message and SESSION in message and PARTICIPANT in message
    start = datetime.fromtimestamp(built.blocks["eeg"].t[0], tz=UTC).isoformat(timespec="seconds")
    assert start in message


def test_unknown_format_is_refused(built: Built, tmp_path: Path) -> None:
    with EmbeddedStore(built.store_path) as store, pytest.raises(ConfigError, match="'xlsx'"):
        export_session(store, SESSION, "xlsx", tmp_path)


def test_bids_without_eeg_puts_physiology_in_beh(built: Built, tmp_path: Path) -> None:
    """A session with only an ECG stream and a marker: physio and events in beh/."""
    from affectstream.store import SeriesBatch, blocks_to_batches, seconds_to_ns

    ecg = built.blocks["ecg"]
    with EmbeddedStore(tmp_path / "store") as store:
        store.write(blocks_to_batches([ecg], participant="Q 1", session="only-ecg"))
        store.write(
            [
                SeriesBatch(
                    "events",
                    {"participant": "Q 1", "session": "only-ecg"},
                    seconds_to_ns(np.array([ecg.t[10]])),
                    {"kind": np.array(["marker"], object), "label": np.array(["go"], object)},
                )
            ]
        )
        export_session(store, "only-ecg", "bids", tmp_path / "bids")
    beh = tmp_path / "bids" / "sub-Q1" / "ses-1" / "beh"
    assert not (beh.parent / "eeg").exists()
    stem = beh / "sub-Q1_ses-1_task-affectstream_recording-ecg_physio"
    sidecar = json.loads(stem.with_name(stem.name + ".json").read_text())
    reference = float(np.floor(ecg.t[0]))
    assert reference + sidecar["StartTime"] == pytest.approx(ecg.t[0], abs=1e-6)
    values = pd.read_csv(stem.with_name(stem.name + ".tsv.gz"), sep="\t", header=None,
                         **ROUND_TRIP)  # fmt: skip
    np.testing.assert_array_equal(values[0].to_numpy(), ecg.values[:, 0])
    events = pd.read_csv(beh / "sub-Q1_ses-1_task-affectstream_events.tsv", sep="\t")
    assert list(events["value"]) == ["go"]
    assert events["onset"].iloc[0] == pytest.approx(ecg.t[10] - reference, abs=1e-6)
    participants = pd.read_csv(tmp_path / "bids" / "participants.tsv", sep="\t")
    assert list(participants["participant_id"]) == ["sub-Q1"]


def test_edf_labels_fit_sixteen_characters() -> None:
    from affectstream.export.edf import MAX_NAME, edf_labels

    channels = ("frontal_left_long", "frontal_left_longer", "af7")
    labels = edf_labels(channels)
    assert len(set(labels)) == 3 and all(len(f"EEG {x}") <= 16 for x in labels)
    assert labels[2] == "af7" and labels[0] == channels[0][:MAX_NAME]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_tables_carry_units_and_sampling_rates(built: Built, tmp_path: Path, fmt: str) -> None:
    export(built, fmt, tmp_path)

    def metadata(stem: str) -> dict[str, Any]:
        if fmt == "csv":
            meta: dict[str, Any] = json.loads((tmp_path / f"{stem}.json").read_text())
        else:
            schema = pq.read_schema(tmp_path / f"{stem}.parquet")
            meta = json.loads(schema.metadata[b"affectstream"])
            for name in schema.names:  # the same units on the columns themselves
                field_meta = schema.field(name).metadata or {}
                unit = meta["columns"].get(name, {}).get("unit")
                assert field_meta.get(b"unit") == (unit.encode() if unit else None), name
        return meta

    for modality, block in built.blocks.items():
        meta = metadata(f"raw_{modality}_{block.stream.replace('/', '-')}")
        assert meta["stream"] == block.stream and meta["modality"] == modality
        assert meta["sampling_frequency_hz"] == block.sfreq  # None for the RR intervals
        channels = [channel_display_name(modality, c.lower()) for c in block.channels]
        assert {c: meta["columns"][c]["unit"] for c in channels} == dict.fromkeys(
            channels, block.unit
        )
    features = metadata("features")
    stored_features = stored(built, "features")
    for column in stored_features.columns[3:]:
        assert features["columns"][column]["unit"], column  # every feature has its unit
    assert features["columns"]["hrv_rmssd"]["unit"] == "ms"
    assert features["columns"]["time_ns"]["unit"] == "ns"
    affect = metadata("affect")
    assert affect["columns"]["arousal"]["unit"] == "1"


def test_feature_units_are_those_documented() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "features.md").read_text()
    documented: list[tuple[str, str]] = []
    in_table = False
    for line in docs.splitlines():
        if line.startswith("| name | unit | definition |"):
            in_table = True
        elif not line.startswith("|"):
            in_table = False
        elif in_table and (match := re.match(r"\| `([a-z_<>0-9]+)` \| ([^|]+?) \|", line)):
            documented.append((match.group(1), match.group(2)))
    assert len(documented) > 20
    for name, unit in documented:
        example = name.replace("<band>", "alpha").replace("<ch>", "af7")
        assert feature_unit(example) == unit.split(" ")[0], name


def _bids_validator() -> str | None:
    """The npm ``bids-validator`` (scripts/test.sh installs it into tests/node_modules), if any."""
    local = Path(__file__).resolve().parents[1] / "node_modules" / ".bin"
    found = shutil.which("bids-validator") or shutil.which("bids-validator", path=str(local))
    return found if found and shutil.which("node") else None


def test_bids_sidecars_say_what_they_hold(built: Built, tmp_path: Path) -> None:
    from mne_bids import BIDSPath, read_raw_bids

    export(built, "bids", tmp_path)
    subject, session = "P07", "1"  # short labels: the first session of P07
    bids_path = BIDSPath(
        subject=subject, session=session, task="affectstream", datatype="eeg", root=tmp_path
    )
    eeg_json = json.loads(
        bids_path.copy().update(suffix="eeg", extension=".json").fpath.read_text()
    )
    assert eeg_json["PowerLineFrequency"] == 50.0
    assert eeg_json["Manufacturer"].startswith("InteraXon")  # the Muse layout
    assert eeg_json["EEGReference"] == "Fpz"
    # Each gap once when read back (the EDF holds them; events.tsv does not repeat them).
    raw = read_raw_bids(bids_path, verbose="error")
    skips = [(round(a["onset"], 6), a["duration"]) for a in raw.annotations
             if a["description"] == "BAD_ACQ_SKIP"]  # fmt: skip
    assert len(skips) == len(set(skips)) >= 1
    # Gaps in the session's events last their missing samples.
    folder = tmp_path / f"sub-{subject}" / f"ses-{session}" / "beh"
    events = pd.read_csv(folder / f"sub-{subject}_ses-{session}_task-affectstream_events.tsv",
                         sep="\t", na_values="n/a")  # fmt: skip
    gaps = events[events["trial_type"] == "gap"]
    assert len(gaps) == 1
    assert gaps["duration"].iloc[0] == pytest.approx(built.gap.n_samples / 256.0)
    assert (events.loc[events["trial_type"] != "gap", "duration"] == 0).all()
    # Units in every derivative sidecar, for every numeric column.
    derived = tmp_path / "derivatives" / "affectstream" / f"sub-{subject}" / f"ses-{session}"
    for sidecar in (derived / "beh").glob("*_timeseries.json"):
        table = pd.read_csv(sidecar.with_suffix(".tsv"), sep="\t", na_values="n/a", nrows=5)
        described = json.loads(sidecar.read_text())
        for column in table.columns:
            if pd.api.types.is_float_dtype(table[column]) and column != "onset":
                assert described[column].get("Units"), (sidecar.name, column)
    participants = pd.read_csv(tmp_path / "participants.tsv", sep="\t")
    assert participants["affectstream_id"].tolist() == [PARTICIPANT]
    sessions = pd.read_csv(tmp_path / f"sub-{subject}" / f"sub-{subject}_sessions.tsv", sep="\t")
    assert sessions["affectstream_id"].tolist() == [SESSION]


@pytest.mark.skipif(_bids_validator() is None, reason="npm bids-validator (node) not installed")
def test_bids_export_passes_the_bids_validator(built: Built, tmp_path: Path) -> None:
    export(built, "bids", tmp_path / "bids")
    validator = _bids_validator()
    assert validator is not None
    result = subprocess.run([validator, str(tmp_path / "bids"), "--json"], capture_output=True,
                            text=True, timeout=600)  # fmt: skip
    report = json.loads(result.stdout)
    assert report["issues"]["errors"] == [], json.dumps(report["issues"]["errors"])[:2000]
    warnings = {w["key"] for w in report["issues"]["warnings"]}
    assert "CUSTOM_COLUMN_WITHOUT_DESCRIPTION" not in warnings


def test_bids_power_line_frequency_is_the_one_the_session_recorded(
    built: Built, tmp_path: Path
) -> None:
    """A session recorded at 60 Hz mains (its start event's settings) says so in BIDS."""
    from mne_bids import BIDSPath

    from affectstream.store import SeriesBatch, seconds_to_ns

    from .conftest import T0

    store_path = tmp_path / "store"
    shutil.copytree(built.store_path, store_path)
    settings = {"window_s": 30.0, "step_s": 5.0, "line_freq": 60.0, "model": "none"}
    with EmbeddedStore(store_path) as store:
        store.write(
            [
                SeriesBatch(
                    "events",
                    {"participant": PARTICIPANT, "session": SESSION},
                    seconds_to_ns(np.array([T0 + 0.5])),
                    {
                        "kind": np.array(["session"], dtype=object),
                        "label": np.array(["start"], dtype=object),
                        "detail": np.array([json.dumps(settings)], dtype=object),
                    },
                )
            ]
        )
        export_session(store, SESSION, "bids", tmp_path / "bids")
    sidecar = BIDSPath(
        subject="P07", session="1", task="affectstream", datatype="eeg", root=tmp_path / "bids"
    ).update(suffix="eeg", extension=".json")
    assert json.loads(sidecar.fpath.read_text())["PowerLineFrequency"] == settings["line_freq"]
