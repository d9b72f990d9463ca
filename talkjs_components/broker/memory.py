"""In-process broker: delivers payloads to subscribers on their event loops, in publish order."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from . import PresenceListener, PresenceUpdate

__all__ = ["LocalPresence", "MemoryBroker", "MemorySubscription"]

logger = logging.getLogger(__name__)


class MemorySubscription:
    """Handle of one :class:`MemoryBroker` subscription."""

    def __init__(
        self,
        broker: MemoryBroker,
        channel: str,
        callback: Callable[[bytes], None],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._broker = broker
        self.channel = channel
        self.callback = callback
        self.loop = loop
        self.active = True

    async def unsubscribe(self) -> None:
        """Stop delivery, including payloads published but not yet delivered.

        Calling it again does nothing.
        """
        self._broker._remove(self)

    def _deliver(self, payload: bytes) -> None:
        if not self.active:
            return
        try:
            self.callback(payload)
        except Exception:
            # Another subscriber's failure must not stop delivery to the rest.
            logger.exception(
                "subscriber callback on channel %r raised; delivery to other subscribers continues",
                self.channel,
            )


class MemoryBroker:
    """Broker for a single process.

    ``publish`` never calls a callback directly. It schedules one delivery per
    subscriber with ``call_soon`` on the loop where that subscriber subscribed
    (``call_soon_threadsafe`` from another loop or thread). The loop runs
    scheduled callbacks in FIFO order, so each subscriber receives a channel's
    payloads in publish order. A callback that raises is logged and does not
    stop delivery to the other subscribers.

    ``publish`` and ``subscribe`` raise ``RuntimeError`` before ``start()`` and
    after ``close()``. The broker can be started again after ``close()``.
    """

    def __init__(self) -> None:
        self._channels: dict[str, list[MemorySubscription]] = {}
        self._started = False

    async def start(self) -> None:
        """Start accepting subscriptions and payloads."""
        self._started = True

    async def close(self) -> None:
        """Drop every subscription; payloads not yet delivered are discarded."""
        self._started = False
        for subscriptions in self._channels.values():
            for subscription in subscriptions:
                subscription.active = False
        self._channels.clear()

    async def publish(self, channel: str, payload: bytes) -> None:
        """Schedule delivery of ``payload`` to every current subscriber of ``channel``.

        Subscribers added after this call do not receive the payload. A
        subscription whose event loop is closed is dropped with a warning.

        Raises:
            RuntimeError: the broker is not started.
        """
        self._require_started()
        current_loop = asyncio.get_running_loop()
        for subscription in list(self._channels.get(channel, ())):
            if subscription.loop is current_loop:
                subscription.loop.call_soon(subscription._deliver, payload)
            elif subscription.loop.is_closed():
                logger.warning(
                    "dropped a subscription on channel %r because its event loop is closed",
                    channel,
                )
                self._remove(subscription)
            else:
                subscription.loop.call_soon_threadsafe(subscription._deliver, payload)

    async def subscribe(
        self,
        channel: str,
        callback: Callable[[bytes], None],
        *,
        on_resubscribed: Callable[[], None] | None = None,
    ) -> MemorySubscription:
        """Call ``callback`` on the current event loop with each payload published on ``channel``.

        This broker never loses a subscription, so it never calls ``on_resubscribed``.

        Raises:
            RuntimeError: the broker is not started.
        """
        self._require_started()
        subscription = MemorySubscription(self, channel, callback, asyncio.get_running_loop())
        self._channels.setdefault(channel, []).append(subscription)
        return subscription

    def presence_tracker(self, app_id: str) -> LocalPresence:
        """Create the tracker of a single node: this broker connects no other nodes."""
        return LocalPresence()

    async def flush(self) -> None:
        """Wait until the payloads published on this loop before the call are delivered.

        Payloads that a callback publishes while being delivered are not waited for.
        """
        loop = asyncio.get_running_loop()
        delivered = loop.create_future()
        # call_soon is FIFO, so this runs after every delivery scheduled before it.
        loop.call_soon(delivered.set_result, None)
        await delivered

    def _remove(self, subscription: MemorySubscription) -> None:
        subscription.active = False
        subscriptions = self._channels.get(subscription.channel)
        if subscriptions is None or subscription not in subscriptions:
            return
        subscriptions.remove(subscription)
        if not subscriptions:
            del self._channels[subscription.channel]

    def _require_started(self) -> None:
        if not self._started:
            raise RuntimeError("MemoryBroker is not started: call await broker.start() first")


class LocalPresence:
    """Presence tracker of an app that runs on one node only.

    With no other node, a user's first session on this node brings them
    online and their last one takes them offline, so ``update`` returns its
    arguments, and ``online`` returns no user.
    """

    async def start(self, on_change: PresenceListener) -> None:
        """Do nothing: no other node can change presence behind this one's back."""

    async def close(self) -> None:
        """Do nothing: there is no shared registration to remove."""

    async def update(self, joined: Sequence[str], left: Sequence[str]) -> PresenceUpdate:
        """Return ``joined`` as online and ``left`` as offline."""
        return PresenceUpdate(list(joined), list(left))

    async def online(self, user_ids: Sequence[str]) -> list[str]:
        """Return an empty list, because no other node exists."""
        return []
