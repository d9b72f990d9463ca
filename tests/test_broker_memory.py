"""Tests of MemoryBroker: ordering, fan-out, unsubscribe and failing callbacks."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator

import pytest

from talkjs_components.broker.memory import MemoryBroker


@pytest.fixture
async def broker() -> AsyncIterator[MemoryBroker]:
    broker = MemoryBroker()
    await broker.start()
    yield broker
    await broker.close()


async def test_publish_delivers_in_order(broker: MemoryBroker) -> None:
    received: list[bytes] = []
    await broker.subscribe("events", received.append)
    payloads = [str(number).encode() for number in range(100)]

    for payload in payloads:
        await broker.publish("events", payload)
    await broker.flush()

    assert received == payloads


async def test_publish_does_not_call_synchronously(broker: MemoryBroker) -> None:
    received: list[bytes] = []
    await broker.subscribe("events", received.append)

    await broker.publish("events", b"one")
    assert received == []

    await broker.flush()
    assert received == [b"one"]


async def test_every_subscriber_receives(broker: MemoryBroker) -> None:
    first: list[bytes] = []
    second: list[bytes] = []
    other_channel: list[bytes] = []
    await broker.subscribe("events", first.append)
    await broker.subscribe("events", second.append)
    await broker.subscribe("other", other_channel.append)

    await broker.publish("events", b"a")
    await broker.publish("events", b"b")
    await broker.flush()

    assert first == [b"a", b"b"]
    assert second == [b"a", b"b"]
    assert other_channel == []


async def test_unsubscribe_stops_delivery(broker: MemoryBroker) -> None:
    still_subscribed: list[bytes] = []
    dropped: list[bytes] = []
    await broker.subscribe("events", still_subscribed.append)
    subscription = await broker.subscribe("events", dropped.append)

    await broker.publish("events", b"before")
    await broker.flush()
    await subscription.unsubscribe()
    await broker.publish("events", b"after")
    await broker.flush()

    assert still_subscribed == [b"before", b"after"]
    assert dropped == [b"before"]


async def test_unsubscribe_drops_pending_payloads(broker: MemoryBroker) -> None:
    received: list[bytes] = []
    subscription = await broker.subscribe("events", received.append)

    await broker.publish("events", b"pending")
    await subscription.unsubscribe()
    await broker.flush()

    assert received == []


async def test_unsubscribe_twice_is_harmless(broker: MemoryBroker) -> None:
    received: list[bytes] = []
    subscription = await broker.subscribe("events", received.append)

    await subscription.unsubscribe()
    await subscription.unsubscribe()
    await broker.publish("events", b"x")
    await broker.flush()

    assert received == []


async def test_subscriber_added_later_misses_earlier(broker: MemoryBroker) -> None:
    received: list[bytes] = []

    await broker.publish("events", b"early")
    await broker.subscribe("events", received.append)
    await broker.publish("events", b"late")
    await broker.flush()

    assert received == [b"late"]


async def test_raising_callback_does_not_stop_others(
    broker: MemoryBroker, caplog: pytest.LogCaptureFixture
) -> None:
    def fail(payload: bytes) -> None:
        raise ValueError(f"cannot handle {payload!r}")

    received: list[bytes] = []
    await broker.subscribe("events", fail)
    await broker.subscribe("events", received.append)

    with caplog.at_level(logging.ERROR, logger="talkjs_components.broker.memory"):
        await broker.publish("events", b"one")
        await broker.publish("events", b"two")
        await broker.flush()

    assert received == [b"one", b"two"]
    errors = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert len(errors) == 2
    assert "'events'" in errors[0].getMessage()
    assert errors[0].exc_info is not None


async def test_use_before_start_raises() -> None:
    broker = MemoryBroker()

    with pytest.raises(RuntimeError, match=r"not started: call await broker.start\(\) first"):
        await broker.publish("events", b"x")
    with pytest.raises(RuntimeError, match="not started"):
        await broker.subscribe("events", lambda payload: None)


async def test_close_drops_subscriptions() -> None:
    broker = MemoryBroker()
    await broker.start()
    received: list[bytes] = []
    await broker.subscribe("events", received.append)

    await broker.publish("events", b"pending")
    await broker.close()
    await broker.flush()
    await broker.start()
    await broker.publish("events", b"after restart")
    await broker.flush()
    await broker.close()

    assert received == []


async def test_delivers_to_loop_of_other_thread(
    broker: MemoryBroker, caplog: pytest.LogCaptureFixture
) -> None:
    subscribed = threading.Event()
    received: list[bytes] = []
    thread_names: list[str] = []

    async def listen_in_thread() -> None:
        done = asyncio.Event()

        def on_payload(payload: bytes) -> None:
            received.append(payload)
            thread_names.append(threading.current_thread().name)
            done.set()

        await broker.subscribe("events", on_payload)
        subscribed.set()
        await asyncio.wait_for(done.wait(), timeout=5)

    thread = threading.Thread(
        target=lambda: asyncio.run(listen_in_thread()), name="other-loop", daemon=True
    )
    thread.start()
    assert await asyncio.to_thread(subscribed.wait, 5)

    await broker.publish("events", b"across threads")
    await asyncio.to_thread(thread.join, 5)

    assert received == [b"across threads"]
    assert thread_names == ["other-loop"]

    # The thread's loop is closed now, so its subscription is dropped.
    with caplog.at_level(logging.WARNING, logger="talkjs_components.broker.memory"):
        await broker.publish("events", b"to a closed loop")
    assert received == [b"across threads"]
    assert "event loop is closed" in caplog.text
