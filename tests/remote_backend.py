"""A chat server with its realtime endpoint on a loopback port, run on the test's event loop.

:class:`RemoteBackend` fronts one such server with the members tests use on
an ``EmbeddedBackend`` (``app``, ``service``, ``database``, ``start()``,
``close()``), so a test runs unchanged against either. Closing it shuts the
server down the way ``talkjs-components serve`` does on SIGINT, and starting
it again serves the same database on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import uvicorn
from starlette.applications import Starlette

from talkjs_components.auth import App
from talkjs_components.server import ServerConfig, create_app
from talkjs_components.server.hosting import AppHost
from talkjs_components.server.realtime import DrainingServer, RealtimeEndpoint, RealtimeSettings
from talkjs_components.service import ChatService

from .waiting import wait_until

__all__ = ["ChatBackend", "RemoteBackend", "RunningServer", "serving_realtime"]

STARTUP_TIMEOUT = 30.0
"""Seconds uvicorn may take to start listening before the test fails."""


class ChatBackend(Protocol):
    """What session tests use of a backend: the embedded one, or a server."""

    @property
    def app(self) -> App: ...

    @property
    def service(self) -> ChatService: ...

    @property
    def database(self) -> Path: ...

    @property
    def started(self) -> bool: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class RunningServer:
    """A server running on this test's event loop."""

    base_url: str
    """``http://127.0.0.1:PORT``; the realtime endpoint is under ``ws://`` at the same address."""

    app: Starlette
    server: DrainingServer

    @property
    def host(self) -> AppHost:
        """The server's apps, to reach their chat services directly."""
        host: AppHost = self.app.state.host
        return host

    @property
    def endpoint(self) -> RealtimeEndpoint:
        """The realtime endpoint, to inspect its connections."""
        endpoint: RealtimeEndpoint = self.app.state.realtime
        return endpoint

    @property
    def websocket_url(self) -> str:
        """``ws://127.0.0.1:PORT``."""
        return "ws://" + self.base_url.removeprefix("http://")


def _listen(port: int) -> socket.socket:
    listener = socket.socket()
    # A restarted server reuses the port while old connections are in TIME_WAIT.
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    return listener


@contextlib.asynccontextmanager
async def serving_realtime(
    config: ServerConfig, *, realtime: RealtimeSettings | None = None, port: int = 0
) -> AsyncIterator[RunningServer]:
    """Serve ``create_app(config)`` with uvicorn and websockets on 127.0.0.1:``port``.

    Port 0 picks a free port. On exit the server shuts down gracefully:
    realtime connections get 1001 after their requests in flight.
    """
    async with _running(config, realtime, port) as running:
        yield running


@contextlib.asynccontextmanager
async def _running(
    config: ServerConfig, realtime: RealtimeSettings | None, port: int
) -> AsyncIterator[RunningServer]:
    app = create_app(config, realtime=realtime)
    listener = _listen(port)
    bound_port = listener.getsockname()[1]
    server = DrainingServer(
        uvicorn.Config(app, lifespan="on", access_log=False, log_config=None, log_level="warning"),
        app.state.realtime,
    )
    task = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        await wait_until(lambda: server.started or task.done(), STARTUP_TIMEOUT, "uvicorn start")
        if task.done():
            task.result()
            raise RuntimeError("uvicorn exited before it started")
        yield RunningServer(f"http://127.0.0.1:{bound_port}", app, server)
    finally:
        server.should_exit = True
        await task
        listener.close()


class RemoteBackend:
    """A server on 127.0.0.1 serving one app, with the members of an ``EmbeddedBackend``.

    Args:
        app: The app to serve, with its secret key.
        database: The server's SQLite file.
        realtime: Limits of the realtime endpoint.
    """

    def __init__(
        self, app: App, database: Path, *, realtime: RealtimeSettings | None = None
    ) -> None:
        self.app = app
        self.database = database
        self.realtime = realtime
        # Chosen once, so that sessions reconnect to the same address after a restart.
        with _listen(0) as probe:
            self.port: int = probe.getsockname()[1]
        self._stack: contextlib.AsyncExitStack | None = None
        self._running: RunningServer | None = None

    @property
    def server_url(self) -> str:
        """The URL sessions are configured with."""
        return f"ws://127.0.0.1:{self.port}"

    @property
    def running(self) -> RunningServer:
        """The current server.

        Raises:
            RuntimeError: The server is stopped.
        """
        if self._running is None:
            raise RuntimeError("the server is stopped; call start() first")
        return self._running

    @property
    def service(self) -> ChatService:
        """The current server's ChatService of the app."""
        hosted = self.running.host.get(self.app.app_id)
        assert hosted is not None
        return hosted.service

    @property
    def started(self) -> bool:
        """Whether the server is running."""
        return self._running is not None

    async def start(self) -> None:
        """Start the server on the port and database; calling it again does nothing."""
        if self._running is not None:
            return
        config = ServerConfig(apps=(self.app,), database=self.database)
        stack = contextlib.AsyncExitStack()
        self._running = await stack.enter_async_context(_running(config, self.realtime, self.port))
        self._stack = stack

    async def close(self) -> None:
        """Shut the server down gracefully; calling it again does nothing."""
        stack, self._stack, self._running = self._stack, None, None
        if stack is not None:
            await stack.aclose()
