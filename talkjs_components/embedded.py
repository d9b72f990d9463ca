"""The embedded backend: a ChatService running inside the app's own process.

This is the default. A ``Session`` whose app id has no configured backend gets
one on first use, storing its data in a SQLite file, so a first run needs no
set-up. Call :func:`configure` before the first session to choose the file,
the secret key and identity verification.

All sessions of one process share one backend per app id, and the backend
lives on the event loop that started it (the ASGI server's loop).

One setting moves an app to a standalone server (``talkjs-components serve``)
instead: ``configure(app_id, server_url=...)``, or the ``TALKJS_SERVER_URL``
environment variable. Sessions of that app then connect to the server over
the realtime protocol, and this process opens no database. The setting may
list several server nodes separated by commas, which sessions fail over between.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from .auth import App
from .broker.memory import MemoryBroker
from .errors import ChatError, InvalidInput
from .service import ChatService, Limits
from .store.sqlite import SQLiteStore

__all__ = [
    "DATA_PATH_VARIABLE",
    "SERVER_URL_VARIABLE",
    "EmbeddedBackend",
    "close_all",
    "configure",
    "configured",
    "get_backend",
    "http_base_url",
    "normalize_server_url",
    "running_backend",
    "server_url_of",
    "server_urls",
]

logger = logging.getLogger("talkjs_components.embedded")

DATA_PATH_VARIABLE = "TALKJS_DATA"
"""Environment variable naming the default SQLite file; unset means ``./talkjs-data.sqlite3``."""


SERVER_URL_VARIABLE = "TALKJS_SERVER_URL"
"""Environment variable with the URL of a standalone chat server; unset or empty means embedded."""

_WEBSOCKET_SCHEMES = {"ws": "ws", "wss": "wss", "http": "ws", "https": "wss"}


def default_data_path() -> Path:
    """Return the SQLite file used when :func:`configure` was not given one."""
    return Path(os.environ.get(DATA_PATH_VARIABLE) or "talkjs-data.sqlite3")


def normalize_server_url(url: str) -> str:
    """Return a chat server's URL as a websocket base URL: ``ws://`` or ``wss://``, no final slash.

    One server serves the REST API and the realtime endpoint, so ``http://``
    becomes ``ws://`` and ``https://`` becomes ``wss://``. A path is kept,
    for a server behind a proxy under a prefix. A comma-separated list of
    servers is normalized URL by URL and returned joined with commas, as
    :func:`server_urls` splits it.

    Raises:
        InvalidInput: an entry is not a ws, wss, http or https URL with a
            host, or it has a query or fragment. Also when the list has an
            empty entry or names a server twice.
    """
    return ",".join(server_urls(url))


def server_urls(value: str) -> list[str]:
    """Split a comma-separated list of chat server URLs and normalize each, in the given order.

    Whitespace around each URL is ignored. A comma inside a URL must be
    percent-encoded (``%2C``), because the comma separates the servers.

    Raises:
        InvalidInput: an entry is invalid (see :func:`normalize_server_url`),
            empty, or names the same server as an earlier one.
    """
    normalized: list[str] = []
    for entry in value.split(","):
        if not entry.strip():
            raise InvalidInput(
                f"chat server URL list {value!r} has an empty entry: separate the server URLs "
                "with single commas, like ws://10.0.0.1:8080,ws://10.0.0.2:8080"
            )
        url = _normalize_one_server_url(entry)
        if url in normalized:
            raise InvalidInput(
                f"chat server URL list {value!r} names {url} twice: list each server once"
            )
        normalized.append(url)
    return normalized


def _normalize_one_server_url(url: str) -> str:
    parts = urlsplit(url.strip())
    scheme = _WEBSOCKET_SCHEMES.get(parts.scheme.lower())
    if scheme is None or not parts.hostname:
        raise InvalidInput(
            f"chat server URL {url.strip()!r} is invalid: use ws://HOST:PORT, wss://HOST, "
            "http://HOST:PORT or https://HOST, as 'talkjs-components serve' prints it"
        )
    if parts.query or parts.fragment:
        raise InvalidInput(
            f"chat server URL {url.strip()!r} is invalid: remove the query and fragment, "
            "because the client adds the endpoint's path to the URL"
        )
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def http_base_url(server_url: str) -> str:
    """Return a chat server's URL as the ``http://`` or ``https://`` base of its REST API.

    For a list of servers it returns the first one's: REST clients do not fail over.

    Raises:
        InvalidInput: ``server_url`` is invalid, as for :func:`normalize_server_url`.
    """
    websocket_url = server_urls(server_url)[0]
    if websocket_url.startswith("wss://"):
        return "https://" + websocket_url.removeprefix("wss://")
    return "http://" + websocket_url.removeprefix("ws://")


@dataclass
class EmbeddedBackend:
    """One app's chat service with its store and broker, started on first use.

    With ``server_url`` set, the app's sessions use that standalone server
    instead: the backend holds only the :class:`~talkjs_components.auth.App`
    (to create user tokens), starts nothing and opens no database, and
    :attr:`service` raises.
    """

    app: App
    database: Path
    limits: Limits = field(default_factory=Limits)
    server_url: str | None = None
    """Websocket base URL of the standalone server the app's sessions use, or ``None``.

    Several server nodes are listed separated by commas, in the order sessions try them.
    """

    _service: ChatService | None = field(default=None, init=False, repr=False)
    _started: bool = field(default=False, init=False)
    _closed: bool = field(default=False, init=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)

    def __post_init__(self) -> None:
        if self.server_url is None:
            self._service = self._new_service()

    @property
    def service(self) -> ChatService:
        """The app's ChatService, for server-side code in this process.

        Raises:
            ChatError: The app uses a standalone server (code ``backend_remote``).
        """
        if self._service is None:
            raise ChatError(
                f"app {self.app.app_id!r} uses the chat server at {self.server_url}, so this "
                "process has no ChatService: make server-side changes with the REST API "
                "(talkjs_components.rest.AsyncTalkJSClient)",
                code="backend_remote",
            )
        return self._service

    def _new_service(self) -> ChatService:
        store = SQLiteStore(self.database, self.app.app_id)
        return ChatService(store, MemoryBroker(), app_id=self.app.app_id, limits=self.limits)

    @property
    def started(self) -> bool:
        """Whether the service is running."""
        return self._started

    async def start(self) -> None:
        """Start the service; concurrent and repeated calls start it once.

        After :meth:`close`, a new service on the same database starts, so a
        backend survives an ASGI lifespan restart. With :attr:`server_url`
        set, nothing starts: the standalone server runs the service.
        """
        if self.server_url is not None:
            logger.info("app %r uses the chat server at %s", self.app.app_id, self.server_url)
            return
        async with self._lock:
            if self._started:
                return
            if self._closed:
                self._service = self._new_service()
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
    limits: Limits | None = None,
    server_url: str | None = None,
) -> EmbeddedBackend:
    """Register the backend of ``app_id`` before any session uses it.

    Args:
        app_id: The app's id, as passed to ``Session(app_id=...)``.
        secret_key: The app's secret key. With a key, identity verification is
            on unless ``identity_verification=False``.
        database: The SQLite file; default ``$TALKJS_DATA`` or ``./talkjs-data.sqlite3``.
        identity_verification: Force verification on or off.
        limits: The service's limits, such as ``event_retention_ms``; the
            defaults of :class:`~talkjs_components.service.Limits` when omitted.
        server_url: URL of a standalone chat server (``talkjs-components
            serve``) that the app's sessions connect to instead of an embedded
            backend, such as ``ws://127.0.0.1:8080`` or ``https://chat.example.com``.
            Several server nodes of one installation are listed separated by
            commas. Each session connects to the first that accepts the
            connection and, when its connection drops, tries the others. Default:
            ``$TALKJS_SERVER_URL``; unset or empty runs the embedded backend.
            The server must serve ``app_id`` with the same secret key.

    Raises:
        RuntimeError: The app's backend already started; close it first.
        InvalidInput: ``server_url`` (or ``$TALKJS_SERVER_URL``) is not a valid URL.
    """
    existing = _backends.get(app_id)
    if existing is not None and existing.started:
        raise RuntimeError(
            f"the embedded backend of app {app_id!r} is already running; "
            "call configure() before the first Session renders, or close_all() first"
        )
    app = App(app_id, secret_key=secret_key, identity_verification=identity_verification)
    path = Path(database) if database is not None else default_data_path()
    remote = _environment_server_url() if server_url is None else server_url
    remote_url = normalize_server_url(remote) if remote else None
    backend = EmbeddedBackend(app, path, limits or Limits(), server_url=remote_url)
    _backends[app_id] = backend
    return backend


def _environment_server_url() -> str | None:
    return os.environ.get(SERVER_URL_VARIABLE) or None


def server_url_of(app_id: str) -> str | None:
    """Return the websocket URL of the server that sessions of ``app_id`` use, or ``None``.

    ``None`` means the embedded backend. An app registered with
    :func:`configure` uses its ``server_url``; any other app uses
    ``$TALKJS_SERVER_URL``.

    Raises:
        InvalidInput: ``$TALKJS_SERVER_URL`` is not a valid URL.
    """
    backend = _backends.get(app_id)
    if backend is not None:
        return backend.server_url
    remote = _environment_server_url()
    return normalize_server_url(remote) if remote else None


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
