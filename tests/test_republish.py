"""Tests of the Republisher: which failed publish it retries, and when it stops."""

from __future__ import annotations

import asyncio

import pytest

from talkjs_components import republish
from talkjs_components.errors import BrokerError
from talkjs_components.republish import Republisher


class FlakyChannel:
    """Takes payloads after failing the first ``failures`` publishes."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.published: list[bytes] = []
        self.attempts = 0
        self.changed = asyncio.Event()

    async def publish(self, payload: bytes) -> None:
        self.attempts += 1
        self.changed.set()
        if self.failures:
            self.failures -= 1
            raise BrokerError("broker unreachable")
        self.published.append(payload)

    async def wait_for(self, published: int) -> None:
        async with asyncio.timeout(5):
            while len(self.published) < published:
                self.changed.clear()
                await self.changed.wait()


@pytest.fixture(autouse=True)
def short_delays(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(republish, "FIRST_RETRY_DELAY", 0.01)


async def test_retries_until_published() -> None:
    channel = FlakyChannel(failures=2)
    republisher = Republisher("app", channel.publish)

    republisher.failed(3, b"event 3")
    await channel.wait_for(1)
    await republisher.close()

    assert channel.published == [b"event 3"]
    assert channel.attempts == 3
    assert republisher.pending_seq is None


async def test_only_newest_failed_event_retried() -> None:
    channel = FlakyChannel()
    republisher = Republisher("app", channel.publish)

    republisher.failed(4, b"event 4")
    republisher.failed(6, b"event 6")
    republisher.failed(5, b"event 5")
    await channel.wait_for(1)
    await asyncio.sleep(0.05)
    await republisher.close()

    assert channel.published == [b"event 6"]


async def test_newer_publish_cancels_retry() -> None:
    channel = FlakyChannel()
    republisher = Republisher("app", channel.publish)

    republisher.failed(7, b"event 7")
    # Event 8 reached the broker: its prev_seq makes other nodes read 7 from the store.
    republisher.published(8)
    await asyncio.sleep(0.05)
    await republisher.close()

    assert republisher.pending_seq is None
    assert channel.published == []


async def test_close_stops_retrying() -> None:
    channel = FlakyChannel(failures=1_000)
    republisher = Republisher("app", channel.publish)
    republisher.failed(9, b"event 9")
    async with asyncio.timeout(5):
        while channel.attempts < 2:
            channel.changed.clear()
            await channel.changed.wait()

    await republisher.close()
    attempts = channel.attempts
    await asyncio.sleep(0.05)

    assert channel.attempts == attempts
    republisher.failed(10, b"event 10")
    assert republisher.pending_seq is None
