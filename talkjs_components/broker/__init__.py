"""Publish/subscribe interface that carries chat events between service instances.

The embedded default is :class:`~talkjs_components.broker.memory.MemoryBroker`,
which delivers inside one process. :class:`~talkjs_components.broker.redis.RedisBroker`
carries events between the server nodes of a cluster. Payloads are bytes, so a
network broker can carry them unchanged.

A broker also creates the :class:`PresenceTracker` of each app, because
knowing which users are online on other nodes needs the same shared server
that carries the events.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple, Protocol

__all__ = [
    "Broker",
    "BrokerSubscription",
    "PresenceListener",
    "PresenceTracker",
    "PresenceUpdate",
]


class BrokerSubscription(Protocol):
    """Handle of one subscription."""

    async def unsubscribe(self) -> None:
        """Stop delivery; calling it again does nothing."""


class PresenceUpdate(NamedTuple):
    """Users whose presence changed for the whole app, not just on one node."""

    came_online: list[str]
    """Users who had no presence session on any node before and now have one."""
    went_offline: list[str]
    """Users who had a presence session on some node before and now have none."""


PresenceListener = Callable[[PresenceUpdate], None]
"""Called by a tracker with changes it finds by itself, such as the users of a node that stopped."""


class PresenceTracker(Protocol):
    """Records on which nodes each user of one app has a session that counts as online.

    A *node* is one running ``ChatService`` of the app. The service counts its
    own sessions and reports to the tracker only when a user's first session
    on this node starts or the last one here ends. The tracker combines that with
    the other nodes, so that ``PresenceChanged`` is published when a user
    comes online anywhere and when they go offline everywhere.
    """

    async def start(self, on_change: PresenceListener) -> None:
        """Register this node.

        ``on_change`` is called on the event loop with changes that no
        ``update`` call returned: the users of a node that stopped without
        unregistering, or this node's users after it had to register again.
        Users in both lists of one call went offline first, then came back.
        """

    async def close(self) -> None:
        """Unregister this node, so that other nodes count its users as offline.

        Calling it again does nothing.
        """

    async def update(self, joined: Sequence[str], left: Sequence[str]) -> PresenceUpdate:
        """Record users whose first session on this node started, or whose last one here ended.

        Returns the users among them who came online or went offline for the app.

        Raises:
            BrokerError: the shared server failed. The tracker keeps the
                change and records it later, reporting the outcome to ``on_change``.
        """

    async def online(self, user_ids: Sequence[str]) -> list[str]:
        """Return those of ``user_ids`` with a session on another node that is still alive.

        The caller adds the users of its own node, which it counts itself.

        Raises:
            BrokerError: the shared server failed.
        """


class Broker(Protocol):
    """Delivers every payload published on a channel to every subscriber of that channel."""

    async def start(self) -> None:
        """Connect to the broker."""

    async def close(self) -> None:
        """Drop every subscription and disconnect."""

    async def publish(self, channel: str, payload: bytes) -> None:
        """Send ``payload`` to the channel's subscribers, in publish order.

        Raises:
            BrokerError: the payload could not be handed to the broker.
        """

    async def subscribe(
        self,
        channel: str,
        callback: Callable[[bytes], None],
        *,
        on_resubscribed: Callable[[], None] | None = None,
    ) -> BrokerSubscription:
        """Call ``callback`` on the event loop with each payload published on ``channel``.

        The subscription is active when this returns. A broker that loses
        its connection drops the payloads published until it has subscribed
        again, and then calls ``on_resubscribed``, so that the subscriber
        can read what it missed from elsewhere.
        """

    def presence_tracker(self, app_id: str) -> PresenceTracker:
        """Create an unstarted presence tracker for one app on this node."""
