"""Bad recording files get one clear error, never a traceback, a hang or an OOM.

Each case is one a red-team pass found (issue 10): a year-long gap, a sparse 2 GB file named
``.csv``, a header-only CSV, an EDF cut short, a folder, ``inf`` cells. A hypothesis fuzz
throws damaged CSV text and EDF bytes at the readers: every outcome is blocks or an
:class:`AffectstreamError`.
"""

from __future__ import annotations

import json
import os
import string
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from affectstream.cli import main
from affectstream.errors import AffectstreamError, ConfigError, SignalError
from affectstream.export import export_session
from affectstream.io import MAX_GAP_SECONDS, read_recording
from affectstream.io.layouts import check_size
from affectstream.store import EmbeddedStore

from .conftest import SESSION, Built

T0 = 1_700_000_000.0


def eda_csv(path: Path, seconds: float = 120.0, sfreq: float = 4.0) -> pd.DataFrame:
    n = int(seconds * sfreq)
    frame = pd.DataFrame(
        {"time": T0 + np.arange(n) / sfreq, "eda": 2.0 + 0.1 * np.sin(np.arange(n) / 20)}
    )
    frame.to_csv(path, index=False)
    return frame


def last_stderr_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err and "Traceback" not in "\n".join(err)
    return err[-1]


def test_a_timestamp_a_year_later_is_refused_not_filled(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "eda.csv"
    frame = eda_csv(path)
    frame.loc[len(frame) - 1, "time"] += 365 * 86400.0  # a typo in one timestamp
    frame.to_csv(path, index=False)
    with pytest.raises(SignalError, match=r"31536\d+ s pass between sample 478 and the next"):
        read_recording(path)
    assert main(["replay", str(path), "--no-progress", "--json"]) == 2
    assert "Split the recording" in last_stderr_line(capsys)
    # A gap under the bound is a gap (NaN rows), as before.
    frame.loc[len(frame) - 1, "time"] = frame["time"].iloc[-2] + MAX_GAP_SECONDS / 2
    frame.to_csv(path, index=False)
    (block,) = read_recording(path)
    assert len(block.gaps) == 1 and block.gaps[0].n_samples == MAX_GAP_SECONDS / 2 * 4 - 1
    # The bound is a setting: a tighter one refuses that gap too.
    assert main(["replay", str(path), "--no-progress", "--json", "--max-gap", "60"]) == 2
    assert "longer than 60 s" in last_stderr_line(capsys)


def test_sparse_two_gigabyte_file_named_csv(tmp_path: Path) -> None:
    path = tmp_path / "disk.csv"
    with path.open("wb") as handle:
        handle.truncate(2 * 1024**3)  # sparse: no disk used, NUL bytes when read
    with pytest.raises(ConfigError, match="binary data"):
        read_recording(path)
    os.remove(path)


def test_text_bigger_than_free_memory_is_refused_before_loading(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_text("time,eda\n" + "".join(f"{i},{2.0 + i % 7 / 10}\n" for i in range(2000)))
    free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    # The same file, judged as if each byte took more memory than the machine has free.
    factor = 2.0 * free / path.stat().st_size
    with pytest.raises(ConfigError, match=r"GB of memory free: split it"):
        check_size(path, factor)
    check_size(path)  # 20 KB: fine
    assert len(read_recording(path, sfreq=None)) == 1


def test_header_only_csv(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("time,eda\n")
    with pytest.raises(ConfigError, match=r"header .* but no data rows"):
        read_recording(path)


def test_inf_is_refused_at_read(tmp_path: Path) -> None:
    path = tmp_path / "eda.csv"
    frame = eda_csv(path)
    frame["eda"] = frame["eda"].astype(object)
    frame.loc[[10, 20, 30], "eda"] = "inf"
    frame.to_csv(path, index=False)
    with pytest.raises(SignalError, match=r"3 infinite value\(s\), the first in data row 11"):
        read_recording(path)


def test_truncated_edf_is_reported(
    built: Built, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with EmbeddedStore(built.store_path) as store:
        result = export_session(store, SESSION, "edf", tmp_path / "edf")
    path = next(p for p in result.files if "eeg" in p.name)
    whole = path.read_bytes()
    assert len(read_recording(path)) == 1
    cut = tmp_path / "cut.edf"
    cut.write_bytes(whole[: int(len(whole) * 0.45)])
    with pytest.raises(ConfigError, match=r"cut\.edf' is truncated: its header promises"):
        read_recording(cut)
    assert main(["replay", str(cut), "--no-progress", "--json"]) == 2
    assert "truncated" in last_stderr_line(capsys)


def test_a_plain_folder_is_no_session_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "recordings"
    folder.mkdir()
    assert main(["replay", str(folder), "--no-progress", "--json"]) == 2
    line = last_stderr_line(capsys)
    assert "is a folder but no Empatica E4 export" in line and "does not exist" not in line


def test_short_recording_exits_non_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "eda.csv"
    eda_csv(path, seconds=30.0)
    assert main(["replay", str(path), "--no-progress", "--json"]) == 2
    line = last_stderr_line(capsys)
    assert "shorter than one 60-s feature window" in line and "--window 30" in line
    assert main(["replay", str(path), "--no-progress", "--json", "--window", "20"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["n_feature_rows"] == (30 - 20) // 5 + 1  # windows ending at 20, 25, 30 s


# -- fuzz ----------------------------------------------------------------------------------

_CELLS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**12), 10**12).map(str),
    st.text(string.printable, max_size=6),
    st.sampled_from(["", "nan", "inf", "-inf", "1e400", "2026-01-01T00:00:00Z", '"', "\t"]),
)
_HEADERS = st.lists(
    st.sampled_from(
        ["time", "time_ns", "timestamps", "t", "eda", "ecg[mV]", "eeg_af7", "rr", "hr", "TP9",
         "AF7", "AF8", "TP10", "Right AUX", "ppg", "foo", "RAW_TP9", "TimeStamp", ""]
    ),
    min_size=1,
    max_size=6,
)  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(header=_HEADERS, rows=st.lists(st.lists(_CELLS, min_size=1, max_size=7), max_size=30))
def test_fuzz_csv_reader_fails_cleanly(
    header: list[str], rows: list[list[str]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "rec.csv"
    path.write_text("\n".join([",".join(header), *(",".join(r) for r in rows)]) + "\n")
    try:
        blocks = read_recording(path, sfreq=4.0)
    except AffectstreamError as exc:
        assert "\n" not in str(exc).strip() or len(str(exc)) < 2000
        return
    for block in blocks:
        assert np.all(~np.isinf(block.values))
        assert block.values.shape == (len(block), len(block.channels))


@pytest.fixture(scope="module")
def edf_bytes(built: Built, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    with EmbeddedStore(built.store_path) as store:
        result = export_session(store, SESSION, "edf", tmp_path_factory.mktemp("edf"))
    return next(p for p in result.files if "ecg" in p.name).read_bytes()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture])  # fmt: skip
@given(
    cut=st.one_of(st.none(), st.floats(0.0, 1.0)),
    flips=st.lists(st.tuples(st.integers(0, 2047), st.integers(0, 255)), max_size=8),
)
def test_fuzz_edf_reader_fails_cleanly(
    edf_bytes: bytes,
    cut: float | None,
    flips: list[tuple[int, int]],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    data = bytearray(edf_bytes)
    for offset, value in flips:  # damage the header (the first 2 KB)
        data[offset] = value
    if cut is not None:
        data = data[: int(len(data) * cut)]
    path = tmp_path_factory.mktemp("fuzz") / "rec.edf"
    path.write_bytes(bytes(data))
    try:
        blocks = read_recording(path)
    except AffectstreamError:
        return
    for block in blocks:
        assert np.all(~np.isinf(block.values))
