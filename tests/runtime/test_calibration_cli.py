"""``affectstream record`` with calibration blocks, and ``affectstream valence``, as users run
them: a real process on emulated devices answering the self-report prompt on stdin."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from affectstream.cli import main
from affectstream.models.valence import CalibrationBlock, PersonalValenceModel
from affectstream.models.valence_store import save_personal_valence
from affectstream.store import open_store
from tests.watchdog import run_watched

PROTOCOL = {
    "phases": [
        {"name": "baseline", "duration": 2},
        {"name": "happy", "duration": 3, "calibration": True},
        {"name": "sad", "duration": 3, "calibration": True},
        {"name": "rest", "duration": 3},
    ]
}


@pytest.mark.slow
def test_record_asks_after_each_calibration_block_and_says_why_nothing_was_fitted(
    tmp_path: Path,
) -> None:
    protocol = tmp_path / "p.json"
    protocol.write_text(json.dumps(PROTOCOL))
    answers = tmp_path / "answers.toml"
    answers.write_text("[happy]\nvalence = 8\narousal = 3\n")
    store = tmp_path / "store"
    command = [sys.executable, "-m", "affectstream", "record", "--emulate", "hr", "--store",
               str(store), "--participant", "P3", "--protocol", str(protocol),
               "--self-reports", str(answers), "--json"]  # fmt: skip
    env = {"AFFECTSTREAM_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}

    def answer_prompts(stream: str, line: str, process: subprocess.Popen[str]) -> None:
        # Asked only for the block the answers file leaves out.
        if stream == "stderr" and "Block 'sad' ended" in line:
            assert process.stdin is not None
            process.stdin.write("2 3\n")
            process.stdin.flush()

    done = run_watched(command, env=env, on_line=answer_prompts)
    out, stderr = done.stdout, done.stderr.splitlines()
    assert done.returncode == 0, done.stderr
    summary = json.loads(out.strip().splitlines()[-1])
    result = summary["valence_calibration"]
    assert result["rated"] == ["happy", "sad"] and result["unrated"] == []
    # An 11-s session holds no 60-s window: nothing fitted, and the summary says what to do.
    assert result["status"] == "not fitted" and "no stored feature windows" in result["reason"]
    assert "longer than the feature window" in result["reason"]
    assert any("valence calibration: not fitted" in line for line in stderr)
    with open_store(store) as opened:
        events = opened.read("events", tags={"session": summary["session"]})
    reports = events[events["kind"] == "self_report"].sort_values("time_ns")
    assert reports[["detail", "valence", "arousal"]].values.tolist() == [
        ["happy", 8.0, 3.0], ["sad", 2.0, 3.0],
    ]  # fmt: skip
    assert "2 3" not in events.loc[events["kind"] == "marker", "label"].tolist()
    phases = events[events["kind"] == "phase"].set_index("label")["calibration"]
    assert phases["happy"] == 1 and phases["sad"] == 1 and np.isnan(phases["rest"])


def test_valence_show_and_delete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AFFECTSTREAM_HOME", str(tmp_path))
    rng = np.random.default_rng(0)
    ratings = [(8.0, 3.0), (2.0, 3.0), (7.0, 4.0), (3.0, 2.0)]
    rating = np.repeat([v for v, _ in ratings], 10)
    frame = pd.DataFrame(
        {"t_end": 100.0 + 10.0 * np.arange(40) + 10.0, "eeg_faa": rating + rng.normal(0, 1, 40)}
    )
    blocks = [CalibrationBlock(100.0 + 100 * k, 200.0 + 100 * k, v, a, f"b{k}")
              for k, (v, a) in enumerate(ratings)]  # fmt: skip
    save_personal_valence("P5", PersonalValenceModel().fit(frame, blocks, 10.0), sources=["s"])
    assert main(["valence", "show", "P5", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert shown["participant"] == "P5" and shown["accuracy"]["n_episodes"] == 4
    assert main(["valence", "show", "P5"]) == 0
    assert "# Personal valence model: P5" in capsys.readouterr().out
    assert main(["valence", "delete", "P5", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip())["deleted"] is True
    assert main(["valence", "show", "P5"]) != 0
    assert "has no valence model" in capsys.readouterr().err
