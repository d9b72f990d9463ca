"""Publish/subscribe interface that carries chat events between service instances.

The embedded default is :class:`~talkjs_components.broker.memory.MemoryBroker`,
which delivers inside one process. Payloads are bytes, so a network broker can
carry them unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

__all__ = ["Broker", "BrokerSubscription"]


class BrokerSubscription(Protocol):
    """Handle of one subscription."""

    async def unsubscribe(self) -> None:
        """Stop delivery; calling it again does nothing."""


class Broker(Protocol):
    """Delivers every payload published on a channel to every subscriber of that channel."""

    async def start(self) -> None:
        """Connect to the broker."""

    async def close(self) -> None:
        """Drop every subscription and disconnect."""

    async def publish(self, channel: str, payload: bytes) -> None:
        """Send ``payload`` to the channel's subscribers, in publish order."""

    async def subscribe(
        self, channel: str, callback: Callable[[bytes], None]
    ) -> BrokerSubscription:
        """Call ``callback`` on the event loop with each payload published on ``channel``."""
