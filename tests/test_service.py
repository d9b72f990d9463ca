"""Tests of ChatService with a real SQLiteStore file and a MemoryBroker."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import typing
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from pydantic import ValidationError

from talkjs_components import service as service_module
from talkjs_components.broker.memory import MemoryBroker
from talkjs_components.errors import ChatError, InvalidInput, NotFound, PermissionDenied
from talkjs_components.models import (
    MAX_TEXT_LENGTH,
    AccessLevel,
    ChatEvent,
    Conversation,
    ConversationAttributes,
    ConversationEvent,
    ConversationUpdated,
    MessageSent,
    MessagesPage,
    MessagesRead,
    MessageType,
    Participation,
    PresenceChanged,
    TypingChanged,
    UnreadConversation,
    User,
)
from talkjs_components.service import MAX_NEW_USERS_PER_SYNC, TRUSTED, ChatService, Limits
from talkjs_components.store import InsertedMessage, NewMessage
from talkjs_components.store.sqlite import SQLiteStore

APP_ID = "app-test"

_T = TypeVar("_T")


class CountingStore(SQLiteStore):
    """The real SQLiteStore, counting each database operation by name.

    Every public method runs its SQL through ``_run``, so counting there
    counts every trip to the database.
    """

    def __init__(self, path: Path, app_id: str) -> None:
        super().__init__(path, app_id)
        self.operations: Counter[str] = Counter()

    async def _run(self, operation: str, work: Callable[[Any], _T], *, write: bool) -> _T:
        self.operations[operation] += 1
        return await super()._run(operation, work, write=write)


class HookedStore(SQLiteStore):
    """The real SQLiteStore, awaiting ``before_insert`` just before each message insert.

    The hook simulates another user's request that commits after the
    service was called and before the insert transaction starts.
    """

    def __init__(self, path: Path, app_id: str) -> None:
        super().__init__(path, app_id)
        self.before_insert: Callable[[], Awaitable[object]] | None = None

    async def insert_message(self, message: NewMessage, **options: Any) -> InsertedMessage:
        if self.before_insert is not None:
            await self.before_insert()
        return await super().insert_message(message, **options)


class Inbox:
    """A listener that keeps the events it receives."""

    def __init__(self) -> None:
        self.events: list[ChatEvent] = []

    def __call__(self, event: ChatEvent) -> None:
        self.events.append(event)

    def types(self) -> list[str]:
        return [event.type for event in self.events]


@pytest.fixture
def database_path(tmp_path: Path) -> Path:
    return tmp_path / "chat.sqlite3"


@pytest.fixture
def broker() -> MemoryBroker:
    return MemoryBroker()


@pytest.fixture
def store(database_path: Path) -> CountingStore:
    return CountingStore(database_path, APP_ID)


@pytest.fixture
async def service(store: CountingStore, broker: MemoryBroker) -> AsyncIterator[ChatService]:
    service = ChatService(store, broker, app_id=APP_ID)
    await service.start()
    yield service
    await service.close()


async def add_users(service: ChatService, *user_ids: str) -> None:
    for user_id in user_ids:
        await service.upsert_user(User(id=user_id, name=user_id.title()))


@pytest.fixture
async def chat(service: ChatService, broker: MemoryBroker) -> ChatService:
    """The service with users alice, bob, carol and dave.

    Conversation "c1" has alice and bob with ReadWrite access and dave with
    Read access. Carol is in no conversation.
    """
    await add_users(service, "alice", "bob", "carol", "dave")
    await service.sync_conversation(
        TRUSTED,
        "c1",
        ConversationAttributes(subject="Plans"),
        {
            "alice": Participation(),
            "bob": Participation(),
            "dave": Participation(access=AccessLevel.READ),
        },
    )
    # Deliver the set-up events now, so that tests' listeners do not receive them.
    await broker.flush()
    return service


async def unread_counts(service: ChatService, user_id: str) -> dict[str, int]:
    return {
        unread.conversation.id: unread.unread_message_count
        for unread in await service.get_unreads(user_id)
    }


# Lifecycle


async def test_start_and_close_log_app_id(
    store: CountingStore, broker: MemoryBroker, caplog: pytest.LogCaptureFixture
) -> None:
    service = ChatService(store, broker, app_id=APP_ID)

    with caplog.at_level(logging.INFO, logger="talkjs_components.service"):
        await service.start()
        await service.close()

    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        "chat service started for app 'app-test'",
        "chat service closed for app 'app-test'",
    ]


async def test_use_before_start_raises(store: CountingStore, broker: MemoryBroker) -> None:
    service = ChatService(store, broker, app_id=APP_ID)

    with pytest.raises(
        ChatError, match=r"not running: call await service.start\(\) first"
    ) as raised:
        await service.get_user("alice")

    assert raised.value.code == "service_not_running"


async def test_use_after_close_raises(service: ChatService) -> None:
    await service.close()

    with pytest.raises(ChatError, match="app 'app-test' is closed") as raised:
        await service.list_conversations("alice")
    with pytest.raises(ChatError, match="is closed"):
        service.subscribe("alice", Inbox())
    with pytest.raises(ChatError, match="already started"):
        await service.start()

    assert raised.value.code == "service_closed"


async def test_owned_broker_started_and_closed(store: CountingStore, broker: MemoryBroker) -> None:
    service = ChatService(store, broker, app_id=APP_ID)

    await service.start()
    await broker.publish("probe", b"broker is started")
    await service.close()

    with pytest.raises(RuntimeError, match="not started"):
        await broker.publish("probe", b"broker is closed")


async def test_shared_broker_left_to_caller(store: CountingStore, broker: MemoryBroker) -> None:
    service = ChatService(store, broker, app_id=APP_ID, owns_broker=False)
    with pytest.raises(RuntimeError, match="not started"):
        await service.start()

    await broker.start()
    await service.start()
    await service.close()

    await broker.publish("probe", b"still started")
    await broker.close()


async def test_data_survives_restart(database_path: Path) -> None:
    first = ChatService(SQLiteStore(database_path, APP_ID), MemoryBroker(), app_id=APP_ID)
    await first.start()
    await add_users(first, "alice", "bob")
    await first.sync_conversation(
        "alice", "c1", participants={"alice": Participation(), "bob": Participation()}
    )
    sent = await first.send_message("alice", "c1", "kept on disk")
    await first.close()

    second = ChatService(SQLiteStore(database_path, APP_ID), MemoryBroker(), app_id=APP_ID)
    await second.start()
    try:
        user = await second.get_user("bob")
        page = await second.list_messages("bob", "c1")
        unreads = await unread_counts(second, "bob")
    finally:
        await second.close()

    assert user.name == "Bob"
    assert [message.id for message in page.messages] == [sent.id]
    assert unreads == {"c1": 1}


# Users


async def test_upsert_user_merge_semantics(service: ChatService) -> None:
    await service.upsert_user(
        User(id="alice", name="Alice", role="admin", custom={"team": "red", "level": "3"})
    )

    updated = await service.upsert_user(
        User(id="alice", role=None, custom={"level": None, "city": "Oslo"})
    )
    fetched = await service.get_user("alice")

    assert updated.name == "Alice"
    assert updated.role is None
    assert updated.custom == {"team": "red", "city": "Oslo"}
    assert fetched == updated


async def test_get_user_unknown(service: ChatService) -> None:
    with pytest.raises(NotFound, match="user 'ghost' not found"):
        await service.get_user("ghost")


async def test_get_users_returns_known(chat: ChatService) -> None:
    users = await chat.get_users(["alice", "ghost", "alice", "bob"])

    assert sorted(users) == ["alice", "bob"]


async def test_get_users_scoped_to_actor(chat: ChatService, store: CountingStore) -> None:
    everyone = ["alice", "bob", "carol", "dave", "ghost"]
    store.operations.clear()

    for_alice = await chat.get_users(everyone, actor="alice")
    for_dave = await chat.get_users(everyone, actor="dave")
    for_carol = await chat.get_users(everyone, actor="carol")
    for_trusted = await chat.get_users(everyone, actor=TRUSTED)

    assert sorted(for_alice) == ["alice", "bob", "dave"]
    assert sorted(for_dave) == ["alice", "bob", "dave"]
    assert sorted(for_carol) == ["carol"]
    assert sorted(for_trusted) == ["alice", "bob", "carol", "dave"]
    assert dict(store.operations) == {"get users": 4}


async def test_get_users_hides_removed_participant(chat: ChatService) -> None:
    await chat.remove_participant("dave", "c1", "dave")

    users = await chat.get_users(["alice", "dave"], actor="alice")

    assert sorted(users) == ["alice"]


# Conversations


async def test_sync_creates_then_merges(chat: ChatService) -> None:
    updated = await chat.sync_conversation(
        "alice", "c1", ConversationAttributes(custom={"topic": "trip"})
    )
    merged = await chat.sync_conversation(
        "bob", "c1", ConversationAttributes(subject=None, custom={"topic": None, "day": "Mon"})
    )

    assert updated.subject == "Plans"
    assert updated.custom == {"topic": "trip"}
    assert merged.subject is None
    assert merged.custom == {"day": "Mon"}
    assert set(merged.participants) == {"alice", "bob", "dave"}


async def test_user_creates_own_conversation(chat: ChatService) -> None:
    created = await chat.sync_conversation(
        "carol", "c2", participants={"carol": Participation(), "alice": Participation()}
    )

    assert set(created.participants) == {"carol", "alice"}
    assert await chat.get_conversation("alice", "c2") == created


async def test_participants_add_update_remove(chat: ChatService) -> None:
    added = await chat.sync_conversation("alice", "c1", participants={"carol": Participation()})
    demoted = await chat.sync_conversation(
        "alice", "c1", participants={"carol": Participation(access=AccessLevel.READ)}
    )
    removed = await chat.remove_participant("alice", "c1", "carol")

    assert added.participants["carol"].access is AccessLevel.READ_WRITE
    assert demoted.participants["carol"].access is AccessLevel.READ
    assert "carol" not in removed.participants
    assert [conversation.id for conversation in await chat.list_conversations("carol")] == []


async def test_user_removes_themselves(chat: ChatService) -> None:
    updated = await chat.remove_participant("dave", "c1", "dave")

    assert "dave" not in updated.participants


async def test_sync_creates_new_users(chat: ChatService) -> None:
    created = await chat.sync_conversation(
        "alice",
        "c2",
        participants={"alice": Participation(), "erin": Participation()},
        new_users=[User(id="erin", name="Erin", role="guest")],
    )
    erin = await chat.get_user("erin")

    assert set(created.participants) == {"alice", "erin"}
    assert erin.name == "Erin"
    assert erin.role == "guest"


async def test_new_users_leave_existing_unchanged(chat: ChatService) -> None:
    bob = await chat.get_user("bob")

    await chat.sync_conversation(
        "alice",
        "c2",
        participants={"alice": Participation(), "bob": Participation()},
        new_users=[User(id="bob", name="Not Bob", role="admin")],
    )

    assert await chat.get_user("bob") == bob


async def test_new_user_must_be_participant(chat: ChatService) -> None:
    with pytest.raises(InvalidInput) as raised:
        await chat.sync_conversation(
            "alice",
            "c1",
            participants={"bob": Participation()},
            new_users=[User(id="erin", name="Erin")],
        )

    assert str(raised.value) == (
        "new user 'erin' is not in participants: list every user of new_users in "
        "participants too, because sync_conversation creates only users it adds to "
        "the conversation"
    )
    with pytest.raises(NotFound):
        await chat.get_user("erin")


async def test_new_user_listed_twice(chat: ChatService) -> None:
    with pytest.raises(InvalidInput, match="new user 'erin' is listed twice in new_users"):
        await chat.sync_conversation(
            "alice",
            "c1",
            participants={"erin": Participation()},
            new_users=[User(id="erin", name="Erin"), User(id="erin", name="Erin Two")],
        )


async def test_new_users_limit(chat: ChatService) -> None:
    def guests(count: int) -> list[User]:
        return [User(id=f"guest{number}", name=f"Guest {number}") for number in range(count)]

    too_many = guests(MAX_NEW_USERS_PER_SYNC + 1)
    with pytest.raises(InvalidInput) as raised:
        await chat.sync_conversation(
            "alice",
            "c1",
            participants={user.id: Participation() for user in too_many},
            new_users=too_many,
        )
    at_limit = guests(MAX_NEW_USERS_PER_SYNC)
    updated = await chat.sync_conversation(
        "alice",
        "c1",
        participants={user.id: Participation() for user in at_limit},
        new_users=at_limit,
    )

    assert MAX_NEW_USERS_PER_SYNC == 20
    assert str(raised.value) == (
        "new_users has 21 users, over the limit of 20 per sync_conversation call: "
        "create the others with upsert_user first"
    )
    assert len(updated.participants) == 3 + MAX_NEW_USERS_PER_SYNC


async def test_rejected_sync_creates_no_user(chat: ChatService) -> None:
    erin = User(id="erin", name="Erin")

    with pytest.raises(PermissionDenied, match="user 'dave' has Read access"):
        await chat.sync_conversation(
            "dave", "c1", participants={"erin": Participation()}, new_users=[erin]
        )
    with pytest.raises(PermissionDenied, match="user 'carol' is not a participant"):
        await chat.sync_conversation(
            "carol", "c1", participants={"erin": Participation()}, new_users=[erin]
        )
    with pytest.raises(PermissionDenied, match="user 'carol' cannot create conversation 'c9'"):
        await chat.sync_conversation(
            "carol", "c9", participants={"erin": Participation()}, new_users=[erin]
        )

    assert await chat.get_users(["erin"]) == {}
    conversation = await chat.get_conversation(TRUSTED, "c1")
    assert "erin" not in conversation.participants


async def test_concurrent_creates_admit_no_outsider(service: ChatService) -> None:
    await add_users(service, "alice", "bob", "mallory")
    alice_wins = 0

    for attempt in range(20):
        conversation_id = f"dm-{attempt}"
        alice_create = service.sync_conversation(
            "alice",
            conversation_id,
            participants={"alice": Participation(), "bob": Participation()},
        )
        mallory_create = service.sync_conversation(
            "mallory", conversation_id, participants={"mallory": Participation()}
        )
        alice_result: Conversation | BaseException
        mallory_result: Conversation | BaseException
        if attempt % 2 == 0:
            alice_result, mallory_result = await asyncio.gather(
                alice_create, mallory_create, return_exceptions=True
            )
        else:
            mallory_result, alice_result = await asyncio.gather(
                mallory_create, alice_create, return_exceptions=True
            )
        stored = await service.get_conversation(TRUSTED, conversation_id)

        if isinstance(alice_result, Conversation):
            alice_wins += 1
            assert isinstance(mallory_result, PermissionDenied), conversation_id
            assert set(stored.participants) == {"alice", "bob"}, conversation_id
        else:
            assert isinstance(alice_result, PermissionDenied), conversation_id
            assert isinstance(mallory_result, Conversation), conversation_id
            assert set(stored.participants) == {"mallory"}, conversation_id

    assert alice_wins > 0


async def test_list_conversations_by_activity(chat: ChatService) -> None:
    await chat.sync_conversation(
        "alice", "c2", participants={"alice": Participation(), "bob": Participation()}
    )

    await chat.send_message("bob", "c1", "newest activity")
    conversations = await chat.list_conversations("alice")

    assert [conversation.id for conversation in conversations] == ["c1", "c2"]


# Authorization


async def test_non_participant_cannot_read(chat: ChatService) -> None:
    with pytest.raises(PermissionDenied) as raised:
        await chat.list_messages("carol", "c1")
    with pytest.raises(PermissionDenied, match=r"user 'carol' .* conversation 'c1'"):
        await chat.get_conversation("carol", "c1")

    assert str(raised.value) == (
        "user 'carol' is not a participant of conversation 'c1': "
        "add the user with sync_conversation first"
    )


async def test_read_access_cannot_send(chat: ChatService) -> None:
    with pytest.raises(PermissionDenied) as raised:
        await chat.send_message("dave", "c1", "hello")

    assert str(raised.value) == (
        "user 'dave' has Read access to conversation 'c1'; sending needs ReadWrite"
    )


async def test_non_participant_cannot_send(chat: ChatService) -> None:
    with pytest.raises(PermissionDenied, match="user 'carol' is not a participant"):
        await chat.send_message("carol", "c1", "hello")


async def test_send_after_removal_rejected(database_path: Path, broker: MemoryBroker) -> None:
    store = HookedStore(database_path, APP_ID)
    service = ChatService(store, broker, app_id=APP_ID)
    await service.start()
    try:
        await add_users(service, "alice", "bob")
        await service.sync_conversation(
            TRUSTED, "c1", participants={"alice": Participation(), "bob": Participation()}
        )
        store.before_insert = lambda: store.remove_participant("c1", "bob")
        with pytest.raises(PermissionDenied) as removed:
            await service.send_message("bob", "c1", "sent after removal")
        store.before_insert = lambda: store.upsert_conversation(
            "c1", None, {"alice": Participation(access=AccessLevel.READ)}
        )
        with pytest.raises(PermissionDenied) as demoted:
            await service.send_message("alice", "c1", "sent after demotion")
        store.before_insert = None
        page = await service.list_messages(TRUSTED, "c1")
    finally:
        await service.close()

    assert "user 'bob' is not a participant of conversation 'c1'" in str(removed.value)
    assert "user 'alice' has Read access to conversation 'c1'" in str(demoted.value)
    assert page.messages == []


async def test_user_cannot_send_as_other(chat: ChatService) -> None:
    with pytest.raises(PermissionDenied) as raised:
        await chat.send_message("alice", "c1", "hello", sender_id="bob")

    assert "user 'alice' cannot send as 'bob'" in str(raised.value)


async def test_trusted_send_needs_sender(chat: ChatService) -> None:
    with pytest.raises(InvalidInput, match="sender_id is missing"):
        await chat.send_message(TRUSTED, "c1", "hello")
    with pytest.raises(PermissionDenied, match="user 'dave' has Read access"):
        await chat.send_message(TRUSTED, "c1", "hello", sender_id="dave")

    sent = await chat.send_message(TRUSTED, "c1", "hello", sender_id="bob")
    assert sent.sender_id == "bob"


async def test_system_message_rules(chat: ChatService) -> None:
    with pytest.raises(PermissionDenied, match="user 'alice' cannot send a SystemMessage"):
        await chat.send_message("alice", "c1", "announcement", type=MessageType.SYSTEM)
    with pytest.raises(InvalidInput, match="sender_id 'bob' is not allowed on a SystemMessage"):
        await chat.send_message(
            TRUSTED, "c1", "announcement", type=MessageType.SYSTEM, sender_id="bob"
        )

    sent = await chat.send_message(TRUSTED, "c1", "announcement", type=MessageType.SYSTEM)
    assert sent.sender_id is None
    assert sent.type is MessageType.SYSTEM


async def test_sync_by_non_member_rejected(chat: ChatService) -> None:
    with pytest.raises(PermissionDenied) as outsider:
        await chat.sync_conversation("carol", "c1", ConversationAttributes(subject="Mine now"))
    with pytest.raises(PermissionDenied) as reader:
        await chat.sync_conversation("dave", "c1", ConversationAttributes(subject="Mine now"))
    with pytest.raises(PermissionDenied) as creator:
        await chat.sync_conversation("carol", "c9", participants={"alice": Participation()})

    assert "user 'carol' is not a participant of conversation 'c1'" in str(outsider.value)
    assert "user 'dave' has Read access to conversation 'c1'" in str(reader.value)
    assert "user 'carol' cannot create conversation 'c9'" in str(creator.value)
    assert "include the user in participants" in str(creator.value)
    conversation = await chat.get_conversation(TRUSTED, "c1")
    assert conversation.subject == "Plans"


async def test_remove_other_needs_write_access(chat: ChatService) -> None:
    with pytest.raises(PermissionDenied, match="user 'dave' has Read access"):
        await chat.remove_participant("dave", "c1", "alice")
    with pytest.raises(NotFound, match="user 'carol' is not a participant of conversation 'c1'"):
        await chat.remove_participant("alice", "c1", "carol")


async def test_unknown_conversation_not_found(chat: ChatService) -> None:
    expected = "conversation 'nope' not found: create it with sync_conversation first"

    with pytest.raises(NotFound) as by_get:
        await chat.get_conversation("alice", "nope")
    with pytest.raises(NotFound) as by_send:
        await chat.send_message("alice", "nope", "hello")
    with pytest.raises(NotFound) as by_list:
        await chat.list_messages(TRUSTED, "nope")
    with pytest.raises(NotFound) as by_mark:
        await chat.mark_read("alice", "nope")

    assert str(by_get.value) == expected
    assert str(by_send.value) == expected
    assert str(by_list.value) == expected
    assert str(by_mark.value) == expected


async def test_unknown_user_as_participant(chat: ChatService) -> None:
    with pytest.raises(NotFound) as raised:
        await chat.sync_conversation("alice", "c1", participants={"ghost": Participation()})

    assert "user 'ghost' not found" in str(raised.value)
    assert "upsert the user first or pass it as a User with a name" in str(raised.value)


# Validation


@pytest.mark.parametrize("limit", [0, -1, 101, 500])
async def test_limit_out_of_range(chat: ChatService, limit: int) -> None:
    with pytest.raises(InvalidInput) as raised:
        await chat.list_messages("alice", "c1", limit=limit)

    assert str(raised.value) == f"limit {limit} is out of range: use 1 to 100"


async def test_limit_follows_configured_max(database_path: Path) -> None:
    service = ChatService(
        SQLiteStore(database_path, APP_ID),
        MemoryBroker(),
        app_id=APP_ID,
        limits=Limits(max_page_size=10),
    )
    await service.start()
    try:
        with pytest.raises(InvalidInput, match="limit 11 is out of range: use 1 to 10"):
            await service.list_messages(TRUSTED, "c1", limit=11)
    finally:
        await service.close()


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
async def test_empty_text_rejected(chat: ChatService, text: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        await chat.send_message("alice", "c1", text)

    assert str(raised.value) == (
        "message text is empty: a UserMessage needs at least one non-whitespace character"
    )


async def test_oversized_text_rejected(chat: ChatService) -> None:
    text = "x" * (MAX_TEXT_LENGTH + 1)

    with pytest.raises(InvalidInput) as raised:
        await chat.send_message("alice", "c1", text)

    assert str(raised.value) == (
        "message text has 20001 characters, over the limit of 20000: "
        "shorten it or split it into several messages"
    )


async def test_text_at_limit_accepted(chat: ChatService) -> None:
    sent = await chat.send_message("alice", "c1", "x" * MAX_TEXT_LENGTH)

    assert len(sent.text) == MAX_TEXT_LENGTH


@pytest.mark.parametrize("conversation_id", ["a/b", "", "tab\there", "x" * 201, ".", ".."])
async def test_invalid_conversation_id(chat: ChatService, conversation_id: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        await chat.send_message("alice", conversation_id, "hello")

    assert str(raised.value).startswith("conversation id '")
    assert "is invalid: use 1 to 200 characters" in str(raised.value)


@pytest.mark.parametrize("user_id", [".", ".."])
def test_dot_segment_ids_rejected_by_models(user_id: str) -> None:
    with pytest.raises(ValidationError, match="reserved"):
        User(id=user_id, name="Dot")


async def test_nul_character_rejected_everywhere(chat: ChatService) -> None:
    # PostgreSQL can't store U+0000 and SQLite can; the service refuses it on
    # every path in, so both stores hold the same data.
    attempts: list[Callable[[], Awaitable[object]]] = [
        lambda: chat.send_message("alice", "c1", "a\x00b"),
        lambda: chat.send_message("alice", "c1", "fine", custom={"k": "v\x00"}),
        lambda: chat.upsert_user(User(id="nul", name="N\x00")),
        lambda: chat.sync_conversation("alice", "c1", ConversationAttributes(subject="s\x00")),
        lambda: chat.sync_conversation(
            "alice", "c1", ConversationAttributes(custom={"k\x00": "v"})
        ),
    ]
    for number, attempt in enumerate(attempts):
        with pytest.raises(InvalidInput, match="U\\+0000"):
            await attempt()
            pytest.fail(f"attempt {number} was accepted")
    page = await chat.list_messages("alice", "c1")
    assert page.messages == []


async def test_own_payloads_not_decoded_again(
    chat: ChatService, broker: MemoryBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The in-process broker hands back the bytes object the service
    # published: its event is reused. A payload from elsewhere is decoded.
    decoded: list[bytes] = []
    decode = service_module._BrokerMessage.model_validate_json

    def counting_decode(payload: bytes) -> Any:
        decoded.append(payload)
        return decode(payload)

    monkeypatch.setattr(service_module._BrokerMessage, "model_validate_json", counting_decode)
    received: list[ChatEvent] = []
    chat.subscribe("bob", received.append)

    await chat.send_message("alice", "c1", "published here")
    await broker.flush()
    conversation = await chat.get_conversation(TRUSTED, "c1")
    typing = TypingChanged(conversation=conversation, user_id="alice", typing=True, expires_at=1)
    foreign = service_module._encode_broker_message(typing, None)
    await broker.publish(f"events:{APP_ID}", foreign)
    await broker.flush()

    assert [event.type for event in received] == ["message_sent", "typing_changed"]
    assert decoded == [foreign]


async def test_lone_surrogate_rejected_everywhere(chat: ChatService) -> None:
    # A lone surrogate has no UTF-8 form: before the check, send_message
    # failed with a bare UnicodeEncodeError from the store.
    first = await chat.send_message("alice", "c1", "first")
    attempts: list[Callable[[], Awaitable[object]]] = [
        lambda: chat.send_message("alice", "c1", "a\ud800b"),
        lambda: chat.send_message("alice", "c1", "fine", custom={"k": "v\udfff"}),
        lambda: chat.send_message("alice", "c1", "fine", custom={"k\ud83d": "v"}),
        lambda: chat.send_message("alice", "c1", "fine", idempotency_key="key\udc00"),
        lambda: chat.edit_message("alice", "c1", first.id, text="e\ud800"),
        lambda: chat.edit_message("alice", "c1", first.id, custom={"k": "\ud800"}),
    ]
    for number, attempt in enumerate(attempts):
        with pytest.raises(InvalidInput, match=r"lone surrogate U\+D[89A-F][0-9A-F]{2}"):
            await attempt()
            pytest.fail(f"attempt {number} was accepted")
    page = await chat.list_messages("alice", "c1")
    assert [message.text for message in page.messages] == ["first"]
    assert page.messages[0].custom == {}


async def test_valid_surrogate_pair_accepted(chat: ChatService) -> None:
    message = await chat.send_message("alice", "c1", "smile \U0001f600", custom={"k": "\U0001f600"})

    assert message.text == "smile \U0001f600"


async def test_invalid_custom_rejected(chat: ChatService) -> None:
    custom = {f"key{number}": "x" for number in range(101)}

    with pytest.raises(InvalidInput, match="custom has 101 keys, over the limit of 100"):
        await chat.send_message("alice", "c1", "hello", custom=custom)


async def test_validation_error_becomes_invalid_input(chat: ChatService) -> None:
    participants: dict[str, Any] = {"bob": {"access": "Admin"}}

    with pytest.raises(InvalidInput) as raised:
        await chat.sync_conversation("alice", "c1", participants=participants)

    assert str(raised.value) == (
        "invalid value 'Admin' for field 'access' of Participation: "
        "input should be 'Read' or 'ReadWrite'"
    )


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        (
            {"id": "erin", "name": "x" * 1001},
            "invalid value '" + "x" * 60 + "...' (1001 characters) for field 'name' of User: "
            "string should have at most 1000 characters, so shorten it",
        ),
        (
            {"id": "a/b"},
            "invalid value 'a/b' for field 'id' of User: string should match pattern "
            "'^[^\\x00-\\x1f/\\\\]+$', so remove slashes, backslashes and control characters",
        ),
        (
            {"id": "erin", "nickname": "E"},
            "invalid value 'E' for field 'nickname' of User: "
            "extra inputs are not permitted, so remove the field",
        ),
        ({"name": "Erin"}, "field 'id' of User is missing: set it"),
    ],
)
async def test_validation_message_names_value_and_fix(
    service: ChatService, user: dict[str, Any], expected: str
) -> None:
    user_argument: Any = user

    with pytest.raises(InvalidInput) as raised:
        await service.upsert_user(user_argument)

    assert str(raised.value) == expected


async def test_validation_message_counts_more_errors(chat: ChatService) -> None:
    attributes: Any = {"subject": "x" * 1001, "welcome_messages": ["hi"] * 21}

    with pytest.raises(InvalidInput) as raised:
        await chat.sync_conversation("alice", "c1", attributes)

    assert str(raised.value).endswith(
        "string should have at most 1000 characters, so shorten it (and 1 more errors)"
    )


async def test_invalid_type_rejected(chat: ChatService) -> None:
    message_type: Any = "Shout"

    with pytest.raises(InvalidInput, match="type 'Shout' is invalid: use one of UserMessage"):
        await chat.send_message("alice", "c1", "hello", type=message_type)


# Messages


async def test_send_and_page_messages(chat: ChatService) -> None:
    sent = [await chat.send_message("alice", "c1", f"message {number}") for number in range(75)]
    sent_ids = [message.id for message in sent]

    pages: list[MessagesPage] = [await chat.list_messages("bob", "c1", limit=30)]
    while pages[-1].has_more:
        oldest = pages[-1].messages[0].id
        pages.append(await chat.list_messages("bob", "c1", limit=30, before=oldest))

    assert [len(page.messages) for page in pages] == [30, 30, 15]
    assert [page.has_more for page in pages] == [True, True, False]
    received = [message for page in reversed(pages) for message in page.messages]
    received_seqs = [message.seq for message in received]
    assert [message.id for message in received] == sent_ids
    assert received_seqs == [message.seq for message in sent]
    assert all(earlier < later for earlier, later in itertools.pairwise(received_seqs))
    created = [message.created_at for message in pages[0].messages]
    assert created == sorted(created)


async def test_list_messages_unknown_before(chat: ChatService) -> None:
    with pytest.raises(NotFound, match="message 'msg_gone' not found in conversation 'c1'"):
        await chat.list_messages("alice", "c1", before="msg_gone")


async def test_idempotent_send(chat: ChatService, broker: MemoryBroker) -> None:
    inbox = Inbox()
    chat.subscribe("bob", inbox)

    first = await chat.send_message("alice", "c1", "once", idempotency_key="key-1")
    again = await chat.send_message("alice", "c1", "once", idempotency_key="key-1")
    await broker.flush()
    page = await chat.list_messages("alice", "c1")

    assert again == first
    assert [message.id for message in page.messages] == [first.id]
    assert inbox.types() == ["message_sent"]


@pytest.mark.parametrize(
    ("text", "custom", "difference"),
    [
        ("twice", None, "text"),
        ("once", {"edited": "yes"}, "custom"),
        ("twice", {"edited": "yes"}, "text and custom"),
    ],
)
async def test_idempotency_key_reused_rejected(
    chat: ChatService,
    broker: MemoryBroker,
    text: str,
    custom: dict[str, str] | None,
    difference: str,
) -> None:
    first = await chat.send_message("alice", "c1", "once", idempotency_key="key-1")
    await broker.flush()
    inbox = Inbox()
    chat.subscribe("bob", inbox)

    with pytest.raises(InvalidInput) as raised:
        await chat.send_message("alice", "c1", text, custom=custom, idempotency_key="key-1")
    await broker.flush()
    page = await chat.list_messages("alice", "c1")

    assert raised.value.code == "idempotency_key_reused"
    assert str(raised.value) == (
        f"idempotency_key 'key-1' was already used for message '{first.id}' in "
        f"conversation 'c1' with a different {difference}: use a new idempotency key "
        "for each message, and reuse a key only to retry the same message"
    )
    assert [message.id for message in page.messages] == [first.id]
    assert inbox.events == []


async def test_read_by_follows_mark_read(chat: ChatService) -> None:
    first = await chat.send_message("alice", "c1", "one")
    await chat.send_message("alice", "c1", "two")

    await chat.mark_read("bob", "c1", first.id)
    partly = await chat.list_messages("alice", "c1")
    await chat.mark_read("bob", "c1")
    await chat.mark_read("dave", "c1")
    fully = await chat.list_messages("alice", "c1")

    assert [message.read_by for message in partly.messages] == [["bob"], []]
    assert [message.read_by for message in fully.messages] == [["bob", "dave"]] * 2


# Unreads


async def test_unread_counts_rise_and_clear(chat: ChatService) -> None:
    await chat.send_message("bob", "c1", "one")
    await chat.send_message("bob", "c1", "two")
    alice_after_two = await unread_counts(chat, "alice")
    bob_after_two = await unread_counts(chat, "bob")

    await chat.mark_read("alice", "c1")
    alice_after_read = await unread_counts(chat, "alice")
    await chat.send_message("bob", "c1", "three")

    assert alice_after_two == {"c1": 2}
    assert bob_after_two == {}
    assert alice_after_read == {}
    assert await unread_counts(chat, "alice") == {"c1": 1}


async def test_mark_read_never_moves_backwards(chat: ChatService, broker: MemoryBroker) -> None:
    first = await chat.send_message("bob", "c1", "one")
    await chat.send_message("bob", "c1", "two")
    await chat.mark_read("alice", "c1")
    await broker.flush()
    inbox = Inbox()
    chat.subscribe("alice", inbox)

    await chat.mark_read("alice", "c1", first.id)
    await chat.mark_read("alice", "c1")
    await broker.flush()

    assert await unread_counts(chat, "alice") == {}
    assert inbox.events == []


async def test_mark_read_publishes_when_moved(chat: ChatService, broker: MemoryBroker) -> None:
    sent = await chat.send_message("bob", "c1", "one")
    await broker.flush()
    inbox = Inbox()
    chat.subscribe("bob", inbox)

    await chat.mark_read("alice", "c1")
    await broker.flush()

    assert len(inbox.events) == 1
    event = inbox.events[0]
    assert isinstance(event, MessagesRead)
    assert event.user_id == "alice"
    assert event.last_read_message_id == sent.id
    assert event.last_read_seq == sent.seq
    assert event.last_read_seq > 0
    assert event.unread_message_count == 0


async def test_mark_read_by_non_participant(chat: ChatService) -> None:
    with pytest.raises(
        PermissionDenied, match="user 'carol' is not a participant of conversation 'c1'"
    ):
        await chat.mark_read("carol", "c1")


async def test_new_participant_starts_read(chat: ChatService) -> None:
    for number in range(3):
        await chat.send_message("alice", "c1", f"history {number}")

    await chat.sync_conversation("alice", "c1", participants={"carol": Participation()})
    after_join = await unread_counts(chat, "carol")
    await chat.send_message("alice", "c1", "welcome")

    assert after_join == {}
    assert await unread_counts(chat, "carol") == {"c1": 1}


async def test_creator_starts_read(chat: ChatService) -> None:
    await chat.sync_conversation(
        "alice", "c2", participants={"alice": Participation(), "bob": Participation()}
    )

    assert await unread_counts(chat, "alice") == {}


async def test_get_unreads_most_recent_first(chat: ChatService) -> None:
    await chat.sync_conversation(
        "alice", "c2", participants={"alice": Participation(), "bob": Participation()}
    )

    await chat.send_message("bob", "c1", "c1 first")
    await chat.send_message("bob", "c2", "c2 first")
    order_before = [unread.conversation.id for unread in await chat.get_unreads("alice")]
    latest = await chat.send_message("bob", "c1", "c1 second")
    unreads: list[UnreadConversation] = await chat.get_unreads("alice")

    assert order_before == ["c2", "c1"]
    assert [unread.conversation.id for unread in unreads] == ["c1", "c2"]
    assert unreads[0].last_message == latest
    assert unreads[0].unread_message_count == 2


# Events


async def test_message_sent_reaches_participants(chat: ChatService, broker: MemoryBroker) -> None:
    inboxes = {user_id: Inbox() for user_id in ("alice", "bob", "carol")}
    for user_id, inbox in inboxes.items():
        chat.subscribe(user_id, inbox)

    sent = await chat.send_message("alice", "c1", "hello")
    await broker.flush()

    for user_id in ("alice", "bob"):
        events = inboxes[user_id].events
        assert len(events) == 1, user_id
        assert isinstance(events[0], MessageSent)
        assert events[0].message == sent
        assert events[0].conversation.last_message_at == sent.created_at
    assert inboxes["carol"].events == []


async def test_message_sent_carries_sender(chat: ChatService, broker: MemoryBroker) -> None:
    inbox = Inbox()
    chat.subscribe("bob", inbox)
    alice = await chat.get_user("alice")

    await chat.send_message("alice", "c1", "from alice")
    await chat.send_message(TRUSTED, "c1", "announcement", type=MessageType.SYSTEM)
    await broker.flush()

    senders = [event.sender for event in inbox.events if isinstance(event, MessageSent)]
    assert senders == [alice, None]


async def test_events_arrive_in_publish_order(chat: ChatService, broker: MemoryBroker) -> None:
    inbox = Inbox()
    chat.subscribe("bob", inbox)

    sent = [await chat.send_message("alice", "c1", f"message {number}") for number in range(20)]
    await chat.sync_conversation("alice", "c1", ConversationAttributes(subject="Done"))
    await broker.flush()

    received = [event.message.id for event in inbox.events if isinstance(event, MessageSent)]
    assert received == [message.id for message in sent]
    assert inbox.types()[-1] == "conversation_updated"


async def test_removed_participant_gets_last_update(
    chat: ChatService, broker: MemoryBroker
) -> None:
    inbox = Inbox()
    chat.subscribe("bob", inbox)

    await chat.remove_participant(TRUSTED, "c1", "bob")
    await broker.flush()
    await chat.send_message("alice", "c1", "after bob left")
    await chat.sync_conversation("alice", "c1", ConversationAttributes(subject="Without bob"))
    await broker.flush()

    assert len(inbox.events) == 1
    event = inbox.events[0]
    assert isinstance(event, ConversationUpdated)
    assert event.removed_user_ids == ["bob"]
    assert "bob" not in event.conversation.participants


async def test_unchanged_sync_publishes_nothing(chat: ChatService, broker: MemoryBroker) -> None:
    inbox = Inbox()
    chat.subscribe("alice", inbox)

    await chat.sync_conversation("alice", "c1", ConversationAttributes(subject="Plans"))
    await chat.sync_conversation("alice", "c1", participants={"bob": Participation()})
    await broker.flush()

    assert inbox.events == []


async def test_unsubscribed_listener_gets_nothing(chat: ChatService, broker: MemoryBroker) -> None:
    inbox = Inbox()
    subscription = chat.subscribe("alice", inbox)

    subscription.unsubscribe()
    subscription.unsubscribe()
    await chat.send_message("bob", "c1", "hello")
    await broker.flush()

    assert not subscription.active
    assert inbox.events == []


async def test_raising_listener_does_not_stop_others(
    chat: ChatService, broker: MemoryBroker, caplog: pytest.LogCaptureFixture
) -> None:
    def fail(event: ChatEvent) -> None:
        raise RuntimeError("listener is broken")

    chat.subscribe("bob", fail)
    bob_inbox = Inbox()
    alice_inbox = Inbox()
    chat.subscribe("bob", bob_inbox)
    chat.subscribe("alice", alice_inbox)

    with caplog.at_level(logging.ERROR, logger="talkjs_components.service"):
        await chat.send_message("alice", "c1", "hello")
        await broker.flush()

    assert bob_inbox.types() == ["message_sent"]
    assert alice_inbox.types() == ["message_sent"]
    errors = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "'bob'" in errors[0].getMessage()
    assert "'c1'" in errors[0].getMessage()
    assert errors[0].exc_info is not None


async def test_events_cross_services_of_one_app(database_path: Path) -> None:
    broker = MemoryBroker()
    await broker.start()
    writer = ChatService(
        SQLiteStore(database_path, APP_ID), broker, app_id=APP_ID, owns_broker=False
    )
    reader = ChatService(
        SQLiteStore(database_path, APP_ID), broker, app_id=APP_ID, owns_broker=False
    )
    other_app = ChatService(
        SQLiteStore(database_path, "other-app"), broker, app_id="other-app", owns_broker=False
    )
    for service in (writer, reader, other_app):
        await service.start()
    try:
        await add_users(writer, "alice", "bob")
        await writer.sync_conversation(
            "alice", "c1", participants={"alice": Participation(), "bob": Participation()}
        )
        await broker.flush()
        reader_inbox = Inbox()
        other_inbox = Inbox()
        reader.subscribe("bob", reader_inbox)
        other_app.subscribe("bob", other_inbox)

        await writer.send_message("alice", "c1", "through the broker")
        await broker.flush()
    finally:
        for service in (writer, reader, other_app):
            await service.close()
        await broker.close()

    assert reader_inbox.types() == ["message_sent"]
    assert other_inbox.events == []


async def test_fan_out_reads_store_once(
    service: ChatService, store: CountingStore, broker: MemoryBroker
) -> None:
    user_ids = [f"user{number:03}" for number in range(200)]
    await add_users(service, *user_ids)
    await service.sync_conversation(
        TRUSTED, "crowd", participants={user_id: Participation() for user_id in user_ids}
    )
    await broker.flush()
    inboxes = {user_id: Inbox() for user_id in user_ids}
    for user_id, inbox in inboxes.items():
        service.subscribe(user_id, inbox)
    store.operations.clear()

    await service.send_message("user000", "crowd", "hello everyone")
    operations_to_send = dict(store.operations)
    store.operations.clear()
    await broker.flush()
    operations_to_dispatch = dict(store.operations)
    sender = await service.get_user("user000")

    assert all(inbox.types() == ["message_sent"] for inbox in inboxes.values())
    # The insert transaction also reads the conversation and the sender.
    assert operations_to_send == {"insert message": 1}
    assert operations_to_dispatch == {}
    for inbox in inboxes.values():
        event = inbox.events[0]
        assert isinstance(event, MessageSent)
        assert event.sender == sender


# Resuming after a reconnect


async def test_events_after_returns_missed(chat: ChatService) -> None:
    first = await chat.send_message("alice", "c1", "one")
    [first_event] = (await chat.events_after("bob", 0)).events[-1:]
    await chat.sync_conversation(TRUSTED, "c2", participants={"carol": Participation()})
    await chat.send_message(TRUSTED, "c2", "not for bob", sender_id="carol")
    second = await chat.send_message("bob", "c1", "two")
    assert isinstance(first_event, MessageSent)
    assert first_event.message.id == first.id
    assert first_event.seq is not None

    page = await chat.events_after("bob", first_event.seq)

    assert not page.has_more
    assert len(page.events) == 1
    event = page.events[0]
    assert isinstance(event, MessageSent)
    assert event.message.id == second.id
    assert event.sender is not None
    assert event.sender.id == "bob"
    assert event.conversation.id == "c1"


async def test_events_after_rejects_negative(chat: ChatService) -> None:
    with pytest.raises(InvalidInput, match="after_seq -1"):
        await chat.events_after("bob", -1)


async def test_close_calls_on_close(database_path: Path) -> None:
    service = ChatService(SQLiteStore(database_path, APP_ID), MemoryBroker(), app_id=APP_ID)
    await service.start()
    closed: list[str] = []
    service.subscribe("alice", lambda event: None, on_close=lambda: closed.append("alice"))
    removed = service.subscribe("bob", lambda event: None, on_close=lambda: closed.append("bob"))
    removed.unsubscribe()

    await service.close()

    assert closed == ["alice"]


async def test_presence_published_for_sessions(chat: ChatService, broker: MemoryBroker) -> None:
    inbox = Inbox()
    chat.subscribe("bob", inbox)
    assert await chat.online_users(["alice", "bob"]) == []

    first = chat.subscribe("alice", lambda event: None, presence=True)
    second = chat.subscribe("alice", lambda event: None, presence=True)
    await chat.flush_presence()
    await broker.flush()
    assert await chat.online_users(["alice", "bob"]) == ["alice"]

    first.unsubscribe()
    await chat.flush_presence()
    await broker.flush()
    assert await chat.online_users(["alice"]) == ["alice"]
    second.unsubscribe()
    await chat.flush_presence()
    await broker.flush()

    presence = [event for event in inbox.events if isinstance(event, PresenceChanged)]
    assert [(event.user_id, event.online) for event in presence] == [
        ("alice", True),
        ("alice", False),
    ]
    assert await chat.online_users(["alice"]) == []


async def test_presence_once_per_sharing_listener(
    chat: ChatService, broker: MemoryBroker, store: CountingStore
) -> None:
    # Alice is in c1 (with bob and dave), c2 (with bob and carol) and c3
    # (with carol): bob and carol share two conversations with her.
    for conversation_id, others in (("c2", ["bob", "carol"]), ("c3", ["carol"])):
        participants = {user_id: Participation() for user_id in ["alice", *others]}
        await chat.sync_conversation(TRUSTED, conversation_id, participants=participants)
    await broker.flush()
    listeners = {
        "bob (first)": ("bob", Inbox()),
        "bob (second)": ("bob", Inbox()),
        "carol": ("carol", Inbox()),
        "dave": ("dave", Inbox()),
        "alice (without presence)": ("alice", Inbox()),
    }
    for user_id, inbox in listeners.values():
        chat.subscribe(user_id, inbox)
    reads_before = store.operations["list user conversations"]

    session = chat.subscribe("alice", lambda event: None, presence=True)
    await chat.flush_presence()
    await broker.flush()
    session.unsubscribe()
    await chat.flush_presence()
    await broker.flush()

    for name, (_, inbox) in listeners.items():
        presence = [event for event in inbox.events if isinstance(event, PresenceChanged)]
        assert [(event.user_id, event.online) for event in presence] == [
            ("alice", True),
            ("alice", False),
        ], name
        assert inbox.types() == ["presence_changed", "presence_changed"], name
        for event in presence:
            assert event.to_wire().keys() == {"seq", "type", "userId", "online"}, name
            assert event.seq is None, name
    # One read of alice's conversations per change, not one per event.
    assert store.operations["list user conversations"] - reads_before == 2


async def test_presence_skips_unrelated_users(chat: ChatService, broker: MemoryBroker) -> None:
    # Erin shares c4 with bob but no conversation with alice. Carol is in no conversation.
    await add_users(chat, "erin")
    await chat.sync_conversation(
        TRUSTED, "c4", participants={"bob": Participation(), "erin": Participation()}
    )
    await broker.flush()
    erin, carol, bob = Inbox(), Inbox(), Inbox()
    chat.subscribe("erin", erin)
    chat.subscribe("carol", carol)
    chat.subscribe("bob", bob)

    session = chat.subscribe("alice", lambda event: None, presence=True)
    await chat.flush_presence()
    await broker.flush()
    session.unsubscribe()
    await chat.flush_presence()
    await broker.flush()

    assert erin.events == []
    assert carol.events == []
    assert bob.types() == ["presence_changed", "presence_changed"]


async def test_presence_without_conversations_publishes_nothing(
    chat: ChatService, broker: MemoryBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    published: list[bytes] = []
    publish = broker.publish

    async def recording_publish(channel: str, payload: bytes) -> None:
        published.append(payload)
        await publish(channel, payload)

    monkeypatch.setattr(broker, "publish", recording_publish)
    carol = Inbox()
    chat.subscribe("carol", carol)

    session = chat.subscribe("carol", lambda event: None, presence=True)
    await chat.flush_presence()
    await broker.flush()
    session.unsubscribe()
    await chat.flush_presence()
    await broker.flush()

    assert await chat.online_users(["carol"]) == []
    assert published == []
    assert carol.events == []


async def test_foreign_presence_uses_message_recipients(
    chat: ChatService, broker: MemoryBroker
) -> None:
    # A payload from another node is dispatched to the recipients it lists,
    # whatever conversations the user is in here.
    carol, bob = Inbox(), Inbox()
    chat.subscribe("carol", carol)
    chat.subscribe("bob", bob)
    event = PresenceChanged(user_id="alice", online=True)

    payload = service_module._encode_broker_message(event, None, ["carol"])
    await broker.publish(f"events:{APP_ID}", payload)
    await broker.flush()

    assert carol.events == [event]
    assert bob.events == []


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        (
            {"prevSeq": None, "event": {"type": "presence_changed", "userId": "a", "online": True}},
            "recipients missing for the presence_changed event of user 'a'",
        ),
        (
            {
                "prevSeq": None,
                "recipients": ["bob"],
                "event": {"type": "presence_changed", "seq": 5, "userId": "a", "online": True},
            },
            "has seq 5, but presence events are not logged",
        ),
        (
            {
                "prevSeq": None,
                "recipients": ["bob"],
                "event": {
                    "type": "typing_changed",
                    "conversation": {"id": "c1", "participants": {"bob": {}}},
                    "userId": "a",
                    "typing": True,
                    "expiresAt": 1,
                },
            },
            "recipients are set for a typing_changed event",
        ),
    ],
    ids=["presence without recipients", "presence with seq", "typing with recipients"],
)
async def test_invalid_presence_payload_ignored(
    chat: ChatService,
    broker: MemoryBroker,
    caplog: pytest.LogCaptureFixture,
    message: dict[str, Any],
    problem: str,
) -> None:
    bob = Inbox()
    chat.subscribe("bob", bob)

    with caplog.at_level(logging.ERROR, logger="talkjs_components.service"):
        await broker.publish(f"events:{APP_ID}", json.dumps(message).encode())
        await broker.flush()

    assert bob.events == []
    [record] = [r for r in caplog.records if "ignored 1 invalid event payload" in r.getMessage()]
    assert record.exc_info is not None
    assert problem in str(record.exc_info[1])


def test_conversation_events_are_all_but_presence() -> None:
    union = typing.get_args(ChatEvent)[0]
    expected = set(typing.get_args(union)) - {PresenceChanged}
    assert set(typing.get_args(ConversationEvent)) == expected


async def test_invalid_payloads_logged_once_per_interval(
    chat: ChatService,
    broker: MemoryBroker,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A node of another release can send an unreadable payload for every
    # event: the first is logged in full, later ones are counted.
    unreadable = json.dumps({"prevSeq": None, "event": {"type": "no_such_event"}}).encode()
    with caplog.at_level(logging.ERROR, logger="talkjs_components.service"):
        for _ in range(3):
            await broker.publish(f"events:{APP_ID}", unreadable)
        await broker.flush()
        # Once the interval has passed, the next one reports the count.
        monkeypatch.setattr(service_module, "INVALID_PAYLOAD_LOG_INTERVAL", 0.0)
        await broker.publish(f"events:{APP_ID}", unreadable)
        await broker.flush()

    records = [r for r in caplog.records if "invalid event payload" in r.getMessage()]
    assert len(records) == 2
    assert "ignored 1 invalid event payload(s)" in records[0].getMessage()
    assert records[0].exc_info is not None
    assert "ignored 3 invalid event payload(s)" in records[1].getMessage()
    assert records[1].exc_info is None


async def test_second_session_keeps_events(chat: ChatService, broker: MemoryBroker) -> None:
    """Ending one of a user's sessions leaves the user's other sessions subscribed."""
    first = chat.subscribe("alice", Inbox(), presence=True)
    remaining = Inbox()
    chat.subscribe("alice", remaining, presence=True)
    first.unsubscribe()
    await chat.send_message("bob", "c1", "still there?")
    await broker.flush()
    assert "message_sent" in remaining.types()
