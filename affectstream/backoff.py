"""Exponential backoff: the one rule every retry loop in the package waits by."""

from __future__ import annotations

import random


def backoff_delay(attempt: int, initial: float, maximum: float, *, jitter: bool = True) -> float:
    """Seconds to wait before retry ``attempt`` (0 for the first).

    ``initial`` doubles with each attempt up to ``maximum``; with ``jitter`` the result is
    drawn uniformly from [half, all] of that, so that many clients that failed together
    (devices dropped at once, writers behind one server) do not retry in lockstep.

    Parameters
    ----------
    attempt : int
        Failed attempts so far.
    initial : float
        Delay after the first failure, in seconds.
    maximum : float
        Longest delay, in seconds.
    jitter : bool
        Spread the delay down by up to half.

    Returns
    -------
    float
    """
    ceiling = min(maximum, initial * 2.0 ** min(max(attempt, 0), 60))
    return ceiling * random.uniform(0.5, 1.0) if jitter else ceiling
