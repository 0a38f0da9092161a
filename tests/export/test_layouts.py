"""Other tools' file layouts read as they are: muselsl, Mind Monitor, OpenBCI GUI, BrainFlow,
Empatica E4 folders and zips; rates inferred from span and count; unknown layouts named."""

from __future__ import annotations

import json
import shutil
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from affectstream.cli import main
from affectstream.errors import ConfigError
from affectstream.io import estimate_sfreq, load_recording, read_recording
from affectstream.io.layouts import KNOWN_LAYOUTS, sniff_layout
from affectstream.signal.synthetic import synthetic_eeg

MUSE = ("TP9", "AF7", "AF8", "TP10")
#: A Muse's real rate: its crystal runs a little off 256 Hz against the host clock.
TRUE_RATE = 256.02
T0 = 1_700_000_000.0


def muse_eeg(seconds: float, seed: int = 1) -> np.ndarray:
    """Four channels of EEG-like signal (µV) at 256 Hz."""
    return synthetic_eeg(seconds, 256.0, (6.0, 5.0, 10.0, 6.0), np.random.default_rng(seed))


def ms_rounded_times(n: int, rate: float = TRUE_RATE, t0: float = T0) -> np.ndarray:
    """Host times as muselsl writes them: the true sample times rounded to the millisecond."""
    return np.round(t0 + np.arange(n) / rate, 3)


def write_muselsl(
    path: Path, eeg: np.ndarray, times: np.ndarray, markers: dict[int, str] | None = None
) -> None:
    frame = pd.DataFrame(eeg, columns=list(MUSE))
    frame.insert(0, "timestamps", times)
    frame["Right AUX"] = 0.0
    if markers is not None:  # muselsl record with a marker stream: a Marker0 column
        frame["Marker0"] = "0"
        for row, label in markers.items():
            frame.loc[row, "Marker0"] = label
    frame.to_csv(path, index=False, float_format="%.3f")


def test_muselsl_csv_reads_at_the_device_rate_not_the_median_step(tmp_path: Path) -> None:
    eeg = muse_eeg(60.0)
    times = ms_rounded_times(len(eeg))
    # The median step of ms-rounded 256 Hz times is 4 ms: 250 Hz, the old silent mistake.
    assert 1.0 / np.median(np.diff(times)) == pytest.approx(250.0, rel=1e-4)
    path = tmp_path / "muse.csv"
    write_muselsl(path, eeg, times, markers={2560: "stim_on", 7680: "stim_off"})
    assert sniff_layout(path) == "muselsl"
    recording = load_recording(path)
    assert [(e.t, e.label) for e in recording.events] == [
        (times[2560], "stim_on"), (times[7680], "stim_off")
    ]  # fmt: skip
    (block,) = recording.blocks
    assert block.modality == "eeg" and block.channels == MUSE and block.unit == "µV"
    assert block.sfreq == 256.0
    assert block.gaps == () and len(block) == len(eeg)
    np.testing.assert_allclose(block.values, np.round(eeg, 3), atol=1e-9)


def test_rate_from_span_and_count_sees_through_rounding_and_gaps() -> None:
    rng = np.random.default_rng(0)
    for rate in (130.0, 250.0, 256.0, 500.0):
        t = np.round(T0 + np.arange(5000) / (rate * 1.001) + rng.normal(0, 2e-4, 5000), 3)
        t = np.unique(t)
        assert estimate_sfreq(t, "test") == rate
    # A gap does not count towards the span.
    t = T0 + np.arange(2000) / 256.0
    t[1000:] += 3.0
    assert estimate_sfreq(t, "test") == 256.0


def test_unusual_rate_is_kept_and_warned(caplog: pytest.LogCaptureFixture) -> None:
    t = T0 + np.arange(3000) / 17.33
    assert estimate_sfreq(t, "odd") == pytest.approx(17.33, rel=1e-6)
    assert "17.33" in caplog.text and "no common device rate" in caplog.text


MIND_MONITOR_HEADER = (
    ["TimeStamp"]
    + [f"{band}_{c}" for band in ("Delta", "Theta", "Alpha", "Beta", "Gamma") for c in MUSE]
    + [f"RAW_{c}" for c in MUSE]
    + ["AUX_RIGHT", "Accelerometer_X", "Accelerometer_Y", "Accelerometer_Z"]
    + ["Gyro_X", "Gyro_Y", "Gyro_Z", "HeadBandOn"]
    + [f"HSI_{c}" for c in MUSE]
    + ["Battery", "Elements"]
)


def test_mind_monitor_csv_raw_columns_and_element_rows(tmp_path: Path) -> None:
    eeg = muse_eeg(40.0, seed=2)
    times = ms_rounded_times(len(eeg), t0=1_700_000_000.5)
    rows = []
    for i, (t, sample) in enumerate(zip(times, eeg, strict=True)):
        stamp = datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        row: dict[str, object] = {c: "" for c in MIND_MONITOR_HEADER}
        row["TimeStamp"] = stamp
        row.update({f"RAW_{c}": f"{v:.3f}" for c, v in zip(MUSE, sample, strict=True)})
        row.update({f"Alpha_{c}": "0.5" for c in MUSE})
        rows.append(row)
        if i == 3000:  # a blink event: its own row, no EEG
            rows.append({**{c: "" for c in MIND_MONITOR_HEADER}, "TimeStamp": stamp,
                         "Elements": "/muse/elements/blink"})  # fmt: skip
        if i == 5000:  # a marker the user pressed: its own row, no EEG
            rows.append({**{c: "" for c in MIND_MONITOR_HEADER}, "TimeStamp": stamp,
                         "Elements": "/Marker/2"})  # fmt: skip
    path = tmp_path / "mindMonitor_2023.csv"
    pd.DataFrame(rows, columns=MIND_MONITOR_HEADER).to_csv(path, index=False)
    assert sniff_layout(path) == "mind-monitor"
    recording = load_recording(path)
    (block,) = recording.blocks
    assert block.channels == MUSE and block.sfreq == 256.0 and len(block) == len(eeg)
    # The user's marker is an event; the blink detection is not.
    assert [(e.label, e.kind) for e in recording.events] == [("marker 2", "marker")]
    assert recording.events[0].t == pytest.approx(times[5000], abs=1e-3)
    np.testing.assert_allclose(block.values, np.round(eeg, 3), atol=1e-9)
    np.testing.assert_allclose(block.t[0], times[0], atol=1e-6)


def write_brainflow_cyton(path: Path, eeg8: np.ndarray, drop: slice | None = None) -> np.ndarray:
    """A BrainFlow ``write_file`` of a Cyton: 24 tab-separated columns, no header."""
    n = eeg8.shape[0]
    table = np.zeros((n, 24))
    table[:, 0] = np.arange(n) % 256
    table[:, 1:9] = eeg8
    # Host times of 6-sample packets: every sample of a packet gets the packet's time.
    table[:, 22] = T0 + (np.arange(n) // 6 * 6) / 250.0 + 0.004
    table[[2500, 5000], 23] = (1.0, 7.0)  # markers inserted with insert_marker()
    if drop is not None:
        table = np.delete(table, drop, axis=0)
    np.savetxt(path, table, delimiter="\t", fmt="%.6f")
    return table


def test_brainflow_cyton_file_with_a_lost_packet(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    eeg8 = rng.normal(0, 20.0, (250 * 30, 8))
    path = tmp_path / "brainflow.csv"
    write_brainflow_cyton(path, eeg8, drop=slice(1000, 1006))
    assert sniff_layout(path) == "brainflow"
    (block,) = read_recording(path)
    assert block.sfreq == 250.0 and len(block.channels) == 8
    assert len(block) == len(eeg8)  # the lost packet is a gap, not a shift
    (gap,) = block.gaps
    assert (gap.first_index, gap.n_samples) == (1000, 6)
    present = np.ones(len(eeg8), dtype=bool)
    present[1000:1006] = False
    np.testing.assert_allclose(block.values[present], eeg8[present], atol=1e-6)
    assert np.isnan(block.values[~present]).all()
    # Sample times are the counter's grid placed at the host times (within a packet).
    assert abs(block.t[0] - T0) < 6 / 250.0
    events = load_recording(path).events
    assert [e.label for e in events] == ["marker 1", "marker 7"]
    assert [round(e.t - T0, 3) for e in events] == [round(2496 / 250 + 0.004, 3),
                                                    round(4998 / 250 + 0.004, 3)]  # fmt: skip


def test_unknown_layout_names_the_known_ones(tmp_path: Path) -> None:
    path = tmp_path / "weird.csv"
    path.write_text("when,foo,bar\n1,2,3\n2,3,4\n")
    with pytest.raises(ConfigError) as info:
        read_recording(path)
    message = str(info.value)
    for name in KNOWN_LAYOUTS:
        assert name in message
    assert "timestamps,TP9,AF7,AF8,TP10" in message and "'foo'" in message


def test_cli_replays_a_muselsl_file_the_same_at_any_speed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    eeg = muse_eeg(45.0, seed=5)
    path = tmp_path / "muse.csv"
    write_muselsl(path, eeg, ms_rounded_times(len(eeg)))
    rows = {}
    for speed in (None, 15.0):
        out = tmp_path / f"rows-{speed}.csv"
        pace = ["--as-fast-as-possible"] if speed is None else ["--speed", str(speed)]
        code = main(["replay", str(path), *pace, "--window", "10", "--step", "5", "--json",
                     "--line-freq", "50", "--no-progress", "--out", str(out)])  # fmt: skip
        assert code == 0
        summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert summary["feature_errors"] == {}
        assert summary["streams"]["muse/eeg"]["sfreq"] == 256.0
        rows[speed] = pd.read_csv(out)
    # Windows that fit in the recording: (45 - 10) / 5 + 1.
    assert len(rows[None]) == len(rows[15.0]) == 8
    features = [c for c in rows[None] if c.startswith("eeg_")]
    np.testing.assert_array_equal(rows[None][features], rows[15.0][features])


@pytest.mark.shared_data
def test_openbci_gui_file_as_it_is(shared_data: Path) -> None:
    path = shared_data / "layouts" / "openbci-gui-v6-blinks-jawclench-alpha.txt"
    assert sniff_layout(path) == "openbci-gui"
    frame = pd.read_csv(path, comment="%", skipinitialspace=True)
    (block,) = read_recording(path)
    assert block.sfreq == 250.0 and len(block.channels) == 8 and block.unit == "µV"
    # Every row is a sample (the GUI's counter shows no lost packet in this file).
    assert len(block) == len(frame) and block.gaps == ()
    np.testing.assert_allclose(block.values[:, 0], frame["EXG Channel 0"], rtol=0, atol=1e-9)
    # Times follow the Unix-ms column to within a packet's batching.
    stamps = frame["Timestamp"].to_numpy(np.float64) / 1000.0
    assert np.median(np.abs(block.t - stamps)) < 0.05


@pytest.mark.shared_data
def test_openbci_gui_lost_rows_become_a_gap(shared_data: Path, tmp_path: Path) -> None:
    source = shared_data / "layouts" / "openbci-gui-v6-blinks-jawclench-alpha.txt"
    lines = source.read_text().splitlines()
    first_data = next(i for i, line in enumerate(lines) if line.startswith("Sample Index")) + 1
    del lines[first_data + 5000 : first_data + 5010]  # ten samples lost in transit
    path = tmp_path / "openbci.txt"
    path.write_text("\n".join(lines) + "\n")
    (block,) = read_recording(path)
    (gap,) = block.gaps
    assert (gap.first_index, gap.n_samples) == (5000, 10)


@pytest.mark.shared_data
def test_e4_folder_and_zip_with_tags(shared_data: Path, tmp_path: Path) -> None:
    folder = shared_data / "stress-predict" / "Raw_data" / "S02"
    recording = load_recording(folder)
    assert recording.layout == "empatica-e4"
    blocks = {b.modality: b for b in recording.blocks}
    assert set(blocks) == {"eda", "ppg", "temp", "acc", "hr", "rr"}
    eda_rows = (folder / "EDA.csv").read_text().splitlines()
    assert float(eda_rows[1]) == blocks["eda"].sfreq == 4.0
    assert len(blocks["eda"]) == len(eda_rows) - 2
    tags = [float(x) for x in next(folder.glob("tags*.csv")).read_text().split()]
    assert [e.t for e in recording.events] == sorted(tags) and len(tags) > 0
    archive = tmp_path / "S02.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for file in folder.iterdir():
            out.write(file, f"1644226061_A01234/{file.name}")
    zipped = load_recording(archive)
    assert [len(b) for b in zipped.blocks] == [len(b) for b in recording.blocks]
    assert zipped.events == recording.events


def test_a_folder_that_is_no_e4_export(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(ConfigError, match="folder but no Empatica E4 export"):
        load_recording(tmp_path)
    copy = tmp_path / "e4"
    copy.mkdir()
    for name in ("EDA.csv", "BVP.csv", "HR.csv", "TEMP.csv", "ACC.csv"):
        (copy / name).write_text("1644226061\n4\n0.1\n")
    with pytest.raises(ConfigError, match="no Empatica E4 export"):
        load_recording(copy)  # IBI.csv missing
    shutil.rmtree(copy)
