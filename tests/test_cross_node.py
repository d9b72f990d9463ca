"""Two ChatService nodes of one app on one PostgreSQL schema and one Redis prefix.

Each node has its own store (its own connection pool) and its own
RedisBroker (its own Redis connections), as two server processes would.
The tests check the delivery contract across nodes: a user's logged events
reach every listener in ``seq`` order, each once, whichever node wrote them
and in whatever order Redis delivered them, and presence counts sessions on
every node.

They need PostgreSQL and Redis; see ``tests/services.py``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from talkjs_components import service as service_module
from talkjs_components.broker.redis import RedisBroker, RedisSubscription
from talkjs_components.broker.redis_presence import RedisPresenceTracker
from talkjs_components.errors import BrokerError
from talkjs_components.models import (
    ChatEvent,
    MessageSent,
    Participation,
    PresenceChanged,
    User,
)
from talkjs_components.service import TRUSTED, ChatService, Limits
from talkjs_components.store.postgres import PostgresStore

from .services import RedisNamespace
from .services import redis_namespace as redis_namespace

APP_ID = "app-cross-node"

# Seconds any single wait of these tests may take before it fails.
WAIT = 10.0

# A reorder wait no test reaches, so that only the broker (or a full
# buffer) can deliver a held event.
FOREVER_MS = 600_000


class ControlledBroker:
    """A node's real RedisBroker, with the test in control of that node's publishes.

    Redis has no command to deliver one message late or to lose it, so this
    wrapper does it before a payload reaches Redis: it holds publishes until
    the test releases them, or drops the next one, as a failed network write
    would. It also records the payloads that arrive from Redis, so a test
    knows when another node's event has reached this node. Everything else
    goes to the real broker unchanged.
    """

    def __init__(self, broker: RedisBroker) -> None:
        self.broker = broker
        self.hold_publishes = False
        self.drop_next_publish = False
        self.fail_publishes = 0
        """Publishes still to fail with ``BrokerError``, as when Redis is unreachable."""
        self.publish_held = asyncio.Event()
        self._held: list[asyncio.Future[None]] = []
        self.arrived: list[dict[str, Any]] = []
        self._arrival = asyncio.Event()

    async def start(self) -> None:
        await self.broker.start()

    async def close(self) -> None:
        await self.broker.close()

    async def publish(self, channel: str, payload: bytes) -> None:
        if self.fail_publishes:
            self.fail_publishes -= 1
            raise BrokerError("publishing failed: the test made Redis unreachable")
        if self.drop_next_publish:
            self.drop_next_publish = False
            return
        if self.hold_publishes:
            released = asyncio.get_running_loop().create_future()
            self._held.append(released)
            self.publish_held.set()
            await released
        await self.broker.publish(channel, payload)

    def release(self) -> None:
        """Let the held publishes go on, in the order they were made, and stop holding."""
        self.hold_publishes = False
        held, self._held = self._held, []
        for released in held:
            released.set_result(None)

    async def subscribe(
        self,
        channel: str,
        callback: Callable[[bytes], None],
        *,
        on_resubscribed: Callable[[], None] | None = None,
    ) -> RedisSubscription:
        def observe(payload: bytes) -> None:
            callback(payload)
            self.arrived.append(json.loads(payload))
            self._arrival.set()

        return await self.broker.subscribe(channel, observe, on_resubscribed=on_resubscribed)

    def presence_tracker(self, app_id: str) -> RedisPresenceTracker:
        return self.broker.presence_tracker(app_id)

    async def wait_for_message(self, text: str) -> None:
        """Wait until the MessageSent of a message with ``text`` arrived from Redis."""

        def has_arrived() -> bool:
            return any(
                message["event"]["type"] == "message_sent"
                and message["event"]["message"]["text"] == text
                for message in self.arrived
            )

        async with asyncio.timeout(WAIT):
            while not has_arrived():
                self._arrival.clear()
                await self._arrival.wait()


class Inbox:
    """A listener that keeps the events it receives and lets a test wait for some."""

    def __init__(self) -> None:
        self.events: list[ChatEvent] = []
        self._changed = asyncio.Event()

    def __call__(self, event: ChatEvent) -> None:
        self.events.append(event)
        self._changed.set()

    def messages(self) -> list[MessageSent]:
        return [event for event in self.events if isinstance(event, MessageSent)]

    def texts(self) -> list[str]:
        return [event.message.text for event in self.messages()]

    def presence(self) -> list[tuple[str, bool]]:
        return [
            (event.user_id, event.online)
            for event in self.events
            if isinstance(event, PresenceChanged)
        ]

    async def wait_for_messages(self, count: int) -> None:
        await self.wait_for(lambda: len(self.messages()) >= count, f"{count} messages")

    async def wait_for(self, condition: Callable[[], bool], what: str) -> None:
        try:
            async with asyncio.timeout(WAIT):
                while not condition():
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(
                f"waited {WAIT} s for {what}; received {[event.type for event in self.events]}"
            ) from None


class Node:
    """One chat service with its own store and controlled Redis broker."""

    def __init__(self, service: ChatService, broker: ControlledBroker) -> None:
        self.service = service
        self.broker = broker


class Cluster:
    """Starts nodes of one app on one PostgreSQL schema and Redis prefix; closes them after."""

    def __init__(self, postgres_url: str, namespace: RedisNamespace) -> None:
        self._postgres_url = postgres_url
        self._namespace = namespace
        self._nodes: list[Node] = []

    async def node(self, *, limits: Limits | None = None, **broker_options: Any) -> Node:
        broker = ControlledBroker(self._namespace.new_broker(**broker_options))
        store = PostgresStore(self._postgres_url, APP_ID, max_pool_size=4)
        service = ChatService(store, broker, app_id=APP_ID, limits=limits)
        await service.start()
        node = Node(service, broker)
        self._nodes.append(node)
        return node

    async def close(self) -> None:
        for node in self._nodes:
            await node.service.close()


@pytest.fixture
async def cluster(postgres_url: str, redis_namespace: RedisNamespace) -> AsyncIterator[Cluster]:
    nodes = Cluster(postgres_url, redis_namespace)
    try:
        yield nodes
    finally:
        await nodes.close()


async def add_chat(node: Node) -> None:
    """Create users alice and bob and conversation c1 with both as ReadWrite participants."""
    for user_id in ("alice", "bob"):
        await node.service.upsert_user(User(id=user_id, name=user_id.title()))
    await node.service.sync_conversation(
        TRUSTED, "c1", participants={"alice": Participation(), "bob": Participation()}
    )


def _has_presence(inbox: Inbox, user_id: str, online: bool) -> bool:
    return (user_id, online) in inbox.presence()


def assert_in_seq_order_once(events: list[MessageSent]) -> None:
    numbers = [event.seq for event in events if event.seq is not None]
    assert len(numbers) == len(events), "a logged event has no seq"
    assert numbers == sorted(set(numbers)), numbers


# Ordering


async def test_later_event_waits_for_earlier(cluster: Cluster) -> None:
    """Node 2 gets its own seq N+1 before node 1's seq N and still delivers N first."""
    first_node = await cluster.node(limits=Limits(reorder_wait_ms=FOREVER_MS))
    second_node = await cluster.node(limits=Limits(reorder_wait_ms=FOREVER_MS))
    await add_chat(first_node)
    bob = Inbox()
    second_node.service.subscribe("bob", bob)

    first_node.broker.hold_publishes = True
    first = asyncio.create_task(first_node.service.send_message("alice", "c1", "first"))
    # The publish is held after the commit, so "first" has the lower seq.
    await asyncio.wait_for(first_node.broker.publish_held.wait(), WAIT)
    await second_node.service.send_message("bob", "c1", "second")
    await second_node.broker.wait_for_message("second")
    received_before_release = bob.texts()
    first_node.broker.release()
    await asyncio.wait_for(first, WAIT)
    await bob.wait_for_messages(2)

    assert received_before_release == []
    assert bob.texts() == ["first", "second"]
    assert_in_seq_order_once(bob.messages())


async def test_concurrent_writes_arrive_in_order(cluster: Cluster) -> None:
    first_node = await cluster.node()
    second_node = await cluster.node()
    await add_chat(first_node)
    bob_on_first, bob_on_second = Inbox(), Inbox()
    first_node.service.subscribe("bob", bob_on_first)
    second_node.service.subscribe("bob", bob_on_second)

    await asyncio.gather(
        *(
            node.service.send_message("alice", "c1", f"{name} {number}")
            for number in range(10)
            for name, node in (("one", first_node), ("two", second_node))
        )
    )
    for inbox in (bob_on_first, bob_on_second):
        await inbox.wait_for_messages(20)
    stored = await second_node.service.events_after("bob", 0, limit=100)
    stored_messages = [event for event in stored.events if isinstance(event, MessageSent)]

    for inbox in (bob_on_first, bob_on_second):
        assert_in_seq_order_once(inbox.messages())
        assert inbox.messages() == stored_messages


# Gaps


async def test_lost_publish_filled_from_store(cluster: Cluster) -> None:
    first_node = await cluster.node(limits=Limits(reorder_wait_ms=50))
    second_node = await cluster.node(limits=Limits(reorder_wait_ms=50))
    await add_chat(first_node)
    bob, alice = Inbox(), Inbox()
    second_node.service.subscribe("bob", bob)
    first_node.service.subscribe("alice", alice)

    first_node.broker.drop_next_publish = True
    await first_node.service.send_message("alice", "c1", "lost on the way")
    await second_node.service.send_message("bob", "c1", "reveals the gap")
    for inbox in (bob, alice):
        await inbox.wait_for_messages(2)

    for inbox in (bob, alice):
        assert inbox.texts() == ["lost on the way", "reveals the gap"]
        assert_in_seq_order_once(inbox.messages())


async def test_failed_publish_of_last_event_retried(
    cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="talkjs_components.service")
    first_node = await cluster.node(limits=Limits(reorder_wait_ms=FOREVER_MS))
    second_node = await cluster.node(limits=Limits(reorder_wait_ms=FOREVER_MS))
    await add_chat(first_node)
    bob, alice = Inbox(), Inbox()
    second_node.service.subscribe("bob", bob)
    first_node.service.subscribe("alice", alice)

    # No later event reveals the gap: only publishing again delivers it.
    first_node.broker.fail_publishes = 2
    await first_node.service.send_message("alice", "c1", "published on the third try")
    for inbox in (bob, alice):
        await inbox.wait_for_messages(1)

    for inbox in (bob, alice):
        assert inbox.texts() == ["published on the third try"]
    event_seq = bob.messages()[0].seq
    lines = [record.getMessage() for record in caplog.records]
    assert any("failed; publishing it again later" in line for line in lines)
    assert any(f"event seq {event_seq} " in line and "again failed" in line for line in lines)
    assert any(f"published event seq {event_seq} " in line for line in lines)


async def test_full_buffer_reads_store_at_once(cluster: Cluster) -> None:
    limits = Limits(reorder_wait_ms=FOREVER_MS, reorder_buffer_size=2)
    first_node = await cluster.node(limits=limits)
    second_node = await cluster.node(limits=limits)
    await add_chat(first_node)
    bob = Inbox()
    second_node.service.subscribe("bob", bob)

    first_node.broker.drop_next_publish = True
    await first_node.service.send_message("alice", "c1", "lost")
    for number in range(2):
        await second_node.service.send_message("bob", "c1", f"held {number}")
    await second_node.broker.wait_for_message("held 1")
    held_while_within_limit = bob.texts()
    # The third held event is one over the buffer's size.
    await second_node.service.send_message("bob", "c1", "held 2")
    await bob.wait_for_messages(4)

    assert held_while_within_limit == []
    assert bob.texts() == ["lost", "held 0", "held 1", "held 2"]
    assert_in_seq_order_once(bob.messages())


async def test_events_missed_while_disconnected(
    cluster: Cluster, redis_namespace: RedisNamespace, caplog: pytest.LogCaptureFixture
) -> None:
    """Events published while a node's subscription is down arrive after it reconnects."""
    first_node = await cluster.node()
    # A second or so before the reconnect, so the send below happens while disconnected.
    second_node = await cluster.node(reconnect_delay=2.0)
    await add_chat(first_node)
    bob = Inbox()
    second_node.service.subscribe("bob", bob)

    with caplog.at_level(logging.INFO, logger="talkjs_components.broker.redis"):
        killed = await redis_namespace.kill_connections(
            second_node.broker.broker.subscriber_client_name
        )
        await first_node.service.send_message("alice", "c1", "sent meanwhile")
        await bob.wait_for_messages(1)

    assert killed == 1
    assert bob.texts() == ["sent meanwhile"]
    broker_id = second_node.broker.broker.broker_id
    assert any(
        record.getMessage().startswith(f"Redis broker {broker_id} reconnected")
        for record in caplog.records
    )


# Presence


async def test_presence_spans_nodes(cluster: Cluster) -> None:
    first_node = await cluster.node()
    second_node = await cluster.node()
    await add_chat(first_node)
    bob = Inbox()
    second_node.service.subscribe("bob", bob)

    on_first = first_node.service.subscribe("alice", lambda event: None, presence=True)
    await first_node.service.flush_presence()
    await bob.wait_for(lambda: ("alice", True) in bob.presence(), "alice online")
    online_seen_from_second = await second_node.service.online_users(["alice", "bob"])
    on_second = second_node.service.subscribe("alice", lambda event: None, presence=True)
    await second_node.service.flush_presence()
    on_first.unsubscribe()
    await first_node.service.flush_presence()
    still_online = [
        await node.service.online_users(["alice"]) for node in (first_node, second_node)
    ]
    on_second.unsubscribe()
    await second_node.service.flush_presence()
    await bob.wait_for(lambda: ("alice", False) in bob.presence(), "alice offline")
    offline_everywhere = [
        await node.service.online_users(["alice"]) for node in (first_node, second_node)
    ]

    assert online_seen_from_second == ["alice"]
    assert still_online == [["alice"], ["alice"]]
    # Any event from the steps in between was published before the last one,
    # so it would be in this list.
    assert bob.presence() == [("alice", True), ("alice", False)]
    assert offline_everywhere == [[], []]


async def test_presence_crosses_nodes_once(cluster: Cluster) -> None:
    first_node = await cluster.node()
    second_node = await cluster.node()
    await add_chat(first_node)
    # Bob shares c1 and c2 with alice, carol shares c2, and erin shares nothing.
    for user_id in ("carol", "erin"):
        await first_node.service.upsert_user(User(id=user_id, name=user_id.title()))
    participants = {user_id: Participation() for user_id in ("alice", "bob", "carol")}
    await first_node.service.sync_conversation(TRUSTED, "c2", participants=participants)
    inboxes = {user_id: Inbox() for user_id in ("bob", "carol", "erin")}
    for user_id, inbox in inboxes.items():
        second_node.service.subscribe(user_id, inbox)

    first_node.service.subscribe("alice", lambda event: None, presence=True)
    await first_node.service.flush_presence()
    for user_id in ("bob", "carol"):
        inbox = inboxes[user_id]
        await inbox.wait_for(functools.partial(_has_presence, inbox, "alice", True), user_id)
    # Redis delivers one node's publishes in order, so a presence event
    # published twice would arrive before this message.
    await first_node.service.send_message("alice", "c2", "after presence")
    await inboxes["carol"].wait_for_messages(1)

    assert inboxes["bob"].presence() == [("alice", True)]
    assert inboxes["carol"].presence() == [("alice", True)]
    assert inboxes["erin"].events == []
    [message] = [
        message
        for message in second_node.broker.arrived
        if message["event"]["type"] == "presence_changed"
    ]
    assert sorted(message["recipients"]) == ["alice", "bob", "carol"]
    assert message["event"] == {
        "seq": None,
        "type": "presence_changed",
        "userId": "alice",
        "online": True,
    }


async def test_presence_recipients_from_broker_message(cluster: Cluster) -> None:
    # Erin shares no conversation with zed, who does not even exist. The
    # receiving node delivers to the recipients that the message lists,
    # without reading the store.
    first_node = await cluster.node()
    second_node = await cluster.node()
    await add_chat(first_node)
    erin, bob = Inbox(), Inbox()
    second_node.service.subscribe("erin", erin)
    second_node.service.subscribe("bob", bob)
    event = PresenceChanged(user_id="zed", online=True)

    payload = service_module._encode_broker_message(event, None, ["erin"])
    await first_node.broker.publish(f"events:{APP_ID}", payload)
    await erin.wait_for(lambda: erin.presence() == [("zed", True)], "zed online")
    await first_node.service.send_message("alice", "c1", "after presence")
    await bob.wait_for_messages(1)

    assert erin.events == [event]
    assert bob.presence() == []


async def test_presence_expires_with_crashed_node(cluster: Cluster) -> None:
    crashing = await cluster.node(presence_ttl=1.0)
    surviving = await cluster.node(presence_ttl=1.0, heartbeat_interval=0.1)
    await add_chat(crashing)
    bob = Inbox()
    surviving.service.subscribe("bob", bob)
    crashing.service.subscribe("alice", lambda event: None, presence=True)
    await crashing.service.flush_presence()
    await bob.wait_for(lambda: ("alice", True) in bob.presence(), "alice online")

    # Closing the crashing node's broker under its running service stops
    # its heartbeats without unregistering it, as a crash would.
    await crashing.broker.broker.close()
    await bob.wait_for(lambda: ("alice", False) in bob.presence(), "alice offline")

    assert bob.presence() == [("alice", True), ("alice", False)]
    assert await surviving.service.online_users(["alice"]) == []
