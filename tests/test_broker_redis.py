"""Tests of RedisBroker, its presence tracker and broker_from_url, against a real Redis.

Each test uses a key prefix of its own (``redis_namespace``), so tests share
the server with each other and with other programs. ``tests/services.py``
sets the server's URL and what happens when it is not running.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from talkjs_components.broker import PresenceUpdate
from talkjs_components.broker.memory import MemoryBroker
from talkjs_components.broker.redis import RedisBroker
from talkjs_components.broker.urls import broker_from_url
from talkjs_components.errors import BrokerError, InvalidInput

from .services import RedisNamespace
from .services import redis_namespace as redis_namespace

# Seconds any single wait of these tests may take before it fails.
WAIT = 10.0


class Received:
    """A subscriber callback that queues the payloads it receives."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def __call__(self, payload: bytes) -> None:
        self.queue.put_nowait(payload)

    async def next(self) -> bytes:
        return await asyncio.wait_for(self.queue.get(), WAIT)

    def pending(self) -> list[bytes]:
        payloads = []
        while not self.queue.empty():
            payloads.append(self.queue.get_nowait())
        return payloads


async def started(broker: RedisBroker) -> RedisBroker:
    await broker.start()
    return broker


# Publish and subscribe


async def test_payload_crosses_brokers(redis_namespace: RedisNamespace) -> None:
    publisher = await started(redis_namespace.new_broker())
    subscriber = await started(redis_namespace.new_broker())
    received = Received()
    await subscriber.subscribe("events:app", received)

    await publisher.publish("events:app", b"first")
    await publisher.publish("events:app", b"second")

    assert await received.next() == b"first"
    assert await received.next() == b"second"


async def test_payloads_keep_publish_order(redis_namespace: RedisNamespace) -> None:
    broker = await started(redis_namespace.new_broker())
    received = Received()
    await broker.subscribe("events:app", received)

    for number in range(100):
        await broker.publish("events:app", str(number).encode())

    assert [await received.next() for _ in range(100)] == [
        str(number).encode() for number in range(100)
    ]


async def test_channel_names_carry_prefix(redis_namespace: RedisNamespace) -> None:
    broker = await started(redis_namespace.new_broker())
    await broker.subscribe("events:app", Received())

    checker = await started(redis_namespace.new_broker())
    client = checker.command_client()
    channels = await client.pubsub_channels(f"{redis_namespace.prefix}:*")

    assert channels == [f"{redis_namespace.prefix}:events:app".encode()]


async def test_prefixes_isolate_deployments(redis_namespace: RedisNamespace) -> None:
    ours = await started(redis_namespace.new_broker())
    theirs = await started(
        RedisBroker(redis_namespace.url, prefix=f"{redis_namespace.prefix}-other")
    )
    try:
        received_here = Received()
        received_there = Received()
        await ours.subscribe("events:app", received_here)
        await theirs.subscribe("events:app", received_there)

        await ours.publish("events:app", b"for us")
        # Redis sends a subscriber's messages in the order it ran the
        # PUBLISH commands, so once this marker arrives, the payload above
        # would have arrived before it if it had crossed prefixes.
        await theirs.publish("events:app", b"marker")
        marker = await received_there.next()
    finally:
        await theirs.close()

    assert await received_here.next() == b"for us"
    assert marker == b"marker"
    assert received_there.pending() == []


async def test_unsubscribe_stops_delivery(redis_namespace: RedisNamespace) -> None:
    broker = await started(redis_namespace.new_broker())
    dropped = Received()
    kept = Received()
    subscription = await broker.subscribe("events:dropped", dropped)
    await broker.subscribe("events:kept", kept)

    await subscription.unsubscribe()
    await subscription.unsubscribe()
    await broker.publish("events:dropped", b"nobody listens")
    # Published after the payload above on the same connection, so it arrives after it.
    await broker.publish("events:kept", b"marker")

    assert await kept.next() == b"marker"
    assert dropped.pending() == []


async def test_raising_callback_does_not_stop_others(
    redis_namespace: RedisNamespace, caplog: pytest.LogCaptureFixture
) -> None:
    broker = await started(redis_namespace.new_broker())

    def fail(payload: bytes) -> None:
        raise RuntimeError("subscriber is broken")

    received = Received()
    await broker.subscribe("events:app", fail)
    await broker.subscribe("events:app", received)

    with caplog.at_level(logging.ERROR, logger="talkjs_components.broker.redis"):
        await broker.publish("events:app", b"payload")
        payload = await received.next()

    assert payload == b"payload"
    errors = [record.getMessage() for record in caplog.records]
    assert errors == [
        "subscriber callback on channel 'events:app' raised; delivery to other subscribers "
        "continues"
    ]


async def test_closed_broker_rejects_use(redis_namespace: RedisNamespace) -> None:
    broker = await started(redis_namespace.new_broker())
    received = Received()
    subscription = await broker.subscribe("events:app", received)

    await broker.close()
    await broker.close()

    with pytest.raises(RuntimeError, match=r"is not started: call await broker\.start"):
        await broker.publish("events:app", b"late")
    with pytest.raises(RuntimeError, match="is not started"):
        await broker.subscribe("events:app", received)
    await subscription.unsubscribe()


async def test_broker_restarts_after_close(redis_namespace: RedisNamespace) -> None:
    broker = await started(redis_namespace.new_broker())
    await broker.close()
    await broker.start()
    received = Received()
    await broker.subscribe("events:app", received)

    await broker.publish("events:app", b"again")

    assert await received.next() == b"again"


async def test_unreachable_redis_fails_start() -> None:
    # Nothing listens on port 1 of the loopback address, so the connection is refused.
    broker = RedisBroker(
        "redis://:secret@127.0.0.1:1/0", broker_id="unreachable", connect_timeout=2
    )

    with pytest.raises(BrokerError) as raised:
        await broker.start()

    message = raised.value.message
    assert message.startswith(
        "Redis broker unreachable cannot connect to redis://:***@127.0.0.1:1/0: "
    )
    assert message.endswith("; start Redis or correct the broker URL")
    assert "secret" not in message
    with pytest.raises(RuntimeError, match="is not started"):
        await broker.publish("events:app", b"never")


# Reconnecting


async def test_reconnects_after_connection_killed(
    redis_namespace: RedisNamespace, caplog: pytest.LogCaptureFixture
) -> None:
    broker = await started(
        redis_namespace.new_broker(broker_id=f"{redis_namespace.prefix}-reconnect")
    )
    received = Received()
    resubscribed = asyncio.Event()
    await broker.subscribe("events:app", received, on_resubscribed=resubscribed.set)

    with caplog.at_level(logging.INFO, logger="talkjs_components.broker.redis"):
        killed = await redis_namespace.kill_connections(broker.subscriber_client_name)
        await asyncio.wait_for(resubscribed.wait(), WAIT)
        await broker.publish("events:app", b"after the reconnect")
        payload = await received.next()

    assert killed == 1
    assert payload == b"after the reconnect"
    messages = [record.getMessage() for record in caplog.records]
    retries = [message for message in messages if "lost its subscriber connection" in message]
    assert len(retries) == 1
    assert retries[0].startswith(
        f"Redis broker {broker.broker_id} lost its subscriber connection to {broker.where} ("
    )
    assert retries[0].endswith("attempt 1")
    assert (
        f"Redis broker {broker.broker_id} reconnected to {broker.where} after 1 attempts and "
        "subscribed to 1 channels again"
    ) in messages


async def test_publish_connection_recovers(redis_namespace: RedisNamespace) -> None:
    """A killed command connection is replaced on the next publish, which succeeds."""
    publisher = await started(redis_namespace.new_broker())
    subscriber = await started(redis_namespace.new_broker())
    received = Received()
    await subscriber.subscribe("events:app", received)

    assert await redis_namespace.kill_connections(publisher.client_name) == 1
    await publisher.publish("events:app", b"after the kill")

    assert await received.next() == b"after the kill"


# Settings and broker_from_url


def test_invalid_settings_rejected() -> None:
    with pytest.raises(InvalidInput, match="Redis key prefix 'two words' is invalid"):
        RedisBroker("redis://127.0.0.1:6379/0", prefix="two words")
    with pytest.raises(InvalidInput, match="Redis key prefix '' is invalid"):
        RedisBroker("redis://127.0.0.1:6379/0", prefix="")
    with pytest.raises(InvalidInput, match="broker id 'node:1' is invalid"):
        RedisBroker("redis://127.0.0.1:6379/0", broker_id="node:1")
    with pytest.raises(InvalidInput, match="ping_interval 0 is not positive"):
        RedisBroker("redis://127.0.0.1:6379/0", ping_interval=0)
    with pytest.raises(InvalidInput, match="heartbeat_interval 5 s is not below presence_ttl 5 s"):
        RedisBroker("redis://127.0.0.1:6379/0", presence_ttl=5, heartbeat_interval=5)


def test_broker_from_url_schemes() -> None:
    assert isinstance(broker_from_url(None), MemoryBroker)
    assert isinstance(broker_from_url(""), MemoryBroker)
    assert isinstance(broker_from_url("memory://"), MemoryBroker)
    redis_broker = broker_from_url("redis://127.0.0.1:6379/0", prefix="chat-production")
    assert isinstance(redis_broker, RedisBroker)
    assert redis_broker.prefix == "chat-production"
    assert redis_broker.key("events:app") == "chat-production:events:app"
    tls_broker = broker_from_url("rediss://user:secret@redis.internal:6380/0")
    assert isinstance(tls_broker, RedisBroker)
    assert tls_broker.prefix == "talkjs"
    assert tls_broker.where == "rediss://user:***@redis.internal:6380/0"


def test_broker_from_url_rejects_other_schemes() -> None:
    with pytest.raises(InvalidInput) as raised:
        broker_from_url("amqp://guest:guest@127.0.0.1:5672/")
    with pytest.raises(InvalidInput) as address:
        broker_from_url("memory://somewhere")

    assert raised.value.message == (
        "broker URL 'amqp://guest:***@127.0.0.1:5672/' is not supported: use memory:// (or "
        "leave it empty) for the in-process broker, or redis://host:6379/0 or "
        "rediss://host:6380/0 for Redis"
    )
    assert address.value.message == (
        "broker URL 'memory://somewhere' is invalid: the in-process broker takes no address, "
        "so write memory:// alone"
    )


# Presence tracker


class Changes:
    """An on_change listener of a presence tracker, queueing the updates it receives."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[PresenceUpdate] = asyncio.Queue()

    def __call__(self, update: PresenceUpdate) -> None:
        self.queue.put_nowait(update)

    async def next(self) -> PresenceUpdate:
        return await asyncio.wait_for(self.queue.get(), WAIT)


async def test_presence_counts_users_across_nodes(redis_namespace: RedisNamespace) -> None:
    broker = await started(redis_namespace.new_broker())
    first = broker.presence_tracker("app")
    second = broker.presence_tracker("app")
    other_app = broker.presence_tracker("other-app")
    for tracker in (first, second, other_app):
        await tracker.start(Changes())

    alice_first = await first.update(["alice"], [])
    alice_second = await second.update(["alice", "bob"], [])
    seen_from_first = await first.online(["alice", "bob", "carol"])
    seen_from_other_app = await other_app.online(["alice", "bob"])
    alice_leaves_first = await first.update([], ["alice"])
    alice_leaves_second = await second.update([], ["alice"])
    left_twice = await second.update([], ["alice"])
    seen_at_end = await first.online(["alice", "bob"])
    for tracker in (first, second, other_app):
        await tracker.close()

    assert alice_first == PresenceUpdate(["alice"], [])
    # alice is already online through the first node.
    assert alice_second == PresenceUpdate(["bob"], [])
    # Each tracker reports the other nodes only; the service adds its own users.
    assert seen_from_first == ["alice", "bob"]
    assert seen_from_other_app == []
    assert alice_leaves_first == PresenceUpdate([], [])
    assert alice_leaves_second == PresenceUpdate([], ["alice"])
    assert left_twice == PresenceUpdate([], [])
    assert seen_at_end == ["bob"]


async def test_presence_expires_with_dead_node(redis_namespace: RedisNamespace) -> None:
    survivor_broker = await started(
        redis_namespace.new_broker(presence_ttl=1.0, heartbeat_interval=0.1)
    )
    dying_broker = await started(redis_namespace.new_broker(presence_ttl=1.0))
    survivor = survivor_broker.presence_tracker("app")
    dying = dying_broker.presence_tracker("app")
    survivor_changes = Changes()
    await survivor.start(survivor_changes)
    await dying.start(Changes())
    await dying.update(["alice", "bob"], [])
    await survivor.update(["bob"], [])

    # Closing the broker under a running tracker stops its heartbeats, as a
    # crash would, without unregistering the node.
    await dying_broker.close()
    reaped = await survivor_changes.next()
    online_after = await survivor.online(["alice", "bob"])
    await dying.close()
    await survivor.close()

    # bob still has a session on the survivor, so only alice went offline.
    assert reaped == PresenceUpdate([], ["alice"])
    assert online_after == []


async def test_closed_node_reaped_by_next_heartbeat(redis_namespace: RedisNamespace) -> None:
    broker = await started(redis_namespace.new_broker(presence_ttl=30.0, heartbeat_interval=0.1))
    staying = broker.presence_tracker("app")
    leaving = broker.presence_tracker("app")
    staying_changes = Changes()
    await staying.start(staying_changes)
    await leaving.start(Changes())
    await leaving.update(["alice"], [])
    assert await staying.online(["alice"]) == ["alice"]

    await leaving.close()
    online_at_once = await staying.online(["alice"])
    reaped = await staying_changes.next()
    keys = await redis_namespace.keys()
    await staying.close()

    # The TTL is 30 s, so only unregistering explains alice going offline.
    assert online_at_once == []
    assert reaped == PresenceUpdate([], ["alice"])
    assert keys == [f"{redis_namespace.prefix}:presence:nodes:app"]


async def test_reaped_node_registers_again(redis_namespace: RedisNamespace) -> None:
    """A node that missed its heartbeats finds itself reaped and writes its users back."""
    reaper_broker = await started(
        redis_namespace.new_broker(presence_ttl=30.0, heartbeat_interval=0.1)
    )
    paused_broker = await started(redis_namespace.new_broker(presence_ttl=30.0))
    reaper = reaper_broker.presence_tracker("app")
    paused = paused_broker.presence_tracker("app")
    reaper_changes = Changes()
    await reaper.start(reaper_changes)
    await paused.start(Changes())
    await paused.update(["alice"], [])

    # Expire the paused node as if its heartbeats had stopped for a whole TTL.
    client = reaper_broker.command_client()
    await client.zadd(f"{redis_namespace.prefix}:presence:nodes:app", {paused.node_id: 0})
    reaped = await reaper_changes.next()
    back = await paused.update(["bob"], [])
    online = await reaper.online(["alice", "bob"])
    await reaper.close()
    await paused.close()

    assert reaped == PresenceUpdate([], ["alice"])
    # bob through the update itself, alice through the rewrite that follows it.
    assert back == PresenceUpdate(["bob", "alice"], [])
    assert online == ["alice", "bob"]
