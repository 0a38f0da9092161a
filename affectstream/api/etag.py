"""ETags for reads that clients poll: the same body gives the same tag, ``If-None-Match`` 304.

The tag is a hash of the exact JSON body (a strong validator), so it changes exactly when the
answer does: a stopped session, a study or a model card keeps its tag; a running session's
status changes with its counters. Responses are per caller (``Vary: Authorization``) and
may be stored by the client only (``Cache-Control: private, no-cache``: revalidate each time).
"""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import Request, Response
from pydantic import TypeAdapter

#: OpenAPI ``responses`` entry of the routes that answer 304.
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not modified: the If-None-Match ETag is current"}
}
_HEADERS = {"Cache-Control": "private, no-cache", "Vary": "Authorization"}


def _matches(header: str | None, tag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    # Weak comparison (RFC 9110 13.1.2): W/ prefixes do not matter for If-None-Match.
    return tag in {t.strip().removeprefix("W/") for t in header.split(",")}


def etagged(request: Request, value: Any, annotation: Any = None) -> Response:
    """``value`` as JSON with an ETag, or 304 when the request's If-None-Match has it.

    Parameters
    ----------
    request : fastapi.Request
    value : object
        A pydantic model (or anything ``annotation`` describes).
    annotation : type, optional
        The type to serialise ``value`` as (default: its own class).

    Returns
    -------
    fastapi.Response
    """
    adapter: TypeAdapter[Any] = TypeAdapter(annotation if annotation is not None else type(value))
    body = adapter.dump_json(value)
    tag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"ETag": tag, **_HEADERS}
    if _matches(request.headers.get("if-none-match"), tag):
        return Response(status_code=304, headers=headers)
    return Response(content=body, media_type="application/json", headers=headers)
