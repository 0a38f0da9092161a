"""The shipped model bundles as the service lists them (``GET /models``)."""

from __future__ import annotations

import json
from typing import Any

from affectstream.api.access import NotFoundError, check
from affectstream.api.security import Principal


def _bundle_summary(name: str) -> dict[str, Any]:
    from affectstream.models.bundle import resolve_bundle

    path = resolve_bundle(name)
    meta = json.loads((path / "bundle.json").read_text(encoding="utf-8"))
    return {
        "name": name,
        "model_id": f"{meta.get('name', name)}@{meta.get('versions', {}).get('affectstream', '')}",
        "target": str(meta.get("target", "")),
        "features": [str(f) for f in meta.get("features", [])],
        "meta": meta,
        "path": path,
    }


def models(principal: Principal) -> list[dict[str, Any]]:
    """The shipped model bundles.

    Returns
    -------
    list of dict
    """
    from affectstream.models.bundle import shipped_bundles

    check(principal, "models")
    return [_bundle_summary(name) for name in shipped_bundles()]


def model_card(principal: Principal, name: str) -> dict[str, Any]:
    """One shipped bundle with its ``MODEL_CARD.md``.

    Returns
    -------
    dict
    """
    from affectstream.models.bundle import shipped_bundles

    check(principal, "models")
    if name not in shipped_bundles():
        raise NotFoundError(f"No shipped model bundle {name!r}; list them with GET /models.")
    summary = _bundle_summary(name)
    card = summary["path"] / "MODEL_CARD.md"
    summary["card"] = card.read_text(encoding="utf-8") if card.is_file() else ""
    return summary
