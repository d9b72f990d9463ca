"""Connections to PostgreSQL: URLs, pools, and the driver errors a store reports.

The driver is asyncpg. A URL has the form
``postgresql://user:password@host:port/database``, and asyncpg passes every
query parameter it does not know to the server as a setting, so
``?search_path=chat`` selects the schema the store uses.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import asyncpg

from ...errors import StorageError
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


def describe_url(url: str) -> str:
    """Return ``url`` with its credentials masked, for messages and logs."""
    return redact_url(url)


async def connect(url: str, *, timeout: float = 10.0) -> asyncpg.Connection[asyncpg.Record]:
    """Open one connection, waiting at most ``timeout`` seconds.

    Raises:
        StorageError: the server cannot be reached, or rejects the login or database.
    """
    try:
        return await asyncpg.connect(url, timeout=timeout)
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
    """
    try:
        return await asyncpg.create_pool(
            url, min_size=min_size, max_size=max_size, command_timeout=command_timeout
        )
    except DRIVER_ERRORS as exc:
        raise StorageError(
            f"connecting to PostgreSQL at {describe_url(url)} failed: {_reason(exc)}"
        ) from exc


def _reason(exc: BaseException) -> str:
    # TimeoutError has an empty message.
    return str(exc) or type(exc).__name__
