"""``affectstream bench features`` prints one JSON object last (a benchmark, not a timing test)."""

from __future__ import annotations

import json

import pytest

from affectstream.cli import main


@pytest.mark.slow
def test_bench_features_prints_json_with_agreement(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "bench",
            "features",
            "--minutes",
            "1.5",
            "--naive-windows",
            "1",
            "--agreement-windows",
            "3",
            "--json",
        ]
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("naive_seconds", "batch_seconds", "speedup", "stream_ms_per_step"):
        assert result[key] > 0
    assert result["windows"] == (90 - 60) // 5 + 1
    assert result["naive_extrapolated"] is True
    assert result["stream_equals_batch"] is True
    agreement = result["agreement"]
    assert agreement["hrv_time_max_rel_diff_vs_nk_hrv_time_same_peaks"] < 1e-12
    assert agreement["eeg_band_power_max_rel_diff_vs_psd_array_welch"] < 1e-9
    assert agreement["scr_count_equal_fraction_vs_nk_eda_peaks_same_phasic"] == 1.0
    assert set(result["p95_diff_reasons"]) == {"hrv", "eda", "eeg"}


def test_bench_features_rejects_a_bad_length(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "features", "--minutes", "-1"]) == 2
    assert "--minutes" in capsys.readouterr().err
