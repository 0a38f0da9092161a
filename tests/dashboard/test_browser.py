"""The dashboard in a real headless Chromium against a real ``affectstream serve``.

A researcher logs in with the keyboard, starts an emulated session (the runtime's BLE
emulation: bumble + bleak), watches live values change, adds markers, answers the
self-report prompt when the baseline block ends, ends the session and downloads exports;
everything the page claims to have stored is read back through the API. Every page is
screenshotted at 1280x800 and 390x844 and checked for overflow, overlapping text and
axe-core violations. A viewer and an operator then see only what their roles allow.
"""

from __future__ import annotations

import time
import zipfile
from typing import Any

import httpx
import pytest

from tests.api.conftest import Server, World, start_ingest_session
from tests.dashboard.browser import check_axe, check_layout

pytestmark = pytest.mark.slow

DURATION = 80.0  # s: baseline 32 s, then stress and recovery (runtime.demo_script); ended early


def _login(page: Any, server: Server, key: str) -> None:
    """Log in with the keyboard only: the key field has focus; type, Enter."""
    page.goto(server.url + "/ui#/login")
    page.wait_for_selector("#key")
    assert page.evaluate("document.activeElement.id") == "key"
    page.keyboard.type(key)
    page.keyboard.press("Enter")
    page.wait_for_selector("#nav:not([hidden])")


def _arousal_time(page: Any) -> str:
    return str(page.locator("#estimate dd").nth(2).inner_text())


def test_study_session_end_to_end(
    browser: Any, server: Server, world: World, tmp_path: Any
) -> None:
    key = world.keys["researcher"]
    context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(server.url + "/ui")
        check_layout(page, "login")
        check_axe(page, "login")
        _login(page, server, key)
        assert "(researcher)" in page.inner_text("#who")

        # Start an emulated session from the overview's form.
        page.wait_for_selector("#start-participant option", state="attached")
        check_layout(page, "overview")
        check_axe(page, "overview")
        page.get_by_label("Length (s)").fill(str(int(DURATION)))
        page.get_by_role("button", name="Start emulated session").click()
        page.wait_for_url("**#/live/*")
        sid = page.url.split("#/live/")[1]
        api = server.client(key)

        # Live: a first estimate arrives; traces keep updating.
        page.wait_for_selector("[data-testid=arousal]", timeout=60_000)
        first = _arousal_time(page)
        # Which models estimated and why the others did not: the 60-s wrist model has no
        # reference yet (an 80-s session's 32-s baseline cannot hold two of its windows).
        basis = page.inner_text("[data-testid=arousal-basis]")
        assert "stress-wrist: reference filling, 0 of 2 60-s windows" in basis, basis
        updates = page.evaluate("window.__chartStats['trace:ecg'].updates")
        page.wait_for_timeout(1500)
        assert page.evaluate("window.__chartStats['trace:ecg'].updates") > updates
        assert page.locator("figure.trace[data-modality=ecg]").is_visible()
        # Live data, not a redraw of the same envelope: the newest ECG sample drawn moves on
        # (pushed on the session's event stream; the page does not poll for traces).
        ecg = "figure.trace[data-modality=ecg]"
        raw = page.get_attribute(ecg, "data-newest")
        assert raw is not None, "no ECG samples drawn"
        newest = float(raw)
        page.wait_for_function(
            f"Number(document.querySelector('{ecg}').dataset.newest) > {newest}", timeout=15_000
        )
        assert page.locator("#phase-name").inner_text() in ("baseline", "stress", "recovery")

        # Markers: free text with the mouse, "Mark now" with the keyboard; both stored.
        page.get_by_label("Marker text").fill("participant coughed")
        page.get_by_role("button", name="Add marker").click()
        page.focus("#mark-now")
        page.keyboard.press("Enter")
        deadline = time.monotonic() + 10
        labels: set[str] = set()
        while time.monotonic() < deadline and labels != {"participant coughed", "mark"}:
            labels = {m["label"] for m in api.get(f"/sessions/{sid}/markers").json()}
            time.sleep(0.2)
        assert labels == {"participant coughed", "mark"}
        page.wait_for_selector("#markers li >> text=participant coughed")

        # A block ends (the baseline, or a later one on a slow machine): the page asks for a
        # self-report about that block; answer it.
        page.wait_for_selector("dialog#self-report[open]", timeout=60_000)
        live = api.get(f"/dashboard/sessions/{sid}/live").json()["live"]
        names = [p["name"] for p in live["phases"]]
        current = live["phase"]["name"] if live["phase"] else None
        ended = names[: names.index(current)] if current in names else names
        about = page.inner_text("#sam-about")
        assert any(f"“{name}”" in about for name in ended), (about, ended)
        check_axe(page, "self-report")
        page.get_by_label("arousal 7").check()
        page.get_by_label("valence 3").check()
        page.get_by_role("button", name="Save self-report").click()
        page.wait_for_selector("dialog#self-report", state="hidden")
        reports = api.get(f"/sessions/{sid}/self-reports").json()
        assert [(r["arousal"], r["valence"]) for r in reports] == [(7, 3)]

        # A newer estimate replaced the first one while the session ran.
        page.wait_for_function(
            f"document.querySelectorAll('#estimate dd')[2].innerText !== {first!r}",
            timeout=30_000,
        )
        check_layout(page, "live")
        check_axe(page, "live")

        # The overview's grid shows this participant's session with its live state.
        page.click("#nav >> text=Overview")
        tile = page.locator(f"article.tile[data-session='{sid}']")
        tile.wait_for(timeout=15_000)
        page.wait_for_function(
            f"document.querySelector(\"article.tile[data-session='{sid}']\")"
            ".innerText.includes('Phase:')",
            timeout=15_000,
        )
        assert "P-A" in tile.inner_text()
        # The tile's time axis spans the session's estimates (clock time), not years: an
        # estimate lies within the session, so at most its length plus the minute drawn
        # before a single estimate.
        chart = f"article.tile[data-session='{sid}'] .chart"
        page.wait_for_function(f'document.querySelector("{chart}").dataset.xmax')
        span = page.evaluate(
            f'(() => {{ const d = document.querySelector("{chart}").dataset;'
            " return [Number(d.xmin), Number(d.xmax), Date.now() / 1000]; })()"
        )
        assert 0 < span[1] - span[0] <= DURATION + 65, span
        assert abs(span[2] - span[1]) <= DURATION + 65, span
        check_layout(page, "overview-running")
        check_axe(page, "overview-running")
        page.click(f"article.tile[data-session='{sid}'] a")
        page.wait_for_url("**#/live/*")

        # End the session: the page goes to the session page with its timeline.
        page.get_by_role("button", name="End session").click()
        page.wait_for_url("**#/session/*", timeout=90_000)
        page.wait_for_selector("button[data-format=estimates]")
        status = api.get(f"/sessions/{sid}").json()["status"]
        assert status == "stopped"
        timeline = page.inner_text("#timeline")
        for text in ("phase", "baseline", "participant coughed", "marker"):
            assert text in timeline, text
        assert "Model card" in page.inner_text("main")
        check_layout(page, "session")
        check_axe(page, "session")

        # Export and download: estimates (no raw) and CSV (with raw ECG).
        for fmt, must in (("estimates", "affect"), ("csv", "raw_ecg")):
            with page.expect_download(timeout=120_000) as info:
                page.click(f"button[data-format={fmt}]")
            path = tmp_path / f"{fmt}.zip"
            info.value.save_as(path)
            names = zipfile.ZipFile(path).namelist()
            assert any(must in n for n in names), (fmt, names)
            if fmt == "estimates":
                assert not any("raw_" in n for n in names), names

        # The session list finds it by participant.
        page.goto(server.url + "/ui#/sessions")
        page.get_by_label("Participant").fill("P-A")
        page.get_by_role("button", name="Filter").click()
        page.wait_for_selector(f"#sessions a >> text={sid}")
        check_layout(page, "sessions")
        check_axe(page, "sessions")
        assert errors == []
    finally:
        context.close()


def _session_with_data(admin: httpx.Client, participant: int) -> str:
    sid = start_ingest_session(admin, participant)
    t0 = time.time() - 10
    block = {
        "stream": "band/eda",
        "modality": "eda",
        "channels": ["eda"],
        "sfreq": 4.0,
        "first_seq": 0,
        "t": [t0 + i / 4 for i in range(40)],
        "values": [[1.0 + i / 100] for i in range(40)],
        "device": "band",
    }
    assert admin.post(f"/sessions/{sid}/ingest", json={"blocks": [block]}).status_code == 200
    return sid


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_what_each_role_sees(
    browser: Any, server: Server, world: World, admin: httpx.Client, role: str
) -> None:
    sid = _session_with_data(admin, world.participant_a)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    try:
        _login(page, server, world.keys[role])
        page.goto(f"{server.url}/ui#/live/{sid}")
        page.wait_for_selector("#phase")
        page.wait_for_timeout(1500)
        traces = page.locator("figure.trace").count()
        controls = page.locator("#mark-now").count() + page.locator("#end-session").count()
        if role == "viewer":
            assert traces == 0 and controls == 0
        else:
            assert traces == 4 and controls == 2
            page.wait_for_selector("figure.trace[data-modality=eda]:not([hidden])")
        check_layout(page, f"live-{role}")
        admin.post(f"/sessions/{sid}/stop")
        page.goto(f"{server.url}/ui#/session/{sid}")
        page.wait_for_selector("#timeline")
        formats = page.eval_on_selector_all(
            "button[data-format]", "els => els.map(e => e.dataset.format)"
        )
        assert formats == ([] if role == "viewer" else ["estimates"])
        check_axe(page, f"session-{role}")
    finally:
        context.close()
