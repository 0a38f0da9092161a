"""The dashboard's own endpoints over a real ``affectstream serve``: roles, envelopes, exports.

Expected codes come from SERVICE.md's table (viewer: estimates and quality, no raw, no
export; operator: live signals but no raw export; researcher and admin: everything of
their studies); another study's session is 404 for all but admin.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Iterator

import httpx
import pytest

from affectstream.api.trace_push import OVERLAP
from tests.api.conftest import Server, World, start_ingest_session

ROLES = ("admin", "researcher", "operator", "viewer", "device")


def _block(seqs: range, t0: float, values: list[float]) -> dict:
    return {
        "stream": "band/eda",
        "modality": "eda",
        "channels": ["eda"],
        "sfreq": 4.0,
        "first_seq": seqs.start,
        "t": [t0 + s / 4.0 for s in seqs],
        "values": [[values[s]] for s in seqs],
        "device": "band",
    }


def _wait_trace(client: httpx.Client, sid: str, seconds: float) -> dict:
    """Poll until the raw EDA is in the store (the session flushes on its own clock)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        r = client.get(
            f"/dashboard/sessions/{sid}/traces",
            params={"modalities": "eda,ecg", "seconds": seconds, "points": 300},
        )
        assert r.status_code == 200, r.text
        if "eda" in r.json()["traces"]:
            return dict(r.json()["traces"]["eda"])
        time.sleep(0.3)
    raise AssertionError("the ingested EDA never reached the trace endpoint")


def test_trace_envelope_and_gap(server: Server, world: World, admin: httpx.Client) -> None:
    sid = start_ingest_session(admin, world.participant_a)
    n = 40  # 10 s at 4 Hz; samples 16..23 (2 s) never arrive
    t0 = time.time() - 11.0
    values = [((i * 7) % 11) - 5.0 for i in range(n)]
    for seqs in (range(0, 16), range(24, n)):
        r = admin.post(f"/sessions/{sid}/ingest", json={"blocks": [_block(seqs, t0, values)]})
        assert r.status_code == 200, r.text
    trace = _wait_trace(admin, sid, seconds=9.5)
    t = [t0 + i / 4.0 for i in range(n)]
    in_window = [v for i, v in enumerate(values) if t[i] >= t[-1] - 9.5 and not 16 <= i < 24]
    finite_min = [x for x in trace["min"] if x is not None]
    finite_max = [x for x in trace["max"] if x is not None]
    assert min(finite_min) == min(in_window)
    assert max(finite_max) == max(in_window)
    # The window ends at the newest sample; the hole is one shaded span between the samples
    # around it, at least the hole minus a bin on each side; no span where samples are.
    assert trace["t"][-1] < t[-1]
    width = trace["t"][1] - trace["t"][0]
    inside = [g for g in trace["gaps"] if g[0] >= t[15] - 1e-6 and g[1] <= t[24] + 1e-6]
    assert len(inside) == 1
    assert inside[0][1] - inside[0][0] >= (t[24] - t[15]) - 2 * width
    for g in trace["gaps"]:
        if g not in inside:  # only the window's start may precede the first sample
            assert g[1] <= t[0] + width
    admin.post(f"/sessions/{sid}/stop")


def _codes(server: Server, w: World, method: str, path: str) -> dict[str, int]:
    out = {}
    for role in ROLES:
        with server.client(w.keys[role]) as client:
            out[role] = client.request(method, path).status_code
    return out


def test_roles_on_dashboard_routes(server: Server, world: World, admin: httpx.Client) -> None:
    sa = start_ingest_session(admin, world.participant_a)
    sb = start_ingest_session(admin, world.participant_b)
    tr = "/traces?modalities=eda"
    expected = {
        ("GET", "/dashboard/me"): (200, 200, 200, 200, 200),
        ("GET", "/dashboard/overview"): (200, 200, 200, 200, 403),
        ("GET", f"/dashboard/sessions/{sa}/live"): (200, 200, 200, 200, 403),
        ("GET", f"/dashboard/sessions/{sb}/live"): (200, 404, 404, 404, 403),
        ("GET", f"/dashboard/sessions/{sa}{tr}"): (200, 200, 200, 403, 403),
        ("GET", f"/dashboard/sessions/{sb}{tr}"): (200, 404, 404, 403, 403),
        ("GET", f"/dashboard/sessions/{sa}/timeline"): (200, 200, 200, 200, 403),
        ("GET", f"/dashboard/sessions/{sb}/timeline"): (200, 404, 404, 404, 403),
        # Exports of a running session are refused (409) after the role and object checks.
        ("POST", f"/dashboard/sessions/{sa}/export?format=estimates"): (409, 409, 409, 403, 403),
        ("POST", f"/dashboard/sessions/{sa}/export?format=csv"): (409, 409, 403, 403, 403),
        ("POST", f"/dashboard/sessions/{sa}/export?format=edf"): (409, 409, 403, 403, 403),
        ("POST", f"/dashboard/sessions/{sb}/export?format=estimates"): (409, 404, 404, 403, 403),
    }
    failures = []
    for (method, path), codes in expected.items():
        got = _codes(server, world, method, path)
        for role, code in zip(ROLES, codes, strict=True):
            if got[role] != code:
                failures.append(f"{role:10s} {method} {path}: {got[role]} != {code}")
    assert not failures, "\n".join(failures)
    with server.client(world.keys["operator"]) as op:
        may = op.get("/dashboard/me").json()["may"]
    assert may["export"] and not may["export_raw"] and may["traces"]
    with server.client(world.keys["viewer"]) as viewer:
        may = viewer.get("/dashboard/me").json()["may"]
    assert not (may["export"] or may["export_raw"] or may["traces"] or may["markers"])
    for sid in (sa, sb):
        admin.post(f"/sessions/{sid}/stop")


def test_the_page_and_its_assets_are_served(server: Server) -> None:
    page = httpx.get(server.url + "/ui")
    assert page.status_code == 200 and "uPlot.iife.min.js" in page.text
    for asset in ("app.js", "charts.js", "words.js", "app.css", "vendor/uplot/LICENSE"):
        assert httpx.get(f"{server.url}/ui/static/{asset}").status_code == 200, asset
    assert httpx.get(server.url + "/", follow_redirects=False).headers["location"] == "/ui"


@pytest.mark.slow
def test_export_downloads_what_was_stored(
    server: Server, world: World, admin: httpx.Client
) -> None:
    sid = start_ingest_session(admin, world.participant_a)
    values = [1.0 + i / 100 for i in range(40)]
    t0 = time.time() - 10.0
    r = admin.post(f"/sessions/{sid}/ingest", json={"blocks": [_block(range(40), t0, values)]})
    assert r.status_code == 200, r.text
    assert admin.post(f"/sessions/{sid}/stop").status_code == 200
    with server.client(world.keys["operator"]) as op:
        est = op.post(f"/dashboard/sessions/{sid}/export", params={"format": "estimates"})
        assert (
            op.post(f"/dashboard/sessions/{sid}/export", params={"format": "csv"}).status_code
            == 403
        )
    assert est.status_code == 200, est.text
    names = zipfile.ZipFile(io.BytesIO(est.content)).namelist()
    assert not any("raw" in n for n in names), names
    full = admin.post(f"/dashboard/sessions/{sid}/export", params={"format": "csv"})
    assert full.status_code == 200, full.text
    archive = zipfile.ZipFile(io.BytesIO(full.content))
    raw = [n for n in archive.namelist() if "raw_eda" in n and n.endswith(".csv")]
    assert raw, archive.namelist()
    lines = archive.read(raw[0]).decode().strip().splitlines()
    assert len(lines) - 1 == len(values)  # header + one row per ingested sample
    audit = admin.get("/audit", params={"action": "export"}).json()["items"]
    assert {a["detail"] for a in audit if a["resource"] == f"session/{sid}"} >= {
        "format=estimates",
        "format=csv",
    }


def _trace_frames(client: httpx.Client, sid: str) -> Iterator[dict]:
    """The ``traces`` messages of the session's live stream, as they come (30-s bound)."""
    deadline = time.monotonic() + 30
    path = f"/sessions/{sid}/events?traces=eda,ecg"
    with client.stream("GET", path, timeout=httpx.Timeout(30.0)) as response:
        assert response.status_code == 200, response.read()
        for line in response.iter_lines():
            if line.startswith("data: ") and '"type": "traces"' in line:
                yield json.loads(line[6:])
            assert time.monotonic() < deadline, "too few traces messages in 30 s"
    raise AssertionError("the live stream ended before its traces messages")


def _values(frame: dict, key: str) -> list[float]:
    return [x for x in frame[key] if x is not None]


def test_traces_pushed_on_live_stream(server: Server, world: World, admin: httpx.Client) -> None:
    """The live page's data path: the session's in-memory samples, pushed as min/max bins."""
    sid = start_ingest_session(admin, world.participant_a)
    t0 = time.time() - 8.0
    values = [((i * 5) % 13) - 6.0 for i in range(32)]  # 8 s at 4 Hz
    r = admin.post(f"/sessions/{sid}/ingest", json={"blocks": [_block(range(32), t0, values)]})
    assert r.status_code == 200, r.text
    frames = _trace_frames(admin, sid)
    first = next(frames)
    assert first["full"]  # a viewer's first frame is the whole window
    eda = first["traces"]["eda"]
    assert "ecg" not in first["traces"]  # the session has no ECG: left out, not empty
    assert eda["stop"] == pytest.approx(t0 + 31 / 4.0)  # ends at the newest sample
    assert max(_values(eda, "max")) == max(values)
    assert min(_values(eda, "min")) == min(values)
    assert eda["t0"] <= t0 and eda["t0"] + len(eda["min"]) * eda["w"] >= t0 + 31 / 4.0
    # Newer samples: the next frames hold only the bins from about a second (OVERLAP)
    # before the previous newest sample on, on the same grid, and end at the newest one.
    more = [((i * 3) % 7) + 10.0 for i in range(32, 40)]
    block = _block(range(32, 40), t0, values + more)
    assert admin.post(f"/sessions/{sid}/ingest", json={"blocks": [block]}).status_code == 200
    for frame in frames:
        assert not frame["full"]
        later = frame["traces"]["eda"]
        if later["stop"] > eda["stop"]:
            break
    assert later["stop"] == pytest.approx(t0 + 39 / 4.0)
    assert later["w"] == eda["w"]
    step = (later["t0"] - eda["t0"]) / eda["w"]
    assert step == pytest.approx(round(step), abs=1e-6) and step > 0  # the same grid
    assert later["t0"] >= eda["stop"] - OVERLAP - eda["w"]
    assert max(_values(later, "max")) == max(more)
    every = values + more
    sent = [every[i] for i in range(40) if t0 + i / 4.0 >= later["t0"]]  # in its bins
    assert min(_values(later, "min")) == min(sent)
    frames.close()
    # A viewer may follow the session but not its raw traces.
    with server.client(world.keys["viewer"]) as viewer:
        assert viewer.get(f"/sessions/{sid}/events?traces=eda").status_code == 403
    admin.post(f"/sessions/{sid}/stop")
