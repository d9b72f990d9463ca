"""A per-app request rate limit: one token bucket per app, in this process's memory."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["RateLimit", "RateLimiter"]


@dataclass(frozen=True)
class RateLimit:
    """How many requests an app may make: a sustained rate and a burst.

    An app that has been idle may send ``burst`` requests at once, and then
    ``requests_per_second`` on average.
    """

    requests_per_second: float = 50.0
    burst: int = 100


class RateLimiter:
    """Token buckets keyed by app id.

    NOTE: each server process counts separately, so N processes behind a
    load balancer admit up to N times the limit.

    Args:
        limit: The rate and burst of every bucket.
        clock: Seconds from a monotonic clock; tests may pass their own.
    """

    def __init__(self, limit: RateLimit, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._clock = clock
        # app id -> (tokens left, clock time they were counted at)
        self._buckets: dict[str, tuple[float, float]] = {}

    def acquire(self, key: str) -> int | None:
        """Take one token of ``key``'s bucket.

        Returns ``None`` when the request may go ahead, otherwise the whole
        number of seconds (at least 1) until a token is available, for a
        ``Retry-After`` header.
        """
        now = self._clock()
        tokens, counted_at = self._buckets.get(key, (float(self.limit.burst), now))
        tokens = min(
            float(self.limit.burst), tokens + (now - counted_at) * self.limit.requests_per_second
        )
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return None
        self._buckets[key] = (tokens, now)
        return max(1, math.ceil((1.0 - tokens) / self.limit.requests_per_second))
