"""Tests of ReorderBuffer on a real SQLite event log, one app, no broker.

The events are logged by a real SQLiteStore and then handed to the buffer in
the order each test needs, as a broker that reorders or loses messages would.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from talkjs_components.models import ChatEvent, EventsPage, MessageSent, Participation, User
from talkjs_components.reorder import ReorderBuffer
from talkjs_components.store import LoggedEvent, NewEvent
from talkjs_components.store.sqlite import SQLiteStore

from .services import StoreDatabase
from .test_store_contract import Draft

APP_ID = "app-reorder"

# Seconds any single wait of these tests may take before it fails.
WAIT = 10.0


class Delivered:
    """The buffer's deliver callback: keeps the events and lets a test wait for a count."""

    def __init__(self) -> None:
        self.events: list[ChatEvent] = []
        self._changed = asyncio.Event()

    def __call__(self, event: ChatEvent) -> None:
        self.events.append(event)
        self._changed.set()

    def seqs(self) -> list[int | None]:
        return [event.seq for event in self.events]

    async def wait_for(self, count: int) -> None:
        async with asyncio.timeout(WAIT):
            while len(self.events) < count:
                self._changed.clear()
                await self._changed.wait()


class Log:
    """A real SQLite store of one app, and the reads the buffer makes from it."""

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store
        self.reads: list[int] = []

    async def read_events(self, after_seq: int, limit: int) -> EventsPage:
        self.reads.append(after_seq)
        return await self.store.app_events_after(after_seq, limit=limit)

    async def append(self, text: str) -> LoggedEvent:
        inserted = await self.store.insert_message(
            Draft("c1", "alice", text),
            log_event=lambda change: NewEvent(
                MessageSent(conversation=change.conversation, message=change.message), ["alice"]
            ),
        )
        assert inserted.event is not None
        return LoggedEvent(inserted.event, inserted.prev_seq)


@pytest.fixture
async def log(tmp_path: Path) -> AsyncIterator[Log]:
    store = SQLiteStore(tmp_path / "chat.sqlite3", APP_ID)
    await store.open()
    await store.upsert_user(User(id="alice"))
    await store.upsert_conversation("c1", None, {"alice": Participation()})
    try:
        yield Log(store)
    finally:
        await store.close()


def new_buffer(
    log: Log, delivered: Delivered, *, wait_ms: int, max_held: int = 100
) -> ReorderBuffer:
    return ReorderBuffer(
        APP_ID, log.read_events, delivered, wait_ms=wait_ms, max_held=max_held, page_size=2
    )


async def test_in_order_events_skip_store(log: Log) -> None:
    delivered = Delivered()
    buffer = new_buffer(log, delivered, wait_ms=600_000)
    buffer.start(0)
    logged = [await log.append(f"m{number}") for number in range(3)]

    for event, prev_seq in logged:
        assert event is not None
        buffer.receive(event, prev_seq)
    await buffer.close()

    assert delivered.events == [event for event, _ in logged]
    assert log.reads == []


async def test_reversed_pair_delivered_in_order(log: Log) -> None:
    delivered = Delivered()
    buffer = new_buffer(log, delivered, wait_ms=600_000)
    buffer.start(0)
    (first, first_prev), (second, second_prev) = [await log.append(text) for text in ("a", "b")]
    assert first is not None
    assert second is not None

    buffer.receive(second, second_prev)
    held = (list(delivered.events), buffer.held_count)
    buffer.receive(first, first_prev)
    buffer.receive(second, second_prev)
    await buffer.close()

    assert held == ([], 1)
    assert delivered.events == [first, second]
    assert log.reads == []


async def test_missing_event_read_after_wait(log: Log, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="talkjs_components.service")
    delivered = Delivered()
    buffer = new_buffer(log, delivered, wait_ms=20)
    buffer.start(0)
    logged = [await log.append(f"m{number}") for number in range(5)]

    # The first four never arrive; the last one reveals them.
    last, last_prev = logged[-1]
    assert last is not None
    buffer.receive(last, last_prev)
    await delivered.wait_for(5)
    await buffer.close()

    assert delivered.events == [event for event, _ in logged]
    # Pages of two events, from the start until the received seq.
    assert log.reads == [0, 2, 4]
    [waited] = [text for record in caplog.records if "within" in (text := record.getMessage())]
    assert waited == (
        f"events of app '{APP_ID}' after seq 0 did not arrive through the broker within 20 ms "
        "(1 held); reading them from the store"
    )


async def test_event_without_prev_seq_read_from_store(log: Log) -> None:
    delivered = Delivered()
    buffer = new_buffer(log, delivered, wait_ms=20)
    buffer.start(0)
    event, _ = await log.append("sent by an older node")
    assert event is not None

    buffer.receive(event, None)
    await delivered.wait_for(1)
    await buffer.close()

    assert delivered.events == [event]
    assert log.reads == [0]


async def test_catch_up_reads_to_end(log: Log) -> None:
    delivered = Delivered()
    buffer = new_buffer(log, delivered, wait_ms=600_000)
    buffer.start(0)
    logged = [await log.append(f"m{number}") for number in range(3)]

    buffer.catch_up()
    await delivered.wait_for(3)
    await buffer.close()

    assert delivered.events == [event for event, _ in logged]


async def test_events_before_start_released_by_start(log: Log) -> None:
    delivered = Delivered()
    buffer = new_buffer(log, delivered, wait_ms=600_000)
    (old, old_prev), (new, new_prev) = [await log.append(text) for text in ("old", "new")]
    assert old is not None
    assert new is not None

    buffer.receive(new, new_prev)
    buffer.receive(old, old_prev)
    before_start = list(delivered.events)
    # The baseline puts the first event in the store before the subscription.
    buffer.start(old.seq or 0)
    await buffer.close()

    assert before_start == []
    assert delivered.events == [new]


async def test_pruned_gap_delivers_held_events(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    day_ms = 24 * 60 * 60 * 1000
    database = StoreDatabase("sqlite", str(tmp_path / "pruned.sqlite3"))
    store = SQLiteStore(database.location, APP_ID)
    await store.open(event_retention_ms=day_ms)
    await store.upsert_user(User(id="alice"))
    await store.upsert_conversation("c1", None, {"alice": Participation()})
    log = Log(store)
    delivered = Delivered()
    buffer = new_buffer(log, delivered, wait_ms=20)
    try:
        buffer.start(0)
        for number in range(4):
            await log.append(f"old {number}")
        await database.age_events(2 * day_ms)
        # This write prunes the two oldest events, which the buffer never received.
        last, last_prev = await log.append("new")
        assert last is not None
        buffer.receive(last, last_prev)
        await delivered.wait_for(1)
    finally:
        await buffer.close()
        await store.close()

    assert delivered.events == [last]
    assert log.reads == [0]
    errors = [record.getMessage() for record in caplog.records if record.levelname == "ERROR"]
    assert len(errors) == 1
    assert errors[0].startswith(
        f"delivering 1 events of app '{APP_ID}' after seq 0 without the events missing "
        "before them, because the log no longer has them: events after seq 0 are no longer "
        "all stored"
    )
