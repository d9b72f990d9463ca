"""The durable event log: numbering, atomicity, paging, recipients, retention, upgrade.

Tests that use the ``service`` fixture run ChatService on SQLite and on
PostgreSQL (see ``store_database`` in ``services``). The others run
ChatService or SQLiteStore on a real SQLite file in tmp_path; the store-level
event log tests of both stores are in ``test_store_contract.py``.
"""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from talkjs_components.broker.memory import MemoryBroker
from talkjs_components.errors import ChatError, PermissionDenied
from talkjs_components.models import (
    AccessLevel,
    ChatEvent,
    ConversationAttributes,
    ConversationUpdated,
    MessageDeleted,
    MessageEdited,
    MessageOrigin,
    MessageSent,
    MessagesRead,
    MessageType,
    Participation,
    TypingChanged,
    User,
)
from talkjs_components.service import TRUSTED, ChatService, Limits
from talkjs_components.store import InsertedMessage, NewEvent
from talkjs_components.store.sqlite import PRUNE_BATCH, SCHEMA_VERSION, SQLiteStore

from .services import StoreDatabase

APP_ID = "app-events"
DAY_MS = 24 * 60 * 60 * 1000


@pytest.fixture
def database_path(tmp_path: Path) -> Path:
    return tmp_path / "chat.sqlite3"


@pytest.fixture
def broker() -> MemoryBroker:
    return MemoryBroker()


@pytest.fixture
async def service(
    store_database: StoreDatabase, broker: MemoryBroker
) -> AsyncIterator[ChatService]:
    service = ChatService(store_database.new_store(APP_ID), broker, app_id=APP_ID)
    await service.start()
    yield service
    await service.close()


@pytest.fixture
async def chat(service: ChatService) -> ChatService:
    """The service with users alice, bob, carol and dave, and "c1" of alice and bob."""
    for user_id in ("alice", "bob", "carol", "dave"):
        await service.upsert_user(User(id=user_id, name=user_id.title()))
    await service.sync_conversation(
        TRUSTED, "c1", participants={"alice": Participation(), "bob": Participation()}
    )
    return service


async def all_events(service: ChatService, user_id: str, after_seq: int = 0) -> list[ChatEvent]:
    """Return every logged event of the user after ``after_seq``, following ``has_more``."""
    events: list[ChatEvent] = []
    while True:
        page = await service.events_after(user_id, after_seq, limit=1000)
        events += page.events
        after_seq = page.next_after_seq
        if not page.has_more:
            return events


def seqs(events: list[ChatEvent]) -> list[int]:
    numbers = [event.seq for event in events]
    assert None not in numbers, "a logged event has no seq"
    return [number for number in numbers if number is not None]


def age_events(database_path: Path, days: int) -> None:
    """Make every stored event ``days`` days older, as if that much time had passed."""
    with sqlite3.connect(database_path) as connection:
        connection.execute("UPDATE events SET created_at = created_at - ?", (days * DAY_MS,))
    connection.close()


def count_rows(database_path: Path, table: str) -> int:
    with sqlite3.connect(database_path) as connection:
        count: int = connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    connection.close()
    return count


@dataclass
class Listener:
    """A service listener that keeps the events it receives."""

    events: list[ChatEvent] = field(default_factory=list)

    def __call__(self, event: ChatEvent) -> None:
        self.events.append(event)


# Numbering


async def test_seq_increases_across_event_kinds(chat: ChatService, broker: MemoryBroker) -> None:
    live = Listener()
    chat.subscribe("alice", live)
    start = await chat.get_unreads_snapshot("alice")

    sent = await chat.send_message("bob", "c1", "hello")
    await chat.edit_message("bob", "c1", sent.id, text="hello again")
    await chat.mark_read("alice", "c1")
    await chat.sync_conversation("alice", "c1", ConversationAttributes(subject="Plans"))
    await chat.sync_conversation("alice", "c1", participants={"carol": Participation()})
    await chat.remove_participant("alice", "c1", "carol")
    await chat.delete_message("bob", "c1", sent.id)
    await chat.set_typing("bob", "c1", True)
    await broker.flush()

    replayed = await all_events(chat, "alice", start.as_of_event_seq)
    assert [type(event) for event in replayed] == [
        MessageSent,
        MessageEdited,
        MessagesRead,
        ConversationUpdated,
        ConversationUpdated,
        ConversationUpdated,
        MessageDeleted,
    ]
    numbers = seqs(replayed)
    assert numbers == sorted(set(numbers))
    assert numbers[0] > start.as_of_event_seq
    # Live delivery carries the same events with the same numbers, plus the
    # typing event, which is not logged and has no seq.
    assert [event for event in live.events if event.seq is not None] == replayed
    typing = [event for event in live.events if isinstance(event, TypingChanged)]
    assert [event.seq for event in typing] == [None]


async def test_user_seqs_skip_other_users_events(chat: ChatService) -> None:
    await chat.sync_conversation(
        TRUSTED, "c2", participants={"carol": Participation(), "dave": Participation()}
    )
    for number in range(3):
        await chat.send_message("alice", "c1", f"c1 {number}")
        await chat.send_message("carol", "c2", f"c2 {number}")

    alice = seqs(await all_events(chat, "alice"))
    carol = seqs(await all_events(chat, "carol"))

    assert alice == sorted(alice)
    assert carol == sorted(carol)
    assert not set(alice) & set(carol)
    # Interleaved sends: each user's numbers skip the other's.
    assert any(later - earlier > 1 for earlier, later in itertools.pairwise(alice))


async def test_concurrent_writes_delivered_in_seq_order(
    chat: ChatService, broker: MemoryBroker
) -> None:
    live = Listener()
    chat.subscribe("alice", live)

    sends = [
        chat.send_message(sender, "c1", f"{sender} {number}")
        for number in range(20)
        for sender in ("alice", "bob")
    ]
    await asyncio.gather(*sends, chat.mark_read("alice", "c1"), chat.mark_read("bob", "c1"))
    await broker.flush()

    delivered = seqs(live.events)
    assert len(delivered) >= 40
    assert delivered == sorted(delivered)
    assert live.events == await all_events(chat, "alice", delivered[0] - 1)


# Atomicity


async def test_rejected_change_logs_no_event(chat: ChatService) -> None:
    await chat.sync_conversation(
        TRUSTED, "c1", participants={"dave": Participation(access=AccessLevel.READ)}
    )
    before = await all_events(chat, "alice")

    # The authorize callback raises inside the write transaction.
    with pytest.raises(PermissionDenied):
        await chat.send_message("dave", "c1", "not allowed")
    with pytest.raises(PermissionDenied):
        await chat.mark_read("carol", "c1")

    assert await all_events(chat, "alice") == before
    page = await chat.list_messages(TRUSTED, "c1")
    assert page.messages == []


async def test_failed_event_rolls_back_change(database_path: Path) -> None:
    store = SQLiteStore(database_path, APP_ID)
    await store.open()
    await store.upsert_user(User(id="alice"))
    await store.upsert_conversation("c1", None, {"alice": Participation()})

    def fail(inserted: InsertedMessage) -> NewEvent:
        raise RuntimeError("event builder failed")

    with pytest.raises(RuntimeError, match="event builder failed"):
        await store.insert_message(_Draft("c1", "alice", "lost with its event"), log_event=fail)
    page = await store.list_messages("c1", limit=10, before_message_id=None)
    await store.close()

    assert page.messages == []
    assert count_rows(database_path, "events") == 0
    assert count_rows(database_path, "event_recipients") == 0


async def test_logged_event_stored_with_change(database_path: Path) -> None:
    store = SQLiteStore(database_path, APP_ID)
    await store.open()
    await store.upsert_user(User(id="alice"))
    await store.upsert_conversation("c1", None, {"alice": Participation()})

    def message_sent(inserted: InsertedMessage) -> NewEvent:
        event = MessageSent(conversation=inserted.conversation, message=inserted.message)
        return NewEvent(event, ["alice", "alice"])

    inserted = await store.insert_message(
        _Draft("c1", "alice", "kept with its event"), log_event=message_sent
    )
    page = await store.events_after("alice", 0, limit=10)
    await store.close()

    assert inserted.event is not None
    assert inserted.event.seq == 1
    assert page.events == [inserted.event]
    # A recipient listed twice is stored once.
    assert count_rows(database_path, "event_recipients") == 1


@dataclass
class _Draft:
    """A message to insert; satisfies store.NewMessage."""

    conversation_id: str
    sender_id: str | None
    text: str
    type: MessageType = MessageType.USER
    custom: dict[str, str] = field(default_factory=dict)
    origin: MessageOrigin = MessageOrigin.WEB
    idempotency_key: str | None = None


# Paging


async def test_events_after_pages_with_more_flag(chat: ChatService) -> None:
    start = (await chat.get_unreads_snapshot("bob")).as_of_event_seq
    for number in range(5):
        await chat.send_message("alice", "c1", f"m{number}")
    # An event bob does not receive, after his last one.
    await chat.sync_conversation(TRUSTED, "other", participants={"carol": Participation()})
    latest = (await chat.get_unreads_snapshot("carol")).as_of_event_seq

    first = await chat.events_after("bob", start, limit=2)
    second = await chat.events_after("bob", first.next_after_seq, limit=2)
    third = await chat.events_after("bob", second.next_after_seq, limit=2)
    empty = await chat.events_after("bob", third.next_after_seq, limit=2)

    assert (first.has_more, second.has_more, third.has_more) == (True, True, False)
    assert [len(page.events) for page in (first, second, third)] == [2, 2, 1]
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
    assert third.next_after_seq == latest > (third.events[-1].seq or 0)
    assert empty.events == []
    assert not empty.has_more
    assert empty.next_after_seq == latest


async def test_events_after_exact_page_has_no_more(chat: ChatService) -> None:
    start = (await chat.get_unreads_snapshot("bob")).as_of_event_seq
    await chat.send_message("alice", "c1", "one")
    await chat.send_message("alice", "c1", "two")

    page = await chat.events_after("bob", start, limit=2)

    assert len(page.events) == 2
    assert not page.has_more


@pytest.mark.parametrize("limit", [0, 1001])
async def test_events_after_limit_out_of_range(chat: ChatService, limit: int) -> None:
    with pytest.raises(ValueError, match=f"limit {limit} is out of range: use 1 to 1000"):
        await chat.events_after("bob", 0, limit=limit)


# Recipients


async def test_non_member_gets_no_event(chat: ChatService) -> None:
    await chat.send_message("alice", "c1", "private")
    await chat.mark_read("bob", "c1")

    assert await all_events(chat, "carol") == []


async def test_removed_participant_stops_getting_events(chat: ChatService) -> None:
    await chat.send_message("alice", "c1", "before")
    await chat.remove_participant("alice", "c1", "bob")
    await chat.send_message("alice", "c1", "after")
    await chat.mark_read("alice", "c1")

    events = await all_events(chat, "bob")

    last = events[-1]
    assert isinstance(last, ConversationUpdated)
    assert last.removed_user_ids == ["bob"]
    assert "bob" not in last.conversation.participants
    texts = [event.message.text for event in events if isinstance(event, MessageSent)]
    assert texts == ["before"]


async def test_new_participant_gets_events_from_joining(chat: ChatService) -> None:
    await chat.send_message("alice", "c1", "before dave")
    await chat.sync_conversation("alice", "c1", participants={"dave": Participation()})
    await chat.send_message("bob", "c1", "after dave")

    events = await all_events(chat, "dave")

    assert [type(event) for event in events] == [ConversationUpdated, MessageSent]
    joined = events[0]
    assert isinstance(joined, ConversationUpdated)
    assert "dave" in joined.conversation.participants
    sent = events[1]
    assert isinstance(sent, MessageSent)
    assert sent.message.text == "after dave"


async def test_read_event_lists_current_participants(chat: ChatService) -> None:
    await chat.send_message("bob", "c1", "hello")
    await chat.sync_conversation("alice", "c1", participants={"dave": Participation()})

    await chat.mark_read("alice", "c1")

    [read] = [event for event in await all_events(chat, "dave") if isinstance(event, MessagesRead)]
    assert read.user_id == "alice"
    assert set(read.conversation.participants) == {"alice", "bob", "dave"}


async def test_deleted_conversation_logged_for_former_participants(chat: ChatService) -> None:
    await chat.delete_conversation(TRUSTED, "c1")

    for user_id in ("alice", "bob"):
        last = (await all_events(chat, user_id))[-1]
        assert isinstance(last, ConversationUpdated), user_id
        assert sorted(last.removed_user_ids) == ["alice", "bob"]
    assert await all_events(chat, "carol") == []


# Retention


async def test_retention_prunes_bounded_batches(database_path: Path) -> None:
    service = ChatService(
        SQLiteStore(database_path, APP_ID),
        MemoryBroker(),
        app_id=APP_ID,
        limits=Limits(event_retention_ms=DAY_MS),
    )
    await service.start()
    for user_id in ("alice", "bob"):
        await service.upsert_user(User(id=user_id))
    await service.sync_conversation(
        TRUSTED, "c1", participants={"alice": Participation(), "bob": Participation()}
    )
    for number in range(6):
        await service.send_message("alice", "c1", f"old {number}")
    old = await all_events(service, "bob")
    age_events(database_path, days=2)

    await service.send_message("alice", "c1", "new 1")
    after_one_write = count_rows(database_path, "events")
    await service.send_message("alice", "c1", "new 2")
    await service.send_message("alice", "c1", "new 3")
    await service.send_message("alice", "c1", "new 4")
    remaining = await all_events(service, "bob", seqs(old)[-1])

    with pytest.raises(ChatError) as raised:
        await service.events_after("bob", 0)
    snapshot = await service.get_unreads_snapshot("bob")
    resumed = await service.events_after("bob", snapshot.as_of_event_seq)
    await service.close()

    assert len(old) == 7
    # Each logged write deletes at most PRUNE_BATCH expired events.
    assert after_one_write == 7 + 1 - PRUNE_BATCH
    assert count_rows(database_path, "events") == 4
    assert count_rows(database_path, "event_recipients") == 4 * 2
    assert [event.message.text for event in remaining if isinstance(event, MessageSent)] == [
        "new 1",
        "new 2",
        "new 3",
        "new 4",
    ]
    assert raised.value.code == "resume_gap"
    assert f"pruned up to seq {seqs(old)[-1]}" in raised.value.message
    assert resumed.events == []


async def test_resume_from_pruned_position_is_gap(database_path: Path) -> None:
    limits = Limits(event_retention_ms=DAY_MS)
    service = ChatService(
        SQLiteStore(database_path, APP_ID), MemoryBroker(), app_id=APP_ID, limits=limits
    )
    await service.start()
    await service.upsert_user(User(id="alice"))
    await service.sync_conversation(TRUSTED, "c1", participants={"alice": Participation()})
    await service.send_message("alice", "c1", "one")
    await service.send_message("alice", "c1", "two")
    old = seqs(await all_events(service, "alice"))
    age_events(database_path, days=2)
    # This write prunes the two oldest events; the third has expired but stays for now.
    await service.send_message("alice", "c1", "three")
    last = seqs(await all_events(service, "alice", old[1]))[-1]

    with pytest.raises(ChatError) as from_pruned:
        await service.events_after("alice", old[0])
    at_boundary = await service.events_after("alice", old[1])
    with pytest.raises(ChatError) as beyond_end:
        await service.events_after("alice", last + 10)
    await service.close()

    assert len(old) == 3
    assert from_pruned.value.code == "resume_gap"
    assert f"pruned up to seq {old[1]}" in from_pruned.value.message
    assert [event.seq for event in at_boundary.events] == [old[2], last]
    assert beyond_end.value.code == "resume_gap"
    assert f"seq {last + 10} is beyond the latest event seq {last}" in beyond_end.value.message


async def test_retention_must_be_positive(database_path: Path) -> None:
    store = SQLiteStore(database_path, APP_ID)

    with pytest.raises(ValueError, match="event_retention_ms 0 is not positive"):
        await store.open(event_retention_ms=0)


# Snapshot


async def test_snapshot_position_matches_log(chat: ChatService) -> None:
    await chat.send_message("bob", "c1", "one")
    snapshot = await chat.get_unreads_snapshot("alice")
    await chat.send_message("bob", "c1", "two")

    later = await all_events(chat, "alice", snapshot.as_of_event_seq)

    assert [unread.unread_message_count for unread in snapshot.unreads] == [1]
    assert [event.message.text for event in later if isinstance(event, MessageSent)] == ["two"]
    assert len(later) == 1


# Schema upgrade

# The schema of version 1, copied here so that a change to the store's copy
# cannot hide a broken upgrade.
SCHEMA_VERSION_1 = (
    """
    CREATE TABLE users (
        app_id TEXT NOT NULL, id TEXT NOT NULL, name TEXT, email TEXT, phone TEXT,
        photo_url TEXT, role TEXT, locale TEXT, welcome_message TEXT, custom TEXT,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (app_id, id)
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE conversations (
        app_id TEXT NOT NULL, id TEXT NOT NULL, subject TEXT, photo_url TEXT,
        welcome_messages TEXT, custom TEXT NOT NULL DEFAULT '{}',
        created_at INTEGER NOT NULL, last_message_at INTEGER,
        PRIMARY KEY (app_id, id)
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE participants (
        app_id TEXT NOT NULL, conversation_id TEXT NOT NULL, user_id TEXT NOT NULL,
        access TEXT NOT NULL CHECK (access IN ('Read', 'ReadWrite')),
        notify INTEGER NOT NULL, last_read_seq INTEGER NOT NULL DEFAULT 0,
        joined_at INTEGER NOT NULL,
        PRIMARY KEY (app_id, conversation_id, user_id),
        FOREIGN KEY (app_id, conversation_id)
            REFERENCES conversations (app_id, id) ON DELETE CASCADE,
        FOREIGN KEY (app_id, user_id) REFERENCES users (app_id, id)
    ) WITHOUT ROWID
    """,
    "CREATE INDEX participants_by_user ON participants (app_id, user_id)",
    """
    CREATE TABLE messages (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        app_id TEXT NOT NULL, id TEXT NOT NULL, conversation_id TEXT NOT NULL,
        sender_id TEXT, text TEXT NOT NULL, type TEXT NOT NULL,
        created_at INTEGER NOT NULL, edited_at INTEGER,
        custom TEXT NOT NULL DEFAULT '{}', origin TEXT NOT NULL, idempotency_key TEXT,
        UNIQUE (app_id, id),
        FOREIGN KEY (app_id, conversation_id)
            REFERENCES conversations (app_id, id) ON DELETE CASCADE
    )
    """,
    "CREATE INDEX messages_by_conversation ON messages (app_id, conversation_id, seq)",
    """
    CREATE UNIQUE INDEX messages_by_idempotency_key
        ON messages (app_id, conversation_id, coalesce(sender_id, ''), idempotency_key)
        WHERE idempotency_key IS NOT NULL
    """,
)


def create_version_1_file(path: Path) -> None:
    """Write a version-1 database with alice, bob, "c1" and one unread message for bob."""
    with sqlite3.connect(path) as connection:
        for statement in SCHEMA_VERSION_1:
            connection.execute(statement)
        for user_id in ("alice", "bob"):
            connection.execute(
                "INSERT INTO users (app_id, id, name, created_at) VALUES (?, ?, ?, 1)",
                (APP_ID, user_id, user_id.title()),
            )
        connection.execute(
            "INSERT INTO conversations (app_id, id, subject, created_at, last_message_at)"
            " VALUES (?, 'c1', 'Old', 1, 2)",
            (APP_ID,),
        )
        connection.execute(
            "INSERT INTO messages (app_id, id, conversation_id, sender_id, text, type,"
            " created_at, origin) VALUES (?, 'msg_old', 'c1', 'alice', 'from v1',"
            " 'UserMessage', 2, 'web')",
            (APP_ID,),
        )
        for user_id, last_read_seq in (("alice", 1), ("bob", 0)):
            connection.execute(
                "INSERT INTO participants (app_id, conversation_id, user_id, access, notify,"
                " last_read_seq, joined_at) VALUES (?, 'c1', ?, 'ReadWrite', 1, ?, 1)",
                (APP_ID, user_id, last_read_seq),
            )
        connection.execute("PRAGMA user_version = 1")
    connection.close()


async def test_version_1_file_upgraded_on_open(database_path: Path) -> None:
    create_version_1_file(database_path)
    service = ChatService(SQLiteStore(database_path, APP_ID), MemoryBroker(), app_id=APP_ID)

    await service.start()
    page = await service.list_messages("bob", "c1")
    unreads = await service.get_unreads("bob")
    snapshot = await service.get_unreads_snapshot("bob")
    sent = await service.send_message("bob", "c1", "from v2")
    events = await all_events(service, "alice", snapshot.as_of_event_seq)
    await service.close()

    with sqlite3.connect(database_path) as connection:
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        tables = {
            row[0]
            for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
    connection.close()
    assert version == SCHEMA_VERSION == 2
    assert {"events", "event_recipients", "event_log"} <= tables
    assert [message.text for message in page.messages] == ["from v1"]
    assert [unread.unread_message_count for unread in unreads] == [1]
    assert snapshot.as_of_event_seq == 0
    assert len(events) == 1
    assert isinstance(events[0], MessageSent)
    assert events[0].message == sent
    assert events[0].seq == 1


async def test_upgraded_file_reopens_without_change(database_path: Path) -> None:
    create_version_1_file(database_path)
    store = SQLiteStore(database_path, APP_ID)
    await store.open()
    await store.close()
    with sqlite3.connect(database_path) as connection:
        schema_before = connection.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall()
    connection.close()

    await store.open()
    page = await store.list_messages("c1", limit=10, before_message_id=None)
    await store.close()

    with sqlite3.connect(database_path) as connection:
        schema_after = connection.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall()
    connection.close()
    assert schema_after == schema_before
    assert [message.text for message in page.messages] == ["from v1"]
