"""WebSocketTransport: a session's connection to a standalone chat server.

The transport speaks the realtime protocol (docs/protocol.md) over one
websocket at a time, with the ``websockets`` asyncio client. One
:class:`~talkjs_components.protocol.ClientProtocol` spans the session's
connections, so a ``send_message`` without a response when a connection drops is
sent again, with the same idempotency key, after the next welcome.

Each operation is one request awaited on its response. Errors arrive as the
same :class:`~talkjs_components.errors.ChatError` classes and codes that the
in-process transport raises, rebuilt from the server's error frames.

The server URL may list several nodes of one installation, separated by
commas. A connect tries them in turn until one sends its welcome, so a
session moves to another node when its node stops. The session then replays
what it missed from the shared event log, as after any reconnect.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar, cast
from urllib.parse import quote

from pydantic import BaseModel, ValidationError
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as open_websocket
from websockets.exceptions import ConnectionClosed, WebSocketException

from .. import embedded
from ..errors import AuthError, ChatError, ConnectionRejected, InvalidInput
from ..models import (
    ChatEvent,
    Conversation,
    ConversationAttributes,
    EventsPage,
    Message,
    MessagesPage,
    Participation,
    UnreadsSnapshot,
    User,
)
from ..protocol import (
    REALTIME_PATH,
    ClientProtocol,
    ClientState,
    Close,
    CloseCode,
    Connected,
    DeleteMessage,
    Disconnected,
    EditMessage,
    EventReceived,
    EventsAfter,
    GetConversation,
    GetUnreadsSnapshot,
    GetUsers,
    LeaveConversation,
    ListConversations,
    ListMessages,
    MarkRead,
    OnlineUsers,
    Reauthenticate,
    ReconnectPolicy,
    ReloadNeeded,
    Request,
    RequestFailed,
    ResponseReceived,
    SetTyping,
    SyncConversation,
    SyncUser,
    WireCredentials,
)
from ..protocol.codec import describe_validation_error
from ..protocol.limits import DEFAULT_HANDSHAKE_TIMEOUT
from .transport import Credentials

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "DEFAULT_OPEN_TIMEOUT",
    "WebSocketTransport",
    "realtime_url",
]

logger = logging.getLogger("talkjs_components.session")

DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
"""Largest frame accepted from the server, in bytes: 64 MiB.

Frames from the server have no protocol limit. A session replays up to 500
events per ``events_after`` page, and one event with a 20,000-character
message takes up to about 120 KB when JSON escapes every character, so one
page can reach 60 MB. The ``websockets`` default of 1 MiB would close the
connection on far smaller pages.
"""

DEFAULT_OPEN_TIMEOUT = 10.0
"""Seconds to open the TCP connection and complete the websocket handshake."""

CLOSE_TIMEOUT = 2.0
"""Seconds to wait for the server's close frame after sending one, before dropping the socket."""

_M = TypeVar("_M", bound=BaseModel)


def realtime_url(server_url: str, app_id: str) -> str:
    """Return the realtime endpoint of ``app_id`` on the chat server at ``server_url``.

    Raises:
        InvalidInput: ``server_url`` is not a valid chat server URL, or it
            lists several servers.
    """
    bases = embedded.server_urls(server_url)
    if len(bases) != 1:
        raise InvalidInput(
            f"realtime_url takes one chat server URL, not the list {server_url!r}: "
            "call it once per server"
        )
    return bases[0] + REALTIME_PATH.format(appId=quote(app_id, safe=""))


class _ServerOrder:
    """The order in which transports try the servers of one server list.

    A server that sends its welcome moves to the front, so it is tried first
    next time. A server that fails a connection attempt, or drops a
    connection after its welcome, moves to the back, so the others are tried
    before it, in their order. Every transport of this process with the same
    list shares one order, so a new session skips the servers that other
    sessions found down instead of waiting for each to fail again.
    """

    def __init__(self, urls: Sequence[str]) -> None:
        self._urls = list(urls)
        # Transports of one list can run on event loops in different threads.
        self._lock = threading.Lock()

    def current(self) -> list[str]:
        """Return the servers in the order to try them now."""
        with self._lock:
            return list(self._urls)

    def mark_working(self, url: str) -> None:
        """Move ``url`` to the front: it sent its welcome."""
        with self._lock:
            self._urls.remove(url)
            self._urls.insert(0, url)

    def mark_failed(self, url: str) -> None:
        """Move ``url`` to the back: it failed a connection attempt, or dropped a connection."""
        with self._lock:
            self._urls.remove(url)
            self._urls.append(url)


# Keyed by the normalized list as given; an order lives while a transport uses it.
_server_orders: weakref.WeakValueDictionary[tuple[str, ...], _ServerOrder] = (
    weakref.WeakValueDictionary()
)
_server_orders_lock = threading.Lock()


def _shared_order(urls: tuple[str, ...]) -> _ServerOrder:
    with _server_orders_lock:
        order = _server_orders.get(urls)
        if order is None:
            order = _ServerOrder(urls)
            _server_orders[urls] = order
        return order


class _Link:
    """One websocket connection: its socket, the callbacks of its session and its writer."""

    def __init__(
        self,
        server_url: str,
        websocket: ClientConnection,
        on_event: Callable[[ChatEvent], None],
        on_disconnect: Callable[[ChatError], None] | None,
    ) -> None:
        self.server_url = server_url
        """The websocket base URL of the server this connection goes to."""
        self.websocket = websocket
        self.on_event = on_event
        self.on_disconnect = on_disconnect
        self.welcome: asyncio.Future[User] = asyncio.get_running_loop().create_future()
        self.outgoing: collections.deque[str | Close] = collections.deque()
        self.wakeup = asyncio.Event()
        self.close: Close | None = None
        self.ended = False
        """Whether the protocol counts this connection as over."""

        self.silent = False
        """Whether the transport ended the connection itself, so on_disconnect is not called."""

        self.reader: asyncio.Task[None] | None = None
        self.writer: asyncio.Task[None] | None = None

    def enqueue(self, frames: list[str], close: Close | None) -> None:
        self.outgoing.extend(frames)
        if close is not None:
            self.close = close
            self.outgoing.append(close)
        if frames or close is not None:
            self.wakeup.set()

    async def write(self) -> None:
        """Send the queued frames in order; end after a close, or once the connection is over."""
        try:
            while True:
                while not self.outgoing:
                    if self.ended:
                        return
                    self.wakeup.clear()
                    await self.wakeup.wait()
                item = self.outgoing.popleft()
                if isinstance(item, Close):
                    await self.websocket.close(item.code, item.reason)
                    return
                await self.websocket.send(item)
        except ConnectionClosed:
            # The reader sees the same close and reports it.
            return


class WebSocketTransport:
    """Transport to a standalone chat server (``talkjs-components serve``).

    Args:
        server_url: The server's URL: ``ws://``, ``wss://``, ``http://`` or
            ``https://``, with an optional path prefix. Several nodes of one
            installation (one database and broker) are listed separated by
            commas.
        open_timeout: Seconds to open the TCP connection and the websocket,
            per server tried.
        max_message_bytes: Largest frame accepted from the server, in bytes.
        handshake_timeout: Seconds from the hello to the welcome.

    One transport serves one session: the first :meth:`connect` fixes the app
    and the user. A request made while the connection is down waits and goes
    out after the next welcome. When a connection drops, a ``send_message``
    without a response is sent again after the next welcome and stored once.
    Any other request without a response fails with ``ChatError`` code
    ``connection_lost``, because the server may have run it.

    With several servers, each connect tries them in turn until one sends
    its welcome: first the server that worked last, and a server whose
    connection dropped or that failed an attempt only after the others (see
    ``_ServerOrder``). Rejected credentials and other refusals that every node
    would repeat end the connect at once, without trying the other servers.

    Raises:
        InvalidInput: ``server_url`` is not a valid chat server URL or list.
    """

    def __init__(
        self,
        server_url: str,
        *,
        open_timeout: float = DEFAULT_OPEN_TIMEOUT,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
    ) -> None:
        self.server_urls: tuple[str, ...] = tuple(embedded.server_urls(server_url))
        """The servers' websocket base URLs, in the order given."""

        self._order = _shared_order(self.server_urls)
        self._open_timeout = open_timeout
        self._max_message_bytes = max_message_bytes
        self._handshake_timeout = handshake_timeout
        self._protocol: ClientProtocol | None = None
        self._session_key: tuple[str, str] | None = None
        self._link: _Link | None = None
        self._responses: dict[str, asyncio.Future[object]] = {}

    def __repr__(self) -> str:
        return f"WebSocketTransport({','.join(self.server_urls)!r})"

    @property
    def server_url(self) -> str:
        """The websocket base URL of the server connected to, else of the one to try first."""
        link = self._link
        if link is not None and not link.ended:
            return link.server_url
        return self._order.current()[0]

    @property
    def pending_requests(self) -> int:
        """Number of requests without a response: sent, or waiting for a connection."""
        return self._protocol.pending_requests if self._protocol is not None else 0

    @property
    def websocket(self) -> ClientConnection | None:
        """The current websocket, or ``None`` while not connected; for diagnostics and tests."""
        link = self._link
        return None if link is None or link.ended else link.websocket

    # -- connection ------------------------------------------------------------

    async def connect(
        self,
        app_id: str,
        me: User,
        credentials: Credentials,
        on_event: Callable[[ChatEvent], None],
        *,
        sync_me: bool,
        on_disconnect: Callable[[ChatError], None] | None = None,
    ) -> User:
        """Open a websocket, send the hello and wait for the welcome; return the stored user.

        A previous connection ends first, without calling its ``on_disconnect``.
        The hello does not ask the server to resume: the session replays
        what it missed with ``events_after``, as it does on every transport.
        Live events may overlap that replay, so a receiver drops a ``seq`` it
        has handled. With several servers, they are tried in turn (see the
        class documentation).

        Raises:
            AuthError: The server rejected the credentials or the user,
                with the code of the check that failed.
            ConnectionRejected: The server refused the connection for good,
                for example for an unsupported protocol version.
            ChatError: The server is unreachable (code ``connection_failed``),
                or the connection dropped before the welcome. With several
                servers: every one of them failed so (code
                ``connection_failed``, and the message names each server).
            InvalidInput: The transport serves another session's user.
        """
        protocol = self._protocol_for(app_id, me.id)
        await self._end_link()
        candidates = self._order.current()
        failures: list[str] = []
        for server_url in candidates:
            try:
                user = await self._connect_to(
                    server_url,
                    app_id,
                    protocol,
                    me,
                    credentials,
                    on_event,
                    sync_me=sync_me,
                    on_disconnect=on_disconnect,
                )
            except (AuthError, ConnectionRejected):
                # Every node serves the same apps and users, so the others
                # would reject the session too.
                raise
            except ChatError as error:
                self._order.mark_failed(server_url)
                if len(candidates) == 1:
                    raise
                failures.append(f"{server_url}: {error.message}")
                logger.debug("chat server %s failed (%s); trying the next", server_url, error)
                continue
            self._order.mark_working(server_url)
            if failures:
                logger.info(
                    "connected to the chat server at %s after %d other servers failed: %s",
                    server_url,
                    len(failures),
                    "; ".join(failures),
                )
            return user
        raise ChatError(
            f"connecting failed on each of the {len(candidates)} chat servers "
            f"({'; '.join(failures)}): start one of them, or check the server URLs",
            code="connection_failed",
        )

    async def _connect_to(
        self,
        server_url: str,
        app_id: str,
        protocol: ClientProtocol,
        me: User,
        credentials: Credentials,
        on_event: Callable[[ChatEvent], None],
        *,
        sync_me: bool,
        on_disconnect: Callable[[ChatError], None] | None,
    ) -> User:
        """Connect to one server and wait for its welcome; see :meth:`connect`."""
        url = realtime_url(server_url, app_id)
        websocket = await self._open(url)
        link = _Link(server_url, websocket, on_event, on_disconnect)
        self._link = link
        loop = asyncio.get_running_loop()
        try:
            protocol.connect(
                loop.time(),
                token=credentials.token,
                signature=credentials.signature,
                user=me if sync_me else None,
            )
            link.reader = loop.create_task(self._read(link), name="talkjs-websocket-reader")
            link.writer = loop.create_task(link.write(), name="talkjs-websocket-writer")
            self._pump()
            user = await link.welcome
        except BaseException:
            await self._end_link()
            raise
        logger.debug("connected to %s as user %r", url, me.id)
        return user

    async def close(self) -> None:
        """Close for good: requests without a response fail with code ``connection_closed``.

        A ``send_message`` that was sent may have been stored anyway.
        Calling it again does nothing.
        """
        protocol = self._protocol
        if protocol is None:
            return
        if self._link is not None:
            self._link.silent = True
        protocol.close()
        self._pump()
        await self._end_link()

    def _protocol_for(self, app_id: str, user_id: str) -> ClientProtocol:
        key = (app_id, user_id)
        if self._protocol is not None and self._protocol.state is not ClientState.CLOSED:
            assert self._session_key is not None
            if key != self._session_key:
                served_app, served_user = self._session_key
                raise InvalidInput(
                    f"this WebSocketTransport serves user {served_user!r} of app {served_app!r}, "
                    f"not user {user_id!r} of app {app_id!r}: create one transport per session"
                )
            return self._protocol
        # TalkSession replays the missed events with events_after on every
        # transport; a server-side resume as well would send each one twice.
        self._protocol = ClientProtocol(
            app_id, user_id, handshake_timeout=self._handshake_timeout, resume=False
        )
        self._session_key = key
        return self._protocol

    async def _open(self, url: str) -> ClientConnection:
        try:
            return await open_websocket(
                url,
                open_timeout=self._open_timeout,
                close_timeout=CLOSE_TIMEOUT,
                max_size=self._max_message_bytes,
                # The protocol has heartbeats of its own: the server pings a
                # quiet connection, and the client protocol closes one that
                # stays silent for idle_timeout.
                ping_interval=None,
            )
        except (OSError, TimeoutError, WebSocketException) as exc:
            raise ChatError(
                f"connecting to the chat server at {url} failed: {exc or type(exc).__name__}",
                code="connection_failed",
            ) from exc

    async def _end_link(self) -> None:
        """End the current connection, if any, without reporting it to its session."""
        link, self._link = self._link, None
        if link is None:
            return
        link.silent = True
        if not link.welcome.done():
            link.welcome.cancel()
        protocol = self._protocol
        if not link.ended and protocol is not None:
            if protocol.state in (ClientState.CONNECTING, ClientState.OPEN):
                protocol.connection_closed(CloseCode.NORMAL, "the client ended the connection")
            self._handle_events(link)
            link.ended = True
        if link.reader is not None:
            link.reader.cancel()
        if link.writer is not None:
            link.writer.cancel()
        for task in (link.reader, link.writer):
            if task is not None:
                await asyncio.gather(task, return_exceptions=True)
        close = link.close or Close(CloseCode.NORMAL, "client closed")
        # Bounded by close_timeout: after it, websockets drops the TCP connection.
        await link.websocket.close(close.code, close.reason)

    async def _read(self, link: _Link) -> None:
        """Feed received frames and timer expiries to the protocol until the connection is over."""
        protocol = self._protocol
        assert protocol is not None
        loop = asyncio.get_running_loop()
        while not link.ended:
            try:
                async with asyncio.timeout_at(protocol.next_deadline()):
                    data = await link.websocket.recv()
            except TimeoutError:
                protocol.handle_timer(loop.time())
            except ConnectionClosed as exc:
                if exc.rcvd is not None:
                    protocol.connection_closed(exc.rcvd.code, exc.rcvd.reason)
                else:
                    protocol.connection_closed(None)
            except Exception:
                # Counted as a dropped connection, so the session reconnects.
                logger.exception("reading from the chat server at %s failed", link.server_url)
                await link.websocket.close(CloseCode.INTERNAL_ERROR, "client failure")
                protocol.connection_closed(None)
            else:
                # The server sends text frames only. A binary one is decoded
                # anyway, so that the protocol's JSON checks judge it.
                text = data if isinstance(data, str) else data.decode("utf-8", "replace")
                protocol.receive_text(text, loop.time())
            self._pump()
            if protocol.state not in (ClientState.CONNECTING, ClientState.OPEN):
                link.ended = True
        link.wakeup.set()

    # -- protocol output -----------------------------------------------------------

    def _pump(self) -> None:
        """Queue the protocol's frames on the current connection and handle its events."""
        protocol = self._protocol
        if protocol is None:
            return
        frames = protocol.frames_to_send()
        close = protocol.close_to_send()
        link = self._link
        if link is not None:
            link.enqueue(frames, close)
        self._handle_events(link)

    def _handle_events(self, link: _Link | None) -> None:
        protocol = self._protocol
        assert protocol is not None
        for event in protocol.events_received():
            if isinstance(event, ResponseReceived | RequestFailed):
                future = self._responses.get(event.request_id)
                if future is None or future.done():
                    continue
                if isinstance(event, ResponseReceived):
                    future.set_result(event.result)
                else:
                    future.set_exception(event.error)
            elif link is None:
                continue
            elif isinstance(event, EventReceived):
                self._deliver(link, event.event)
            elif isinstance(event, Connected):
                if not link.welcome.done():
                    link.welcome.set_result(event.user)
            elif isinstance(event, ReloadNeeded):
                # The session replays with events_after itself, and reloads
                # when that fails with resume_gap.
                logger.debug("the server could not resume: %s", event.message)
            elif isinstance(event, Disconnected):
                self._disconnected(link, event)

    def _deliver(self, link: _Link, event: ChatEvent) -> None:
        try:
            link.on_event(event)
        except Exception:
            logger.exception("event handler failed on a %s event", event.type)

    def _disconnected(self, link: _Link, event: Disconnected) -> None:
        link.ended = True
        link.wakeup.set()
        error = event.error
        if event.policy is ReconnectPolicy.STOP and not link.silent:
            # The server ended it (a client close makes the link silent first).
            error = ConnectionRejected(error.message, code=error.code)
        if not link.welcome.done():
            link.welcome.set_exception(error)
            return
        if not link.silent:
            # Dropped after its welcome: the next connect tries the other servers first.
            self._order.mark_failed(link.server_url)
        logger.debug(
            "connection to %s closed with code %d (%s), policy %s",
            link.server_url,
            event.code,
            event.reason,
            event.policy.value,
        )
        if not link.silent and link.on_disconnect is not None:
            link.on_disconnect(error)

    # -- requests -------------------------------------------------------------------

    def _require_protocol(self) -> ClientProtocol:
        if self._protocol is None or self._protocol.state is ClientState.CLOSED:
            raise RuntimeError("the transport is not connected; call connect() first")
        return self._protocol

    async def _call(self, request: Request) -> Any:
        request_id = self._require_protocol().request(request)
        return await self._response(request_id)

    async def _response(self, request_id: str) -> Any:
        """Wait for the response to a request the protocol queued; cancelling is safe."""
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self._responses[request_id] = future
        try:
            # Sends the frame, or fails the request at once when it is too big.
            self._pump()
            return await future
        finally:
            del self._responses[request_id]

    async def reauthenticate(self, credentials: Credentials) -> None:
        wire = _build(WireCredentials, token=credentials.token, signature=credentials.signature)
        await self._call(Reauthenticate(credentials=wire))

    async def sync_user(self, user: User) -> User:
        return cast(User, await self._call(SyncUser(user=user)))

    async def get_users(self, user_ids: list[str]) -> dict[str, User]:
        result = await self._call(_build(GetUsers, user_ids=list(user_ids)))
        return cast(dict[str, User], result)

    async def sync_conversation(
        self,
        conversation_id: str,
        attributes: ConversationAttributes | None,
        participants: Mapping[str, Participation] | None,
        new_users: Sequence[User] = (),
    ) -> Conversation:
        request = _build(
            SyncConversation,
            conversation_id=conversation_id,
            attributes=attributes,
            participants=dict(participants) if participants is not None else None,
            new_users=list(new_users),
        )
        return cast(Conversation, await self._call(request))

    async def get_conversation(self, conversation_id: str) -> Conversation:
        request = _build(GetConversation, conversation_id=conversation_id)
        return cast(Conversation, await self._call(request))

    async def list_conversations(self) -> list[Conversation]:
        return cast(list[Conversation], await self._call(ListConversations()))

    async def send_message(
        self,
        conversation_id: str,
        text: str,
        *,
        custom: Mapping[str, str] | None,
        idempotency_key: str | None,
    ) -> Message:
        # The protocol picks a new idempotency key when none is given, so
        # that sending again after a reconnect stores the message once.
        request_id = self._require_protocol().send_message(
            conversation_id, text, custom=custom, idempotency_key=idempotency_key
        )
        return cast(Message, await self._response(request_id))

    async def list_messages(
        self, conversation_id: str, *, limit: int, before: str | None
    ) -> MessagesPage:
        request = _build(ListMessages, conversation_id=conversation_id, limit=limit, before=before)
        return cast(MessagesPage, await self._call(request))

    async def mark_read(self, conversation_id: str, message_id: str | None) -> None:
        await self._call(_build(MarkRead, conversation_id=conversation_id, message_id=message_id))

    async def edit_message(
        self,
        conversation_id: str,
        message_id: str,
        *,
        text: str | None,
        custom: Mapping[str, str | None] | None,
    ) -> Message:
        request = _build(
            EditMessage,
            conversation_id=conversation_id,
            message_id=message_id,
            text=text,
            custom=dict(custom) if custom is not None else None,
        )
        return cast(Message, await self._call(request))

    async def delete_message(self, conversation_id: str, message_id: str) -> None:
        await self._call(
            _build(DeleteMessage, conversation_id=conversation_id, message_id=message_id)
        )

    async def set_typing(self, conversation_id: str, typing: bool) -> None:
        await self._call(_build(SetTyping, conversation_id=conversation_id, typing=typing))

    async def leave_conversation(self, conversation_id: str) -> None:
        await self._call(_build(LeaveConversation, conversation_id=conversation_id))

    async def online_users(self, user_ids: list[str]) -> list[str]:
        result = await self._call(_build(OnlineUsers, user_ids=list(user_ids)))
        return cast(list[str], result)

    async def get_unreads_snapshot(self) -> UnreadsSnapshot:
        return cast(UnreadsSnapshot, await self._call(GetUnreadsSnapshot()))

    async def events_after(self, after_seq: int, *, limit: int) -> EventsPage:
        request = _build(EventsAfter, after_seq=after_seq, limit=limit)
        return cast(EventsPage, await self._call(request))


def _build(model: type[_M], **fields: object) -> _M:
    """Return a request model, raising ``InvalidInput`` that names the field at fault."""
    try:
        return model(**fields)
    except ValidationError as exc:
        name = getattr(model, "model_fields", {}).get("type")
        label = name.default if name is not None else model.__name__
        raise InvalidInput(describe_validation_error(exc, str(label))) from None
