"""Tests of editing and deleting messages and of typing indicators in ChatService.

They run against a real SQLiteStore file and a MemoryBroker.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from talkjs_components import service as service_module
from talkjs_components.broker.memory import MemoryBroker
from talkjs_components.errors import InvalidInput, NotFound, PermissionDenied
from talkjs_components.models import (
    MAX_TEXT_LENGTH,
    AccessLevel,
    ChatEvent,
    MessageDeleted,
    MessageEdited,
    MessagesRead,
    MessageType,
    Participation,
    TypingChanged,
    User,
    now_ms,
)
from talkjs_components.service import (
    TRUSTED,
    TYPING_EXPIRY_MS,
    TYPING_REPEAT_INTERVAL_MS,
    TYPING_STATE_MAX_AGE_MS,
    ChatService,
)
from talkjs_components.store import DeletedMessage, UpdatedMessage
from talkjs_components.store.sqlite import SQLiteStore

APP_ID = "app-test"


class Inbox:
    """A listener that keeps the events it receives."""

    def __init__(self) -> None:
        self.events: list[ChatEvent] = []

    def __call__(self, event: ChatEvent) -> None:
        self.events.append(event)

    def types(self) -> list[str]:
        return [event.type for event in self.events]


class HookedStore(SQLiteStore):
    """The real SQLiteStore, awaiting ``before_write`` before each message update or delete.

    The hook simulates another request that commits after the service was
    called and before the store's write transaction starts.
    """

    def __init__(self, path: Path, app_id: str) -> None:
        super().__init__(path, app_id)
        self.before_write: Callable[[], Awaitable[object]] | None = None

    async def update_message(
        self, conversation_id: str, message_id: str, **options: Any
    ) -> UpdatedMessage:
        if self.before_write is not None:
            await self.before_write()
        return await super().update_message(conversation_id, message_id, **options)

    async def delete_message(
        self, conversation_id: str, message_id: str, **options: Any
    ) -> DeletedMessage:
        if self.before_write is not None:
            await self.before_write()
        return await super().delete_message(conversation_id, message_id, **options)


class FakeClock:
    """A monotonic clock in milliseconds that only moves when a test advances it."""

    def __init__(self) -> None:
        self.now = 1_000_000

    def __call__(self) -> int:
        return self.now

    def advance(self, milliseconds: int) -> None:
        self.now += milliseconds


@pytest.fixture
def broker() -> MemoryBroker:
    return MemoryBroker()


@pytest.fixture
def store(tmp_path: Path) -> HookedStore:
    return HookedStore(tmp_path / "chat.sqlite3", APP_ID)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """Replace the clock of the typing rate limit; ``expires_at`` still uses the wall clock."""
    fake = FakeClock()
    monkeypatch.setattr(service_module, "_monotonic_ms", fake)
    return fake


@pytest.fixture
async def chat(store: HookedStore, broker: MemoryBroker) -> AsyncIterator[ChatService]:
    """A started service with users alice, bob, carol and dave.

    Conversation "c1" has alice and bob with ReadWrite access and dave with
    Read access. Carol is in no conversation.
    """
    service = ChatService(store, broker, app_id=APP_ID)
    await service.start()
    for user_id in ("alice", "bob", "carol", "dave"):
        await service.upsert_user(User(id=user_id, name=user_id.title()))
    await service.sync_conversation(
        TRUSTED,
        "c1",
        participants={
            "alice": Participation(),
            "bob": Participation(),
            "dave": Participation(access=AccessLevel.READ),
        },
    )
    await broker.flush()
    yield service
    await service.close()


def subscribe_all(service: ChatService, *user_ids: str) -> dict[str, Inbox]:
    inboxes = {user_id: Inbox() for user_id in user_ids}
    for user_id, inbox in inboxes.items():
        service.subscribe(user_id, inbox)
    return inboxes


async def unread_counts(service: ChatService, user_id: str) -> dict[str, int]:
    return {
        unread.conversation.id: unread.unread_message_count
        for unread in await service.get_unreads(user_id)
    }


async def texts(service: ChatService, conversation_id: str) -> list[str]:
    page = await service.list_messages(TRUSTED, conversation_id, limit=100)
    return [message.text for message in page.messages]


# Editing


async def test_edit_own_message(chat: ChatService) -> None:
    sent = await chat.send_message("alice", "c1", "helo")
    before = now_ms()

    edited = await chat.edit_message("alice", "c1", sent.id, text="hello")
    page = await chat.list_messages("bob", "c1")

    assert edited.text == "hello"
    assert edited.edited_at is not None
    assert before <= edited.edited_at <= now_ms()
    assert edited.id == sent.id
    assert edited.seq == sent.seq
    assert edited.created_at == sent.created_at
    assert page.messages == [edited]


async def test_edit_published_once_per_participant(chat: ChatService, broker: MemoryBroker) -> None:
    sent = await chat.send_message("alice", "c1", "helo")
    await broker.flush()
    inboxes = subscribe_all(chat, "alice", "bob", "dave", "carol")

    edited = await chat.edit_message("alice", "c1", sent.id, text="hello")
    await broker.flush()

    for user_id in ("alice", "bob", "dave"):
        events = inboxes[user_id].events
        assert len(events) == 1, user_id
        event = events[0]
        assert isinstance(event, MessageEdited), user_id
        assert event.message == edited, user_id
        assert event.conversation.id == "c1", user_id
    assert inboxes["carol"].events == []


async def test_edit_custom_merges(chat: ChatService) -> None:
    sent = await chat.send_message("alice", "c1", "hi", custom={"keep": "1", "drop": "2"})

    edited = await chat.edit_message("alice", "c1", sent.id, custom={"drop": None, "new": "3"})

    assert edited.custom == {"keep": "1", "new": "3"}
    assert edited.text == "hi"
    assert edited.edited_at is not None


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
async def test_edit_empty_text_rejected(chat: ChatService, broker: MemoryBroker, text: str) -> None:
    sent = await chat.send_message("alice", "c1", "original")
    await broker.flush()
    inbox = Inbox()
    chat.subscribe("bob", inbox)

    with pytest.raises(InvalidInput) as raised:
        await chat.edit_message("alice", "c1", sent.id, text=text)
    await broker.flush()

    assert str(raised.value) == (
        "message text is empty: a UserMessage needs at least one non-whitespace character"
    )
    assert await texts(chat, "c1") == ["original"]
    assert inbox.events == []


async def test_edit_oversized_text_rejected(chat: ChatService) -> None:
    sent = await chat.send_message("alice", "c1", "original")

    with pytest.raises(InvalidInput) as raised:
        await chat.edit_message("alice", "c1", sent.id, text="x" * (MAX_TEXT_LENGTH + 1))
    at_limit = await chat.edit_message("alice", "c1", sent.id, text="x" * MAX_TEXT_LENGTH)

    assert str(raised.value) == (
        "message text has 20001 characters, over the limit of 20000: "
        "shorten it or split it into several messages"
    )
    assert len(at_limit.text) == MAX_TEXT_LENGTH


async def test_edit_invalid_custom_rejected(chat: ChatService) -> None:
    full = {f"key{number}": "x" for number in range(100)}
    sent = await chat.send_message("alice", "c1", "hi", custom=full)
    bad_value: Any = {"key": 5}

    with pytest.raises(InvalidInput) as too_many:
        await chat.edit_message("alice", "c1", sent.id, custom={**full, "one_more": "x"})
    with pytest.raises(InvalidInput) as wrong_type:
        await chat.edit_message("alice", "c1", sent.id, custom=bad_value)
    with pytest.raises(InvalidInput) as merged_over_limit:
        await chat.edit_message("alice", "c1", sent.id, custom={"one_more": "x"})
    made_room = await chat.edit_message(
        "alice", "c1", sent.id, custom={"key0": None, "one_more": "x"}
    )

    assert str(too_many.value) == (
        "custom has 101 keys, over the limit of 100: change fewer keys in one call"
    )
    assert str(wrong_type.value) == (
        "custom entry 'key' is invalid: keys must be strings, and values strings "
        "or None to remove the key"
    )
    assert "custom would have 101 keys after the update" in str(merged_over_limit.value)
    assert len(made_room.custom) == 100
    assert "key0" not in made_room.custom


async def test_edit_others_message_denied(chat: ChatService, broker: MemoryBroker) -> None:
    sent = await chat.send_message("alice", "c1", "mine")
    await broker.flush()
    inbox = Inbox()
    chat.subscribe("alice", inbox)

    with pytest.raises(PermissionDenied) as raised:
        await chat.edit_message("bob", "c1", sent.id, text="yours now")
    await broker.flush()

    assert str(raised.value) == (
        f"user 'bob' cannot edit message '{sent.id}' in conversation 'c1', which user "
        "'alice' sent: users may edit only their own messages, and only trusted server "
        "code may edit other messages"
    )
    assert await texts(chat, "c1") == ["mine"]
    assert inbox.events == []


async def test_edit_system_message_by_user_denied(chat: ChatService) -> None:
    sent = await chat.send_message(TRUSTED, "c1", "welcome", type=MessageType.SYSTEM)

    with pytest.raises(PermissionDenied) as raised:
        await chat.edit_message("alice", "c1", sent.id, text="hijacked")

    assert f"message '{sent.id}' in conversation 'c1', which the system sent" in str(raised.value)


async def test_edit_as_read_participant_denied(chat: ChatService) -> None:
    sent = await chat.send_message("alice", "c1", "before demotion")
    await chat.sync_conversation(
        TRUSTED, "c1", participants={"alice": Participation(access=AccessLevel.READ)}
    )

    with pytest.raises(PermissionDenied) as own:
        await chat.edit_message("alice", "c1", sent.id, text="after demotion")
    with pytest.raises(PermissionDenied) as other:
        await chat.edit_message("dave", "c1", sent.id, text="by dave")

    assert str(own.value) == (
        "user 'alice' has Read access to conversation 'c1'; editing a message needs ReadWrite"
    )
    assert "user 'dave' has Read access to conversation 'c1'" in str(other.value)
    assert await texts(chat, "c1") == ["before demotion"]


async def test_edit_after_removal_denied(chat: ChatService) -> None:
    sent = await chat.send_message("alice", "c1", "before leaving")
    await chat.remove_participant("alice", "c1", "alice")

    with pytest.raises(PermissionDenied) as raised:
        await chat.edit_message("alice", "c1", sent.id, text="after leaving")

    assert "user 'alice' is not a participant of conversation 'c1'" in str(raised.value)
    assert "editing a message needs ReadWrite access" in str(raised.value)
    assert await texts(chat, "c1") == ["before leaving"]


async def test_edit_checked_in_write_transaction(chat: ChatService, store: HookedStore) -> None:
    sent = await chat.send_message("alice", "c1", "original")
    store.before_write = lambda: store.remove_participant("c1", "alice")

    with pytest.raises(PermissionDenied, match="user 'alice' is not a participant"):
        await chat.edit_message("alice", "c1", sent.id, text="edited")

    store.before_write = None
    assert await texts(chat, "c1") == ["original"]


async def test_trusted_edits_any_message(chat: ChatService) -> None:
    from_alice = await chat.send_message("alice", "c1", "by alice")
    system = await chat.send_message(TRUSTED, "c1", "welcome", type=MessageType.SYSTEM)

    edited_user = await chat.edit_message(TRUSTED, "c1", from_alice.id, text="moderated")
    edited_system = await chat.edit_message(TRUSTED, "c1", system.id, text="")
    with pytest.raises(InvalidInput, match="message text is empty"):
        await chat.edit_message(TRUSTED, "c1", from_alice.id, text=" ")

    assert edited_user.text == "moderated"
    assert edited_user.sender_id == "alice"
    assert edited_system.text == ""
    assert edited_system.edited_at is not None


async def test_edit_unknown_message_not_found(chat: ChatService) -> None:
    await chat.sync_conversation(TRUSTED, "c2", participants={"alice": Participation()})
    elsewhere = await chat.send_message("alice", "c2", "in c2")

    with pytest.raises(NotFound) as unknown:
        await chat.edit_message("alice", "c1", "msg_missing", text="x")
    with pytest.raises(NotFound) as other_conversation:
        await chat.edit_message("alice", "c1", elsewhere.id, text="x")
    with pytest.raises(NotFound) as no_conversation:
        await chat.edit_message("alice", "nope", elsewhere.id, text="x")

    assert str(unknown.value) == (
        "message 'msg_missing' not found in conversation 'c1': it was deleted, "
        "or its id belongs to another conversation"
    )
    assert f"message '{elsewhere.id}' not found in conversation 'c1'" in str(
        other_conversation.value
    )
    assert "conversation 'nope' not found" in str(no_conversation.value)
    assert await texts(chat, "c2") == ["in c2"]


async def test_edit_invalid_message_id(chat: ChatService) -> None:
    with pytest.raises(InvalidInput) as raised:
        await chat.edit_message("alice", "c1", "a/b", text="x")

    assert str(raised.value).startswith("message id 'a/b' is invalid")


async def test_unchanged_edit_publishes_nothing(chat: ChatService, broker: MemoryBroker) -> None:
    sent = await chat.send_message("alice", "c1", "same", custom={"k": "v"})
    await broker.flush()
    inbox = Inbox()
    chat.subscribe("bob", inbox)

    results = [
        await chat.edit_message("alice", "c1", sent.id, text="same"),
        await chat.edit_message("alice", "c1", sent.id, custom={"k": "v", "absent": None}),
        await chat.edit_message("alice", "c1", sent.id),
    ]
    await broker.flush()

    assert results == [sent] * 3
    assert inbox.events == []


async def test_unchanged_edit_still_authorized(chat: ChatService) -> None:
    sent = await chat.send_message("alice", "c1", "same")

    with pytest.raises(PermissionDenied, match="user 'bob' cannot edit message"):
        await chat.edit_message("bob", "c1", sent.id)


async def test_idempotent_retry_after_edit(chat: ChatService, broker: MemoryBroker) -> None:
    first = await chat.send_message("alice", "c1", "typo", idempotency_key="key-1")
    edited = await chat.edit_message("alice", "c1", first.id, text="fixed")
    await broker.flush()
    inbox = Inbox()
    chat.subscribe("bob", inbox)

    retried = await chat.send_message("alice", "c1", "typo", idempotency_key="key-1")
    await broker.flush()

    assert retried == edited
    assert await texts(chat, "c1") == ["fixed"]
    assert inbox.events == []


# Deleting


async def test_delete_own_message(chat: ChatService, broker: MemoryBroker) -> None:
    first = await chat.send_message("alice", "c1", "kept")
    second = await chat.send_message("alice", "c1", "deleted")
    await broker.flush()
    inboxes = subscribe_all(chat, "alice", "bob", "dave", "carol")

    await chat.delete_message("alice", "c1", second.id)
    await broker.flush()
    conversation = await chat.get_conversation("alice", "c1")

    assert await texts(chat, "c1") == ["kept"]
    assert conversation.last_message_at == first.created_at
    for user_id in ("alice", "bob", "dave"):
        events = inboxes[user_id].events
        assert len(events) == 1, user_id
        event = events[0]
        assert isinstance(event, MessageDeleted), user_id
        assert event.message_id == second.id, user_id
        assert event.message_seq == second.seq, user_id
        assert event.conversation == conversation, user_id
    assert inboxes["carol"].events == []


async def test_delete_others_message_denied(chat: ChatService) -> None:
    sent = await chat.send_message("alice", "c1", "mine")

    with pytest.raises(PermissionDenied) as raised:
        await chat.delete_message("bob", "c1", sent.id)

    assert str(raised.value) == (
        f"user 'bob' cannot delete message '{sent.id}' in conversation 'c1', which user "
        "'alice' sent: users may delete only their own messages, and only trusted server "
        "code may delete other messages"
    )
    assert await texts(chat, "c1") == ["mine"]


async def test_delete_needs_write_access(chat: ChatService) -> None:
    sent = await chat.send_message("alice", "c1", "before demotion")
    await chat.sync_conversation(
        TRUSTED, "c1", participants={"alice": Participation(access=AccessLevel.READ)}
    )

    with pytest.raises(PermissionDenied) as demoted:
        await chat.delete_message("alice", "c1", sent.id)
    with pytest.raises(PermissionDenied) as outsider:
        await chat.delete_message("carol", "c1", sent.id)

    assert str(demoted.value) == (
        "user 'alice' has Read access to conversation 'c1'; deleting a message needs ReadWrite"
    )
    assert "user 'carol' is not a participant of conversation 'c1'" in str(outsider.value)
    assert await texts(chat, "c1") == ["before demotion"]


async def test_delete_checked_in_write_transaction(chat: ChatService, store: HookedStore) -> None:
    sent = await chat.send_message("alice", "c1", "kept")
    store.before_write = lambda: store.remove_participant("c1", "alice")

    with pytest.raises(PermissionDenied, match="user 'alice' is not a participant"):
        await chat.delete_message("alice", "c1", sent.id)

    store.before_write = None
    assert await texts(chat, "c1") == ["kept"]


async def test_trusted_deletes_any_message(chat: ChatService) -> None:
    from_bob = await chat.send_message("bob", "c1", "by bob")
    system = await chat.send_message(TRUSTED, "c1", "welcome", type=MessageType.SYSTEM)

    await chat.delete_message(TRUSTED, "c1", from_bob.id)
    await chat.delete_message(TRUSTED, "c1", system.id)

    assert await texts(chat, "c1") == []
    conversation = await chat.get_conversation(TRUSTED, "c1")
    assert conversation.last_message_at is None


async def test_delete_unknown_message_not_found(chat: ChatService) -> None:
    sent = await chat.send_message("alice", "c1", "deleted once")
    await chat.delete_message("alice", "c1", sent.id)

    with pytest.raises(NotFound) as again:
        await chat.delete_message("alice", "c1", sent.id)
    with pytest.raises(NotFound, match="message 'msg_missing' not found in conversation 'c1'"):
        await chat.delete_message(TRUSTED, "c1", "msg_missing")

    assert str(again.value) == (
        f"message '{sent.id}' not found in conversation 'c1': it was deleted, "
        "or its id belongs to another conversation"
    )


async def test_delete_unread_message_drops_count(chat: ChatService) -> None:
    first = await chat.send_message("bob", "c1", "one")
    second = await chat.send_message("bob", "c1", "two")
    before = await unread_counts(chat, "alice")

    await chat.delete_message("bob", "c1", second.id)
    unreads = await chat.get_unreads("alice")
    await chat.delete_message("bob", "c1", first.id)

    assert before == {"c1": 2}
    assert [unread.unread_message_count for unread in unreads] == [1]
    assert unreads[0].last_message.id == first.id
    assert await unread_counts(chat, "alice") == {}


async def test_read_positions_survive_delete(chat: ChatService, broker: MemoryBroker) -> None:
    first = await chat.send_message("bob", "c1", "one")
    second = await chat.send_message("bob", "c1", "two")
    third = await chat.send_message("bob", "c1", "three")
    await chat.mark_read("alice", "c1", second.id)
    await chat.delete_message("bob", "c1", second.id)
    await broker.flush()
    inbox = Inbox()
    chat.subscribe("bob", inbox)

    after_delete = await unread_counts(chat, "alice")
    page = await chat.list_messages("bob", "c1")
    await chat.mark_read("alice", "c1", first.id)
    await chat.mark_read("alice", "c1")
    await broker.flush()

    assert after_delete == {"c1": 1}
    # Alice's position stays at the deleted message, between the two that remain.
    assert [message.read_by for message in page.messages] == [["alice"], []]
    read_events = [event for event in inbox.events if isinstance(event, MessagesRead)]
    assert len(read_events) == 1
    assert read_events[0].last_read_message_id == third.id
    assert read_events[0].last_read_seq == third.seq
    assert await unread_counts(chat, "alice") == {}
    with pytest.raises(NotFound, match=f"message '{second.id}' not found"):
        await chat.mark_read("alice", "c1", second.id)


async def test_deleted_idempotency_key_reusable(chat: ChatService) -> None:
    first = await chat.send_message("alice", "c1", "hello", idempotency_key="key-1")
    await chat.delete_message("alice", "c1", first.id)

    again = await chat.send_message("alice", "c1", "hello", idempotency_key="key-1")

    assert again.id != first.id
    page = await chat.list_messages("alice", "c1")
    assert [message.id for message in page.messages] == [again.id]


# Typing indicators


async def test_typing_reaches_every_participant(
    chat: ChatService, broker: MemoryBroker, clock: FakeClock
) -> None:
    inboxes = subscribe_all(chat, "alice", "bob", "dave", "carol")
    before = now_ms()

    await chat.set_typing("alice", "c1", True)
    await broker.flush()
    after = now_ms()

    for user_id in ("alice", "bob", "dave"):
        events = inboxes[user_id].events
        assert len(events) == 1, user_id
        event = events[0]
        assert isinstance(event, TypingChanged), user_id
        assert event.user_id == "alice", user_id
        assert event.typing, user_id
        assert event.conversation.id == "c1", user_id
        assert before + TYPING_EXPIRY_MS <= event.expires_at <= after + TYPING_EXPIRY_MS
    assert inboxes["carol"].events == []


async def test_typing_is_not_stored(chat: ChatService, clock: FakeClock) -> None:
    await chat.set_typing("alice", "c1", True)

    assert await texts(chat, "c1") == []
    assert await unread_counts(chat, "bob") == {}


async def test_repeated_typing_rate_limited(
    chat: ChatService, broker: MemoryBroker, clock: FakeClock
) -> None:
    inbox = Inbox()
    chat.subscribe("bob", inbox)

    await chat.set_typing("alice", "c1", True)
    await chat.set_typing("alice", "c1", True)
    clock.advance(TYPING_REPEAT_INTERVAL_MS - 1)
    await chat.set_typing("alice", "c1", True)
    await broker.flush()
    within_interval = len(inbox.events)
    clock.advance(1)
    await chat.set_typing("alice", "c1", True)
    await chat.set_typing("bob", "c1", True)
    await broker.flush()

    assert TYPING_REPEAT_INTERVAL_MS == 3_000
    assert within_interval == 1
    typists = [event.user_id for event in inbox.events if isinstance(event, TypingChanged)]
    assert typists == ["alice", "alice", "bob"]


async def test_typing_false_always_published(
    chat: ChatService, broker: MemoryBroker, clock: FakeClock
) -> None:
    inbox = Inbox()
    chat.subscribe("bob", inbox)

    await chat.set_typing("alice", "c1", False)
    await chat.set_typing("alice", "c1", False)
    await chat.set_typing("alice", "c1", True)
    before_stop = now_ms()
    await chat.set_typing("alice", "c1", False)
    # Stopping resets the interval, so typing again is announced at once.
    await chat.set_typing("alice", "c1", True)
    await broker.flush()

    changes = [event for event in inbox.events if isinstance(event, TypingChanged)]
    assert [event.typing for event in changes] == [False, False, True, False, True]
    assert before_stop <= changes[3].expires_at <= now_ms()


async def test_typing_needs_write_access(chat: ChatService, clock: FakeClock) -> None:
    not_a_bool: Any = "yes"

    with pytest.raises(PermissionDenied) as outsider:
        await chat.set_typing("carol", "c1", True)
    with pytest.raises(PermissionDenied) as reader:
        await chat.set_typing("dave", "c1", True)
    with pytest.raises(NotFound, match="conversation 'nope' not found"):
        await chat.set_typing("alice", "nope", True)
    with pytest.raises(InvalidInput) as invalid:
        await chat.set_typing("alice", "c1", not_a_bool)

    assert str(outsider.value) == (
        "user 'carol' is not a participant of conversation 'c1'; typing needs ReadWrite access"
    )
    assert str(reader.value) == (
        "user 'dave' has Read access to conversation 'c1'; typing needs ReadWrite"
    )
    assert str(invalid.value) == "typing 'yes' is not a bool: pass True or False"


async def test_typing_after_removal_denied(chat: ChatService, clock: FakeClock) -> None:
    await chat.set_typing("alice", "c1", True)
    await chat.remove_participant("alice", "c1", "alice")

    with pytest.raises(PermissionDenied, match="user 'alice' is not a participant"):
        await chat.set_typing("alice", "c1", True)


async def test_send_clears_typing(
    chat: ChatService, broker: MemoryBroker, clock: FakeClock
) -> None:
    inbox = Inbox()
    chat.subscribe("bob", inbox)

    await chat.set_typing("alice", "c1", True)
    await chat.send_message("alice", "c1", "done typing")
    await chat.send_message("alice", "c1", "not typing before this one")
    await broker.flush()

    assert inbox.types() == ["typing_changed", "message_sent", "typing_changed", "message_sent"]
    cleared = inbox.events[2]
    assert isinstance(cleared, TypingChanged)
    assert cleared.user_id == "alice"
    assert not cleared.typing


async def test_trusted_send_clears_sender_typing(
    chat: ChatService, broker: MemoryBroker, clock: FakeClock
) -> None:
    inbox = Inbox()
    chat.subscribe("alice", inbox)

    await chat.set_typing("bob", "c1", True)
    await chat.send_message(TRUSTED, "c1", "sent for bob", sender_id="bob")
    await broker.flush()

    assert inbox.types() == ["typing_changed", "message_sent", "typing_changed"]


async def test_send_after_typing_expired(
    chat: ChatService, broker: MemoryBroker, clock: FakeClock
) -> None:
    inbox = Inbox()
    chat.subscribe("bob", inbox)

    await chat.set_typing("alice", "c1", True)
    clock.advance(TYPING_EXPIRY_MS)
    await chat.send_message("alice", "c1", "typed slowly")
    await broker.flush()

    assert inbox.types() == ["typing_changed", "message_sent"]


async def test_typing_state_drops_old_entries(chat: ChatService, clock: FakeClock) -> None:
    await chat.sync_conversation(
        TRUSTED,
        "c1",
        participants={f"guest{number}": Participation() for number in range(5)},
        new_users=[User(id=f"guest{number}", name=f"Guest {number}") for number in range(5)],
    )
    for number in range(5):
        await chat.set_typing(f"guest{number}", "c1", True)
    clock.advance(TYPING_STATE_MAX_AGE_MS)

    await chat.set_typing("alice", "c1", True)

    # White-box check: the rate-limit dictionary keeps only the recent entry.
    assert list(chat._typing_since) == [("c1", "alice")]
