"""The ChatService and SQLiteStore operations the REST API added, on a real SQLite file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from talkjs_components.broker.memory import MemoryBroker
from talkjs_components.errors import InvalidInput, NotFound, PermissionDenied
from talkjs_components.models import (
    MAX_CUSTOM_FIELDS,
    AccessLevel,
    ChatEvent,
    ConversationUpdated,
    MessageType,
    Participation,
    User,
)
from talkjs_components.service import (
    MAX_USERS_PER_BATCH,
    TRUSTED,
    ChatService,
    MessageDraft,
)
from talkjs_components.store.sqlite import SQLiteStore

APP_ID = "app-rest-ops"


@pytest.fixture
async def broker() -> MemoryBroker:
    return MemoryBroker()


@pytest.fixture
async def service(tmp_path: Path, broker: MemoryBroker) -> AsyncIterator[ChatService]:
    chat = ChatService(SQLiteStore(tmp_path / "chat.sqlite3", APP_ID), broker, app_id=APP_ID)
    await chat.start()
    for user_id in ("alice", "bob", "carol", "dave"):
        await chat.upsert_user(User(id=user_id, name=user_id.title()))
    await chat.sync_conversation(
        TRUSTED,
        "c1",
        participants={
            "alice": Participation(),
            "bob": Participation(),
            "dave": Participation(access=AccessLevel.READ),
        },
    )
    await broker.flush()
    yield chat
    await chat.close()


# Users


async def test_upsert_users_all_or_nothing(service: ChatService) -> None:
    full: dict[str, str | None] = {f"k{index}": "v" for index in range(MAX_CUSTOM_FIELDS)}
    await service.upsert_user(User(id="erin", name="Erin", custom=full))
    with pytest.raises(InvalidInput) as caught:
        await service.upsert_users(
            [User(id="frank", name="Frank"), User(id="erin", custom={"one-more": "x"})]
        )
    assert "user 'erin'" in caught.value.message
    assert "frank" not in await service.get_users(["frank"])


async def test_upsert_users_merges_each(service: ChatService) -> None:
    stored = await service.upsert_users(
        [User(id="alice", role="admin"), User(id="gina", name="Gina")]
    )
    assert [user.id for user in stored] == ["alice", "gina"]
    alice = await service.get_user("alice")
    assert (alice.name, alice.role) == ("Alice", "admin")


async def test_upsert_users_rejects_duplicates_and_size(service: ChatService) -> None:
    with pytest.raises(InvalidInput) as twice:
        await service.upsert_users([User(id="x", name="A"), User(id="x", name="B")])
    assert "listed twice" in twice.value.message
    too_many = [User(id=f"u{index}") for index in range(MAX_USERS_PER_BATCH + 1)]
    with pytest.raises(InvalidInput) as big:
        await service.upsert_users(too_many)
    assert str(MAX_USERS_PER_BATCH) in big.value.message
    assert await service.get_users(["x", "u0"]) == {}


async def test_list_users_pages_by_id(service: ChatService) -> None:
    first = await service.list_users(limit=2)
    assert [user.id for user in first] == ["alice", "bob"]
    rest = await service.list_users(limit=10, starting_after="bob")
    assert [user.id for user in rest] == ["carol", "dave"]
    assert await service.list_users(limit=10, starting_after="dave") == []
    with pytest.raises(InvalidInput):
        await service.list_users(limit=0)


# Conversations


async def test_list_all_conversations_with_last_message(service: ChatService) -> None:
    await service.sync_conversation(TRUSTED, "c0", participants={"carol": Participation()})
    message = await service.send_message(TRUSTED, "c1", "hello", sender_id="alice")
    entries = await service.list_all_conversations(limit=10)
    assert [entry.conversation.id for entry in entries] == ["c0", "c1"]
    assert entries[0].last_message is None
    assert entries[1].last_message is not None
    assert entries[1].last_message.id == message.id
    after = await service.list_all_conversations(limit=10, starting_after="c0")
    assert [entry.conversation.id for entry in after] == ["c1"]


async def test_user_conversation_page_order_and_unreads(service: ChatService) -> None:
    await service.sync_conversation(
        TRUSTED, "c2", participants={"alice": Participation(), "bob": Participation()}
    )
    await service.sync_conversation(TRUSTED, "c3", participants={"alice": Participation()})
    await service.send_message(TRUSTED, "c2", "first", sender_id="bob")
    await service.send_message(TRUSTED, "c1", "second", sender_id="bob")
    await service.send_message(TRUSTED, "c1", "third", sender_id="bob")

    page = await service.list_user_conversations("alice", limit=10)
    assert [entry.conversation.id for entry in page] == ["c1", "c2", "c3"]
    assert [entry.unread_message_count for entry in page] == [2, 1, 0]
    assert page[0].last_message is not None
    assert page[0].last_message.text == "third"

    unread = await service.list_user_conversations("alice", limit=1, unreads_only=True)
    assert [entry.conversation.id for entry in unread] == ["c1"]
    after = await service.list_user_conversations(
        "alice", limit=1, unreads_only=True, starting_after="c1"
    )
    assert [entry.conversation.id for entry in after] == ["c2"]
    last = await service.list_user_conversations(
        "alice", limit=5, unreads_only=True, starting_after="c2"
    )
    assert last == []


async def test_user_conversation_page_ties_on_time(service: ChatService) -> None:
    # Conversations created in one millisecond still page without repeats or gaps.
    for index in range(6):
        await service.sync_conversation(
            TRUSTED, f"t{index}", participants={"carol": Participation()}
        )
    seen: list[str] = []
    after = None
    while True:
        page = await service.list_user_conversations("carol", limit=2, starting_after=after)
        seen += [entry.conversation.id for entry in page]
        if len(page) < 2:
            break
        after = page[-1].conversation.id
    assert sorted(seen) == [f"t{index}" for index in range(6)]
    assert len(seen) == len(set(seen))


async def test_user_conversation_page_bad_cursor(service: ChatService) -> None:
    with pytest.raises(InvalidInput) as caught:
        await service.list_user_conversations("carol", limit=5, starting_after="c1")
    assert "startingAfter 'c1'" in caught.value.message


async def test_delete_conversation_publishes_removal(
    service: ChatService, broker: MemoryBroker
) -> None:
    await service.send_message(TRUSTED, "c1", "bye", sender_id="alice")
    await broker.flush()
    events: list[ChatEvent] = []
    subscription = service.subscribe("bob", events.append)
    await service.delete_conversation(TRUSTED, "c1")
    await broker.flush()
    subscription.unsubscribe()

    [event] = events
    assert isinstance(event, ConversationUpdated)
    assert sorted(event.removed_user_ids) == ["alice", "bob", "dave"]
    assert event.conversation.participants == {}
    assert await service.list_conversations("bob") == []
    with pytest.raises(NotFound):
        await service.delete_conversation(TRUSTED, "c1")


async def test_user_cannot_delete_conversation(service: ChatService) -> None:
    with pytest.raises(PermissionDenied):
        await service.delete_conversation("alice", "c1")
    assert (await service.get_conversation(TRUSTED, "c1")).id == "c1"


async def test_rejected_store_delete_keeps_everything(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "store.sqlite3", APP_ID)
    await store.open()
    try:
        await store.upsert_user(User(id="alice"))
        await store.upsert_conversation("c1", None, {"alice": Participation()})

        def reject(conversation: object) -> None:
            raise PermissionDenied("no")

        with pytest.raises(PermissionDenied):
            await store.delete_conversation("c1", authorize=reject)
        assert await store.get_conversation("c1") is not None
        deleted = await store.delete_conversation("c1")
        assert list(deleted.conversation.participants) == ["alice"]
        assert await store.get_conversation("c1") is None
    finally:
        await store.close()


# Participants


async def test_set_participant_adds_and_updates(service: ChatService, broker: MemoryBroker) -> None:
    events: list[ChatEvent] = []
    subscription = service.subscribe("carol", events.append)
    updated = await service.set_participant(
        TRUSTED, "c1", "carol", Participation(access=AccessLevel.READ)
    )
    assert updated.participants["carol"].access is AccessLevel.READ
    assert updated.participants["carol"].notify is True
    changed = await service.set_participant(
        TRUSTED, "c1", "carol", Participation(notify=False), existing_only=True
    )
    assert changed.participants["carol"] == Participation(access=AccessLevel.READ, notify=False)
    await service.set_participant(TRUSTED, "c1", "carol", Participation(notify=False))
    await broker.flush()
    subscription.unsubscribe()
    assert [type(event) for event in events] == [ConversationUpdated, ConversationUpdated]


async def test_set_participant_errors(service: ChatService) -> None:
    with pytest.raises(NotFound):
        await service.set_participant(TRUSTED, "missing", "carol", Participation())
    assert await service.list_conversations("carol") == []
    with pytest.raises(NotFound):
        await service.set_participant(
            TRUSTED, "c1", "carol", Participation(notify=False), existing_only=True
        )
    with pytest.raises(NotFound):
        await service.set_participant(TRUSTED, "c1", "ghost", Participation())
    with pytest.raises(PermissionDenied):
        await service.set_participant("dave", "c1", "carol", Participation())
    await service.set_participant("alice", "c1", "carol", Participation())
    assert "carol" in (await service.get_conversation(TRUSTED, "c1")).participants


# Messages


async def test_get_message_checks_participant(service: ChatService) -> None:
    message = await service.send_message(TRUSTED, "c1", "hello", sender_id="alice")
    assert (await service.get_message("dave", "c1", message.id)).text == "hello"
    with pytest.raises(PermissionDenied):
        await service.get_message("carol", "c1", message.id)
    with pytest.raises(NotFound):
        await service.get_message(TRUSTED, "c1", "msg_missing")


async def test_send_messages_checks_all_first(service: ChatService) -> None:
    drafts = [
        MessageDraft("fine", sender_id="alice"),
        MessageDraft("read-only sender", sender_id="dave"),
    ]
    with pytest.raises(PermissionDenied):
        await service.send_messages(TRUSTED, "c1", drafts)
    with pytest.raises(InvalidInput) as empty:
        await service.send_messages(
            TRUSTED, "c1", [MessageDraft("fine", sender_id="alice"), MessageDraft(" ", "bob")]
        )
    assert "message 2 of 2" in empty.value.message
    with pytest.raises(InvalidInput) as repeated:
        await service.send_messages(
            TRUSTED,
            "c1",
            [
                MessageDraft("one", sender_id="alice", idempotency_key="k"),
                MessageDraft("two", sender_id="alice", idempotency_key="k"),
            ],
        )
    assert "repeats idempotency_key 'k'" in repeated.value.message
    assert (await service.list_messages(TRUSTED, "c1")).messages == []


async def test_send_messages_in_order(service: ChatService) -> None:
    sent = await service.send_messages(
        TRUSTED,
        "c1",
        [
            MessageDraft("system", type=MessageType.SYSTEM),
            MessageDraft("user", sender_id="bob", custom={"k": "v"}, idempotency_key="k1"),
        ],
    )
    stored = (await service.list_messages(TRUSTED, "c1")).messages
    assert [message.id for message in stored] == [message.id for message in sent]
    assert stored[0].sender_id is None
    assert stored[1].custom == {"k": "v"}
    again = await service.send_messages(
        TRUSTED,
        "c1",
        [MessageDraft("user", sender_id="bob", custom={"k": "v"}, idempotency_key="k1")],
    )
    assert again[0].id == sent[1].id


async def test_check_store_answers(service: ChatService, tmp_path: Path) -> None:
    await service.check_store()
    stopped = ChatService(
        SQLiteStore(tmp_path / "other.sqlite3", APP_ID), MemoryBroker(), app_id=APP_ID
    )
    with pytest.raises(Exception) as caught:
        await stopped.check_store()
    assert getattr(caught.value, "code", None) == "service_not_running"
