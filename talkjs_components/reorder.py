"""Delivery of an app's logged events in ``seq`` order, each once, whatever order they arrive in.

Each service publishes the events its writes log together with ``prev_seq``,
the ``seq`` of the app's event just before it in the log. One service
publishes in ``seq`` order, but several services (server nodes) publish
independently: a node may receive seq 11 from one node before seq 10 from
another, or never receive seq 10 when its publish failed. So a
:class:`ReorderBuffer` delivers an event when its ``prev_seq`` is the last
``seq`` it delivered, and buffers the others. When the missing event does not
arrive within a wait, or too many events are held, it reads the missing
range from the store's event log and delivers it in order. Events at or
below the last delivered ``seq`` are duplicates and are dropped.

In one process with an in-memory broker, events arrive in order, so each is
delivered at once and the store is never read.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from .errors import ChatError
from .models import ChatEvent, EventsPage

__all__ = ["MAX_READ_RETRY_MS", "ReorderBuffer"]

logger = logging.getLogger("talkjs_components.service")

MAX_READ_RETRY_MS = 5_000
"""Maximum wait, in milliseconds, between attempts to read missing events from a failing store."""


class ReorderBuffer:
    """Puts one app's logged events back in ``seq`` order before they reach the listeners.

    Args:
        app_id: The app, for log messages.
        read_events: Reads a page of the app's events after a ``seq``, with a
            page size; ``Store.app_events_after``.
        deliver: Called with each event, in ``seq`` order, once.
        wait_ms: Milliseconds an event waits for an earlier one that has
            not arrived before the buffer reads the store.
        max_held: Events that may wait; one more makes the buffer read the store at once.
        page_size: Events per store read.

    It runs on one event loop and calls ``deliver`` synchronously from
    ``receive`` or from its reading task. Events received before ``start()``
    are held, because the buffer does not know yet which ``seq`` the log has reached.
    """

    def __init__(
        self,
        app_id: str,
        read_events: Callable[[int, int], Awaitable[EventsPage]],
        deliver: Callable[[ChatEvent], None],
        *,
        wait_ms: int,
        max_held: int,
        page_size: int,
    ) -> None:
        self._app_id = app_id
        self._read_events = read_events
        self._deliver = deliver
        self._wait_ms = wait_ms
        self._max_held = max_held
        self._page_size = page_size
        # The seq of the last delivered event; None before start().
        self._last_seq: int | None = None
        # Events waiting for an earlier one, keyed by their prev_seq, so the
        # event that follows the last delivered one is found in O(1).
        self._held: dict[int, ChatEvent] = {}
        # The highest seq known to exist: the store read goes up to it.
        self._target_seq = 0
        self._timer: asyncio.TimerHandle | None = None
        self._reader: asyncio.Task[None] | None = None
        # Set when a read is requested while one runs, so it runs again.
        self._read_again = False
        # Set by catch_up(): the next read goes to the end of the log.
        self._read_to_end = False
        self._retry_ms = wait_ms
        self._closed = False

    @property
    def last_seq(self) -> int | None:
        """The ``seq`` of the last delivered event; ``None`` before ``start()``."""
        return self._last_seq

    @property
    def held_count(self) -> int:
        """How many events wait for an earlier one."""
        return len(self._held)

    def start(self, last_seq: int) -> None:
        """Count every event up to ``last_seq`` as delivered, and release what was held since.

        Pass the app's latest ``seq`` read after subscribing to the broker:
        events up to it are in the store already, and later ones arrive
        through the broker.
        """
        self._last_seq = last_seq
        self._release_held()
        self._wait_for_missing()

    def receive(self, event: ChatEvent, prev_seq: int | None) -> None:
        """Deliver ``event`` now if it follows the last delivered one, else hold it.

        ``event.seq`` must be set. ``prev_seq=None`` (a payload without it)
        schedules a store read up to the event, which delivers it in order.
        """
        seq = event.seq
        assert seq is not None, "only logged events have a place in the order"
        last_seq = self._last_seq
        if last_seq is not None and seq <= last_seq:
            logger.debug("dropped event seq %d of app %r: already delivered", seq, self._app_id)
            return
        if last_seq is not None and prev_seq == last_seq:
            self._deliver_next(event)
            if self._held:
                self._release_held()
            if not self._missing():
                self._cancel_timer()
            return
        self._target_seq = max(self._target_seq, seq)
        if prev_seq is not None:
            self._held[prev_seq] = event
        if len(self._held) > self._max_held:
            self._read_now()
        else:
            self._wait_for_missing()

    def catch_up(self) -> None:
        """Read every event after the last delivered one from the store, without waiting.

        Call it when the broker may have dropped payloads, such as after it
        reconnected, because nothing else would reveal a lost last event.
        """
        self._read_to_end = True
        self._read_now()

    async def close(self) -> None:
        """Stop the timer and any store read, and drop the held events."""
        self._closed = True
        self._cancel_timer()
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
        self._held.clear()

    # Delivering

    def _deliver_next(self, event: ChatEvent) -> None:
        assert event.seq is not None
        self._last_seq = event.seq
        self._deliver(event)

    def _release_held(self) -> None:
        """Deliver the held events that now follow in order, and drop those delivered meanwhile."""
        while self._last_seq in self._held:
            event = self._held.pop(self._last_seq)
            self._deliver_next(event)
        last_seq = self._last_seq
        if last_seq is None:
            return
        stale = [prev for prev, event in self._held.items() if (event.seq or 0) <= last_seq]
        for prev in stale:
            del self._held[prev]

    def _missing(self) -> bool:
        """Return whether an event is known to exist that was not delivered yet."""
        return self._last_seq is not None and (
            bool(self._held) or self._target_seq > self._last_seq or self._read_to_end
        )

    def _skip_gap(self, reason: str) -> None:
        """Deliver the held events in ``seq`` order without the missing ones."""
        held = sorted(self._held.values(), key=lambda event: event.seq or 0)
        self._held.clear()
        last_seq = self._last_seq or 0
        logger.error(
            "delivering %d events of app %r after seq %d without the events missing "
            "before them, because %s; sessions get the missing events when they reload",
            len(held),
            self._app_id,
            last_seq,
            reason,
        )
        for event in held:
            if (event.seq or 0) > (self._last_seq or 0):
                self._deliver_next(event)
        # Give up on the rest of the range too, or the buffer would read it again and again.
        self._target_seq = self._last_seq or 0
        self._read_to_end = False

    # Reading the store

    def _wait_for_missing(self) -> None:
        """Start the wait for missing events, unless it or a store read already runs."""
        if self._closed or self._timer is not None or self._reader is not None:
            return
        if not self._missing():
            return
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._wait_ms / 1000, self._read_after_wait)

    def _read_after_wait(self) -> None:
        """Read the missing events from the store: the broker did not bring them in time."""
        self._timer = None
        if not self._missing():
            return
        logger.info(
            "events of app %r after seq %d did not arrive through the broker within %d ms "
            "(%d held); reading them from the store",
            self._app_id,
            self._last_seq or 0,
            self._wait_ms,
            len(self._held),
        )
        self._read_now()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _read_now(self) -> None:
        self._cancel_timer()
        if self._closed or self._last_seq is None:
            return
        if self._reader is not None:
            self._read_again = True
            return
        self._reader = asyncio.get_running_loop().create_task(
            self._read_missing(), name=f"talkjs-reorder-{self._app_id}"
        )

    async def _read_missing(self) -> None:
        succeeded = False
        try:
            while True:
                self._read_again = False
                to_end, self._read_to_end = self._read_to_end, False
                succeeded = await self._read_through(None if to_end else self._target_seq)
                self._release_held()
                if not succeeded:
                    self._read_to_end = self._read_to_end or to_end
                    break
                if not self._read_again:
                    break
        finally:
            self._reader = None
        if self._closed:
            return
        if succeeded:
            self._retry_ms = self._wait_ms
            self._wait_for_missing()
            return
        if len(self._held) > self._max_held:
            self._skip_gap(f"the store cannot be read and over {self._max_held} events wait")
        self._timer = asyncio.get_running_loop().call_later(self._retry_ms / 1000, self._read_now)
        self._retry_ms = min(self._retry_ms * 2, MAX_READ_RETRY_MS)

    async def _read_through(self, target_seq: int | None) -> bool:
        """Deliver the stored events after the last delivered one, up to ``target_seq``.

        ``None`` reads to the end of the log. Returns whether the store could be read.
        """
        while True:
            after_seq = self._last_seq
            assert after_seq is not None
            if target_seq is not None and after_seq >= target_seq:
                return True
            try:
                page = await self._read_events(after_seq, self._page_size)
            except ChatError as exc:
                if exc.code == "resume_gap":
                    self._skip_gap(f"the log no longer has them: {exc.message}")
                    return True
                logger.warning(
                    "reading the events of app %r after seq %d from the store failed: %s; "
                    "retrying in %d ms",
                    self._app_id,
                    after_seq,
                    exc.message,
                    self._retry_ms,
                )
                return False
            except Exception:
                logger.exception(
                    "reading the events of app %r after seq %d from the store failed; "
                    "retrying in %d ms",
                    self._app_id,
                    after_seq,
                    self._retry_ms,
                )
                return False
            for event in page.events:
                # Events delivered from the broker meanwhile come back here too.
                if event.seq is not None and event.seq > (self._last_seq or 0):
                    self._deliver_next(event)
            if not page.has_more:
                if target_seq is not None and (self._last_seq or 0) < target_seq:
                    self._skip_gap(
                        f"the store has no event up to seq {target_seq}, which the broker "
                        "delivered, so the nodes may not share one database"
                    )
                return True
