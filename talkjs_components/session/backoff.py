"""Capped exponential backoff with jitter, for retries that must never spin."""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["Backoff"]


@dataclass(frozen=True)
class Backoff:
    """Delays between retries: ``initial * factor ** attempt``, capped at ``maximum`` seconds.

    Each delay is scaled by a random factor between ``1 - jitter`` and 1, so
    that many clients failing together do not retry in step.
    """

    initial: float = 1.0
    factor: float = 2.0
    maximum: float = 30.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if not 0 < self.initial <= self.maximum:
            raise ValueError(
                f"backoff initial delay {self.initial} s must be positive and at most "
                f"the maximum {self.maximum} s"
            )
        if self.factor < 1:
            raise ValueError(f"backoff factor {self.factor} must be at least 1")
        if not 0 <= self.jitter < 1:
            raise ValueError(f"backoff jitter {self.jitter} must be in [0, 1)")

    def delay(self, attempt: int) -> float:
        """Return the delay in seconds before retry number ``attempt`` (0 for the first retry)."""
        exponent = min(attempt, 64)
        capped = min(self.maximum, self.initial * self.factor**exponent)
        return capped * (1 - self.jitter * random.random())
