"""Publishing an app's newest logged event again after the broker failed to take it.

Other nodes notice a lost event only when a later event names it as its
``prev_seq``; then they read the gap from the store. The app's newest event
has no later event to reveal it, so its node publishes it again until the
broker takes it. Only the newest failed event matters: once other nodes
have it, its ``prev_seq`` chain leads them to every earlier one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

__all__ = ["FIRST_RETRY_DELAY", "MAX_RETRY_DELAY", "Republisher"]

logger = logging.getLogger("talkjs_components.service")

FIRST_RETRY_DELAY = 0.5
"""Seconds before the first retry; each failed retry doubles the delay."""

MAX_RETRY_DELAY = 30.0
"""Maximum delay between two retries, in seconds."""


class Republisher:
    """Retries the publish of the newest logged event whose publish failed, with backoff.

    Args:
        app_id: The app, for log lines.
        publish: Hands a payload to the broker; raises when the broker fails.
    """

    def __init__(self, app_id: str, publish: Callable[[bytes], Awaitable[None]]) -> None:
        self._app_id = app_id
        self._publish = publish
        # The seq and payload of the newest event whose publish failed.
        self._pending: tuple[int, bytes] | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def pending_seq(self) -> int | None:
        """The ``seq`` of the event waiting to be published again, if any."""
        return self._pending[0] if self._pending is not None else None

    def failed(self, seq: int, payload: bytes) -> None:
        """Record a failed publish of event ``seq``; retry it unless a newer one is pending."""
        if self._closed:
            return
        if self._pending is not None and self._pending[0] >= seq:
            return
        self._pending = (seq, payload)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._retry(), name=f"talkjs-republish-{self._app_id}"
            )

    def published(self, seq: int) -> None:
        """Record a successful publish of event ``seq``, which reveals every earlier gap."""
        if self._pending is not None and seq > self._pending[0]:
            self._pending = None

    async def close(self) -> None:
        """Stop retrying; the pending event stays in the store for sessions to read."""
        self._closed = True
        self._pending = None
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _retry(self) -> None:
        delay = FIRST_RETRY_DELAY
        try:
            while self._pending is not None:
                await asyncio.sleep(delay)
                if self._pending is None:
                    return
                seq, payload = self._pending
                try:
                    await self._publish(payload)
                except Exception as exc:
                    delay = min(delay * 2, MAX_RETRY_DELAY)
                    logger.warning(
                        "publishing event seq %d of app %r again failed (%s); retrying in %g s",
                        seq,
                        self._app_id,
                        exc,
                        delay,
                    )
                    continue
                logger.info(
                    "published event seq %d of app %r after a failed publish", seq, self._app_id
                )
                if self._pending is not None and self._pending[0] == seq:
                    self._pending = None
                delay = FIRST_RETRY_DELAY
        finally:
            self._task = None
