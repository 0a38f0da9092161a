"""Replay tells the truth: feature errors fail the run; device names from files are ids."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from affectstream.cli import main
from affectstream.errors import ConfigError
from affectstream.runtime.replay import load_source, replay_blocks
from affectstream.signal import WindowConfig
from affectstream.store import EmbeddedStore
from affectstream.types import SampleBlock

T0 = 1.7e9


def _rr_in_seconds(n: int = 150) -> SampleBlock:
    """RR intervals stored as seconds under the unit ms: the HRV extractor refuses them."""
    rr = np.full(n, 0.8)
    return SampleBlock(
        stream="strap/rr",
        modality="rr",
        channels=("rr",),
        unit="ms",
        sfreq=None,
        t=T0 + np.cumsum(rr),
        values=rr[:, None],
        index=np.arange(n, dtype=np.int64),
    )


def test_replay_with_feature_errors_exits_nonzero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store_path = tmp_path / "store"
    block = _rr_in_seconds()
    with EmbeddedStore(store_path) as store:
        first = replay_blocks(
            [block],
            store,
            session_id="S-bad-rr",
            window=WindowConfig(window=30.0, step=5.0),
            own_windows=False,
        )
    # Precondition: the runtime saw the error (the raw samples are stored all the same).
    assert first["stored"] and "strap/rr" in first["feature_errors"]

    code = main(["replay", "S-bad-rr", "--store", str(store_path), "--no-progress", "--json"])
    captured = capsys.readouterr()
    summary = json.loads(captured.out.strip().splitlines()[-1])
    assert code == 1
    assert "strap/rr" in summary["feature_errors"]
    lines = [line for line in captured.err.splitlines() if "features of strap/rr failed" in line]
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "Traceback" not in captured.err


@pytest.mark.parametrize("name", ['ev"il,x=1', "a\\b", "x" * 65, "-starts-with-dash"])
def test_device_names_from_files_are_validated(tmp_path: Path, name: str) -> None:
    t = T0 + np.arange(0, 60, 0.25)
    path = tmp_path / f"{name}.csv"
    pd.DataFrame({"time_ns": np.rint(t * 1e9).astype(np.int64), "eda": 4.0 + 0 * t}).to_csv(
        path, index=False
    )
    with pytest.raises(ConfigError, match="device id") as info:
        load_source(path)
    message = str(info.value)
    assert "\n" not in message and "Rename the file" in message


def test_hostile_device_name_cli_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    t = T0 + np.arange(0, 60, 0.25)
    path = tmp_path / 'dev"ice,tag=x.csv'
    pd.DataFrame({"time_ns": np.rint(t * 1e9).astype(np.int64), "eda": 4.0 + 0 * t}).to_csv(
        path, index=False
    )
    code = main(["replay", str(path), "--no-progress"])
    err = capsys.readouterr().err
    assert code != 0
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "device id" in errors[0]
    assert "Traceback" not in err
