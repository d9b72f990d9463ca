"""The handle every ``on_*`` and ``subscribe`` method returns."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["Subscription"]


class Subscription:
    """Handle returned by ``subscribe`` and ``on_*``; ``unsubscribe()`` stops delivery.

    Calling ``unsubscribe()`` again does nothing.
    """

    def __init__(self, cancel: Callable[[], None]) -> None:
        self._cancel: Callable[[], None] | None = cancel

    @property
    def active(self) -> bool:
        """Whether events are still delivered."""
        return self._cancel is not None

    def unsubscribe(self) -> None:
        """Stop delivery."""
        cancel, self._cancel = self._cancel, None
        if cancel is not None:
            cancel()
