"""Presence of one service's users: counted here, combined across nodes by a tracker.

A user is online while at least one of their sessions is subscribed with
``presence=True`` on some node of the app. Each :class:`PresenceReporter`
counts the sessions on its own node, synchronously, and reports to the
broker's :class:`~talkjs_components.broker.PresenceTracker` only when a
user's first session on this node starts or their last one here ends. The
tracker returns whether that brought the user online anywhere or took
them offline everywhere, and the reporter has ``PresenceChanged`` published
for those users.

The reports run on one task, in the order the changes happened, so a user
who connects and disconnects quickly is reported as online and then
offline, never the other way round. Changes made while a report is on its
way are combined: a user who came and went meanwhile is not reported at all.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from .broker import PresenceTracker, PresenceUpdate
from .errors import ChatError

__all__ = ["PresenceReporter"]

logger = logging.getLogger("talkjs_components.service")


class PresenceReporter:
    """Counts the presence subscriptions of one service and reports changes to a tracker.

    Args:
        app_id: The app, for log messages.
        tracker: The broker's tracker of this app on this node.
        announce: Publishes ``PresenceChanged`` for a user who came online
            (``True``) or went offline (``False``). Errors it raises are logged.

    Subscriptions can be counted before ``start()``; they are reported then.
    """

    def __init__(
        self,
        app_id: str,
        tracker: PresenceTracker,
        announce: Callable[[str, bool], Awaitable[None]],
    ) -> None:
        self._app_id = app_id
        self._tracker = tracker
        self._announce = announce
        # Ids of the subscriptions that count as each user being online here.
        self._subscriptions: dict[str, set[int]] = {}
        # Whether each user is present here, for users whose presence here
        # changed since the last report; insertion order is the order of changes.
        self._changes: dict[str, bool] = {}
        # Users reported to the tracker as present here.
        self._reported: set[str] = set()
        # Changes the tracker found by itself, to announce in the next report.
        self._found: list[PresenceUpdate] = []
        self._flushes: list[asyncio.Future[None]] = []
        self._wakeup = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._closed = False

    def add(self, user_id: str, subscription_id: int) -> None:
        """Count a presence subscription of ``user_id``."""
        subscriptions = self._subscriptions.setdefault(user_id, set())
        subscriptions.add(subscription_id)
        if len(subscriptions) == 1:
            self._change(user_id, present=True)

    def remove(self, user_id: str, subscription_id: int) -> None:
        """Stop counting a subscription; an id that was not counted is ignored."""
        subscriptions = self._subscriptions.get(user_id)
        if subscriptions is None or subscription_id not in subscriptions:
            return
        subscriptions.discard(subscription_id)
        if not subscriptions:
            del self._subscriptions[user_id]
            self._change(user_id, present=False)

    async def start(self) -> None:
        """Start the tracker and the task that reports changes, including earlier ones.

        Raises:
            BrokerError: the tracker cannot register this node.
        """
        await self._tracker.start(self._on_found)
        self._worker = asyncio.get_running_loop().create_task(
            self._report_changes(), name=f"talkjs-presence-{self._app_id}"
        )
        self._wakeup.set()

    async def close(self) -> None:
        """Stop reporting and close the tracker; unreported changes are dropped.

        Calling it again does nothing.
        """
        if self._closed:
            return
        self._closed = True
        self._subscriptions.clear()
        self._changes.clear()
        worker, self._worker = self._worker, None
        if worker is None:
            return
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
        for flush in self._flushes:
            if not flush.done():
                flush.set_result(None)
        self._flushes.clear()
        await self._tracker.close()

    async def online(self, user_ids: Sequence[str]) -> list[str]:
        """Return those of ``user_ids`` with a presence subscription on this node or another one.

        This node's users are found in its own count, at once. When the
        tracker fails, the others count as offline and the failure is logged.
        """
        here = {user_id for user_id in user_ids if user_id in self._subscriptions}
        others = [user_id for user_id in dict.fromkeys(user_ids) if user_id not in here]
        elsewhere: set[str] = set()
        if others and self._worker is not None:
            try:
                elsewhere = set(await self._tracker.online(others))
            except ChatError as exc:
                logger.warning(
                    "presence of %d users of app %r on other nodes is unknown, so they count "
                    "as offline: %s",
                    len(others),
                    self._app_id,
                    exc.message,
                )
        return [user_id for user_id in user_ids if user_id in here or user_id in elsewhere]

    async def flush(self) -> None:
        """Wait until the changes counted so far are reported and their events published.

        Returns at once before ``start()``, and early when ``close()`` runs meanwhile.
        """
        if self._worker is None:
            return
        flushed = asyncio.get_running_loop().create_future()
        self._flushes.append(flushed)
        self._wakeup.set()
        await flushed

    def _change(self, user_id: str, *, present: bool) -> None:
        if self._closed:
            return
        # Moved to the end, so the dictionary keeps the order of the changes.
        self._changes.pop(user_id, None)
        self._changes[user_id] = present
        self._wakeup.set()

    def _on_found(self, update: PresenceUpdate) -> None:
        if self._closed:
            return
        self._found.append(update)
        self._wakeup.set()

    async def _report_changes(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            changes, self._changes = self._changes, {}
            found, self._found = self._found, []
            flushes, self._flushes = self._flushes, []
            for update in found:
                await self._announce_update(update)
            joined = [user for user, here in changes.items() if here and user not in self._reported]
            left = [user for user, here in changes.items() if not here and user in self._reported]
            if joined or left:
                self._reported.update(joined)
                self._reported.difference_update(left)
                try:
                    update = await self._tracker.update(joined, left)
                except ChatError as exc:
                    # The tracker records the change later and reports it through _on_found.
                    logger.warning(
                        "presence of %d users of app %r was not recorded for other nodes yet: %s",
                        len(joined) + len(left),
                        self._app_id,
                        exc.message,
                    )
                else:
                    await self._announce_update(update)
            for flush in flushes:
                if not flush.done():
                    flush.set_result(None)

    async def _announce_update(self, update: PresenceUpdate) -> None:
        # Offline first: a user in both lists went offline, then came back.
        changes = [(user, False) for user in update.went_offline]
        changes += [(user, True) for user in update.came_online]
        for user_id, online in changes:
            try:
                await self._announce(user_id, online)
            except Exception:
                logger.exception(
                    "announcing that user %r of app %r is %s failed",
                    user_id,
                    self._app_id,
                    "online" if online else "offline",
                )
