"""Reading recording files: CSV layouts, EDF written by MNE, XDF built byte by byte, bad input."""

from __future__ import annotations

import struct
from pathlib import Path

import mne
import numpy as np
import pandas as pd
import pytest

from affectstream.errors import ConfigError, SignalError
from affectstream.io import read_csv, read_edf, read_recording, read_xdf

T0 = 1_764_064_800.0


def test_csv_with_time_column_units_and_a_gap(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n, sfreq = 1000, 250.0
    t = T0 + np.arange(n) / sfreq
    ecg_mv = rng.normal(0.0, 0.5, n)
    eeg = rng.normal(0.0, 20.0, (n, 2))
    keep = np.ones(n, dtype=bool)
    keep[400:450] = False  # 50 samples never arrived: no rows
    frame = pd.DataFrame(
        {"time": t, "ECG [mV]": ecg_mv, "eeg_af7": eeg[:, 0], "eeg_af8 (uV)": eeg[:, 1]}
    )[keep]
    path = tmp_path / "rec.csv"
    frame.to_csv(path, index=False)
    blocks = {b.modality: b for b in read_csv(path)}
    assert set(blocks) == {"ecg", "eeg"}
    ecg = blocks["ecg"]
    assert ecg.sfreq == sfreq and ecg.unit == "µV" and len(ecg) == n
    np.testing.assert_allclose(ecg.values[keep, 0], ecg_mv[keep] * 1000.0)
    assert np.isnan(ecg.values[~keep]).all()
    assert [(g.first_index, g.n_samples) for g in ecg.gaps] == [(400, 50)]
    np.testing.assert_allclose(ecg.t, t, atol=1e-6)
    assert blocks["eeg"].channels == ("af7", "af8")
    np.testing.assert_array_equal(blocks["eeg"].values[keep], eeg[keep])


def test_csv_without_time_needs_a_rate_and_builds_rr_times(tmp_path: Path) -> None:
    path = tmp_path / "rr.csv"
    rr_s = np.array([0.8, 0.82, 0.79, 0.85])
    pd.DataFrame({"RR [s]": rr_s}).to_csv(path, index=False)
    (rr,) = read_csv(path, sfreq=1.0, t0=T0)
    assert rr.sfreq is None and rr.unit == "ms"
    np.testing.assert_allclose(rr.values[:, 0], rr_s * 1000.0)
    np.testing.assert_allclose(rr.t, T0 + np.cumsum(rr_s))
    pd.DataFrame({"ecg": np.zeros(10)}).to_csv(path, index=False)
    with pytest.raises(ConfigError, match=r"no time column.*sfreq"):
        read_csv(path)


def test_csv_neurokit_layout(tmp_path: Path) -> None:
    """NeuroKit2's example files: capitalised columns, no time, ECG in mV, RSP alongside."""
    rng = np.random.default_rng(1)
    path = tmp_path / "bio_100hz.csv"
    pd.DataFrame(
        {
            "ECG": rng.normal(0, 0.3, 500),
            "EDA": 5 + rng.normal(0, 0.01, 500),
            "RSP": rng.normal(0, 1, 500),
            "Photosensor": np.full(500, 5.0),
        }
    ).to_csv(path, index=False)
    with pytest.raises(SignalError, match=r"looks like mV.*'ecg': 'mV'"):
        read_csv(path, sfreq=100.0)
    blocks = {b.modality: b for b in read_csv(path, sfreq=100.0, units={"ecg": "mV"})}
    assert set(blocks) == {"ecg", "eda"}
    assert blocks["eda"].sfreq == 100.0 and len(blocks["eda"]) == 500


@pytest.mark.parametrize(
    ("content", "error", "match"),
    [
        ("time,ecg,brainwaves\n0,1,2\n", ConfigError, r"\['brainwaves'\] name no modality"),
        ("time,eda\n0,15000\n1,15001\n", SignalError, "nS"),
        ("time,rr\n0,0.8\n1,0.9\n", SignalError, "seconds"),
        ("time,ecg [furlong]\n0,1\n", ConfigError, "unknown unit 'furlong'"),
        ("time,ecg\n0,12\n1,oops\n", SignalError, "row 3 holds 'oops'"),
        ("", ConfigError, "Cannot parse"),
    ],
)
def test_bad_csv_gets_a_clear_error(
    tmp_path: Path, content: str, error: type[Exception], match: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(error, match=match) as caught:
        read_csv(path)
    assert "bad.csv" in str(caught.value)


def test_edf_types_units_and_acquisition_gaps(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    sfreq, n = 256, 256 * 8
    eeg_uv = rng.normal(0, 30, (2, n))
    info = mne.create_info(["Fp1", "ECG"], sfreq, ["eeg", "ecg"])
    raw = mne.io.RawArray(eeg_uv * 1e-6, info, verbose="error")
    raw.set_meas_date(T0)
    raw.set_annotations(
        mne.Annotations([2.0], [0.5], ["BAD_ACQ_SKIP"], orig_time=raw.info["meas_date"])
    )
    path = tmp_path / "rec.edf"
    mne.export.export_raw(path, raw, fmt="edf", add_ch_type=True, verbose="error")
    blocks = {b.modality: b for b in read_edf(path)}
    assert set(blocks) == {"eeg", "ecg"}
    eeg = blocks["eeg"]
    assert eeg.channels == ("Fp1",) and eeg.sfreq == sfreq
    assert eeg.t[0] == T0
    missing = np.zeros(n, dtype=bool)
    missing[512:640] = True
    assert np.isnan(eeg.values[missing]).all()
    step = float(eeg_uv[0].max() - eeg_uv[0].min()) / 65534
    np.testing.assert_allclose(eeg.values[~missing, 0], eeg_uv[0, ~missing], atol=step)
    assert [(g.first_index, g.n_samples) for g in eeg.gaps] == [(512, 128)]


def test_corrupt_edf_and_unknown_extension(tmp_path: Path) -> None:
    path = tmp_path / "broken.edf"
    path.write_bytes(b"0       not an edf header" + bytes(100))
    with pytest.raises(ConfigError, match=r"broken\.edf.*EDF"):
        read_recording(path)
    with pytest.raises(ConfigError, match=r"\.mat"):
        read_recording(tmp_path / "x.mat")
    with pytest.raises(ConfigError, match="does not exist"):
        read_recording(tmp_path / "missing.edf")


# -- XDF, written per the specification (https://github.com/sccn/xdf/wiki/Specifications) --


def _chunk(tag: int, content: bytes) -> bytes:
    """NumLengthBytes=4, Length (tag + content), Tag, Content."""
    return bytes([4]) + struct.pack("<I", len(content) + 2) + struct.pack("<H", tag) + content


def _header(stream_id: int, xml: str) -> bytes:
    return _chunk(2, struct.pack("<I", stream_id) + xml.encode())


def _samples(stream_id: int, stamps: np.ndarray, values: np.ndarray, fmt: str) -> bytes:
    body = struct.pack("<I", stream_id) + bytes([4]) + struct.pack("<I", len(stamps))
    for stamp, row in zip(stamps, values, strict=True):
        body += bytes([8]) + struct.pack("<d", stamp) + struct.pack(f"<{len(row)}{fmt}", *row)
    return _chunk(3, body)


def _stream_xml(
    name: str, kind: str, channels: list[tuple[str, str]], rate: float, fmt: str
) -> str:
    chans = "".join(f"<channel><label>{c}</label><unit>{u}</unit></channel>" for c, u in channels)
    return (
        f'<?xml version="1.0"?><info><name>{name}</name><type>{kind}</type>'
        f"<channel_count>{len(channels)}</channel_count><nominal_srate>{rate}</nominal_srate>"
        f"<channel_format>{fmt}</channel_format><source_id>{name}</source_id>"
        f"<desc><channels>{chans}</channels></desc></info>"
    )


def test_xdf_streams_become_blocks(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    sfreq, n = 128.0, 512
    stamps = 1000.0 + np.arange(n) / sfreq
    eeg = rng.normal(0, 1e-5, (n, 2)).astype(np.float32)  # volts, as some amplifiers send
    rr_t = 1000.5 + np.cumsum(np.full(5, 0.8))
    rr = np.full((5, 1), 0.8)  # seconds
    data = b"XDF:" + _chunk(1, b'<?xml version="1.0"?><info><version>1.0</version></info>')
    data += _header(
        1, _stream_xml("Muse", "EEG", [("AF7", "volts"), ("AF8", "volts")], sfreq, "float32")
    )
    data += _header(2, _stream_xml("Strap", "RR", [("RR", "s")], 0, "double64"))
    data += _header(
        3,
        '<?xml version="1.0"?><info><name>Marks</name><type>Markers</type>'
        "<channel_count>1</channel_count><nominal_srate>0</nominal_srate>"
        "<channel_format>string</channel_format></info>",
    )
    data += _samples(1, stamps, eeg, "f")
    data += _samples(2, rr_t, rr, "d")
    path = tmp_path / "lsl.xdf"
    path.write_bytes(data)
    blocks = {b.modality: b for b in read_xdf(path)}
    assert set(blocks) == {"eeg", "rr"}
    got = blocks["eeg"]
    assert got.channels == ("AF7", "AF8") and got.sfreq == sfreq and got.unit == "µV"
    np.testing.assert_allclose(got.values, eeg.astype(np.float64) * 1e6, rtol=1e-12)
    np.testing.assert_allclose(got.t, stamps, atol=1e-6)
    assert blocks["rr"].sfreq is None
    np.testing.assert_allclose(blocks["rr"].values, rr * 1000.0)
    path.write_bytes(data[: len(data) // 2][:10])
    with pytest.raises(ConfigError, match=r"lsl\.xdf"):
        read_xdf(path)
