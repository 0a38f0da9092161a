"""Checks run inside the page: horizontal overflow, overlapping text, axe-core, screenshots."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tests.dashboard.conftest import AXE

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}

# Line boxes of every visible text node (Range.getClientRects), then every pair from
# different nodes that intersects by more than a pixel each way. Text in a closed dialog,
# a hidden element or a horizontally scrolled table cell is skipped by the visibility test.
_OVERLAPS = """
() => {
  const boxes = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  let node;
  while ((node = walker.nextNode())) {
    if (!node.textContent.trim()) continue;
    const el = node.parentElement;
    if (!el || !el.checkVisibility({ opacityProperty: true, visibilityProperty: true })) continue;
    if (el.closest("#toast, .sr, .skip")) continue;  // toast floats; .sr is not drawn
    const range = document.createRange();
    range.selectNodeContents(node);
    for (const r of range.getClientRects()) {
      if (r.width < 1 || r.height < 1) continue;
      boxes.push({ node, text: node.textContent.trim().slice(0, 40), r });
    }
  }
  const hits = [];
  for (let i = 0; i < boxes.length; i++) {
    for (let j = i + 1; j < boxes.length; j++) {
      const a = boxes[i], b = boxes[j];
      if (a.node === b.node) continue;
      const dx = Math.min(a.r.right, b.r.right) - Math.max(a.r.left, b.r.left);
      const dy = Math.min(a.r.bottom, b.r.bottom) - Math.max(a.r.top, b.r.top);
      if (dx > 1 && dy > 1) hits.push(a.text + " <-> " + b.text);
    }
  }
  return hits.slice(0, 20);
}
"""

_OVERFLOW = """
() => ({
  scroll: document.documentElement.scrollWidth,
  client: document.documentElement.clientWidth,
  wide: [...document.querySelectorAll("body *")]
    .filter((e) => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
    .filter((e) => !e.closest(".scroll") && e.checkVisibility())
    .slice(0, 5).map((e) => e.tagName + "." + e.className + "#" + e.id),
})
"""

_AXE = """
async () => (await axe.run(document, { resultTypes: ["violations"] })).violations
  .map((v) => ({ id: v.id, impact: v.impact, help: v.help,
                 nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")) }))
"""


def screenshot_dir() -> Path:
    """Where screenshots go: ``$DASHBOARD_SCREENSHOTS`` or ``bench-results/screenshots``."""
    out = Path(os.environ.get("DASHBOARD_SCREENSHOTS", "bench-results/screenshots"))
    out.mkdir(parents=True, exist_ok=True)
    return out


def check_layout(page: Any, name: str) -> None:
    """Screenshot ``page`` at desktop and phone size; no overflow and no overlapping text."""
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        page.wait_for_timeout(400)  # charts re-size on the next frame
        page.screenshot(path=str(screenshot_dir() / f"{name}-{label}.png"), full_page=True)
        overflow = page.evaluate(_OVERFLOW)
        assert overflow["scroll"] <= overflow["client"], f"{name} {label}: {overflow}"
        assert overflow["wide"] == [], f"{name} {label}: wider than the screen: {overflow}"
        overlaps = page.evaluate(_OVERLAPS)
        assert overlaps == [], f"{name} {label}: overlapping text: {overlaps}"
    page.set_viewport_size(DESKTOP)


def check_axe(page: Any, name: str) -> None:
    """axe-core (from npm, tests/node_modules): no serious or critical violation."""
    page.add_script_tag(path=str(AXE))
    violations = page.evaluate(_AXE)
    bad = [v for v in violations if v["impact"] in ("serious", "critical")]
    assert bad == [], f"{name}: {bad}"
