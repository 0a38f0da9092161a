"""The extraction on real recordings in ../shared/data (skipped when the folder is absent)."""

from __future__ import annotations

import warnings
from pathlib import Path

import mne
import neurokit2 as nk
import numpy as np
import pandas as pd
import pytest

from affectstream.signal import EEG_BANDS, WindowConfig, extract_features
from affectstream.signal.hrv import detect_beats
from affectstream.types import SampleBlock

pytestmark = pytest.mark.shared_data
T0 = 1_700_000_000.0


def _e4(path: Path, modality: str, channels: tuple[str, ...], scale: float = 1.0) -> SampleBlock:
    """An Empatica E4 CSV: first row start time, second row rate, then samples."""
    header = pd.read_csv(path, header=None, nrows=2)
    start, rate = float(header.iloc[0, 0]), float(header.iloc[1, 0])
    values = pd.read_csv(path, header=None, skiprows=2).to_numpy(dtype=np.float64) / scale
    return SampleBlock.regular(f"S02/{modality}", modality, channels, values, rate, start)


def test_ecg_and_ppg_of_one_resting_recording_give_the_same_heart_rate(shared_data: Path) -> None:
    data = pd.read_csv(shared_data / "neurokit" / "bio_resting_5min_100hz.csv")
    ecg = SampleBlock.regular("r/ecg", "ecg", ("ECG",), data["ECG"].to_numpy(), 100.0, T0)
    ppg = SampleBlock.regular("r/ppg", "ppg", ("PPG",), data["PPG"].to_numpy(), 100.0, T0)
    from_ecg = extract_features([ecg])
    from_ppg = extract_features([ppg])
    assert len(from_ecg) == (len(data) // 100 - 60) // 5 + 1
    assert (from_ecg["quality_hrv"] > 0.7).all()
    # the ECG misses one beat and has two extra ones; artifact screening keeps them out
    np.testing.assert_allclose(from_ppg["hrv_mean_hr"], from_ecg["hrv_mean_hr"], atol=1.5)
    np.testing.assert_allclose(from_ppg["hrv_rmssd"], from_ecg["hrv_rmssd"], rtol=0.35)


def test_r_peaks_agree_with_neurokit_whole_recording_processing(shared_data: Path) -> None:
    data = pd.read_csv(shared_data / "neurokit" / "ecg_1000hz.csv")
    signal = data.iloc[:, 0].to_numpy(dtype=np.float64)
    block = SampleBlock.regular("r/ecg", "ecg", ("ECG",), signal, 1000.0, T0)
    ours = detect_beats(block)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, info = nk.ecg_peaks(nk.ecg_clean(signal, sampling_rate=1000), sampling_rate=1000)
    theirs = np.asarray(info["ECG_R_Peaks"])
    distance = np.abs(ours[:, None] - theirs[None, :]).min(axis=1)
    # causal vs zero-phase cleaning moves a peak by a few ms at most
    assert np.mean(distance <= 20) >= 0.95
    assert abs(len(ours) - len(theirs)) <= 0.02 * len(theirs) + 1


def test_lab_eda_at_100_hz(shared_data: Path) -> None:
    data = pd.read_csv(shared_data / "neurokit" / "bio_resting_8min_100hz.csv")
    eda = SampleBlock.regular("r/eda", "eda", ("EDA",), data["EDA"].to_numpy(), 100.0, T0)
    frame = extract_features([eda])
    assert frame["usable_eda"].all()
    # the tonic level follows the raw level within the window
    for _, row in frame.iloc[::10].iterrows():
        stop = round((row["t_end"] - T0) * 100)
        raw = data["EDA"].to_numpy()[stop - 6000 : stop]
        assert raw.min() <= row["eda_tonic_mean"] <= raw.max()


def test_stress_predict_wrist_session(shared_data: Path) -> None:
    folder = shared_data / "stress-predict" / "Raw_data" / "S02"
    eda = _e4(folder / "EDA.csv", "eda", ("EDA",))
    bvp = _e4(folder / "BVP.csv", "ppg", ("BVP",))
    temp = _e4(folder / "TEMP.csv", "temp", ("TEMP",))
    acc = _e4(folder / "ACC.csv", "acc", ("x", "y", "z"), scale=64.0)  # E4: 1/64 g
    frame = extract_features([eda, bvp, temp, acc])
    duration = len(eda) / 4.0
    assert len(frame) == pytest.approx((duration - 60) / 5 + 1, abs=1)
    for family in ("hrv", "eda", "temp", "acc"):
        assert frame[f"quality_{family}"].between(0, 1).all()
    # the E4 records zeros before skin contact: those windows are unusable, the rest not
    assert frame["usable_eda"].mean() > 0.8
    assert frame["temp_mean"].dropna().between(25, 40).all()
    assert frame["acc_mag_mean"].dropna().between(0.8, 1.3).mean() > 0.9
    # Wrist BVP during tasks is mostly unusable; the E4's own IBI output covers even less
    # of the session, so at least that share of windows should pass the quality check.
    ibi = pd.read_csv(folder / "IBI.csv", header=None, skiprows=1).to_numpy(dtype=np.float64)
    assert frame["usable_hrv"].mean() >= ibi[:, 1].sum() / duration
    # Usable windows agree with the E4's own heart rate (HR.csv) in the typical window.
    e4_hr = _e4(folder / "HR.csv", "hr", ("HR",))
    usable = frame[frame["usable_hrv"]]
    theirs = np.array(
        [e4_hr.values[(e4_hr.t >= t - 60) & (e4_hr.t < t), 0].mean() for t in usable["t_end"]]
    )
    assert np.median(np.abs(usable["hrv_mean_hr"].to_numpy() - theirs)) < 5.0


def test_stress_predict_ibi_as_rr_events(shared_data: Path) -> None:
    folder = shared_data / "stress-predict" / "Raw_data" / "S02"
    start = float(pd.read_csv(folder / "IBI.csv", nrows=0).columns[0])
    ibi = pd.read_csv(folder / "IBI.csv", header=None, skiprows=1).to_numpy(dtype=np.float64)
    rr = SampleBlock(
        stream="S02/rr",
        modality="rr",
        channels=("RR",),
        unit="ms",
        sfreq=None,
        t=start + ibi[:, 0],
        values=ibi[:, 1:2] * 1000.0,
        index=np.arange(len(ibi), dtype=np.int64),
    )
    frame = extract_features([rr])
    # E4 IBI has long dropouts: most windows are incomplete, and say so
    assert frame["quality_hrv"].between(0, 1).all()
    assert (frame["quality_hrv"] < 0.5).any()
    good = frame[frame["usable_hrv"]]
    for _, row in good.iterrows():
        inside = (rr.t >= row["t_end"] - 60) & (rr.t < row["t_end"])
        values = rr.values[inside, 0]
        # every interval of a usable window lies near the window's median
        assert np.all(np.abs(values - np.median(values)) < 0.6 * np.median(values))
        assert row["hrv_mean_nn"] == pytest.approx(values.mean(), rel=0.1)


def test_eegmat_edf(shared_data: Path) -> None:
    path = shared_data / "eegmat" / "data" / "Subject00_1.edf"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raw = mne.io.read_raw_edf(path, preload=True, verbose=False)
    eeg_names = [c for c in raw.ch_names if c.startswith("EEG") and "A2-A1" not in c]
    sfreq = float(raw.info["sfreq"])
    eeg = SampleBlock.regular(
        "e/eeg", "eeg", tuple(eeg_names), raw.get_data(picks=eeg_names).T * 1e6, sfreq, T0
    )
    ecg_data = raw.get_data(picks=["ECG ECG"])[0] * 1e6
    ecg = SampleBlock.regular("e/ecg", "ecg", ("ECG",), ecg_data, sfreq, T0)
    frame = extract_features([eeg, ecg], WindowConfig(faa_channels=("F7", "F8")))
    assert len(frame) == (round(raw.n_times / sfreq) - 60) // 5 + 1
    rel = [c for c in frame.columns if "_rel_o1" in c]
    assert len(rel) == len(EEG_BANDS)
    usable = frame[frame["usable_eeg"]]
    assert len(usable) > 0
    np.testing.assert_allclose(usable[rel].sum(axis=1), 1.0, rtol=1e-9)
    assert usable["eeg_faa"].notna().all()
    assert frame.loc[frame["usable_hrv"], "hrv_mean_hr"].between(40, 120).all()
