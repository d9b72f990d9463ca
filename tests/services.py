"""Fixtures for the services that tests need besides Python: PostgreSQL and Redis.

The PostgreSQL tests use the server at ``TALKJS_TEST_POSTGRES_URL``
(default ``postgresql://postgres@127.0.0.1:5432/test``), and the Redis tests
the one at ``TALKJS_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``).
When a server cannot be reached its tests are skipped with a message on how
to start it, except with ``TALKJS_REQUIRE_SERVICES=1`` (as in CI), where
they fail.

Each PostgreSQL test gets a schema of its own, ``test_<random hex>``, created
before the test and dropped with everything in it afterwards. The stores
reach it through ``?search_path=`` in their URL, so tests never see each
other's rows and can run while other programs use the database.

Each Redis test gets a key prefix of its own, ``test-<random hex>``, for its
brokers' channels and keys. Afterwards the keys under that prefix are
deleted, and nothing else: the tests never flush a database.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal, NoReturn

import asyncpg
import pytest
import redis.asyncio as redis
from redis.exceptions import RedisError

from talkjs_components.broker.redis import RedisBroker
from talkjs_components.broker.redis import describe_url as describe_redis_url
from talkjs_components.store import Store
from talkjs_components.store.postgres import PostgresStore, migrate
from talkjs_components.store.postgres.connect import DRIVER_ERRORS, describe_url
from talkjs_components.store.sqlite import SQLiteStore

__all__ = [
    "POSTGRES_URL_VARIABLE",
    "REDIS_URL_VARIABLE",
    "SERVICES_REQUIRED_VARIABLE",
    "RedisNamespace",
    "StoreDatabase",
    "empty_postgres_url",
    "postgres_server_url",
    "postgres_url",
    "redis_namespace",
    "redis_server_url",
    "store_database",
    "with_search_path",
]

POSTGRES_URL_VARIABLE = "TALKJS_TEST_POSTGRES_URL"
SERVICES_REQUIRED_VARIABLE = "TALKJS_REQUIRE_SERVICES"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_URL_VARIABLE = "TALKJS_TEST_REDIS_URL"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

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
    _skip_or_fail(message)


def _skip_or_fail(message: str) -> NoReturn:
    """Skip the test because a server is missing, or fail when services are required."""
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


# Redis


async def redis_server_url() -> str:
    """Return the Redis test server's URL, or skip the test (fail when services are required)."""
    url = os.environ.get(REDIS_URL_VARIABLE, DEFAULT_REDIS_URL)
    if url not in _reachability:
        _reachability[url] = await _redis_connection_error(url)
    error = _reachability[url]
    if error is None:
        return url
    _skip_or_fail(
        f"Redis is not reachable at {describe_redis_url(url)} ({error}): start it, for "
        "example with 'service redis-server start' on Debian or 'redis-server --daemonize "
        f"yes', or set {REDIS_URL_VARIABLE} to the URL of a server where tests may create keys"
    )


async def _redis_connection_error(url: str) -> str | None:
    client = redis.Redis.from_url(url, socket_connect_timeout=_CONNECT_TIMEOUT)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        return str(exc) or type(exc).__name__
    finally:
        await client.aclose()
    return None


class RedisNamespace:
    """A Redis server and a key prefix of this test's own.

    Brokers made here use the prefix and are closed when the test ends;
    then every key under the prefix is deleted.
    """

    def __init__(self, url: str, prefix: str) -> None:
        self.url = url
        self.prefix = prefix
        self._brokers: list[RedisBroker] = []
        self._client = redis.Redis.from_url(url, socket_connect_timeout=_CONNECT_TIMEOUT)

    def new_broker(self, **options: Any) -> RedisBroker:
        """Create an unstarted broker on this prefix; ``options`` go to ``RedisBroker``."""
        broker = RedisBroker(self.url, prefix=self.prefix, **options)
        self._brokers.append(broker)
        return broker

    async def kill_connections(self, client_name: str) -> int:
        """Close, from the server's side, the connections named ``client_name``; return how many.

        Only connections of this test's brokers have such names, because
        each broker id is random.
        """
        ids = [
            client["id"]
            for client in await self._client.client_list()
            if client.get("name") == client_name
        ]
        for client_id in ids:
            await self._client.client_kill_filter(_id=client_id)
        return len(ids)

    async def keys(self) -> list[str]:
        """Return the names of the keys under this prefix."""
        return sorted(
            [key.decode() async for key in self._client.scan_iter(match=f"{self.prefix}:*")]
        )

    async def close(self) -> None:
        for broker in self._brokers:
            await broker.close()
        keys = [key async for key in self._client.scan_iter(match=f"{self.prefix}:*")]
        if keys:
            await self._client.delete(*keys)
        await self._client.aclose()


@pytest.fixture
async def redis_namespace() -> AsyncIterator[RedisNamespace]:
    """The Redis test server with a key prefix of this test's own."""
    url = await redis_server_url()
    namespace = RedisNamespace(url, f"test-{uuid.uuid4().hex[:12]}")
    try:
        yield namespace
    finally:
        await namespace.close()
