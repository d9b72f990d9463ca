"""Tests of SQLiteStore against real database files in tmp_path."""

from __future__ import annotations

import asyncio
import itertools
import re
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from talkjs_components.errors import InvalidInput, NotFound, PermissionDenied, StorageError
from talkjs_components.models import (
    MAX_CUSTOM_FIELDS,
    AccessLevel,
    Conversation,
    ConversationAttributes,
    Message,
    MessageOrigin,
    MessageType,
    Participation,
    User,
)
from talkjs_components.store.sqlite import SCHEMA_VERSION, SQLiteStore, new_message_id

APP_ID = "app-test"


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
def database_path(tmp_path: Path) -> Path:
    return tmp_path / "chat.sqlite3"


@pytest.fixture
async def store(database_path: Path) -> AsyncIterator[SQLiteStore]:
    store = SQLiteStore(database_path, APP_ID)
    await store.open()
    yield store
    await store.close()


async def add_users(store: SQLiteStore, *user_ids: str) -> None:
    for user_id in user_ids:
        await store.upsert_user(User(id=user_id, name=user_id.title()))


async def create_chat(store: SQLiteStore, conversation_id: str, *user_ids: str) -> None:
    """Create the users and a conversation in which they all have ReadWrite access."""
    await add_users(store, *user_ids)
    await store.upsert_conversation(
        conversation_id, None, {user_id: Participation() for user_id in user_ids}
    )


async def send(store: SQLiteStore, conversation_id: str, sender_id: str, text: str) -> Message:
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


async def list_all(store: SQLiteStore, conversation_id: str) -> list[Message]:
    page = await store.list_messages(conversation_id, limit=100, before_message_id=None)
    return page.messages


async def unread_counts(store: SQLiteStore, user_id: str) -> dict[str, int]:
    return {
        unread.conversation.id: unread.unread_message_count
        for unread in await store.get_unreads(user_id)
    }


# Schema and lifecycle


async def test_open_creates_schema(store: SQLiteStore, database_path: Path) -> None:
    await store.close()

    with sqlite3.connect(database_path) as connection:
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        journal_mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
        tables = {
            row[0]
            for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        columns = {
            table: {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
            for table in ("users", "conversations", "participants", "messages")
        }
    connection.close()
    await store.open()

    assert version == SCHEMA_VERSION == 1
    assert journal_mode == "wal"
    assert {"users", "conversations", "participants", "messages"} <= tables
    for table, names in columns.items():
        assert "app_id" in names, table


async def test_newer_schema_version_rejected(database_path: Path) -> None:
    connection = sqlite3.connect(database_path)
    connection.execute("PRAGMA user_version = 7")
    connection.close()
    store = SQLiteStore(database_path, APP_ID)

    with pytest.raises(StorageError) as raised:
        await store.open()

    message = str(raised.value)
    assert str(database_path) in message
    assert "schema version 7" in message
    assert "supports schema version 1 only" in message
    assert "upgrade talkjs-components" in message


async def test_unversioned_tables_rejected(database_path: Path) -> None:
    connection = sqlite3.connect(database_path)
    connection.execute("CREATE TABLE notes (text TEXT)")
    connection.close()
    store = SQLiteStore(database_path, APP_ID)

    with pytest.raises(StorageError, match="has tables but no talkjs-components schema version"):
        await store.open()


async def test_non_database_file_rejected(database_path: Path) -> None:
    await asyncio.to_thread(database_path.write_bytes, b"not an SQLite database" * 100)
    store = SQLiteStore(database_path, APP_ID)

    with pytest.raises(StorageError, match=r"opening SQLite database .* failed"):
        await store.open()


async def test_use_before_open_raises(database_path: Path) -> None:
    store = SQLiteStore(database_path, APP_ID)

    with pytest.raises(StorageError, match=r"cannot get users: .* is not open"):
        await store.get_users(["alice"])


async def test_locked_database_raises_storage_error(database_path: Path) -> None:
    store = SQLiteStore(database_path, APP_ID, busy_timeout=0.05)
    await store.open()
    blocker = sqlite3.connect(database_path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StorageError) as raised:
            await store.upsert_user(User(id="alice"))
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
        await store.close()

    assert "SQLite upsert user failed" in str(raised.value)
    assert "locked" in str(raised.value)
    assert isinstance(raised.value.__cause__, sqlite3.OperationalError)


async def test_data_survives_reopen(database_path: Path) -> None:
    store = SQLiteStore(database_path, APP_ID)
    await store.open()
    await create_chat(store, "c1", "alice", "bob")
    sent = await send(store, "c1", "alice", "hello")
    await store.close()

    reopened = SQLiteStore(database_path, APP_ID)
    await reopened.open()
    try:
        users = await reopened.get_users(["alice", "bob"])
        conversation = await reopened.get_conversation("c1")
        page = await reopened.list_messages("c1", limit=10, before_message_id=None)
        unreads = await unread_counts(reopened, "bob")
    finally:
        await reopened.close()

    assert set(users) == {"alice", "bob"}
    assert conversation is not None
    assert set(conversation.participants) == {"alice", "bob"}
    assert [message.id for message in page.messages] == [sent.id]
    assert unreads == {"c1": 1}


async def test_apps_sharing_file_are_isolated(database_path: Path) -> None:
    first = SQLiteStore(database_path, "app-one")
    await first.open()
    await create_chat(first, "c1", "alice")
    await first.close()

    second = SQLiteStore(database_path, "app-two")
    await second.open()
    try:
        users = await second.get_users(["alice"])
        conversation = await second.get_conversation("c1")
        await create_chat(second, "c1", "zed")
        second_conversation = await second.get_conversation("c1")
    finally:
        await second.close()

    assert users == {}
    assert conversation is None
    assert second_conversation is not None
    assert set(second_conversation.participants) == {"zed"}


# Ids


def test_message_ids_are_sortable_and_unique() -> None:
    ids = [new_message_id() for _ in range(1000)]

    for message_id in ids:
        assert re.fullmatch(r"msg_[0-9A-HJKMNP-TV-Z]{26}", message_id), message_id
    assert len(set(ids)) == len(ids)
    # The first 10 characters after the prefix encode the time in milliseconds.
    prefixes = [message_id[4:14] for message_id in ids]
    assert prefixes == sorted(prefixes)


# Users


async def test_user_upsert_merges_fields(store: SQLiteStore) -> None:
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


async def test_user_custom_key_removed_by_none(store: SQLiteStore) -> None:
    await store.upsert_user(User(id="alice", custom={"a": "1", "b": "2"}))

    updated = await store.upsert_user(User(id="alice", custom={"a": None}))
    stored = (await store.get_users(["alice"]))["alice"]

    assert updated.custom == {"b": "2"}
    assert stored == updated


async def test_user_custom_deleted_by_none(store: SQLiteStore) -> None:
    await store.upsert_user(User(id="alice", custom={"a": "1"}))

    updated = await store.upsert_user(User(id="alice", custom=None))

    assert updated.custom is None


async def test_user_custom_over_limit_rejected(store: SQLiteStore) -> None:
    full = {f"key{number}": "x" for number in range(MAX_CUSTOM_FIELDS)}
    await store.upsert_user(User(id="alice", custom=dict(full)))

    with pytest.raises(InvalidInput, match=r"custom would have 101 keys .* limit of 100"):
        await store.upsert_user(User(id="alice", custom={"one more": "x"}))


async def test_get_users_skips_unknown(store: SQLiteStore) -> None:
    await add_users(store, "alice", "bob")

    users = await store.get_users(["alice", "nobody", "bob"])

    assert sorted(users) == ["alice", "bob"]
    assert users["alice"].name == "Alice"


async def test_get_users_visible_to(store: SQLiteStore) -> None:
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


async def test_get_users_visible_after_removal(store: SQLiteStore) -> None:
    await create_chat(store, "c1", "alice", "bob")

    await store.remove_participant("c1", "bob")

    assert sorted(await store.get_users(["alice", "bob"], visible_to="alice")) == ["alice"]


# Conversations and participants


async def test_conversation_create_then_merge(store: SQLiteStore) -> None:
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


async def test_participant_update_keeps_unset_fields(store: SQLiteStore) -> None:
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


async def test_unknown_participant_user_rejected(store: SQLiteStore) -> None:
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


async def test_upsert_authorize_sees_stored_conversation(store: SQLiteStore) -> None:
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


async def test_upsert_authorize_rejection_writes_nothing(store: SQLiteStore) -> None:
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


async def test_upsert_creates_only_missing_new_users(store: SQLiteStore) -> None:
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


async def test_new_users_rolled_back_on_unknown_participant(store: SQLiteStore) -> None:
    with pytest.raises(NotFound, match="user 'ghost' not found"):
        await store.upsert_conversation(
            "c1",
            None,
            {"erin": Participation(), "ghost": Participation()},
            new_users=[User(id="erin", name="Erin")],
        )

    assert await store.get_users(["erin"]) == {}
    assert await store.get_conversation("c1") is None


async def test_remove_participant(store: SQLiteStore) -> None:
    await create_chat(store, "c1", "alice", "bob")

    updated = await store.remove_participant("c1", "bob")

    assert set(updated.participants) == {"alice"}
    with pytest.raises(NotFound, match="user 'bob' is not a participant of conversation 'c1'"):
        await store.remove_participant("c1", "bob")
    with pytest.raises(NotFound, match="conversation 'nope' not found"):
        await store.remove_participant("nope", "bob")


async def test_delete_conversation_removes_messages(store: SQLiteStore) -> None:
    await create_chat(store, "c1", "alice", "bob")
    await send(store, "c1", "alice", "hi")

    await store.delete_conversation("c1")

    assert await store.get_conversation("c1") is None
    assert await store.get_unreads("bob") == []
    assert await store.list_user_conversations("alice") == []
    with pytest.raises(NotFound, match="conversation 'c1' not found"):
        await store.delete_conversation("c1")


async def test_list_user_conversations_by_activity(store: SQLiteStore) -> None:
    await create_chat(store, "older", "alice", "bob")
    await create_chat(store, "newer", "alice", "bob")
    await create_chat(store, "bob-only", "bob")

    await send(store, "newer", "bob", "first")
    await send(store, "older", "bob", "second")
    conversations = await store.list_user_conversations("alice")

    assert [conversation.id for conversation in conversations] == ["older", "newer"]


# Messages


async def test_list_messages_pages_oldest_first(store: SQLiteStore) -> None:
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


async def test_list_messages_exact_page_has_no_more(store: SQLiteStore) -> None:
    await create_chat(store, "c1", "alice")
    for number in range(3):
        await send(store, "c1", "alice", f"message {number}")

    page = await store.list_messages("c1", limit=3, before_message_id=None)

    assert len(page.messages) == 3
    assert not page.has_more


async def test_list_messages_unknown_cursor(store: SQLiteStore) -> None:
    await create_chat(store, "c1", "alice")
    await create_chat(store, "c2", "alice")
    elsewhere = await send(store, "c2", "alice", "in another conversation")

    with pytest.raises(NotFound, match="message 'msg_missing' not found in conversation 'c1'"):
        await store.list_messages("c1", limit=10, before_message_id="msg_missing")
    with pytest.raises(NotFound, match=f"message '{elsewhere.id}' not found"):
        await store.list_messages("c1", limit=10, before_message_id=elsewhere.id)


async def test_insert_message_fields(store: SQLiteStore) -> None:
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


async def test_insert_system_message_has_no_sender(store: SQLiteStore) -> None:
    await create_chat(store, "c1", "alice")

    inserted = await store.insert_message(Draft("c1", None, "welcome", type=MessageType.SYSTEM))

    assert inserted.created
    assert inserted.sender is None


async def test_insert_authorize_sees_stored_conversation(store: SQLiteStore) -> None:
    await create_chat(store, "c1", "alice")
    stored = await store.get_conversation("c1")
    on_existing = Recorder()
    on_missing = Recorder(reject=True)

    await store.insert_message(Draft("c1", "alice", "hi"), authorize=on_existing)
    with pytest.raises(PermissionDenied):
        await store.insert_message(Draft("nope", "alice", "hi"), authorize=on_missing)

    assert on_existing.calls == [stored]
    assert on_missing.calls == [None]


async def test_insert_authorize_rejection_inserts_nothing(store: SQLiteStore) -> None:
    await create_chat(store, "c1", "alice", "bob")

    with pytest.raises(PermissionDenied, match="rejected by the test"):
        await store.insert_message(Draft("c1", "alice", "hi"), authorize=Recorder(reject=True))

    page = await store.list_messages("c1", limit=10, before_message_id=None)
    conversation = await store.get_conversation("c1")
    assert page.messages == []
    assert conversation is not None
    assert conversation.last_message_at is None
    assert await unread_counts(store, "bob") == {}


async def test_insert_message_unknown_conversation(store: SQLiteStore) -> None:
    with pytest.raises(NotFound) as raised:
        await store.insert_message(Draft("nope", None, "hi", type=MessageType.SYSTEM))

    assert str(raised.value) == "conversation 'nope' not found: create it first"


async def test_idempotency_key_returns_first_message(store: SQLiteStore) -> None:
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


async def test_idempotency_key_for_system_messages(store: SQLiteStore) -> None:
    await create_chat(store, "c1", "alice")
    draft = Draft("c1", None, "alice joined", type=MessageType.SYSTEM, idempotency_key="join")

    first = await store.insert_message(draft)
    again = await store.insert_message(draft)

    assert first.created
    assert not again.created
    assert again.message.id == first.message.id
    assert again.sender is None


# Message order


async def test_seq_increases_across_conversations(store: SQLiteStore) -> None:
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


async def test_listed_messages_carry_seq(store: SQLiteStore) -> None:
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


async def test_unread_last_message_carries_seq(store: SQLiteStore) -> None:
    await create_chat(store, "c1", "alice", "bob")
    await send(store, "c1", "bob", "one")
    latest = await send(store, "c1", "bob", "two")

    unreads = await store.get_unreads("alice")

    assert [unread.last_message.seq for unread in unreads] == [latest.seq]
    assert unreads[0].last_message == latest


# Read positions


async def test_read_by_lists_readers(store: SQLiteStore) -> None:
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


async def test_unread_counts_exclude_own_messages(store: SQLiteStore) -> None:
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


async def test_system_messages_count_as_unread(store: SQLiteStore) -> None:
    await create_chat(store, "c1", "alice")

    await store.insert_message(Draft("c1", None, "welcome", type=MessageType.SYSTEM))

    assert await unread_counts(store, "alice") == {"c1": 1}


async def test_mark_read_never_moves_backwards(store: SQLiteStore) -> None:
    await create_chat(store, "c1", "alice", "bob")
    sent = [await send(store, "c1", "bob", f"message {number}") for number in range(3)]

    middle = await store.mark_read("c1", "alice", sent[1].id)
    latest = await store.mark_read("c1", "alice", None)
    backwards = await store.mark_read("c1", "alice", sent[0].id)
    repeated = await store.mark_read("c1", "alice", None)

    assert middle == (sent[1].id, sent[1].seq, 1, True)
    assert latest == (sent[2].id, sent[2].seq, 0, True)
    assert backwards == (sent[2].id, sent[2].seq, 0, False)
    assert repeated == (sent[2].id, sent[2].seq, 0, False)


async def test_mark_read_returns_last_read_seq(store: SQLiteStore) -> None:
    await create_chat(store, "c1", "alice", "bob")
    await create_chat(store, "c2", "alice", "bob")
    first = await send(store, "c1", "bob", "c1 one")
    await send(store, "c2", "bob", "c2 one")
    await send(store, "c1", "bob", "c1 two")

    position = await store.mark_read("c1", "alice", first.id)

    assert position.last_read_message_id == first.id
    assert position.last_read_seq == first.seq
    assert position.unread_message_count == 1


async def test_mark_read_in_empty_conversation(store: SQLiteStore) -> None:
    await create_chat(store, "c1", "alice")

    assert await store.mark_read("c1", "alice", None) == (None, 0, 0, False)


async def test_mark_read_by_non_participant(store: SQLiteStore) -> None:
    await create_chat(store, "c1", "alice")
    await add_users(store, "carol")

    with pytest.raises(NotFound, match="user 'carol' is not a participant of conversation 'c1'"):
        await store.mark_read("c1", "carol", None)


async def test_new_participant_starts_read(store: SQLiteStore) -> None:
    await create_chat(store, "c1", "alice", "bob")
    for number in range(5):
        await send(store, "c1", "alice", f"history {number}")
    await add_users(store, "carol")

    await store.upsert_conversation("c1", None, {"carol": Participation()})
    after_join = await unread_counts(store, "carol")
    await send(store, "c1", "alice", "welcome carol")

    assert after_join == {}
    assert await unread_counts(store, "carol") == {"c1": 1}


async def test_settings_update_keeps_position(store: SQLiteStore) -> None:
    await create_chat(store, "c1", "alice", "bob")
    await send(store, "c1", "alice", "one")

    await store.upsert_conversation("c1", None, {"bob": Participation(notify=False)})

    assert await unread_counts(store, "bob") == {"c1": 1}


async def test_rejoined_participant_starts_at_latest(store: SQLiteStore) -> None:
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
    assert position == (while_away.id, while_away.seq, 0, False)
    assert await unread_counts(store, "bob") == {"c1": 1}


async def test_get_unreads_most_recent_first(store: SQLiteStore) -> None:
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


async def test_unreads_snapshot_positions(store: SQLiteStore) -> None:
    await create_chat(store, "c1", "alice", "bob")
    await create_chat(store, "c2", "alice", "carol")
    first = await send(store, "c1", "bob", "one")
    second = await send(store, "c1", "bob", "two")
    own = await send(store, "c2", "alice", "mine")

    snapshot = await store.get_unreads_snapshot("alice")

    assert [unread.unread_message_count for unread in snapshot.unreads] == [2]
    assert snapshot.as_of_seq == own.seq
    assert snapshot.read_positions["c2"] == own.seq
    assert snapshot.read_positions["c1"] < first.seq < second.seq


# Editing and deleting messages


async def test_update_message_text_and_custom(store: SQLiteStore) -> None:
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


async def test_update_message_text_only_keeps_custom(store: SQLiteStore) -> None:
    await create_chat(store, "c1", "alice")
    sent = await store.insert_message(Draft("c1", "alice", "one", custom={"k": "v"}))

    updated = await store.update_message(
        "c1", sent.message.id, text="two", custom=None, edited_at=5
    )

    assert updated.message.text == "two"
    assert updated.message.custom == {"k": "v"}


async def test_update_message_unchanged_writes_nothing(store: SQLiteStore) -> None:
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


async def test_update_authorize_sees_stored_message(store: SQLiteStore) -> None:
    await create_chat(store, "c1", "alice")
    sent = await send(store, "c1", "alice", "hi")
    conversation = await store.get_conversation("c1")
    recorder = MessageRecorder()

    await store.update_message(
        "c1", sent.id, text="hi there", custom=None, edited_at=5, authorize=recorder
    )

    assert recorder.calls == [(conversation, sent)]


async def test_update_authorize_rejection_writes_nothing(store: SQLiteStore) -> None:
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


async def test_update_custom_over_limit_rejected(store: SQLiteStore) -> None:
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


async def test_update_unknown_message_not_found(store: SQLiteStore) -> None:
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


async def test_delete_message_returns_stored(store: SQLiteStore) -> None:
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


async def test_delete_only_message_clears_last_message_at(store: SQLiteStore) -> None:
    await create_chat(store, "c1", "alice")
    sent = await send(store, "c1", "alice", "only")

    deleted = await store.delete_message("c1", sent.id)
    conversation = await store.get_conversation("c1")

    assert conversation is not None
    assert conversation.last_message_at is None
    assert deleted.conversation.last_message_at is None
    assert await list_all(store, "c1") == []


async def test_delete_authorize_rejection_keeps_message(store: SQLiteStore) -> None:
    await create_chat(store, "c1", "alice", "bob")
    sent = await send(store, "c1", "alice", "kept")

    with pytest.raises(PermissionDenied, match="rejected by the test"):
        await store.delete_message("c1", sent.id, authorize=MessageRecorder(reject=True))

    assert await list_all(store, "c1") == [sent]
    assert await unread_counts(store, "bob") == {"c1": 1}


async def test_delete_unknown_message_not_found(store: SQLiteStore) -> None:
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


async def test_delete_unread_message_drops_count(store: SQLiteStore) -> None:
    await create_chat(store, "c1", "alice", "bob")
    first = await send(store, "c1", "bob", "one")
    second = await send(store, "c1", "bob", "two")

    await store.delete_message("c1", second.id)
    after_one = await store.get_unreads("alice")
    await store.delete_message("c1", first.id)

    assert [unread.unread_message_count for unread in after_one] == [1]
    assert after_one[0].last_message == first
    assert await unread_counts(store, "alice") == {}


async def test_read_positions_survive_delete(store: SQLiteStore) -> None:
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
    assert backwards == (first.id, first.seq, 1, False)
    assert forwards == (third.id, third.seq, 0, True)
    with pytest.raises(NotFound, match=f"message '{second.id}' not found"):
        await store.mark_read("c1", "alice", second.id)


async def test_read_position_at_deleted_latest(store: SQLiteStore) -> None:
    await create_chat(store, "c1", "alice", "bob")
    first = await send(store, "c1", "bob", "one")
    latest = await send(store, "c1", "bob", "two")
    await store.mark_read("c1", "alice", None)

    await store.delete_message("c1", latest.id)
    position = await store.mark_read("c1", "alice", None)
    after_new_message = await send(store, "c1", "bob", "three")

    assert position == (first.id, first.seq, 0, False)
    assert after_new_message.seq > latest.seq
    assert await unread_counts(store, "alice") == {"c1": 1}


async def test_delete_frees_idempotency_key(store: SQLiteStore) -> None:
    await create_chat(store, "c1", "alice")
    first = await store.insert_message(Draft("c1", "alice", "hi", idempotency_key="k1"))

    await store.delete_message("c1", first.message.id)
    again = await store.insert_message(Draft("c1", "alice", "hi", idempotency_key="k1"))

    assert again.created
    assert again.message.id != first.message.id
    assert await list_all(store, "c1") == [again.message]
