"""Tests of SQLiteStore's own behaviour against real database files in tmp_path.

The behaviour every store shares is tested on SQLite and PostgreSQL in
test_store_contract.py.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from talkjs_components.errors import StorageError
from talkjs_components.models import User
from talkjs_components.store.sqlite import SCHEMA_VERSION, SQLiteStore, new_message_id

APP_ID = "app-test"


@pytest.fixture
def database_path(tmp_path: Path) -> Path:
    return tmp_path / "chat.sqlite3"


@pytest.fixture
async def store(database_path: Path) -> AsyncIterator[SQLiteStore]:
    store = SQLiteStore(database_path, APP_ID)
    await store.open()
    yield store
    await store.close()


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

    assert version == SCHEMA_VERSION == 2
    assert journal_mode == "wal"
    assert {"users", "conversations", "participants", "messages"} <= tables
    assert {"events", "event_recipients", "event_log"} <= tables
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
    assert "supports schema version 2 only" in message
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


# Ids


def test_message_ids_are_sortable_and_unique() -> None:
    ids = [new_message_id() for _ in range(1000)]

    for message_id in ids:
        assert re.fullmatch(r"msg_[0-9A-HJKMNP-TV-Z]{26}", message_id), message_id
    assert len(set(ids)) == len(ids)
    # The first 10 characters after the prefix encode the time in milliseconds.
    prefixes = [message_id[4:14] for message_id in ids]
    assert prefixes == sorted(prefixes)
