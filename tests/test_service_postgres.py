"""ChatService on PostgresStore: the essential flows, and two services on one database.

Each test runs on a schema of its own on the test server (see
``tests/services.py``) and is skipped when the server is unreachable. The
event log tests of ``test_event_log.py`` that use its ``service`` fixture
run on PostgreSQL too.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from talkjs_components.broker.memory import MemoryBroker
from talkjs_components.errors import ChatError, InvalidInput, NotFound, StorageError
from talkjs_components.models import (
    ChatEvent,
    MessageDeleted,
    MessageEdited,
    MessageSent,
    MessagesRead,
    Participation,
    User,
)
from talkjs_components.service import TRUSTED, ChatService, Limits
from talkjs_components.store.postgres import PostgresStore

APP_ID = "app-test"
DAY_MS = 24 * 60 * 60 * 1000


class Inbox:
    """A listener that keeps the events it receives."""

    def __init__(self) -> None:
        self.events: list[ChatEvent] = []

    def __call__(self, event: ChatEvent) -> None:
        self.events.append(event)


async def add_chat(service: ChatService) -> None:
    """Create alice, bob and carol, and conversation "c1" of alice and bob."""
    for user_id in ("alice", "bob", "carol"):
        await service.upsert_user(User(id=user_id, name=user_id.title()))
    await service.sync_conversation(
        TRUSTED, "c1", participants={"alice": Participation(), "bob": Participation()}
    )


async def unread_counts(service: ChatService, user_id: str) -> dict[str, int]:
    return {
        unread.conversation.id: unread.unread_message_count
        for unread in await service.get_unreads(user_id)
    }


async def all_events(service: ChatService, user_id: str, after_seq: int = 0) -> list[ChatEvent]:
    events: list[ChatEvent] = []
    while True:
        page = await service.events_after(user_id, after_seq, limit=1000)
        events += page.events
        after_seq = page.next_after_seq
        if not page.has_more:
            return events


@pytest.fixture
def broker() -> MemoryBroker:
    return MemoryBroker()


@pytest.fixture
async def chat(postgres_url: str, broker: MemoryBroker) -> AsyncIterator[ChatService]:
    """A started service on PostgreSQL with alice, bob, carol and "c1" of alice and bob."""
    service = ChatService(PostgresStore(postgres_url, APP_ID), broker, app_id=APP_ID)
    await service.start()
    try:
        await add_chat(service)
        await broker.flush()
        yield service
    finally:
        await service.close()


async def test_send_edit_delete_flow(chat: ChatService, broker: MemoryBroker) -> None:
    inbox = Inbox()
    chat.subscribe("bob", inbox)

    sent = await chat.send_message("alice", "c1", "helo")
    edited = await chat.edit_message("alice", "c1", sent.id, text="hello")
    listed = await chat.list_messages("bob", "c1")
    await chat.delete_message("alice", "c1", sent.id)
    after_delete = await chat.list_messages("bob", "c1")
    await broker.flush()

    assert edited.text == "hello"
    assert edited.edited_at is not None
    assert listed.messages == [edited]
    assert after_delete.messages == []
    assert [type(event) for event in inbox.events] == [MessageSent, MessageEdited, MessageDeleted]
    assert inbox.events == await all_events(chat, "bob", (inbox.events[0].seq or 1) - 1)


async def test_unreads_rise_and_clear(chat: ChatService, broker: MemoryBroker) -> None:
    await chat.send_message("alice", "c1", "one")
    await chat.send_message("alice", "c1", "two")
    before = await unread_counts(chat, "bob")
    snapshot = await chat.get_unreads_snapshot("bob")
    inbox = Inbox()
    chat.subscribe("alice", inbox)

    await chat.mark_read("bob", "c1")
    await broker.flush()
    after_read = await unread_counts(chat, "bob")
    replayed = await all_events(chat, "bob", snapshot.as_of_event_seq)

    assert before == {"c1": 2}
    assert [unread.unread_message_count for unread in snapshot.unreads] == [2]
    assert after_read == {}
    assert [type(event) for event in replayed] == [MessagesRead]
    assert inbox.events == replayed
    page = await chat.list_messages("alice", "c1")
    assert [message.read_by for message in page.messages] == [["bob"], ["bob"]]


async def test_idempotent_send_and_reused_key(chat: ChatService, broker: MemoryBroker) -> None:
    inbox = Inbox()
    chat.subscribe("bob", inbox)

    first = await chat.send_message("alice", "c1", "once", idempotency_key="key-1")
    again = await chat.send_message("alice", "c1", "once", idempotency_key="key-1")
    with pytest.raises(InvalidInput) as reused:
        await chat.send_message("alice", "c1", "twice", idempotency_key="key-1")
    await broker.flush()
    page = await chat.list_messages("alice", "c1")

    assert again == first
    assert [message.id for message in page.messages] == [first.id]
    assert reused.value.code == "idempotency_key_reused"
    assert [type(event) for event in inbox.events] == [MessageSent]


async def test_non_participant_rejected(chat: ChatService) -> None:
    with pytest.raises(ChatError) as sending:
        await chat.send_message("carol", "c1", "let me in")
    with pytest.raises(NotFound):
        await chat.send_message("alice", "missing", "anyone?")

    assert sending.value.code == "permission_denied"
    assert (await chat.list_messages("alice", "c1")).messages == []


async def test_resume_after_retention_is_gap(postgres_url: str) -> None:
    service = ChatService(
        PostgresStore(postgres_url, APP_ID),
        MemoryBroker(),
        app_id=APP_ID,
        limits=Limits(event_retention_ms=DAY_MS),
    )
    await service.start()
    try:
        await add_chat(service)
        for number in range(3):
            await service.send_message("alice", "c1", f"old {number}")
        connection = await asyncpg.connect(postgres_url)
        try:
            await connection.execute("UPDATE events SET created_at = created_at - $1", 2 * DAY_MS)
        finally:
            await connection.close()
        # Each logged write prunes up to two expired events, oldest first.
        for number in range(3):
            await service.send_message("alice", "c1", f"new {number}")

        with pytest.raises(ChatError) as raised:
            await service.events_after("bob", 0)
        snapshot = await service.get_unreads_snapshot("bob")
        resumed = await service.events_after("bob", snapshot.as_of_event_seq)
    finally:
        await service.close()

    assert raised.value.code == "resume_gap"
    assert "was pruned up to seq" in raised.value.message
    assert [unread.unread_message_count for unread in snapshot.unreads] == [6]
    assert resumed.events == []


async def test_start_on_unmigrated_schema_fails(empty_postgres_url: str) -> None:
    service = ChatService(PostgresStore(empty_postgres_url, APP_ID), MemoryBroker(), app_id=APP_ID)

    with pytest.raises(StorageError, match="run 'talkjs-components migrate'"):
        await service.start()


# Two services (two server nodes) on one database


async def test_two_services_share_data_and_events(postgres_url: str) -> None:
    broker = MemoryBroker()
    await broker.start()
    nodes = [
        ChatService(PostgresStore(postgres_url, APP_ID), broker, app_id=APP_ID, owns_broker=False)
        for _ in range(2)
    ]
    for node in nodes:
        await node.start()
    try:
        await add_chat(nodes[0])
        await broker.flush()
        inbox = Inbox()
        nodes[1].subscribe("bob", inbox)

        # The same send retried on both nodes at once, and new sends on each.
        retried = await asyncio.gather(
            *(node.send_message("alice", "c1", "once", idempotency_key="retry") for node in nodes)
        )
        await asyncio.gather(
            *(
                node.send_message(sender, "c1", f"{sender} {number}")
                for number in range(5)
                for node, sender in zip(nodes, ("alice", "bob"), strict=True)
            )
        )
        await broker.flush()
        page = await nodes[1].list_messages("bob", "c1")
        replayed = await all_events(nodes[0], "bob")
        unreads = await unread_counts(nodes[1], "alice")
    finally:
        for node in nodes:
            await node.close()
        await broker.close()

    assert retried[0] == retried[1]
    texts = [message.text for message in page.messages]
    assert texts.count("once") == 1
    assert len(texts) == 11
    sent = [event for event in replayed if isinstance(event, MessageSent)]
    assert [event.message.id for event in sent] == [message.id for message in page.messages]
    # Every logged event reached the listener on the other node once.
    assert sorted(event.seq or 0 for event in inbox.events) == sorted(
        event.seq or 0 for event in replayed if isinstance(event, MessageSent)
    )
    # Alice's sends moved her read position, so bob's later messages are unread.
    last_from_alice = max(
        index for index, message in enumerate(page.messages) if message.sender_id == "alice"
    )
    expected = sum(
        1 for message in page.messages[last_from_alice + 1 :] if message.sender_id == "bob"
    )
    assert unreads == ({"c1": expected} if expected else {})
