"""Clients of the realtime endpoint: a full protocol client and a lean receiver.

:class:`ProtocolClient` drives the package's sans-I/O ``ClientProtocol`` over
the ``websockets`` asyncio client, as ``WebSocketTransport`` does, so its
costs are a real session's. :class:`RawReceiver` sends one hello, then only
looks for a marker in the raw text of each frame. The fan-out scenario uses
it for our server and for the raw broadcast baseline alike, so that both
pay the same receiving cost.

Both open websockets with the options ``WebSocketTransport`` uses: frames
up to 64 MiB, no websocket-level pings, and permessage-deflate offered
(the ``websockets`` default). The server accepts it only when its
``[realtime] per_message_deflate`` setting is on.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from talkjs_components.errors import ChatError
from talkjs_components.models import ChatEvent
from talkjs_components.protocol import (
    ClientProtocol,
    Connected,
    Disconnected,
    EventReceived,
    Request,
    RequestFailed,
    ResponseReceived,
)

__all__ = [
    "MAX_FRAME_BYTES",
    "FrameWatch",
    "ProtocolClient",
    "RawReceiver",
    "WatchHolder",
    "close_all",
    "close_reading",
    "connect_all",
    "hello_text",
]

MAX_FRAME_BYTES = 64 * 1024 * 1024
"""Largest frame accepted from a server, as in ``WebSocketTransport``."""

_PING_PREFIX = '{"type":"ping"'
_PONG = '{"type":"pong"}'


async def _open(url: str, timeout: float) -> ClientConnection:
    return await connect(url, open_timeout=timeout, max_size=MAX_FRAME_BYTES, ping_interval=None)


class ProtocolClient:
    """One user's session: ``ClientProtocol`` over a websocket, with awaitable requests.

    Args:
        url: The realtime endpoint, ``ws://HOST:PORT/v1/APP/realtime``.
        app_id: The app.
        user_id: The user to connect as; the user must exist.
        token: A user token of ``user_id``.
        on_event: Called with each chat event and ``time.perf_counter()`` of
            its arrival, after the protocol decoded it.
    """

    def __init__(
        self,
        url: str,
        app_id: str,
        user_id: str,
        token: str,
        on_event: Callable[[ChatEvent, float], None] | None = None,
    ) -> None:
        self.url = url
        self.user_id = user_id
        self.token = token
        self.on_event = on_event
        self.protocol = ClientProtocol(app_id, user_id, resume=False)
        self._websocket: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._connected: asyncio.Future[None] | None = None
        self._responses: dict[str, asyncio.Future[object]] = {}

    async def connect(self, timeout: float = 10.0) -> None:
        """Open the websocket and wait for the welcome.

        Raises:
            ChatError: the server rejected the hello or closed the connection.
            TimeoutError: no welcome within ``timeout`` seconds.
        """
        loop = asyncio.get_running_loop()
        self._websocket = await _open(self.url, timeout)
        self._connected = loop.create_future()
        self.protocol.connect(loop.time(), token=self.token)
        await self._flush()
        self._reader = loop.create_task(self._read(), name=f"bench-reader-{self.user_id}")
        async with asyncio.timeout(timeout):
            await self._connected

    def request_nowait(self, request: Request) -> asyncio.Future[object]:
        """Queue ``request`` and return the future of its result; :meth:`flush` sends it."""
        request_id = self.protocol.request(request)
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self._responses[request_id] = future
        return future

    async def request(self, request: Request) -> object:
        """Send ``request`` and return its result.

        Raises:
            ChatError: the server responded with an error, or the connection closed.
        """
        future = self.request_nowait(request)
        await self._flush()
        return await future

    def send_message_nowait(self, conversation_id: str, text: str) -> asyncio.Future[object]:
        """Queue a ``send_message`` with a new idempotency key; see :meth:`request_nowait`."""
        request_id = self.protocol.send_message(conversation_id, text)
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self._responses[request_id] = future
        return future

    async def flush(self) -> None:
        """Send the frames the protocol has queued."""
        await self._flush()

    async def close(self) -> None:
        """Close the session and its websocket; pending requests fail."""
        self.protocol.close()
        self._handle_events()
        with contextlib.suppress(ConnectionClosed, OSError):
            await self._flush()
        if self._websocket is not None:
            await self._websocket.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    async def _flush(self) -> None:
        assert self._websocket is not None, "connect() first"
        for frame in self.protocol.frames_to_send():
            await self._websocket.send(frame)

    async def _read(self) -> None:
        assert self._websocket is not None
        loop = asyncio.get_running_loop()
        code: int | None = None
        reason = ""
        try:
            async for text in self._websocket:
                if isinstance(text, str):
                    self.protocol.receive_text(text, loop.time())
                self._handle_events()
                await self._flush()
        except ConnectionClosed:
            pass
        if self._websocket.close_code is not None:
            code, reason = self._websocket.close_code, self._websocket.close_reason or ""
        self.protocol.connection_closed(code, reason)
        self._handle_events()

    def _handle_events(self) -> None:
        for event in self.protocol.events_received():
            if isinstance(event, EventReceived):
                if self.on_event is not None:
                    self.on_event(event.event, time.perf_counter())
            elif isinstance(event, ResponseReceived):
                future = self._responses.pop(event.request_id, None)
                if future is not None and not future.done():
                    future.set_result(event.result)
            elif isinstance(event, RequestFailed):
                future = self._responses.pop(event.request_id, None)
                if future is not None and not future.done():
                    future.set_exception(event.error)
            elif isinstance(event, Connected):
                if self._connected is not None and not self._connected.done():
                    self._connected.set_result(None)
            elif isinstance(event, Disconnected):
                if self._connected is not None and not self._connected.done():
                    self._connected.set_exception(event.error)
                for future in self._responses.values():
                    if not future.done():
                        future.set_exception(event.error)
                self._responses.clear()


def hello_text(app_id: str, user_id: str, token: str) -> str:
    """Return the hello a fresh session of ``user_id`` sends, as ``ClientProtocol`` writes it."""
    protocol = ClientProtocol(app_id, user_id, resume=False)
    protocol.connect(0.0, token=token)
    frames = protocol.frames_to_send()
    assert len(frames) == 1, "connect() queues exactly the hello"
    return frames[0]


class FrameWatch:
    """Arrival times, one per receiver, of the first frame whose text contains ``marker``."""

    def __init__(self, marker: str, expected: int) -> None:
        self.marker = marker
        self.expected = expected
        self.arrivals: list[float] = []
        self.sample: str | None = None
        """The text of the first matching frame."""
        self.done = asyncio.Event()
        self._seen: set[int] = set()

    def offer(self, receiver: object, text: str, at: float) -> None:
        """Record ``text`` if it has the marker and ``receiver`` has not matched yet."""
        if self.marker not in text or id(receiver) in self._seen:
            return
        self._seen.add(id(receiver))
        self.arrivals.append(at)
        if self.sample is None:
            self.sample = text
        if len(self.arrivals) >= self.expected:
            self.done.set()


class RawReceiver:
    """A websocket that sends one first frame, waits for one reply, then watches raw frames.

    It responds to protocol pings, so an idle connection stays open, and offers
    every frame to the current :class:`FrameWatch` of its ``watches`` holder.
    """

    def __init__(self, url: str, first_frame: str, watches: WatchHolder) -> None:
        self.url = url
        self.first_frame = first_frame
        self.watches = watches
        self.frames = 0
        self._websocket: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None

    async def connect(self, timeout: float = 30.0) -> str:
        """Open the websocket, send the first frame and return the reply (a welcome).

        Raises:
            ChatError: the reply is an error frame, or the connection closed first.
        """
        async with asyncio.timeout(timeout):
            self._websocket = await _open(self.url, timeout)
            await self._websocket.send(self.first_frame)
            try:
                reply = await self._websocket.recv()
            except ConnectionClosed as exc:
                raise ChatError(
                    f"the server closed the connection before its reply: {exc}"
                ) from exc
        text = reply if isinstance(reply, str) else reply.decode()
        if '"type":"error"' in text:
            raise ChatError(f"the server rejected the hello: {text[:300]}")
        self._reader = asyncio.get_running_loop().create_task(self._read())
        return text

    async def _read(self) -> None:
        assert self._websocket is not None
        websocket = self._websocket
        try:
            async for message in websocket:
                at = time.perf_counter()
                self.frames += 1
                text = message if isinstance(message, str) else message.decode()
                watch = self.watches.current
                if watch is not None:
                    watch.offer(self, text, at)
                if text.startswith(_PING_PREFIX):
                    await websocket.send(_PONG)
        except ConnectionClosed:
            pass

    async def send(self, text: str) -> None:
        """Send one text frame."""
        assert self._websocket is not None, "connect() first"
        await self._websocket.send(text)

    @property
    def open(self) -> bool:
        """Whether the websocket is still open."""
        return self._reader is not None and not self._reader.done()

    async def close(self) -> None:
        """Close the websocket, waiting at most a few seconds for the closing handshake."""
        await close_reading(self._websocket, self._reader)


class WatchHolder:
    """The watch that receivers currently report to; ``None`` between rounds."""

    def __init__(self) -> None:
        self.current: FrameWatch | None = None


async def connect_all(
    receivers: list[RawReceiver], concurrency: int = 50, timeout: float = 120.0
) -> None:
    """Connect ``receivers``, at most ``concurrency`` handshakes at a time.

    Raises:
        TimeoutError: they did not all connect within ``timeout`` seconds.
    """
    gate = asyncio.Semaphore(concurrency)

    async def one(receiver: RawReceiver) -> None:
        async with gate:
            await receiver.connect()

    async with asyncio.timeout(timeout):
        await asyncio.gather(*(one(receiver) for receiver in receivers))


async def close_all(clients: list[Any], concurrency: int = 200) -> None:
    """Close ``clients`` (anything with an async ``close()``), ``concurrency`` at a time."""
    gate = asyncio.Semaphore(concurrency)

    async def one(client: Any) -> None:
        async with gate:
            await client.close()

    await asyncio.gather(*(one(client) for client in clients), return_exceptions=True)


async def close_reading(
    websocket: ClientConnection | None, reader: asyncio.Task[None] | None
) -> None:
    """Close ``websocket``, waiting at most 5 s for the closing handshake, then stop ``reader``."""
    if websocket is not None:
        with contextlib.suppress(ConnectionClosed, OSError, TimeoutError):
            async with asyncio.timeout(5):
                await websocket.close()
    if reader is not None:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
