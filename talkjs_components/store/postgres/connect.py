"""Connections to PostgreSQL: URLs, pools, and the driver errors a store reports.

The driver is asyncpg. A URL has the form
``postgresql://user:password@host:port/database``, and asyncpg passes every
query parameter it does not know to the server as a setting, so
``?search_path=chat`` selects the schema the store uses. One parameter is
read here instead: ``statement_cache_size``, the number of prepared
statements asyncpg keeps per connection (default 100). Behind PgBouncer in
transaction mode it must be ``0``, because a prepared statement does not
survive a change of server connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from ...errors import InvalidInput, StorageError
from ...redaction import redact_url

__all__ = [
    "DRIVER_ERRORS",
    "Connection",
    "connect",
    "create_pool",
    "describe_url",
]

DRIVER_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    OSError,
    asyncio.TimeoutError,
)
"""Exceptions of the driver and the network that a store turns into ``StorageError``.

``OSError`` covers a refused or lost connection, and ``TimeoutError`` a
connect, pool acquire or ``command_timeout`` that ran out.
"""


class Connection(Protocol):
    """The queries a store runs: those of an asyncpg connection or pooled connection."""

    async def execute(self, query: str, *args: object, timeout: float | None = ...) -> str: ...

    async def executemany(
        self, command: str, args: Iterable[Sequence[object]], *, timeout: float | None = ...
    ) -> None: ...

    async def fetch(
        self, query: str, *args: object, timeout: float | None = ..., record_class: None = ...
    ) -> list[asyncpg.Record]: ...

    async def fetchrow(
        self, query: str, *args: object, timeout: float | None = ..., record_class: None = ...
    ) -> asyncpg.Record | None: ...

    async def fetchval(
        self, query: str, *args: object, column: int = ..., timeout: float | None = ...
    ) -> Any: ...


DEFAULT_STATEMENT_CACHE_SIZE = 100
"""Prepared statements asyncpg keeps per connection when the URL gives none: asyncpg's default."""


def describe_url(url: str) -> str:
    """Return ``url`` with its credentials masked, for messages and logs."""
    return redact_url(url)


def split_statement_cache_size(url: str) -> tuple[str, int]:
    """Return ``url`` without its ``statement_cache_size`` parameter, and that parameter's value.

    The value is ``DEFAULT_STATEMENT_CACHE_SIZE`` when the URL has none.

    Raises:
        InvalidInput: ``statement_cache_size`` is not an integer >= 0, or is given twice.
    """
    name = "statement_cache_size"
    parts = urlsplit(url)
    server_parameters: list[tuple[str, str]] = []
    values_given: list[str] = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == name:
            values_given.append(value)
        else:
            server_parameters.append((key, value))
    if not values_given:
        return url, DEFAULT_STATEMENT_CACHE_SIZE
    if len(values_given) > 1:
        raise InvalidInput(f"PostgreSQL URL {describe_url(url)} gives {name} twice: give it once")
    value = values_given[0]
    # isdigit() alone accepts other scripts' digits, such as "²", which int() rejects.
    if not (value.isascii() and value.isdigit()):
        raise InvalidInput(
            f"{name}={value!r} in PostgreSQL URL {describe_url(url)} is invalid: use an "
            "integer >= 0 (0 behind PgBouncer in transaction mode)"
        )
    return urlunsplit(parts._replace(query=urlencode(server_parameters))), int(value)


async def connect(url: str, *, timeout: float = 10.0) -> asyncpg.Connection[asyncpg.Record]:
    """Open one connection, waiting at most ``timeout`` seconds.

    Raises:
        StorageError: the server cannot be reached, or rejects the login or database.
        InvalidInput: the URL's ``statement_cache_size`` is invalid.
    """
    dsn, cache_size = split_statement_cache_size(url)
    try:
        return await asyncpg.connect(dsn, timeout=timeout, statement_cache_size=cache_size)
    except DRIVER_ERRORS as exc:
        raise StorageError(
            f"connecting to PostgreSQL at {describe_url(url)} failed: {_reason(exc)}"
        ) from exc


async def create_pool(
    url: str, *, min_size: int = 1, max_size: int = 10, command_timeout: float | None = 30.0
) -> asyncpg.Pool[asyncpg.Record]:
    """Create a connection pool that several stores, of one app or many, can share.

    Args:
        url: A ``postgresql://`` URL.
        min_size: Connections opened at once and kept open.
        max_size: Most connections open at a time; more requests wait for one.
        command_timeout: Seconds one query may run, including time waiting
            for a row lock, before it is cancelled; ``None`` for no limit.

    Raises:
        StorageError: the first connections cannot be opened.
        InvalidInput: the URL's ``statement_cache_size`` is invalid.
    """
    dsn, cache_size = split_statement_cache_size(url)
    try:
        return await asyncpg.create_pool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            command_timeout=command_timeout,
            statement_cache_size=cache_size,
        )
    except DRIVER_ERRORS as exc:
        raise StorageError(
            f"connecting to PostgreSQL at {describe_url(url)} failed: {_reason(exc)}"
        ) from exc


def _reason(exc: BaseException) -> str:
    # TimeoutError has an empty message.
    return str(exc) or type(exc).__name__
