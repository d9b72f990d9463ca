"""The chat services of a server's apps, all on one database and one broker."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..auth import App
from ..broker import Broker
from ..broker.memory import MemoryBroker
from ..errors import InvalidInput
from ..service import ChatService
from ..store import Store
from ..store.sqlite import SQLiteStore
from ..store.urls import is_postgres_url, store_from_url
from .config import describe_database

if TYPE_CHECKING:
    import asyncpg

__all__ = ["POOL_CLOSE_TIMEOUT", "POOL_MAX_SIZE", "AppHost", "HostedApp", "check_backends"]

logger = logging.getLogger(__name__)

POOL_MAX_SIZE = 10
"""Most PostgreSQL connections one server process opens; every app of the process shares them."""

POOL_CLOSE_TIMEOUT = 10.0
"""Seconds the host waits at close for pooled PostgreSQL connections still in use."""


@dataclass(frozen=True)
class HostedApp:
    """An app served by the server: its id and secret key, and its chat service."""

    app: App
    service: ChatService


class AppHost:
    """Runs one :class:`ChatService` per app, every app's rows in one database.

    Each app gets its own store (rows carry the app id) and they all share
    one broker, whose channels are named after the app, so the events of one
    app never reach another's listeners. On PostgreSQL, the stores also share
    one connection pool of at most ``POOL_MAX_SIZE`` connections.

    The services are created by :meth:`start`, so :meth:`get` returns
    ``None`` until then.

    Args:
        apps: The apps to serve; each needs a secret key, which REST clients
            authenticate with.
        database: The SQLite file (created when missing), or a
            ``postgresql://`` URL whose schema is migrated to the current version.
        broker: The broker the services share; a new ``MemoryBroker`` when
            omitted. The host starts and closes it either way.

    Raises:
        InvalidInput: no app is given, an app id is listed twice, an app has
            no secret key, or ``database`` is not a supported path or URL.
        ModuleNotFoundError: ``database`` is a PostgreSQL URL and asyncpg is
            not installed.
    """

    def __init__(
        self, apps: Iterable[App], database: Path | str, broker: Broker | None = None
    ) -> None:
        self.database = database
        self._broker = broker if broker is not None else MemoryBroker()
        self._apps: dict[str, App] = {}
        for app in apps:
            if app.app_id in self._apps:
                raise InvalidInput(f"app '{app.app_id}' is configured twice: list each app once")
            if app.secret_key is None:
                raise InvalidInput(
                    f"app '{app.app_id}' has no secret key: the server needs one per app to "
                    "authenticate REST calls and user tokens"
                )
            self._apps[app.app_id] = app
        if not self._apps:
            raise InvalidInput(
                "no app is configured: create one with 'talkjs-components apps create', or set "
                "TALKJS_APP_ID and TALKJS_SECRET_KEY"
            )
        # Checks the URL's scheme, and that asyncpg is installed for PostgreSQL,
        # before anything starts. The store itself is discarded unopened.
        _store_for(database, next(iter(self._apps)))
        self._hosted: dict[str, HostedApp] = {}
        self._pool: asyncpg.Pool[asyncpg.Record] | None = None

    @property
    def app_ids(self) -> list[str]:
        """The ids of the hosted apps, in configuration order."""
        return list(self._apps)

    def get(self, app_id: str) -> HostedApp | None:
        """Return the hosted app ``app_id``; ``None`` if it is not served or not started yet."""
        return self._hosted.get(app_id)

    async def start(self) -> None:
        """Start the broker, then create and start every app's service; on a failure, close all.

        Raises:
            StorageError: the database cannot be opened, or its schema is
                not the version this code needs.
            ChatError: the broker cannot be started.
        """
        await self._broker.start()
        hosted: dict[str, HostedApp] = {}
        try:
            if isinstance(self.database, str) and is_postgres_url(self.database):
                from ..store.postgres import create_pool

                self._pool = await create_pool(self.database, max_size=POOL_MAX_SIZE)
            for app in self._apps.values():
                service = ChatService(
                    self._new_store(app.app_id), self._broker, app_id=app.app_id, owns_broker=False
                )
                await service.start()
                hosted[app.app_id] = HostedApp(app, service)
        except BaseException:
            for started in hosted.values():
                await started.service.close()
            await self._close_pool()
            await self._broker.close()
            raise
        self._hosted = hosted
        logger.info(
            "serving %d apps (%s) on database %s",
            len(self._apps),
            ", ".join(repr(app_id) for app_id in self._apps),
            describe_database(self.database),
        )

    def _new_store(self, app_id: str) -> Store:
        if self._pool is None:
            return _store_for(self.database, app_id)
        from ..store.postgres import PostgresStore

        return PostgresStore(self._pool, app_id)

    async def close(self) -> None:
        """Close every app's service, then the connection pool and the broker.

        Closing twice does nothing. A service that fails to close is logged,
        and the others are still closed.
        """
        for app_id, hosted in self._hosted.items():
            try:
                await hosted.service.close()
            except Exception:
                logger.exception("closing the chat service of app %r failed", app_id)
        await self._close_pool()
        await self._broker.close()

    async def _close_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            await asyncio.wait_for(pool.close(), POOL_CLOSE_TIMEOUT)
        except TimeoutError:
            logger.warning(
                "closing the PostgreSQL pool timed out after %s s; terminated its connections",
                POOL_CLOSE_TIMEOUT,
            )
            pool.terminate()

    async def check_health(self) -> None:
        """Check that every app's store runs a query.

        Raises:
            ChatError: a service is not running, or its store query failed.
        """
        for hosted in self._hosted.values():
            await hosted.service.check_store()


async def check_backends(database: Path | str, app_id: str, broker: Broker) -> None:
    """Open and close the database and the broker once, to report a problem before serving.

    The database is opened through a store of ``app_id``, the way the host
    opens it. So a PostgreSQL schema that is not at the current version is
    reported with the store's message, and a SQLite file of an older version
    is upgraded, as it would be at start.

    Raises:
        StorageError: the database cannot be opened, or its schema version
            does not match this code.
        InvalidInput: ``database`` is not a supported path or URL.
        ChatError: the broker cannot be started.
    """
    store = _store_for(database, app_id)
    await store.open()
    await store.close()
    await broker.start()
    await broker.close()


def _store_for(database: Path | str, app_id: str) -> Store:
    """Create the store of ``app_id``: on the SQLite file of a ``Path``, or on a database URL."""
    if isinstance(database, Path):
        return SQLiteStore(database, app_id)
    return store_from_url(database, app_id)
