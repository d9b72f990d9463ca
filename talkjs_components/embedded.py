"""The embedded backend: a ChatService running inside the app's own process.

This is the default. A ``Session`` whose app id has no configured backend gets
one on first use, storing its data in a SQLite file, so a first run needs no
set-up. Call :func:`configure` before the first session to choose the file,
the secret key and identity verification.

All sessions of one process share one backend per app id, and the backend
lives on the event loop that started it (the ASGI server's loop).
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from .auth import App
from .broker.memory import MemoryBroker
from .errors import ChatError
from .service import ChatService
from .store.sqlite import SQLiteStore

__all__ = [
    "DATA_PATH_VARIABLE",
    "EmbeddedBackend",
    "close_all",
    "configure",
    "configured",
    "get_backend",
    "running_backend",
]

logger = logging.getLogger("talkjs_components.server")

DATA_PATH_VARIABLE = "TALKJS_DATA"
"""Environment variable naming the default SQLite file; unset means ``./talkjs-data.sqlite3``."""


def default_data_path() -> Path:
    """Return the SQLite file used when :func:`configure` was not given one."""
    return Path(os.environ.get(DATA_PATH_VARIABLE) or "talkjs-data.sqlite3")


@dataclass
class EmbeddedBackend:
    """One app's chat service with its store and broker, started on first use."""

    app: App
    database: Path
    service: ChatService = field(init=False)
    _started: bool = field(default=False, init=False)
    _closed: bool = field(default=False, init=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)

    def __post_init__(self) -> None:
        self.service = self._new_service()

    def _new_service(self) -> ChatService:
        store = SQLiteStore(self.database, self.app.app_id)
        return ChatService(store, MemoryBroker(), app_id=self.app.app_id)

    @property
    def started(self) -> bool:
        """Whether the service is running."""
        return self._started

    async def start(self) -> None:
        """Start the service; concurrent and repeated calls start it once.

        After :meth:`close`, a new service on the same database starts, so a
        backend survives an ASGI lifespan restart.
        """
        async with self._lock:
            if self._started:
                return
            if self._closed:
                self.service = self._new_service()
                self._closed = False
            await self.service.start()
            self._started = True
        if not self.app.verifies_identity:
            logger.warning(
                "identity verification is off for app %r: any session may claim any user id; "
                "configure a secret key to require tokens or signatures",
                self.app.app_id,
            )
        logger.info("embedded backend started for app %r at %s", self.app.app_id, self.database)

    async def close(self) -> None:
        """Stop the service and close its database."""
        async with self._lock:
            if not self._started:
                return
            self._started = False
            self._closed = True
            await self.service.close()
        logger.info("embedded backend closed for app %r", self.app.app_id)


_backends: dict[str, EmbeddedBackend] = {}


def configure(
    app_id: str,
    *,
    secret_key: str | None = None,
    database: str | os.PathLike[str] | None = None,
    identity_verification: bool | None = None,
) -> EmbeddedBackend:
    """Register the embedded backend of ``app_id`` before any session uses it.

    Args:
        app_id: The app's id, as passed to ``Session(app_id=...)``.
        secret_key: The app's secret key. With a key, identity verification is
            on unless ``identity_verification=False``.
        database: The SQLite file; default ``$TALKJS_DATA`` or ``./talkjs-data.sqlite3``.
        identity_verification: Force verification on or off.

    Raises:
        RuntimeError: The app's backend already started; close it first.
    """
    existing = _backends.get(app_id)
    if existing is not None and existing.started:
        raise RuntimeError(
            f"the embedded backend of app {app_id!r} is already running; "
            "call configure() before the first Session renders, or close_all() first"
        )
    app = App(app_id, secret_key=secret_key, identity_verification=identity_verification)
    path = Path(database) if database is not None else default_data_path()
    backend = EmbeddedBackend(app, path)
    _backends[app_id] = backend
    return backend


def configured(app_id: str) -> EmbeddedBackend:
    """Return the backend registered for ``app_id``, configuring a default one if needed."""
    backend = _backends.get(app_id)
    return backend if backend is not None else configure(app_id)


async def get_backend(app_id: str) -> EmbeddedBackend:
    """Return the started backend of ``app_id``, creating a default one when none was configured."""
    backend = configured(app_id)
    await backend.start()
    return backend


def running_backend(app_id: str) -> EmbeddedBackend:
    """Return the backend of ``app_id`` if it is running, without starting one.

    Raises:
        ChatError: No backend of that app is running (code ``backend_not_running``).
    """
    backend = _backends.get(app_id)
    if backend is None or not backend.started:
        raise ChatError(
            f"the embedded chat backend of app {app_id!r} is not running",
            code="backend_not_running",
        )
    return backend


async def close_all() -> None:
    """Close and forget every embedded backend of this process."""
    backends = list(_backends.values())
    _backends.clear()
    for backend in backends:
        await backend.close()
