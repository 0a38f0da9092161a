"""A live client's bounded queue: the first status is never dropped, losses are announced."""

from __future__ import annotations

import asyncio

from affectstream.api.live import Subscriber


def test_the_first_status_survives_a_queue_that_fills_while_it_is_made() -> None:
    maxlen = 3
    sub = Subscriber(maxlen=maxlen, max_drops=100)
    published = [{"type": "estimate", "k": k} for k in range(maxlen + 2)]
    for message in published[:maxlen]:
        sub.put(message)
    hello = {"type": "status", "alerts": []}
    sub.put_first(hello)  # made after subscribing, while estimates kept coming
    for message in published[maxlen:]:
        sub.put(message)

    async def drain() -> list[dict[str, object]]:
        return [m for m in [await sub.get() for _ in range(maxlen + 2)] if m is not None]

    got = asyncio.run(asyncio.wait_for(drain(), 10.0))  # the old queue lost it: waited forever
    lost = len(published) - maxlen
    assert got[0] is hello
    assert got[1] == {"type": "dropped", "n": lost, "total": lost}
    assert got[2:] == published[lost:]
