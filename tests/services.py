"""Fixtures for the services that tests need besides Python: PostgreSQL.

The PostgreSQL tests use the server at ``TALKJS_TEST_POSTGRES_URL``
(default ``postgresql://postgres@127.0.0.1:5432/test``). When it cannot be
reached they are skipped with a message on how to start it, except
with ``TALKJS_REQUIRE_SERVICES=1`` (as in CI), where they fail.

Each test gets a schema of its own, ``test_<random hex>``, created before
the test and dropped with everything in it afterwards. The stores reach it
through ``?search_path=`` in their URL, so tests never see each other's rows
and can run while other programs use the database.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Literal

import asyncpg
import pytest

from talkjs_components.store import Store
from talkjs_components.store.postgres import PostgresStore, migrate
from talkjs_components.store.postgres.connect import DRIVER_ERRORS, describe_url
from talkjs_components.store.sqlite import SQLiteStore

__all__ = [
    "POSTGRES_URL_VARIABLE",
    "SERVICES_REQUIRED_VARIABLE",
    "StoreDatabase",
    "empty_postgres_url",
    "postgres_server_url",
    "postgres_url",
    "store_database",
    "with_search_path",
]

POSTGRES_URL_VARIABLE = "TALKJS_TEST_POSTGRES_URL"
SERVICES_REQUIRED_VARIABLE = "TALKJS_REQUIRE_SERVICES"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"

# Seconds to wait for the server when checking that it is reachable.
_CONNECT_TIMEOUT = 5.0

# The result of the reachability check per server URL: None when it was
# reachable, else the reason. Checked once per test run.
_reachability: dict[str, str | None] = {}


async def postgres_server_url() -> str:
    """Return the test server's URL, or skip the test (fail when services are required)."""
    url = os.environ.get(POSTGRES_URL_VARIABLE, DEFAULT_POSTGRES_URL)
    if url not in _reachability:
        _reachability[url] = await _connection_error(url)
    error = _reachability[url]
    if error is None:
        return url
    message = (
        f"PostgreSQL is not reachable at {describe_url(url)} ({error}): start it, for "
        "example with 'pg_ctlcluster 15 main start' on Debian, or set "
        f"{POSTGRES_URL_VARIABLE} to the URL of a server where tests may create schemas"
    )
    if os.environ.get(SERVICES_REQUIRED_VARIABLE) == "1":
        pytest.fail(f"{message}; {SERVICES_REQUIRED_VARIABLE}=1 makes this an error")
    pytest.skip(message)


async def _connection_error(url: str) -> str | None:
    try:
        connection = await asyncpg.connect(url, timeout=_CONNECT_TIMEOUT)
    except DRIVER_ERRORS as exc:
        return str(exc) or type(exc).__name__
    await connection.close()
    return None


def with_search_path(url: str, schema: str) -> str:
    """Return ``url`` with a ``search_path`` query parameter that selects ``schema``."""
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}search_path={schema}"


async def _create_schema(server_url: str) -> str:
    schema = f"test_{uuid.uuid4().hex[:12]}"
    connection = await asyncpg.connect(server_url, timeout=_CONNECT_TIMEOUT)
    try:
        await connection.execute(f"CREATE SCHEMA {schema}")
    finally:
        await connection.close()
    return schema


async def _drop_schema(server_url: str, schema: str) -> None:
    connection = await asyncpg.connect(server_url, timeout=_CONNECT_TIMEOUT)
    try:
        await connection.execute(f"DROP SCHEMA {schema} CASCADE")
    finally:
        await connection.close()


@pytest.fixture
async def empty_postgres_url() -> AsyncIterator[str]:
    """The URL of a new, empty schema of this test's own on the test server."""
    server_url = await postgres_server_url()
    schema = await _create_schema(server_url)
    try:
        yield with_search_path(server_url, schema)
    finally:
        await _drop_schema(server_url, schema)


@pytest.fixture
async def postgres_url(empty_postgres_url: str) -> str:
    """The URL of a new schema of this test's own, migrated to the current version."""
    await migrate(empty_postgres_url)
    return empty_postgres_url


StoreKind = Literal["sqlite", "postgres"]


class StoreDatabase:
    """One database, an SQLite file or a PostgreSQL schema, on which a test opens stores.

    Stores made here are closed when the test ends.
    """

    def __init__(self, kind: StoreKind, location: str) -> None:
        self.kind: StoreKind = kind
        self.location = location
        """The SQLite file path or the PostgreSQL URL with the schema's search_path."""
        self._stores: list[Store] = []

    def new_store(self, app_id: str) -> Store:
        """Create a store of ``app_id`` on this database, not yet opened."""
        store: Store = (
            SQLiteStore(self.location, app_id)
            if self.kind == "sqlite"
            else PostgresStore(self.location, app_id, max_pool_size=4)
        )
        self._stores.append(store)
        return store

    async def open_store(self, app_id: str) -> Store:
        """Create and open a store of ``app_id`` on this database."""
        store = self.new_store(app_id)
        await store.open()
        return store

    async def close(self) -> None:
        for store in self._stores:
            await store.close()

    async def count_rows(self, table: str) -> int:
        """Count the rows of ``table`` for every app."""
        count: int
        if self.kind == "sqlite":
            count = await asyncio.to_thread(self._sqlite_count, table)
            return count
        connection = await asyncpg.connect(self.location, timeout=_CONNECT_TIMEOUT)
        try:
            count = await connection.fetchval(f"SELECT count(*) FROM {table}")
        finally:
            await connection.close()
        return count

    async def age_events(self, milliseconds: int) -> None:
        """Make every stored event ``milliseconds`` older, as if that much time had passed."""
        if self.kind == "sqlite":
            await asyncio.to_thread(self._sqlite_age_events, milliseconds)
            return
        connection = await asyncpg.connect(self.location, timeout=_CONNECT_TIMEOUT)
        try:
            await connection.execute("UPDATE events SET created_at = created_at - $1", milliseconds)
        finally:
            await connection.close()

    def _sqlite_count(self, table: str) -> int:
        with sqlite3.connect(self.location) as connection:
            count: int = connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        connection.close()
        return count

    def _sqlite_age_events(self, milliseconds: int) -> None:
        with sqlite3.connect(self.location) as connection:
            connection.execute("UPDATE events SET created_at = created_at - ?", (milliseconds,))
        connection.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def store_database(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[StoreDatabase]:
    """A new, empty database for stores: an SQLite file, then a migrated PostgreSQL schema."""
    if request.param == "sqlite":
        database = StoreDatabase("sqlite", str(tmp_path / "chat.sqlite3"))
        try:
            yield database
        finally:
            await database.close()
        return
    server_url = await postgres_server_url()
    schema = await _create_schema(server_url)
    try:
        url = with_search_path(server_url, schema)
        await migrate(url)
        database = StoreDatabase("postgres", url)
        try:
            yield database
        finally:
            await database.close()
    finally:
        await _drop_schema(server_url, schema)
