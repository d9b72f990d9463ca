"""The Store contract: every test runs on SQLiteStore and on PostgresStore.

Each test gets a new database from the ``store_database`` fixture: an SQLite
file in tmp_path, then a migrated PostgreSQL schema of its own. The
PostgreSQL run is skipped when the server is unreachable (see
``tests/services.py``). Tests of one implementation's own behaviour (files,
pragmas, migrations, locking) are in ``test_store_sqlite.py`` and
``test_store_postgres.py``.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from talkjs_components.errors import (
    ChatError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    StorageError,
)
from talkjs_components.models import (
    MAX_CUSTOM_FIELDS,
    AccessLevel,
    ChatEvent,
    Conversation,
    ConversationAttributes,
    ConversationUpdated,
    Message,
    MessageDeleted,
    MessageEdited,
    MessageOrigin,
    MessageSent,
    MessagesRead,
    MessageType,
    Participation,
    User,
)
from talkjs_components.store import (
    ConversationUpsert,
    DeletedMessage,
    InsertedMessage,
    NewEvent,
    ReadPosition,
    Store,
    UpdatedMessage,
)
from talkjs_components.store.postgres import PRUNE_BATCH as POSTGRES_PRUNE_BATCH
from talkjs_components.store.postgres import PostgresStore
from talkjs_components.store.sqlite import PRUNE_BATCH, SQLiteStore
from talkjs_components.store.urls import is_postgres_url, store_from_url

from .services import StoreDatabase

APP_ID = "app-test"
DAY_MS = 24 * 60 * 60 * 1000


@dataclass
class Draft:
    """A message to insert; satisfies store.NewMessage."""

    conversation_id: str
    sender_id: str | None
    text: str
    type: MessageType = MessageType.USER
    custom: dict[str, str] = field(default_factory=dict)
    origin: MessageOrigin = MessageOrigin.WEB
    idempotency_key: str | None = None


@pytest.fixture
async def store(store_database: StoreDatabase) -> AsyncIterator[Store]:
    yield await store_database.open_store(APP_ID)


async def add_users(store: Store, *user_ids: str) -> None:
    for user_id in user_ids:
        await store.upsert_user(User(id=user_id, name=user_id.title()))


async def create_chat(store: Store, conversation_id: str, *user_ids: str) -> None:
    """Create the users and a conversation in which they all have ReadWrite access."""
    await add_users(store, *user_ids)
    await store.upsert_conversation(
        conversation_id, None, {user_id: Participation() for user_id in user_ids}
    )


async def send(store: Store, conversation_id: str, sender_id: str, text: str) -> Message:
    inserted = await store.insert_message(Draft(conversation_id, sender_id, text))
    assert inserted.created
    return inserted.message


class Recorder:
    """An authorize callback that records what it was called with and can reject."""

    def __init__(self, reject: bool = False) -> None:
        self.reject = reject
        self.calls: list[Conversation | None] = []

    def __call__(self, conversation: Conversation | None) -> None:
        self.calls.append(conversation)
        if self.reject:
            raise PermissionDenied("rejected by the test's authorize callback")


class MessageRecorder:
    """An authorize callback for message changes that records its calls and can reject."""

    def __init__(self, reject: bool = False) -> None:
        self.reject = reject
        self.calls: list[tuple[Conversation, Message]] = []

    def __call__(self, conversation: Conversation, message: Message) -> None:
        self.calls.append((conversation, message))
        if self.reject:
            raise PermissionDenied("rejected by the test's authorize callback")


async def list_all(store: Store, conversation_id: str) -> list[Message]:
    page = await store.list_messages(conversation_id, limit=100, before_message_id=None)
    return page.messages


async def unread_counts(store: Store, user_id: str) -> dict[str, int]:
    return {
        unread.conversation.id: unread.unread_message_count
        for unread in await store.get_unreads(user_id)
    }


class EventLogger:
    """A log_event callback that logs the event of each change for ``recipients``."""

    def __init__(self, *recipients: str) -> None:
        self.recipients = list(recipients)
        self.changes: list[object] = []

    def __call__(self, change: object) -> NewEvent:
        self.changes.append(change)
        return NewEvent(event_for(change), self.recipients)


def event_for(change: object) -> ChatEvent:
    """Build the event the service would log for a store result."""
    if isinstance(change, InsertedMessage):
        return MessageSent(conversation=change.conversation, message=change.message)
    if isinstance(change, UpdatedMessage):
        return MessageEdited(conversation=change.conversation, message=change.message)
    if isinstance(change, DeletedMessage):
        return MessageDeleted(
            conversation=change.conversation,
            message_id=change.message.id,
            message_seq=change.message.seq,
        )
    if isinstance(change, ReadPosition):
        return MessagesRead(
            conversation=change.conversation,
            user_id="alice",
            last_read_message_id=change.last_read_message_id,
            last_read_seq=change.last_read_seq,
            unread_message_count=change.unread_message_count,
        )
    if isinstance(change, ConversationUpsert):
        return ConversationUpdated(conversation=change.conversation)
    assert isinstance(change, Conversation), change
    return ConversationUpdated(conversation=change)


async def all_events(store: Store, user_id: str, after_seq: int = 0) -> list[ChatEvent]:
    """Return every logged event of the user after ``after_seq``, following ``has_more``."""
    events: list[ChatEvent] = []
    while True:
        page = await store.events_after(user_id, after_seq, limit=1000)
        events += page.events
        after_seq = page.next_after_seq
        if not page.has_more:
            return events


def seqs(events: list[ChatEvent]) -> list[int]:
    numbers = [event.seq for event in events]
    assert None not in numbers, "a logged event has no seq"
    return [number for number in numbers if number is not None]


# Lifecycle


async def test_use_before_open_raises(store_database: StoreDatabase) -> None:
    store = store_database.new_store(APP_ID)

    with pytest.raises(StorageError) as raised:
        await store.get_users(["alice"])

    assert str(raised.value).startswith("cannot get users: ")
    assert str(raised.value).endswith(" is not open; call await store.open() first")


async def test_open_twice_raises(store: Store) -> None:
    with pytest.raises(StorageError, match="is already open"):
        await store.open()


@pytest.mark.parametrize("retention", [0, -1, 1.5, True])
async def test_retention_must_be_positive_integer(
    store_database: StoreDatabase, retention: object
) -> None:
    store = store_database.new_store(APP_ID)

    with pytest.raises(InvalidInput, match=f"event_retention_ms {retention!r} is not"):
        await store.open(event_retention_ms=retention)  # type: ignore[arg-type]  # tests the check


async def test_ping(store: Store, store_database: StoreDatabase) -> None:
    await store.ping()
    await store.close()

    with pytest.raises(StorageError, match=r"cannot ping: .* is not open"):
        await store.ping()


async def test_close_twice_is_harmless(store: Store) -> None:
    await store.close()
    await store.close()

    with pytest.raises(StorageError, match="is not open"):
        await store.get_conversation("c1")


async def test_data_survives_reopen(store_database: StoreDatabase) -> None:
    store = await store_database.open_store(APP_ID)
    await create_chat(store, "c1", "alice", "bob")
    sent = await send(store, "c1", "alice", "hello")
    await store.close()

    reopened = await store_database.open_store(APP_ID)
    users = await reopened.get_users(["alice", "bob"])
    conversation = await reopened.get_conversation("c1")
    page = await reopened.list_messages("c1", limit=10, before_message_id=None)
    unreads = await unread_counts(reopened, "bob")

    assert set(users) == {"alice", "bob"}
    assert conversation is not None
    assert set(conversation.participants) == {"alice", "bob"}
    assert [message.id for message in page.messages] == [sent.id]
    assert unreads == {"c1": 1}


async def test_apps_sharing_database_are_isolated(store_database: StoreDatabase) -> None:
    first = await store_database.open_store("app-one")
    await create_chat(first, "c1", "alice")
    await send(first, "c1", "alice", "in app one")
    await first.close()

    second = await store_database.open_store("app-two")
    users = await second.get_users(["alice"])
    conversation = await second.get_conversation("c1")
    await create_chat(second, "c1", "zed")
    second_conversation = await second.get_conversation("c1")
    listed = await second.list_conversations(limit=10, starting_after=None)

    assert users == {}
    assert conversation is None
    assert second_conversation is not None
    assert set(second_conversation.participants) == {"zed"}
    assert [entry.conversation.id for entry in listed] == ["c1"]
    assert listed[0].last_message is None


# Store URLs


def test_url_selects_sqlite(tmp_path: Path) -> None:
    plain = store_from_url(str(tmp_path / "chat.sqlite3"), APP_ID)
    relative = store_from_url("sqlite:///data/chat.sqlite3", APP_ID)
    absolute = store_from_url(f"sqlite:///{tmp_path}/chat.sqlite3", APP_ID)

    assert isinstance(plain, SQLiteStore)
    assert plain.path == str(tmp_path / "chat.sqlite3")
    assert isinstance(relative, SQLiteStore)
    assert relative.path == "data/chat.sqlite3"
    assert isinstance(absolute, SQLiteStore)
    assert absolute.path == f"{tmp_path}/chat.sqlite3"


def test_url_selects_postgres() -> None:
    for url in ("postgresql://chat@db:5432/chat", "postgres://chat@db/chat"):
        store = store_from_url(url, APP_ID)

        assert isinstance(store, PostgresStore), url
        assert store.app_id == APP_ID
        assert is_postgres_url(url)
    assert not is_postgres_url("sqlite:///chat.sqlite3")
    assert not is_postgres_url("chat.sqlite3")


def test_url_with_unknown_scheme_rejected() -> None:
    with pytest.raises(InvalidInput) as raised:
        store_from_url("mysql://chat@db/chat", APP_ID)

    assert str(raised.value) == (
        "database URL scheme 'mysql' is not supported: use a file path or sqlite:///path "
        "for SQLite, or postgresql://user@host:port/database for PostgreSQL"
    )


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///", "sqlite://relative.sqlite3"])
def test_sqlite_url_without_path_rejected(url: str) -> None:
    with pytest.raises(InvalidInput, match=f"SQLite URL '{url}' has no file path"):
        store_from_url(url, APP_ID)


# Ids, as both stores order them


async def test_users_listed_in_byte_order(store: Store) -> None:
    # Byte order puts capitals before small letters and "é" (UTF-8 C3 A9)
    # after them; a language-aware collation would not.
    ids = ["éa", "b", "Z", "a", "B"]
    await add_users(store, *ids)

    first = await store.list_users(limit=3, starting_after=None)
    rest = await store.list_users(limit=3, starting_after=first[-1].id)
    from_unstored = await store.list_users(limit=10, starting_after="Y")

    assert [user.id for user in first] == ["B", "Z", "a"]
    assert [user.id for user in rest] == ["b", "éa"]
    assert [user.id for user in from_unstored] == ["Z", "a", "b", "éa"]
    assert first[0].name == "B"


async def test_conversations_listed_in_byte_order(store: Store) -> None:
    await add_users(store, "alice")
    for conversation_id in ("b", "A", "a", "é"):
        await store.upsert_conversation(conversation_id, None, {"alice": Participation()})
    latest = await send(store, "a", "alice", "in a")

    first = await store.list_conversations(limit=2, starting_after=None)
    rest = await store.list_conversations(limit=10, starting_after="a")

    assert [entry.conversation.id for entry in first] == ["A", "a"]
    assert [entry.last_message for entry in first] == [None, latest]
    assert [entry.conversation.id for entry in rest] == ["b", "é"]
    assert set(rest[0].conversation.participants) == {"alice"}


# Users


async def test_user_upsert_merges_fields(store: Store) -> None:
    created = await store.upsert_user(
        User(id="alice", name="Alice", email=["a@example.com"], role="admin", custom={"a": "1"})
    )

    updated = await store.upsert_user(User(id="alice", role=None, custom={"b": "2"}))

    assert updated.name == "Alice"
    assert updated.email == ["a@example.com"]
    assert updated.role is None
    assert updated.custom == {"a": "1", "b": "2"}
    assert updated.created_at == created.created_at
    assert created.created_at is not None


async def test_user_custom_key_removed_by_none(store: Store) -> None:
    await store.upsert_user(User(id="alice", custom={"a": "1", "b": "2"}))

    updated = await store.upsert_user(User(id="alice", custom={"a": None}))
    stored = (await store.get_users(["alice"]))["alice"]

    assert updated.custom == {"b": "2"}
    assert stored == updated


async def test_user_custom_deleted_by_none(store: Store) -> None:
    await store.upsert_user(User(id="alice", custom={"a": "1"}))

    updated = await store.upsert_user(User(id="alice", custom=None))

    assert updated.custom is None


async def test_user_custom_over_limit_rejected(store: Store) -> None:
    full = {f"key{number}": "x" for number in range(MAX_CUSTOM_FIELDS)}
    await store.upsert_user(User(id="alice", custom=dict(full)))

    with pytest.raises(InvalidInput, match=r"custom would have 101 keys .* limit of 100"):
        await store.upsert_user(User(id="alice", custom={"one more": "x"}))


async def test_get_users_skips_unknown(store: Store) -> None:
    await add_users(store, "alice", "bob")

    users = await store.get_users(["alice", "nobody", "bob"])

    assert sorted(users) == ["alice", "bob"]
    assert users["alice"].name == "Alice"


async def test_get_users_visible_to(store: Store) -> None:
    await create_chat(store, "c1", "alice", "bob")
    await create_chat(store, "c2", "bob", "dave")
    await create_chat(store, "alone", "carol")
    everyone = ["alice", "bob", "carol", "dave", "nobody"]

    for_alice = await store.get_users(everyone, visible_to="alice")
    for_bob = await store.get_users(everyone, visible_to="bob")
    for_carol = await store.get_users(everyone, visible_to="carol")
    for_stranger = await store.get_users(everyone, visible_to="nobody")

    assert sorted(for_alice) == ["alice", "bob"]
    assert sorted(for_bob) == ["alice", "bob", "dave"]
    assert sorted(for_carol) == ["carol"]
    assert for_stranger == {}
    assert for_alice["bob"].name == "Bob"


async def test_get_users_visible_after_removal(store: Store) -> None:
    await create_chat(store, "c1", "alice", "bob")

    await store.remove_participant("c1", "bob")

    assert sorted(await store.get_users(["alice", "bob"], visible_to="alice")) == ["alice"]


# Conversations and participants


async def test_conversation_create_then_merge(store: Store) -> None:
    await add_users(store, "alice")
    first = await store.upsert_conversation(
        "c1",
        ConversationAttributes(subject="Plans", photo_url="https://x/p.png", custom={"a": "1"}),
        {"alice": Participation()},
    )
    second = await store.upsert_conversation(
        "c1", ConversationAttributes(photo_url=None, custom={"a": None, "b": "2"}), None
    )
    unchanged = await store.upsert_conversation("c1", ConversationAttributes(subject="Plans"), None)
    conversation, updated = first.conversation, second.conversation

    assert first.created
    assert first.changed
    assert not second.created
    assert second.changed
    assert not unchanged.created
    assert not unchanged.changed
    assert unchanged.conversation == updated
    assert conversation.subject == "Plans"
    assert updated.subject == "Plans"
    assert updated.photo_url is None
    assert updated.custom == {"b": "2"}
    assert updated.created_at == conversation.created_at
    assert set(updated.participants) == {"alice"}


async def test_participant_update_keeps_unset_fields(store: Store) -> None:
    await add_users(store, "alice", "bob")
    await store.upsert_conversation(
        "c1", None, {"alice": Participation(), "bob": Participation(notify=False)}
    )

    result = await store.upsert_conversation(
        "c1", None, {"bob": Participation(access=AccessLevel.READ)}
    )
    updated = result.conversation

    assert updated.participants["bob"].access is AccessLevel.READ
    assert updated.participants["bob"].notify is False
    assert updated.participants["alice"].access is AccessLevel.READ_WRITE


async def test_unknown_participant_user_rejected(store: Store) -> None:
    await add_users(store, "alice")

    with pytest.raises(NotFound) as raised:
        await store.upsert_conversation(
            "c1", None, {"alice": Participation(), "ghost": Participation()}
        )

    assert str(raised.value) == (
        "user 'ghost' not found: upsert the user first or pass it as a User with a name "
        "in new_users, to add it to conversation 'c1'"
    )
    assert await store.get_conversation("c1") is None


async def test_upsert_authorize_sees_stored_conversation(store: Store) -> None:
    await add_users(store, "alice")
    on_create = Recorder()
    on_update = Recorder()

    created = await store.upsert_conversation(
        "c1", None, {"alice": Participation()}, authorize=on_create
    )
    await store.upsert_conversation(
        "c1", ConversationAttributes(subject="Later"), None, authorize=on_update
    )

    assert on_create.calls == [None]
    assert on_update.calls == [created.conversation]


async def test_upsert_authorize_rejection_writes_nothing(store: Store) -> None:
    await add_users(store, "alice")
    await store.upsert_conversation("c1", ConversationAttributes(subject="Plans"), None)

    with pytest.raises(PermissionDenied, match="rejected by the test"):
        await store.upsert_conversation(
            "c1",
            ConversationAttributes(subject="Taken"),
            {"alice": Participation(), "erin": Participation()},
            authorize=Recorder(reject=True),
            new_users=[User(id="erin", name="Erin")],
        )
    with pytest.raises(PermissionDenied, match="rejected by the test"):
        await store.upsert_conversation(
            "c2", None, {"alice": Participation()}, authorize=Recorder(reject=True)
        )

    conversation = await store.get_conversation("c1")
    assert conversation is not None
    assert conversation.subject == "Plans"
    assert conversation.participants == {}
    assert await store.get_conversation("c2") is None
    assert await store.get_users(["erin"]) == {}


async def test_upsert_creates_only_missing_new_users(store: Store) -> None:
    alice = await store.upsert_user(User(id="alice", name="Alice", role="admin"))

    result = await store.upsert_conversation(
        "c1",
        None,
        {"alice": Participation(), "erin": Participation()},
        new_users=[User(id="alice", name="Not Alice"), User(id="erin", name="Erin")],
    )
    users = await store.get_users(["alice", "erin"])

    assert set(result.conversation.participants) == {"alice", "erin"}
    assert users["alice"] == alice
    assert users["erin"].name == "Erin"
    assert users["erin"].created_at is not None


async def test_new_users_rolled_back_on_unknown_participant(store: Store) -> None:
    with pytest.raises(NotFound, match="user 'ghost' not found"):
        await store.upsert_conversation(
            "c1",
            None,
            {"erin": Participation(), "ghost": Participation()},
            new_users=[User(id="erin", name="Erin")],
        )

    assert await store.get_users(["erin"]) == {}
    assert await store.get_conversation("c1") is None


async def test_remove_participant(store: Store) -> None:
    await create_chat(store, "c1", "alice", "bob")

    removed = await store.remove_participant("c1", "bob")

    assert set(removed.conversation.participants) == {"alice"}
    assert removed.event is None
    with pytest.raises(NotFound, match="user 'bob' is not a participant of conversation 'c1'"):
        await store.remove_participant("c1", "bob")
    with pytest.raises(NotFound, match="conversation 'nope' not found"):
        await store.remove_participant("nope", "bob")


async def test_delete_conversation_removes_messages(store: Store) -> None:
    await create_chat(store, "c1", "alice", "bob")
    await send(store, "c1", "alice", "hi")

    await store.delete_conversation("c1")

    assert await store.get_conversation("c1") is None
    assert await store.get_unreads("bob") == []
    assert await store.list_user_conversations("alice") == []
    with pytest.raises(NotFound, match="conversation 'c1' not found"):
        await store.delete_conversation("c1")


async def test_list_user_conversations_by_activity(store: Store) -> None:
    await create_chat(store, "older", "alice", "bob")
    await create_chat(store, "newer", "alice", "bob")
    await create_chat(store, "bob-only", "bob")

    await send(store, "newer", "bob", "first")
    await send(store, "older", "bob", "second")
    conversations = await store.list_user_conversations("alice")

    assert [conversation.id for conversation in conversations] == ["older", "newer"]


# Messages


async def test_list_messages_pages_oldest_first(store: Store) -> None:
    await create_chat(store, "c1", "alice", "bob")
    sent = [await send(store, "c1", "alice", f"message {number}") for number in range(75)]
    sent_ids = [message.id for message in sent]

    first = await store.list_messages("c1", limit=30, before_message_id=None)
    second = await store.list_messages("c1", limit=30, before_message_id=first.messages[0].id)
    third = await store.list_messages("c1", limit=30, before_message_id=second.messages[0].id)

    assert [message.id for message in first.messages] == sent_ids[45:]
    assert first.has_more
    assert [message.id for message in second.messages] == sent_ids[15:45]
    assert second.has_more
    assert [message.id for message in third.messages] == sent_ids[:15]
    assert not third.has_more


async def test_list_messages_exact_page_has_no_more(store: Store) -> None:
    await create_chat(store, "c1", "alice")
    for number in range(3):
        await send(store, "c1", "alice", f"message {number}")

    page = await store.list_messages("c1", limit=3, before_message_id=None)

    assert len(page.messages) == 3
    assert not page.has_more


async def test_list_messages_unknown_cursor(store: Store) -> None:
    await create_chat(store, "c1", "alice")
    await create_chat(store, "c2", "alice")
    elsewhere = await send(store, "c2", "alice", "in another conversation")

    with pytest.raises(NotFound, match="message 'msg_missing' not found in conversation 'c1'"):
        await store.list_messages("c1", limit=10, before_message_id="msg_missing")
    with pytest.raises(NotFound, match=f"message '{elsewhere.id}' not found"):
        await store.list_messages("c1", limit=10, before_message_id=elsewhere.id)


async def test_insert_message_fields(store: Store) -> None:
    await create_chat(store, "c1", "alice")

    inserted = await store.insert_message(
        Draft("c1", "alice", "hi", custom={"k": "v"}, origin=MessageOrigin.REST)
    )
    conversation = await store.get_conversation("c1")
    message = inserted.message

    assert inserted.created
    assert message.id.startswith("msg_")
    assert message.sender_id == "alice"
    assert message.custom == {"k": "v"}
    assert message.origin is MessageOrigin.REST
    assert message.read_by == []
    assert message.seq > 0
    assert conversation is not None
    assert conversation.last_message_at == message.created_at
    assert inserted.conversation == conversation
    assert inserted.sender == (await store.get_users(["alice"]))["alice"]


async def test_insert_system_message_has_no_sender(store: Store) -> None:
    await create_chat(store, "c1", "alice")

    inserted = await store.insert_message(Draft("c1", None, "welcome", type=MessageType.SYSTEM))

    assert inserted.created
    assert inserted.sender is None


async def test_insert_authorize_sees_stored_conversation(store: Store) -> None:
    await create_chat(store, "c1", "alice")
    stored = await store.get_conversation("c1")
    on_existing = Recorder()
    on_missing = Recorder(reject=True)

    await store.insert_message(Draft("c1", "alice", "hi"), authorize=on_existing)
    with pytest.raises(PermissionDenied):
        await store.insert_message(Draft("nope", "alice", "hi"), authorize=on_missing)

    assert on_existing.calls == [stored]
    assert on_missing.calls == [None]


async def test_insert_authorize_rejection_inserts_nothing(store: Store) -> None:
    await create_chat(store, "c1", "alice", "bob")

    with pytest.raises(PermissionDenied, match="rejected by the test"):
        await store.insert_message(Draft("c1", "alice", "hi"), authorize=Recorder(reject=True))

    page = await store.list_messages("c1", limit=10, before_message_id=None)
    conversation = await store.get_conversation("c1")
    assert page.messages == []
    assert conversation is not None
    assert conversation.last_message_at is None
    assert await unread_counts(store, "bob") == {}


async def test_insert_message_unknown_conversation(store: Store) -> None:
    with pytest.raises(NotFound) as raised:
        await store.insert_message(Draft("nope", None, "hi", type=MessageType.SYSTEM))

    assert str(raised.value) == "conversation 'nope' not found: create it first"


async def test_idempotency_key_returns_first_message(store: Store) -> None:
    await create_chat(store, "c1", "alice", "bob")

    first = await store.insert_message(Draft("c1", "alice", "hi", idempotency_key="k1"))
    again = await store.insert_message(Draft("c1", "alice", "hi again", idempotency_key="k1"))
    from_bob = await store.insert_message(Draft("c1", "bob", "hi", idempotency_key="k1"))
    page = await store.list_messages("c1", limit=10, before_message_id=None)

    assert first.created
    assert not again.created
    assert again.message == first.message
    assert again.message.text == "hi"
    assert from_bob.created
    assert from_bob.message.id != first.message.id
    assert len(page.messages) == 2


async def test_idempotency_key_for_system_messages(store: Store) -> None:
    await create_chat(store, "c1", "alice")
    draft = Draft("c1", None, "alice joined", type=MessageType.SYSTEM, idempotency_key="join")

    first = await store.insert_message(draft)
    again = await store.insert_message(draft)

    assert first.created
    assert not again.created
    assert again.message.id == first.message.id
    assert again.sender is None


# Message order


async def test_seq_increases_across_conversations(store: Store) -> None:
    await create_chat(store, "c1", "alice", "bob")
    await create_chat(store, "c2", "alice", "bob")

    sent = [
        await send(store, conversation_id, "alice", f"message {number}")
        for number in range(10)
        for conversation_id in ("c1", "c2")
    ]
    seqs = [message.seq for message in sent]

    assert seqs[0] > 0
    assert all(earlier < later for earlier, later in itertools.pairwise(seqs))


async def test_listed_messages_carry_seq(store: Store) -> None:
    await create_chat(store, "c1", "alice", "bob")
    await create_chat(store, "c2", "alice", "bob")
    sent: list[Message] = []
    for number in range(12):
        sent.append(await send(store, "c1", "alice", f"c1 message {number}"))
        await send(store, "c2", "bob", f"c2 message {number}")

    newest = await store.list_messages("c1", limit=5, before_message_id=None)
    older = await store.list_messages("c1", limit=20, before_message_id=newest.messages[0].id)
    listed = older.messages + newest.messages
    listed_seqs = [message.seq for message in listed]

    assert [message.id for message in listed] == [message.id for message in sent]
    assert listed_seqs == [message.seq for message in sent]
    assert all(earlier < later for earlier, later in itertools.pairwise(listed_seqs))


async def test_unread_last_message_carries_seq(store: Store) -> None:
    await create_chat(store, "c1", "alice", "bob")
    await send(store, "c1", "bob", "one")
    latest = await send(store, "c1", "bob", "two")

    unreads = await store.get_unreads("alice")

    assert [unread.last_message.seq for unread in unreads] == [latest.seq]
    assert unreads[0].last_message == latest


# Read positions


async def test_read_by_lists_readers(store: Store) -> None:
    await create_chat(store, "c1", "alice", "bob", "carol")
    first = await send(store, "c1", "alice", "one")
    await send(store, "c1", "alice", "two")

    await store.mark_read("c1", "bob", first.id)
    partly = await store.list_messages("c1", limit=10, before_message_id=None)
    await store.mark_read("c1", "bob", None)
    await store.mark_read("c1", "carol", None)
    fully = await store.list_messages("c1", limit=10, before_message_id=None)

    assert [message.read_by for message in partly.messages] == [["bob"], []]
    assert [message.read_by for message in fully.messages] == [["bob", "carol"]] * 2


async def test_unread_counts_exclude_own_messages(store: Store) -> None:
    await create_chat(store, "c1", "alice", "bob")

    await send(store, "c1", "bob", "one")
    await send(store, "c1", "bob", "two")
    alice_before = await unread_counts(store, "alice")
    bob_before = await unread_counts(store, "bob")
    await send(store, "c1", "alice", "reply")

    assert alice_before == {"c1": 2}
    assert bob_before == {}
    # Sending implies reading what came before.
    assert await unread_counts(store, "alice") == {}
    assert await unread_counts(store, "bob") == {"c1": 1}


async def test_system_messages_count_as_unread(store: Store) -> None:
    await create_chat(store, "c1", "alice")

    await store.insert_message(Draft("c1", None, "welcome", type=MessageType.SYSTEM))

    assert await unread_counts(store, "alice") == {"c1": 1}


async def test_mark_read_never_moves_backwards(store: Store) -> None:
    await create_chat(store, "c1", "alice", "bob")
    sent = [await send(store, "c1", "bob", f"message {number}") for number in range(3)]

    middle = await store.mark_read("c1", "alice", sent[1].id)
    latest = await store.mark_read("c1", "alice", None)
    backwards = await store.mark_read("c1", "alice", sent[0].id)
    repeated = await store.mark_read("c1", "alice", None)

    # The first four fields: message id, seq, unread count and whether it moved.
    assert middle[:4] == (sent[1].id, sent[1].seq, 1, True)
    assert latest[:4] == (sent[2].id, sent[2].seq, 0, True)
    assert backwards[:4] == (sent[2].id, sent[2].seq, 0, False)
    assert repeated[:4] == (sent[2].id, sent[2].seq, 0, False)


async def test_mark_read_returns_last_read_seq(store: Store) -> None:
    await create_chat(store, "c1", "alice", "bob")
    await create_chat(store, "c2", "alice", "bob")
    first = await send(store, "c1", "bob", "c1 one")
    await send(store, "c2", "bob", "c2 one")
    await send(store, "c1", "bob", "c1 two")

    position = await store.mark_read("c1", "alice", first.id)

    assert position.last_read_message_id == first.id
    assert position.last_read_seq == first.seq
    assert position.unread_message_count == 1


async def test_mark_read_in_empty_conversation(store: Store) -> None:
    await create_chat(store, "c1", "alice")

    position = await store.mark_read("c1", "alice", None)

    assert position[:4] == (None, 0, 0, False)


async def test_mark_read_by_non_participant(store: Store) -> None:
    await create_chat(store, "c1", "alice")
    await add_users(store, "carol")

    with pytest.raises(NotFound, match="user 'carol' is not a participant of conversation 'c1'"):
        await store.mark_read("c1", "carol", None)


async def test_new_participant_starts_read(store: Store) -> None:
    await create_chat(store, "c1", "alice", "bob")
    for number in range(5):
        await send(store, "c1", "alice", f"history {number}")
    await add_users(store, "carol")

    await store.upsert_conversation("c1", None, {"carol": Participation()})
    after_join = await unread_counts(store, "carol")
    await send(store, "c1", "alice", "welcome carol")

    assert after_join == {}
    assert await unread_counts(store, "carol") == {"c1": 1}


async def test_settings_update_keeps_position(store: Store) -> None:
    await create_chat(store, "c1", "alice", "bob")
    await send(store, "c1", "alice", "one")

    await store.upsert_conversation("c1", None, {"bob": Participation(notify=False)})

    assert await unread_counts(store, "bob") == {"c1": 1}


async def test_rejoined_participant_starts_at_latest(store: Store) -> None:
    await create_chat(store, "c1", "alice", "bob")
    await send(store, "c1", "alice", "before leaving")
    before_leaving = await unread_counts(store, "bob")
    await store.remove_participant("c1", "bob")
    while_away = await send(store, "c1", "alice", "while bob is away")

    await store.upsert_conversation("c1", None, {"bob": Participation()})
    after_rejoin = await unread_counts(store, "bob")
    position = await store.mark_read("c1", "bob", None)
    await send(store, "c1", "alice", "welcome back")

    assert before_leaving == {"c1": 1}
    assert after_rejoin == {}
    assert position[:4] == (while_away.id, while_away.seq, 0, False)
    assert await unread_counts(store, "bob") == {"c1": 1}


async def test_get_unreads_most_recent_first(store: Store) -> None:
    await create_chat(store, "c1", "alice", "bob")
    await create_chat(store, "c2", "alice", "bob")
    await create_chat(store, "c3", "alice", "bob")

    await send(store, "c1", "bob", "c1 first")
    await send(store, "c2", "bob", "c2 first")
    await send(store, "c2", "bob", "c2 second")
    latest = await send(store, "c1", "bob", "c1 second")
    unreads = await store.get_unreads("alice")

    assert [unread.conversation.id for unread in unreads] == ["c1", "c2"]
    assert [unread.unread_message_count for unread in unreads] == [2, 2]
    assert unreads[0].last_message.id == latest.id
    assert unreads[1].last_message.text == "c2 second"
    assert set(unreads[0].conversation.participants) == {"alice", "bob"}


async def test_unreads_snapshot_positions(store: Store) -> None:
    await create_chat(store, "c1", "alice", "bob")
    await create_chat(store, "c2", "alice", "carol")
    first = await send(store, "c1", "bob", "one")
    second = await send(store, "c1", "bob", "two")
    own = await send(store, "c2", "alice", "mine")

    snapshot = await store.get_unreads_snapshot("alice")

    assert [unread.unread_message_count for unread in snapshot.unreads] == [2]
    # These writes pass no log_event, so the event log is still empty.
    assert snapshot.as_of_event_seq == 0
    assert snapshot.read_positions["c2"] == own.seq
    assert snapshot.read_positions["c1"] < first.seq < second.seq


# Editing and deleting messages


async def test_update_message_text_and_custom(store: Store) -> None:
    await create_chat(store, "c1", "alice", "bob")
    sent = await store.insert_message(
        Draft("c1", "alice", "helo", custom={"keep": "1", "drop": "2"})
    )

    updated = await store.update_message(
        "c1",
        sent.message.id,
        text="hello",
        custom={"drop": None, "new": "3"},
        edited_at=1_700_000_000_000,
    )
    listed = await list_all(store, "c1")

    assert updated.changed
    assert updated.message.text == "hello"
    assert updated.message.custom == {"keep": "1", "new": "3"}
    assert updated.message.edited_at == 1_700_000_000_000
    assert updated.message.seq == sent.message.seq
    assert updated.message.created_at == sent.message.created_at
    assert listed == [updated.message]
    assert updated.conversation == await store.get_conversation("c1")


async def test_update_message_text_only_keeps_custom(store: Store) -> None:
    await create_chat(store, "c1", "alice")
    sent = await store.insert_message(Draft("c1", "alice", "one", custom={"k": "v"}))

    updated = await store.update_message(
        "c1", sent.message.id, text="two", custom=None, edited_at=5
    )

    assert updated.message.text == "two"
    assert updated.message.custom == {"k": "v"}


async def test_update_message_unchanged_writes_nothing(store: Store) -> None:
    await create_chat(store, "c1", "alice")
    sent = await store.insert_message(Draft("c1", "alice", "same", custom={"k": "v"}))

    same_text = await store.update_message(
        "c1", sent.message.id, text="same", custom={"k": "v"}, edited_at=5
    )
    absent_key_removed = await store.update_message(
        "c1", sent.message.id, text=None, custom={"absent": None}, edited_at=6
    )
    nothing = await store.update_message("c1", sent.message.id, text=None, custom=None, edited_at=7)

    for result in (same_text, absent_key_removed, nothing):
        assert not result.changed
        assert result.message == sent.message
        assert result.message.edited_at is None
    assert await list_all(store, "c1") == [sent.message]


async def test_update_authorize_sees_stored_message(store: Store) -> None:
    await create_chat(store, "c1", "alice")
    sent = await send(store, "c1", "alice", "hi")
    conversation = await store.get_conversation("c1")
    recorder = MessageRecorder()

    await store.update_message(
        "c1", sent.id, text="hi there", custom=None, edited_at=5, authorize=recorder
    )

    assert recorder.calls == [(conversation, sent)]


async def test_update_authorize_rejection_writes_nothing(store: Store) -> None:
    await create_chat(store, "c1", "alice")
    sent = await send(store, "c1", "alice", "original")

    with pytest.raises(PermissionDenied, match="rejected by the test"):
        await store.update_message(
            "c1",
            sent.id,
            text="changed",
            custom={"k": "v"},
            edited_at=5,
            authorize=MessageRecorder(reject=True),
        )

    assert await list_all(store, "c1") == [sent]


async def test_update_custom_over_limit_rejected(store: Store) -> None:
    await create_chat(store, "c1", "alice")
    full = {f"key{number}": "x" for number in range(MAX_CUSTOM_FIELDS)}
    sent = await store.insert_message(Draft("c1", "alice", "hi", custom=full))

    with pytest.raises(InvalidInput) as raised:
        await store.update_message(
            "c1", sent.message.id, text="changed", custom={"one_more": "x"}, edited_at=5
        )

    assert str(raised.value) == (
        "custom would have 101 keys after the update, over the limit of 100: "
        "remove keys by setting them to None"
    )
    assert await list_all(store, "c1") == [sent.message]


async def test_update_unknown_message_not_found(store: Store) -> None:
    await create_chat(store, "c1", "alice")
    await create_chat(store, "c2", "alice")
    elsewhere = await send(store, "c2", "alice", "in c2")

    with pytest.raises(NotFound) as unknown:
        await store.update_message("c1", "msg_missing", text="x", custom=None, edited_at=5)
    with pytest.raises(NotFound) as other_conversation:
        await store.update_message("c1", elsewhere.id, text="x", custom=None, edited_at=5)
    with pytest.raises(NotFound) as no_conversation:
        await store.update_message("nope", elsewhere.id, text="x", custom=None, edited_at=5)

    assert str(unknown.value) == (
        "message 'msg_missing' not found in conversation 'c1': it was deleted, "
        "or its id belongs to another conversation"
    )
    assert f"message '{elsewhere.id}' not found in conversation 'c1'" in str(
        other_conversation.value
    )
    assert str(no_conversation.value) == "conversation 'nope' not found: create it first"
    assert [message.text for message in await list_all(store, "c2")] == ["in c2"]


async def test_delete_message_returns_stored(store: Store) -> None:
    await create_chat(store, "c1", "alice", "bob")
    first = await send(store, "c1", "alice", "one")
    second = await send(store, "c1", "bob", "two")
    recorder = MessageRecorder()
    before = await store.get_conversation("c1")

    deleted = await store.delete_message("c1", second.id, authorize=recorder)
    after = await store.get_conversation("c1")

    assert deleted.message == second
    assert recorder.calls == [(before, second)]
    assert [message.id for message in await list_all(store, "c1")] == [first.id]
    assert after is not None
    assert after.last_message_at == first.created_at
    assert deleted.conversation == after


async def test_delete_only_message_clears_last_message_at(store: Store) -> None:
    await create_chat(store, "c1", "alice")
    sent = await send(store, "c1", "alice", "only")

    deleted = await store.delete_message("c1", sent.id)
    conversation = await store.get_conversation("c1")

    assert conversation is not None
    assert conversation.last_message_at is None
    assert deleted.conversation.last_message_at is None
    assert await list_all(store, "c1") == []


async def test_delete_authorize_rejection_keeps_message(store: Store) -> None:
    await create_chat(store, "c1", "alice", "bob")
    sent = await send(store, "c1", "alice", "kept")

    with pytest.raises(PermissionDenied, match="rejected by the test"):
        await store.delete_message("c1", sent.id, authorize=MessageRecorder(reject=True))

    assert await list_all(store, "c1") == [sent]
    assert await unread_counts(store, "bob") == {"c1": 1}


async def test_delete_unknown_message_not_found(store: Store) -> None:
    await create_chat(store, "c1", "alice")
    await create_chat(store, "c2", "alice")
    elsewhere = await send(store, "c2", "alice", "in c2")
    sent = await send(store, "c1", "alice", "deleted once")
    await store.delete_message("c1", sent.id)

    with pytest.raises(NotFound, match=f"message '{sent.id}' not found in conversation 'c1'"):
        await store.delete_message("c1", sent.id)
    with pytest.raises(NotFound, match=f"message '{elsewhere.id}' not found"):
        await store.delete_message("c1", elsewhere.id)
    with pytest.raises(NotFound, match="conversation 'nope' not found"):
        await store.delete_message("nope", elsewhere.id)

    assert await list_all(store, "c2") == [elsewhere]


async def test_delete_unread_message_drops_count(store: Store) -> None:
    await create_chat(store, "c1", "alice", "bob")
    first = await send(store, "c1", "bob", "one")
    second = await send(store, "c1", "bob", "two")

    await store.delete_message("c1", second.id)
    after_one = await store.get_unreads("alice")
    await store.delete_message("c1", first.id)

    assert [unread.unread_message_count for unread in after_one] == [1]
    assert after_one[0].last_message == first
    assert await unread_counts(store, "alice") == {}


async def test_read_positions_survive_delete(store: Store) -> None:
    await create_chat(store, "c1", "alice", "bob")
    first, second, third = [await send(store, "c1", "bob", f"m{number}") for number in range(3)]
    await store.mark_read("c1", "alice", second.id)

    await store.delete_message("c1", second.id)
    unread_after_delete = await unread_counts(store, "alice")
    listed = await list_all(store, "c1")
    backwards = await store.mark_read("c1", "alice", first.id)
    forwards = await store.mark_read("c1", "alice", None)

    assert unread_after_delete == {"c1": 1}
    assert [message.read_by for message in listed] == [["alice"], []]
    # The position stays at the deleted seq, so marking the older message
    # does not move it, and the last read message is the one before it.
    assert backwards[:4] == (first.id, first.seq, 1, False)
    assert forwards[:4] == (third.id, third.seq, 0, True)
    with pytest.raises(NotFound, match=f"message '{second.id}' not found"):
        await store.mark_read("c1", "alice", second.id)


async def test_read_position_at_deleted_latest(store: Store) -> None:
    await create_chat(store, "c1", "alice", "bob")
    first = await send(store, "c1", "bob", "one")
    latest = await send(store, "c1", "bob", "two")
    await store.mark_read("c1", "alice", None)

    await store.delete_message("c1", latest.id)
    position = await store.mark_read("c1", "alice", None)
    after_new_message = await send(store, "c1", "bob", "three")

    assert position[:4] == (first.id, first.seq, 0, False)
    assert after_new_message.seq > latest.seq
    assert await unread_counts(store, "alice") == {"c1": 1}


async def test_delete_frees_idempotency_key(store: Store) -> None:
    await create_chat(store, "c1", "alice")
    first = await store.insert_message(Draft("c1", "alice", "hi", idempotency_key="k1"))

    await store.delete_message("c1", first.message.id)
    again = await store.insert_message(Draft("c1", "alice", "hi", idempotency_key="k1"))

    assert again.created
    assert again.message.id != first.message.id
    assert await list_all(store, "c1") == [again.message]


# Users in batches, single messages, conversation pages


async def test_upsert_users_all_or_none(store: Store) -> None:
    await store.upsert_user(User(id="bob", name="Bob", custom={"a": "1"}))
    full: dict[str, str | None] = {f"key{number}": "x" for number in range(MAX_CUSTOM_FIELDS)}

    stored = await store.upsert_users(
        [User(id="carol", name="Carol"), User(id="bob", custom={"b": "2"})]
    )
    with pytest.raises(InvalidInput) as raised:
        await store.upsert_users([User(id="dave", name="Dave"), User(id="bob", custom=full)])

    assert [user.id for user in stored] == ["carol", "bob"]
    assert stored[1].custom == {"a": "1", "b": "2"}
    assert stored[1].name == "Bob"
    assert str(raised.value).startswith("user 'bob': custom would have 102 keys")
    assert await store.get_users(["dave"]) == {}
    assert (await store.get_users(["bob"]))["bob"] == stored[1]


async def test_get_message(store: Store) -> None:
    await create_chat(store, "c1", "alice", "bob")
    await create_chat(store, "c2", "alice")
    sent = await send(store, "c1", "alice", "hello")
    await store.mark_read("c1", "bob", None)

    found = await store.get_message("c1", sent.id)

    assert found is not None
    assert found.text == "hello"
    assert found.read_by == ["bob"]
    assert await store.get_message("c2", sent.id) is None
    assert await store.get_message("c1", "msg_missing") is None


async def test_user_conversation_page_order_and_cursor(store: Store) -> None:
    for conversation_id in ("quiet", "c1", "c2", "c3"):
        await create_chat(store, conversation_id, "alice", "bob")
    await send(store, "c1", "bob", "c1 from bob")
    await send(store, "c2", "alice", "c2 from alice")
    latest = await send(store, "c3", "bob", "c3 from bob")

    first = await store.list_user_conversation_page(
        "alice", limit=2, starting_after=None, unreads_only=False
    )
    rest = await store.list_user_conversation_page(
        "alice", limit=10, starting_after=first[-1].conversation.id, unreads_only=False
    )
    unread = await store.list_user_conversation_page(
        "alice", limit=10, starting_after=None, unreads_only=True
    )
    ordered = await store.list_user_conversations("alice")

    page_ids = [entry.conversation.id for entry in first + rest]
    assert page_ids == [conversation.id for conversation in ordered]
    assert page_ids[:3] == ["c3", "c2", "c1"]
    assert page_ids[3] == "quiet"
    assert first[0].last_message == latest
    assert rest[-1].last_message is None
    assert [entry.unread_message_count for entry in first + rest] == [1, 0, 1, 0]
    assert [entry.conversation.id for entry in unread] == ["c3", "c1"]


async def test_user_conversation_page_unknown_cursor(store: Store) -> None:
    await create_chat(store, "c1", "alice")
    await create_chat(store, "other", "bob")

    with pytest.raises(InvalidInput) as raised:
        await store.list_user_conversation_page(
            "alice", limit=10, starting_after="other", unreads_only=False
        )

    assert str(raised.value) == (
        "startingAfter 'other' is not a conversation of user 'alice': pass the id of the "
        "last conversation of the previous page"
    )


async def test_concurrent_creates_authorize_once_as_new(store: Store) -> None:
    await add_users(store, "alice", "bob")
    first, second = Recorder(), Recorder()

    results = await asyncio.gather(
        store.upsert_conversation("c1", None, {"alice": Participation()}, authorize=first),
        store.upsert_conversation("c1", None, {"bob": Participation()}, authorize=second),
    )

    # One create wins; the other's authorize receives the stored conversation.
    calls = first.calls + second.calls
    assert [call is None for call in calls].count(True) == 1
    assert [result.created for result in results].count(True) == 1
    stored = await store.get_conversation("c1")
    assert stored is not None
    assert set(stored.participants) == {"alice", "bob"}


# Event log


async def test_logged_event_stored_with_change(store: Store, store_database: StoreDatabase) -> None:
    await create_chat(store, "c1", "alice")
    logger = EventLogger("alice", "alice")

    inserted = await store.insert_message(Draft("c1", "alice", "kept"), log_event=logger)
    page = await store.events_after("alice", 0, limit=10)

    assert logger.changes == [inserted._replace(event=None, prev_seq=None)]
    assert inserted.event is not None
    assert inserted.event.seq == 1
    assert inserted.prev_seq == 0
    assert page.events == [inserted.event]
    assert page.next_after_seq == 1
    assert not page.has_more
    # A recipient listed twice is stored once.
    assert await store_database.count_rows("event_recipients") == 1


async def test_failed_event_rolls_back_change(store: Store, store_database: StoreDatabase) -> None:
    await create_chat(store, "c1", "alice", "bob")

    def fail(change: object) -> NewEvent:
        raise RuntimeError("event builder failed")

    with pytest.raises(RuntimeError, match="event builder failed"):
        await store.insert_message(Draft("c1", "alice", "lost"), log_event=fail)
    with pytest.raises(RuntimeError, match="event builder failed"):
        await store.upsert_conversation(
            "c1", ConversationAttributes(subject="lost"), None, log_event=fail
        )
    with pytest.raises(RuntimeError, match="event builder failed"):
        await store.remove_participant("c1", "bob", log_event=fail)

    conversation = await store.get_conversation("c1")
    assert await list_all(store, "c1") == []
    assert conversation is not None
    assert conversation.subject is None
    assert set(conversation.participants) == {"alice", "bob"}
    assert await store_database.count_rows("events") == 0
    assert await store_database.count_rows("event_recipients") == 0


async def test_log_event_none_logs_nothing(store: Store, store_database: StoreDatabase) -> None:
    await create_chat(store, "c1", "alice")

    inserted = await store.insert_message(
        Draft("c1", "alice", "unlogged"), log_event=lambda change: None
    )

    assert inserted.created
    assert inserted.event is None
    assert inserted.prev_seq is None
    assert await store_database.count_rows("events") == 0
    assert (await store.get_unreads_snapshot("alice")).as_of_event_seq == 0


async def test_every_write_logs_in_seq_order(store: Store) -> None:
    await add_users(store, "alice", "bob", "carol")
    logger = EventLogger("alice")

    created = await store.upsert_conversation(
        "c1", None, {"alice": Participation(), "bob": Participation()}, log_event=logger
    )
    sent = await store.insert_message(Draft("c1", "bob", "hello"), log_event=logger)
    edited = await store.update_message(
        "c1", sent.message.id, text="hello!", custom=None, edited_at=5, log_event=logger
    )
    read = await store.mark_read("c1", "alice", None, log_event=logger)
    joined = await store.upsert_conversation(
        "c1", None, {"carol": Participation()}, log_event=logger
    )
    left = await store.remove_participant("c1", "carol", log_event=logger)
    deleted = await store.delete_message("c1", sent.message.id, log_event=logger)
    gone = await store.delete_conversation("c1", log_event=logger)
    replayed = await all_events(store, "alice")

    logged = [result.event for result in (created, sent, edited, read, joined, left, deleted, gone)]
    assert replayed == logged
    numbers = seqs(replayed)
    assert numbers == sorted(set(numbers))
    assert [type(event) for event in replayed] == [
        ConversationUpdated,
        MessageSent,
        MessageEdited,
        MessagesRead,
        ConversationUpdated,
        ConversationUpdated,
        MessageDeleted,
        ConversationUpdated,
    ]
    assert isinstance(replayed[1], MessageSent)
    assert replayed[1].message == sent.message
    assert gone.conversation == left.conversation.model_copy(update={"last_message_at": None})


async def test_unchanged_writes_still_call_log_event(store: Store) -> None:
    await create_chat(store, "c1", "alice")
    sent = await store.insert_message(Draft("c1", "alice", "same", idempotency_key="k"))
    logger = EventLogger("alice")

    again = await store.insert_message(
        Draft("c1", "alice", "same", idempotency_key="k"), log_event=logger
    )
    unchanged = await store.update_message(
        "c1", sent.message.id, text="same", custom=None, edited_at=5, log_event=logger
    )
    not_moved = await store.mark_read("c1", "alice", None, log_event=logger)

    assert not again.created
    assert not unchanged.changed
    assert not not_moved.moved
    assert len(logger.changes) == 3
    assert [result.event is not None for result in (again, unchanged, not_moved)] == [True] * 3


async def test_events_after_pages(store: Store) -> None:
    await create_chat(store, "c1", "alice", "bob")
    await create_chat(store, "other", "carol")
    to_bob = EventLogger("alice", "bob")
    for number in range(5):
        await store.insert_message(Draft("c1", "alice", f"m{number}"), log_event=to_bob)
    # An event bob does not receive, after his last one.
    carols = await store.insert_message(
        Draft("other", "carol", "not for bob"), log_event=EventLogger("carol")
    )
    assert carols.event is not None
    latest = carols.event.seq

    first = await store.events_after("bob", 0, limit=2)
    second = await store.events_after("bob", first.next_after_seq, limit=2)
    third = await store.events_after("bob", second.next_after_seq, limit=2)
    empty = await store.events_after("bob", third.next_after_seq, limit=2)

    assert (first.has_more, second.has_more, third.has_more) == (True, True, False)
    texts = [
        event.message.text
        for page in (first, second, third)
        for event in page.events
        if isinstance(event, MessageSent)
    ]
    assert texts == ["m0", "m1", "m2", "m3", "m4"]
    assert first.next_after_seq == first.events[-1].seq
    assert second.next_after_seq == second.events[-1].seq
    # The last page reaches the app's latest event, which is carol's.
    assert third.next_after_seq == latest
    assert empty.events == []
    assert not empty.has_more
    assert empty.next_after_seq == latest
    assert await all_events(store, "nobody") == []


async def test_events_after_beyond_latest_is_gap(store: Store) -> None:
    await create_chat(store, "c1", "alice")
    sent = await store.insert_message(Draft("c1", "alice", "one"), log_event=EventLogger("alice"))
    assert sent.event is not None
    assert sent.event.seq is not None
    latest = sent.event.seq

    with pytest.raises(ChatError) as raised:
        await store.events_after("alice", latest + 1, limit=10)

    assert raised.value.code == "resume_gap"
    assert raised.value.message == (
        f"seq {latest + 1} is beyond the latest event seq {latest} of app '{APP_ID}', so the "
        "event log was reset or belongs to another database; reload the unreads and "
        "conversations, then resume after the snapshot's as_of_event_seq"
    )


async def test_apps_have_separate_logs(store_database: StoreDatabase) -> None:
    first = await store_database.open_store("app-one")
    second = await store_database.open_store("app-two")
    await create_chat(first, "c1", "alice")
    await create_chat(second, "c1", "alice")

    one = await first.insert_message(Draft("c1", "alice", "one"), log_event=EventLogger("alice"))
    two = await second.insert_message(Draft("c1", "alice", "two"), log_event=EventLogger("alice"))

    assert await all_events(first, "alice") == [one.event]
    assert await all_events(second, "alice") == [two.event]


async def test_snapshot_matches_log_position(store: Store) -> None:
    await create_chat(store, "c1", "alice", "bob")
    logger = EventLogger("alice", "bob")
    first = await store.insert_message(Draft("c1", "bob", "one"), log_event=logger)
    snapshot = await store.get_unreads_snapshot("alice")
    second = await store.insert_message(Draft("c1", "bob", "two"), log_event=logger)

    later = await all_events(store, "alice", snapshot.as_of_event_seq)

    assert first.event is not None
    assert snapshot.as_of_event_seq == first.event.seq
    assert [unread.unread_message_count for unread in snapshot.unreads] == [1]
    assert snapshot.read_positions == {"c1": 0}
    assert later == [second.event]


async def test_retention_prunes_bounded_batches(store_database: StoreDatabase) -> None:
    store = store_database.new_store(APP_ID)
    await store.open(event_retention_ms=DAY_MS)
    await create_chat(store, "c1", "alice", "bob")
    logger = EventLogger("alice", "bob")
    for number in range(6):
        await store.insert_message(Draft("c1", "alice", f"old {number}"), log_event=logger)
    old = seqs(await all_events(store, "bob"))
    await store_database.age_events(2 * DAY_MS)

    await store.insert_message(Draft("c1", "alice", "new 1"), log_event=logger)
    after_one_write = await store_database.count_rows("events")
    for number in (2, 3):
        await store.insert_message(Draft("c1", "alice", f"new {number}"), log_event=logger)
    remaining = await all_events(store, "bob", old[-1])
    with pytest.raises(ChatError) as raised:
        await store.events_after("bob", 0, limit=10)
    snapshot = await store.get_unreads_snapshot("bob")
    resumed = await store.events_after("bob", snapshot.as_of_event_seq, limit=10)

    assert PRUNE_BATCH == POSTGRES_PRUNE_BATCH == 2
    assert len(old) == 6
    # Each logged write deletes at most PRUNE_BATCH expired events.
    assert after_one_write == 6 + 1 - PRUNE_BATCH
    assert await store_database.count_rows("events") == 3
    assert await store_database.count_rows("event_recipients") == 3 * 2
    assert [event.message.text for event in remaining if isinstance(event, MessageSent)] == [
        "new 1",
        "new 2",
        "new 3",
    ]
    assert raised.value.code == "resume_gap"
    assert raised.value.message == (
        f"events after seq 0 are no longer all stored: the event log of app '{APP_ID}' was "
        f"pruned up to seq {old[-1]}; reload the unreads and conversations, then resume "
        "after the snapshot's as_of_event_seq"
    )
    assert resumed.events == []


async def test_resume_at_pruned_boundary(store_database: StoreDatabase) -> None:
    store = store_database.new_store(APP_ID)
    await store.open(event_retention_ms=DAY_MS)
    await create_chat(store, "c1", "alice")
    logger = EventLogger("alice")
    for number in range(3):
        await store.insert_message(Draft("c1", "alice", f"old {number}"), log_event=logger)
    old = seqs(await all_events(store, "alice"))
    await store_database.age_events(2 * DAY_MS)
    # This write prunes the two oldest events; the third has expired but stays for now.
    await store.insert_message(Draft("c1", "alice", "new"), log_event=logger)
    last = seqs(await all_events(store, "alice", old[1]))[-1]

    with pytest.raises(ChatError) as from_pruned:
        await store.events_after("alice", old[0], limit=10)
    at_boundary = await store.events_after("alice", old[1], limit=10)

    assert from_pruned.value.code == "resume_gap"
    assert f"pruned up to seq {old[1]}" in from_pruned.value.message
    assert seqs(at_boundary.events) == [old[2], last]


async def test_events_kept_after_conversation_deleted(store: Store) -> None:
    await create_chat(store, "c1", "alice")
    logger = EventLogger("alice")
    sent = await store.insert_message(Draft("c1", "alice", "before"), log_event=logger)

    deleted = await store.delete_conversation("c1", log_event=logger)

    assert await all_events(store, "alice") == [sent.event, deleted.event]


async def test_prev_seq_chains_each_apps_events(store_database: StoreDatabase) -> None:
    first = await store_database.open_store("app-one")
    second = await store_database.open_store("app-two")
    for store in (first, second):
        await create_chat(store, "c1", "alice", "bob")
    logger = EventLogger("alice")

    results: dict[str, list[tuple[int | None, int | None]]] = {"app-one": [], "app-two": []}
    for number in range(3):
        for app_id, store in (("app-one", first), ("app-two", second)):
            sent = await store.insert_message(Draft("c1", "bob", f"m{number}"), log_event=logger)
            assert sent.event is not None
            results[app_id].append((sent.prev_seq, sent.event.seq))
    read = await first.mark_read("c1", "alice", None, log_event=logger)
    left = await first.remove_participant("c1", "bob", log_event=logger)
    gone = await first.delete_conversation("c1", log_event=logger)
    for result in (read, left, gone):
        assert result.event is not None
        results["app-one"].append((result.prev_seq, result.event.seq))

    for app_id, pairs in results.items():
        # Each event names the one before it in its own app's log, whatever
        # the other app logged in between.
        previous = [0] + [seq for _, seq in pairs[:-1]]
        assert [prev_seq for prev_seq, _ in pairs] == previous, app_id


async def test_prev_seq_survives_pruning(store_database: StoreDatabase) -> None:
    store = store_database.new_store(APP_ID)
    await store.open(event_retention_ms=DAY_MS)
    await create_chat(store, "c1", "alice")
    logger = EventLogger("alice")
    old = await store.insert_message(Draft("c1", "alice", "old"), log_event=logger)
    await store_database.age_events(2 * DAY_MS)

    # Prunes the old event, which is the one before it.
    pruning = await store.insert_message(Draft("c1", "alice", "new"), log_event=logger)
    after = await store.insert_message(Draft("c1", "alice", "newer"), log_event=logger)

    assert old.event is not None
    assert pruning.event is not None
    assert await store_database.count_rows("events") == 2
    assert pruning.prev_seq == old.event.seq
    assert after.prev_seq == pruning.event.seq


async def test_app_events_after_pages_all_recipients(store_database: StoreDatabase) -> None:
    store = await store_database.open_store(APP_ID)
    other = await store_database.open_store("other-app")
    await create_chat(store, "c1", "alice", "bob")
    await create_chat(other, "c1", "alice")
    logged: list[ChatEvent] = []
    for number, recipient in enumerate(["alice", "bob", "alice", "bob", "alice"]):
        sent = await store.insert_message(
            Draft("c1", "alice", f"m{number}"), log_event=EventLogger(recipient)
        )
        await other.insert_message(
            Draft("c1", "alice", "elsewhere"), log_event=EventLogger("alice")
        )
        assert sent.event is not None
        logged.append(sent.event)
    latest = seqs(logged)[-1]

    first = await store.app_events_after(0, limit=2)
    second = await store.app_events_after(first.next_after_seq, limit=2)
    third = await store.app_events_after(second.next_after_seq, limit=2)
    middle = await store.app_events_after(seqs(logged)[1], limit=10)
    empty = await store.app_events_after(latest, limit=10)

    assert (first.has_more, second.has_more, third.has_more) == (True, True, False)
    assert first.events + second.events + third.events == logged
    assert first.next_after_seq == seqs(logged)[1]
    assert third.next_after_seq == latest
    assert middle.events == logged[2:]
    assert empty.events == []
    assert empty.next_after_seq == latest
    assert not empty.has_more


async def test_app_events_after_reports_gaps(store_database: StoreDatabase) -> None:
    store = store_database.new_store(APP_ID)
    await store.open(event_retention_ms=DAY_MS)
    await create_chat(store, "c1", "alice")
    logger = EventLogger("alice")
    for number in range(3):
        await store.insert_message(Draft("c1", "alice", f"old {number}"), log_event=logger)
    await store_database.age_events(2 * DAY_MS)
    newest = await store.insert_message(Draft("c1", "alice", "new"), log_event=logger)
    assert newest.event is not None
    assert newest.event.seq is not None
    latest = newest.event.seq

    with pytest.raises(ChatError) as pruned:
        await store.app_events_after(0, limit=10)
    with pytest.raises(ChatError) as beyond:
        await store.app_events_after(latest + 1, limit=10)

    assert pruned.value.code == "resume_gap"
    assert "was pruned up to seq" in pruned.value.message
    assert beyond.value.code == "resume_gap"
    assert f"beyond the latest event seq {latest}" in beyond.value.message


async def test_latest_event_seq_follows_log(store_database: StoreDatabase) -> None:
    store = store_database.new_store(APP_ID)
    await store.open(event_retention_ms=DAY_MS)
    other = await store_database.open_store("other-app")
    await create_chat(store, "c1", "alice")
    await create_chat(other, "c1", "alice")
    empty = await store.latest_event_seq()
    sent = await store.insert_message(Draft("c1", "alice", "one"), log_event=EventLogger("alice"))
    await other.insert_message(Draft("c1", "alice", "two"), log_event=EventLogger("alice"))
    after_send = await store.latest_event_seq()
    await store.insert_message(Draft("c1", "alice", "unlogged"), log_event=lambda change: None)
    after_unlogged = await store.latest_event_seq()

    assert empty == 0
    assert sent.event is not None
    assert after_send == sent.event.seq
    assert after_unlogged == sent.event.seq


# Concurrent writes through one store


async def test_concurrent_sends_and_reads_stay_consistent(store: Store) -> None:
    await create_chat(store, "c1", "alice", "bob")
    logger = EventLogger("alice", "bob")

    writes = [
        store.insert_message(Draft("c1", sender, f"{sender} {number}"), log_event=logger)
        for number in range(10)
        for sender in ("alice", "bob")
    ]
    reads = [store.mark_read("c1", reader, None, log_event=logger) for reader in ("alice", "bob")]
    await asyncio.gather(*writes, *reads)
    events = await all_events(store, "alice")
    messages = await list_all(store, "c1")

    numbers = seqs(events)
    assert len(numbers) == 22
    assert numbers == sorted(set(numbers))
    message_seqs = [message.seq for message in messages]
    assert len(message_seqs) == 20
    assert message_seqs == sorted(set(message_seqs))
    snapshot = await store.get_unreads_snapshot("alice")
    recount = sum(
        1
        for message in messages
        if message.seq > snapshot.read_positions["c1"] and message.sender_id != "alice"
    )
    assert await unread_counts(store, "alice") == ({"c1": recount} if recount else {})


async def test_concurrent_stores_chain_prev_seq(store_database: StoreDatabase) -> None:
    """Writes of one app through two stores (as two servers would) form one chain."""
    first = await store_database.open_store(APP_ID)
    second = await store_database.open_store(APP_ID)
    await create_chat(first, "c1", "alice", "bob")
    await create_chat(first, "c2", "alice", "bob")
    logger = EventLogger("alice")

    results = await asyncio.gather(
        *(
            store.insert_message(Draft(conversation, "bob", f"{number}"), log_event=logger)
            for number in range(10)
            for store, conversation in ((first, "c1"), (second, "c2"))
        )
    )

    pairs = sorted((result.event.seq or 0, result.prev_seq) for result in results if result.event)
    assert len(pairs) == 20
    assert pairs[0][1] == 0
    for (previous_seq, _), (_, prev_seq) in itertools.pairwise(pairs):
        assert prev_seq == previous_seq
