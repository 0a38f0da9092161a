"""The public Python entry point (``affectstream.runtime.Session``): the docs example runs
as written, every estimate reaches the callback, and markers and self-reports from code
are stored."""

from __future__ import annotations

import asyncio
import contextlib
import io
import math
import re
from pathlib import Path

import pytest

from affectstream.errors import ConfigError
from affectstream.models.bundle import ModelBundle
from affectstream.runtime import SELF_REPORT_KIND, Estimate, Session
from affectstream.store import open_store
from affectstream.store.base import TimeSeriesStore

DOCS = Path(__file__).resolve().parents[2] / "docs" / "runtime.md"


def _docs_example() -> str:
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("## From Python: `Session`", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None
    return match.group(1)


def _affect_and_events(store: TimeSeriesStore, session: str) -> tuple[list[int], list[dict]]:  # type: ignore[type-arg]
    affect = store.read("affect", tags={"session": session})
    events = store.read("events", tags={"session": session})
    return affect["time_ns"].tolist(), events.to_dict(orient="records")


def test_docs_example_is_short() -> None:
    lines = [line for line in _docs_example().splitlines() if line.strip()]
    assert len(lines) <= 20


@pytest.mark.slow
def test_docs_example_runs_and_sees_every_estimate(
    runtime_home: Path, arousal_bundle: ModelBundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AFFECTSTREAM_HOME", str(runtime_home))
    namespace: dict[str, object] = {}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(_docs_example(), str(DOCS), "exec"), namespace)  # the docs, verbatim
    summary = namespace["summary"]
    seen = namespace["seen"]
    assert isinstance(summary, dict) and isinstance(seen, list)
    assert summary["n_estimates"] >= 3
    with open_store(summary["store"]) as store:
        stored_times, events = _affect_and_events(store, summary["session"])
    # Every stored estimate reached the callback, once, in time order.
    assert [round(e.time * 1e9) for e in seen] == stored_times
    assert all(isinstance(e, Estimate) for e in seen)
    # An estimate, or none (NaN, confidence 0) with the reason: the first window, whose
    # reference of one window has no spread yet ("reference filling").
    for e in seen:
        assert e.arousal is not None
        if math.isnan(e.arousal):
            assert e.confidence == 0 and "reference filling" in e.fields["arousal_basis"]
        else:
            assert 0 <= e.arousal <= 1
    assert sum(math.isnan(e.arousal) for e in seen if e.arousal is not None) < len(seen) / 2
    markers = [e for e in events if e["kind"] == "marker"]
    assert [m["label"] for m in markers] == ["third estimate"]
    reports = [e for e in events if e["kind"] == SELF_REPORT_KIND]
    assert len(reports) == 1
    assert (reports[0]["arousal"], reports[0]["valence"], reports[0]["detail"]) == (
        7.0, 3.0, "felt tense"
    )  # fmt: skip
    # The marker follows the third estimate's computation, so it is later than its window.
    assert markers[0]["time_ns"] > stored_times[2]
    assert f"{len(seen)} of {summary['n_estimates']} estimates seen" in printed.getvalue()


@pytest.mark.slow
async def test_async_run_with_stop_from_the_callback(
    tmp_path: Path, arousal_bundle: ModelBundle
) -> None:
    seen: list[Estimate] = []

    def on_estimate(estimate: Estimate) -> None:
        seen.append(estimate)
        if len(seen) == 2:
            session.stop()

    session = Session(emulate="hr,eda", model=str(arousal_bundle.path), store=tmp_path / "s",
                      on_estimate=on_estimate)  # fmt: skip
    with pytest.raises(ConfigError, match="not running"):
        session.mark("too early")
    summary = await asyncio.wait_for(session.run(), timeout=180)
    assert session.session_id == summary["session"]
    assert len(seen) == summary["n_estimates"] >= 2  # the final flush may add some


def test_devices_or_emulate_exactly_one() -> None:
    with pytest.raises(ConfigError, match="either devices"):
        Session()
    with pytest.raises(ConfigError, match="either devices"):
        Session(["AA:BB:CC:DD:EE:FF"], emulate="all")
    with pytest.raises(ConfigError):
        Session(emulate="all", duration=-1)


@pytest.mark.slow
async def test_run_sync_inside_a_running_loop_uses_a_helper_thread(
    tmp_path: Path, arousal_bundle: ModelBundle
) -> None:
    """As in Jupyter, where a loop is already running in the caller's thread."""
    import threading

    threads: set[str] = set()

    def on_estimate(estimate: Estimate) -> None:
        threads.add(threading.current_thread().name)

    session = Session(emulate="hr,eda", model=str(arousal_bundle.path), store=tmp_path / "s",
                      duration=12, on_estimate=on_estimate)  # fmt: skip
    summary = session.run_sync()  # blocks this loop's thread; the session has its own
    assert summary["n_estimates"] > 0
    assert threads == {"affectstream-session"}
