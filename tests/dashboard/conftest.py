"""A real ``affectstream serve`` and a real headless Chromium (Debian's) driven by Playwright.

The server fixtures are the API suite's (a subprocess on a loopback port, its own home).
The browser is ``/usr/bin/chromium`` (Playwright's own browser download is unreachable
here); the browser tests skip with the reason when it or the ``playwright`` package is
missing. CI installs both (scripts/test.sh), so they run there.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import World, admin, server, world  # noqa: F401 (fixtures)

CHROMIUM = Path("/usr/bin/chromium")
AXE = Path(__file__).parents[1] / "node_modules" / "axe-core" / "axe.min.js"

__all__ = ["AXE", "CHROMIUM", "World"]


# Module scope: Playwright's sync API keeps an event loop running while it is open, and
# the asyncio tests of later modules cannot start theirs inside it.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, through Playwright (skips when either is missing)."""
    if not CHROMIUM.exists():
        pytest.skip("needs /usr/bin/chromium (Debian's chromium; scripts/test.sh installs it)")
    if not AXE.exists():
        pytest.skip(f"needs axe-core: npm install in {AXE.parents[2]} (scripts/test.sh does)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=str(CHROMIUM),
            # The machine's closed network refuses Chromium's own background connections.
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            yield chromium
        finally:
            chromium.close()
