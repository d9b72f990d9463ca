"""The realtime websocket endpoint: one ServerProtocol per connection, run on asyncio.

Sessions connect to ``/v1/{appId}/realtime`` and speak the protocol of
docs/protocol.md. Each connection authenticates its hello against the app's
secret key, then runs requests on the app's ChatService as its user, the
way the in-process transport does. It sends the user's live events, after
replaying the stored ones the client missed when it resumes.

The I/O follows the protocol module's loop: received frames, timer expiries
and service results go into the :class:`~talkjs_components.protocol.ServerProtocol`.
Its frames go into a per-connection queue that one writer task drains.
The queue is bounded (``max_queued_bytes``), so a client that reads too
slowly is closed with 4004 instead of growing the server's memory.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import secrets
import socket
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..auth import DEFAULT_LEEWAY, UserClaims, authenticate
from ..errors import AuthError, ChatError, InvalidInput, NotFound, PermissionDenied, StorageError
from ..models import ChatEvent, EventsPage, User
from ..protocol import (
    REALTIME_PATH,
    Close,
    CloseCode,
    DeleteMessage,
    EditMessage,
    ErrorCode,
    EventFrameEncoder,
    EventsAfter,
    GetConversation,
    GetUnreadsSnapshot,
    GetUsers,
    HelloReceived,
    LeaveConversation,
    ListConversations,
    ListMessages,
    MarkRead,
    OnlineUsers,
    Reauthenticate,
    Request,
    RequestReceived,
    SendMessage,
    ServerProtocol,
    ServerState,
    SetTyping,
    SyncConversation,
    SyncUser,
)
from ..service import ChatService
from ..subscription import Subscription
from .hosting import AppHost, HostedApp
from .realtime_settings import RealtimeSettings

__all__ = [
    "ConnectionStatus",
    "DrainingServer",
    "RealtimeEndpoint",
    "RealtimeSettings",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConnectionStatus:
    """A snapshot of one realtime connection, for monitoring and tests."""

    connection_id: str
    app_id: str
    user_id: str | None
    """The authenticated user, or ``None`` before the welcome."""

    state: ServerState
    in_flight: int
    """Requests running on the service for this connection."""

    queued_bytes: int
    """Frames waiting to be sent, in UTF-8 bytes."""


class _AuthFailureLog:
    """Log rejected hellos and reauthentications at WARNING, one line per app per interval."""

    def __init__(self, interval: float = 60.0) -> None:
        self.interval = interval
        # app id -> (monotonic time of the last line, failures not logged since)
        self._state: dict[str, tuple[float, int]] = {}

    def record(self, connection: _Connection, user_id: str, error: ChatError) -> None:
        now = time.monotonic()
        last_logged, suppressed = self._state.get(connection.app_id, (-self.interval, 0))
        if now - last_logged < self.interval:
            self._state[connection.app_id] = (last_logged, suppressed + 1)
            return
        self._state[connection.app_id] = (now, 0)
        logger.warning(
            "realtime connection %s from %s: authentication of user %r in app %r failed: %s "
            "(%d similar failures not logged in the last %.0f s)",
            connection.connection_id,
            connection.client,
            user_id,
            connection.app_id,
            error.code,
            suppressed,
            self.interval,
        )


class RealtimeEndpoint:
    """The realtime endpoint of a server: its route, its connections and their shutdown.

    Args:
        host: The server's apps; each connection uses the ChatService of the
            app in its URL.
        settings: Limits and timeouts; the defaults when omitted.
    """

    def __init__(self, host: AppHost, settings: RealtimeSettings | None = None) -> None:
        self.host = host
        self.settings = settings or RealtimeSettings()
        self.auth_failures = _AuthFailureLog()
        # Shared by every connection, so that a fan-out encodes each event once.
        self.event_encoder = EventFrameEncoder()
        self._connections: set[_Connection] = set()
        self._shutting_down = False

    def route(self) -> WebSocketRoute:
        """Return the Starlette route of the endpoint, at ``REALTIME_PATH``."""
        return WebSocketRoute(REALTIME_PATH, self._serve, name="realtime")

    def connections(self) -> list[ConnectionStatus]:
        """Return a snapshot of every open connection."""
        return [connection.status() for connection in self._connections]

    async def shutdown(self) -> None:
        """Close every connection with 1001 once its requests in flight have their responses.

        New connections are closed with 1001 at once. Connections whose
        requests take longer than ``drain_timeout`` are closed anyway, and
        their remaining responses are dropped. Calling it again waits for the
        same connections.
        """
        self._shutting_down = True
        connections = list(self._connections)
        if not connections:
            return
        logger.info("realtime: closing %d connections for shutdown", len(connections))
        for connection in connections:
            connection.shut_down()
        if not await _wait_finished(connections, self.settings.drain_timeout):
            for connection in connections:
                connection.close_now(
                    CloseCode.GOING_AWAY,
                    ChatError(
                        "the server is shutting down and stopped waiting for the requests in "
                        f"flight after {self.settings.drain_timeout:g} s (drain_timeout): "
                        "send them again after reconnecting",
                        code=ErrorCode.SERVER_SHUTTING_DOWN,
                    ),
                )
            await _wait_finished(connections, self.settings.close_timeout + 1)

    @property
    def shutting_down(self) -> bool:
        """Whether :meth:`shutdown` has started."""
        return self._shutting_down

    async def _serve(self, websocket: WebSocket) -> None:
        connection = _Connection(self, websocket)
        self._connections.add(connection)
        try:
            await connection.run()
        finally:
            self._connections.discard(connection)
            connection.finished.set()


async def _wait_finished(connections: list[_Connection], timeout: float) -> bool:
    """Wait until every connection finished; return ``False`` when ``timeout`` passed first."""
    try:
        async with asyncio.timeout(timeout):
            for connection in connections:
                await connection.finished.wait()
    except TimeoutError:
        return False
    return True


class _Connection:
    """One websocket: its protocol state machine, its send queue and its tasks."""

    def __init__(self, endpoint: RealtimeEndpoint, websocket: WebSocket) -> None:
        self.endpoint = endpoint
        self.websocket = websocket
        self.settings = endpoint.settings
        self.connection_id = secrets.token_hex(6)
        self.app_id = str(websocket.path_params["appId"])
        client = websocket.client
        self.client = f"{client.host}:{client.port}" if client else "an unknown address"
        self.loop = asyncio.get_running_loop()
        self.opened_at = self.loop.time()
        self.protocol = ServerProtocol(
            now=self.opened_at, limits=self.settings.limits, event_encoder=endpoint.event_encoder
        )
        self.hosted: HostedApp | None = None
        self.user_id: str | None = None
        self.subscription: Subscription | None = None
        # Live events wait here until the welcome and the replay are sent.
        # It is None once they go straight to the protocol.
        self.deferred_events: list[ChatEvent] | None = []
        self.outgoing: collections.deque[tuple[str, int] | Close] = collections.deque()
        self.queued_bytes = 0
        self.wakeup = asyncio.Event()
        self.rearm = asyncio.Event()
        # The deadline the timer task sleeps until; None while it has none.
        self.armed_deadline: float | None = None
        self.close_deadline: float | None = None
        # Loop time when the user token stops being valid, with the leeway
        # that verification allows; None for credentials that do not expire.
        self.credentials_deadline: float | None = None
        self.close_code: int | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.reader: asyncio.Task[None] | None = None
        self.finished = asyncio.Event()

    def status(self) -> ConnectionStatus:
        return ConnectionStatus(
            connection_id=self.connection_id,
            app_id=self.app_id,
            user_id=self.user_id,
            state=self.protocol.state,
            in_flight=self.protocol.in_flight,
            queued_bytes=self.queued_bytes,
        )

    # -- life cycle --------------------------------------------------------------

    async def run(self) -> None:
        await self.websocket.accept()
        logger.debug("realtime connection %s opened from %s", self.connection_id, self.client)
        if self.endpoint.shutting_down:
            self.protocol.shutdown()
        self._pump()
        writer = self.loop.create_task(self._write(), name=f"realtime-{self.connection_id}-writer")
        timer = self.loop.create_task(
            self._run_timers(), name=f"realtime-{self.connection_id}-timer"
        )
        self.reader = self.loop.create_task(
            self._read(), name=f"realtime-{self.connection_id}-reader"
        )
        try:
            await self.reader
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
            # The timer cancelled the reader: the close frame did not go out in time.
            logger.info(
                "realtime connection %s of user %r: the close did not complete within %g s; "
                "dropping the connection",
                self.connection_id,
                self.user_id,
                self.settings.close_timeout,
            )
        finally:
            timer.cancel()
            self.protocol.connection_closed()
            # Requests in flight run to their end: cancelling one could leave
            # a change stored but its event unpublished. Their responses are dropped.
            if self.tasks:
                await asyncio.gather(*self.tasks, return_exceptions=True)
            writer.cancel()
            await asyncio.gather(writer, timer, return_exceptions=True)
            if self.subscription is not None:
                self.subscription.unsubscribe()
                self.subscription = None
            if self.user_id is not None:
                logger.info(
                    "realtime connection %s of user %r in app %r closed (code %s) after %.1f s",
                    self.connection_id,
                    self.user_id,
                    self.app_id,
                    self.close_code,
                    self.loop.time() - self.opened_at,
                )

    def shut_down(self) -> None:
        """Close with 1001 once the requests in flight have their responses."""
        self.protocol.shutdown()
        self._pump()

    def close_now(self, code: CloseCode, error: ChatError | None = None) -> None:
        """Close at once, dropping the responses of requests in flight."""
        self.protocol.close(code, error)
        self._pump()

    # -- I/O tasks ---------------------------------------------------------------------

    async def _read(self) -> None:
        """Feed received frames to the protocol until the client disconnects."""
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                self.close_code = message.get("code")
                return
            now = self.loop.time()
            text = message.get("text")
            if text is not None:
                self.protocol.receive_text(text, now)
            else:
                self.protocol.receive_bytes(message.get("bytes") or b"", now)
            self._pump()

    async def _write(self) -> None:
        """Send the queued frames in order, and the close after them."""
        try:
            while True:
                while not self.outgoing:
                    self.wakeup.clear()
                    await self.wakeup.wait()
                item = self.outgoing[0]
                if isinstance(item, Close):
                    self.outgoing.popleft()
                    await self.websocket.close(item.code, item.reason)
                    return
                text, size = item
                # Counted until sent, so that a frame stuck in a full socket
                # buffer still counts towards max_queued_bytes.
                await self.websocket.send_text(text)
                self.outgoing.popleft()
                self.queued_bytes -= size
        except (WebSocketDisconnect, RuntimeError):
            # The client is gone, or the socket closed under the writer
            # (Starlette raises RuntimeError then); the reader sees the disconnect.
            return

    async def _run_timers(self) -> None:
        """Run the protocol's heartbeats and timeouts, and enforce the close timeout."""
        while True:
            # Cleared before the deadlines are read, so that a change made
            # after this point wakes the wait and is not missed.
            self.rearm.clear()
            self.armed_deadline = self._earliest_deadline()
            try:
                async with asyncio.timeout_at(self.armed_deadline):
                    await self.rearm.wait()
            except TimeoutError:
                pass
            now = self.loop.time()
            if self.close_deadline is not None and now >= self.close_deadline:
                if self.reader is not None:
                    self.reader.cancel()
                return
            if self.credentials_deadline is not None and now >= self.credentials_deadline:
                self._close_expired_credentials()
            self.protocol.handle_timer(now)
            self._pump()

    def _close_expired_credentials(self) -> None:
        """Close with 4001: a connect with the same token would be rejected now."""
        self.credentials_deadline = None
        logger.info(
            "realtime connection %s of user %r in app %r: the user token expired and no new "
            "one came; closing with 4001",
            self.connection_id,
            self.user_id,
            self.app_id,
        )
        self.close_now(
            CloseCode.AUTHENTICATION_FAILED,
            AuthError(
                "the user token of this connection expired: send a reauthenticate request "
                "with a new token before the current one expires",
                code="token_expired",
            ),
        )

    def _expire_credentials_with(self, claims: UserClaims | None) -> None:
        """Close the connection when the verified token expires; never for ``None``."""
        if claims is None or claims.expires_at is None:
            self.credentials_deadline = None
            return
        remaining = claims.expires_at + DEFAULT_LEEWAY - time.time()
        self.credentials_deadline = self.loop.time() + remaining
        self._rearm_if_earlier()

    # -- protocol output ---------------------------------------------------------------

    def _pump(self) -> None:
        """Queue the protocol's frames and close, and start tasks for its hellos and requests."""
        for frame in self.protocol.frames_to_send():
            self._enqueue(frame)
        close = self.protocol.close_to_send()
        if close is not None:
            self.outgoing.append(close)
            self.wakeup.set()
            self.close_deadline = self.loop.time() + self.settings.close_timeout
        for event in self.protocol.events_received():
            if isinstance(event, HelloReceived):
                self._start(self._handle_hello(event))
            else:
                self._start(self._handle_request(event))
        self._rearm_if_earlier()

    def _earliest_deadline(self) -> float | None:
        candidates = (self.protocol.next_deadline(), self.close_deadline, self.credentials_deadline)
        deadlines = [deadline for deadline in candidates if deadline is not None]
        return min(deadlines) if deadlines else None

    def _rearm_if_earlier(self) -> None:
        """Wake the timer task when a deadline moved before the one it sleeps until.

        A received frame usually moves the heartbeat deadline later, and the
        timer handles a deadline that moved later by waking at the old one
        and sleeping again. So most frames wake nothing. A pong after a ping
        can move the deadline earlier, and then the timer is woken. Waking the timer per
        frame took about 5% of the server's CPU in a profile under load.
        """
        deadline = self._earliest_deadline()
        if deadline is None:
            return
        if self.armed_deadline is None or deadline < self.armed_deadline:
            self.rearm.set()

    def _enqueue(self, text: str) -> None:
        size = len(text) if text.isascii() else len(text.encode())
        limit = self.settings.max_queued_bytes
        if self.queued_bytes and self.queued_bytes + size > limit and self.close_deadline is None:
            self._close_slow_consumer(
                f"{self.queued_bytes + size} bytes of frames were waiting to be sent, over the "
                f"limit of {limit} bytes (max_queued_bytes)"
            )
            return
        self.outgoing.append((text, size))
        self.queued_bytes += size
        self.wakeup.set()

    def _close_slow_consumer(self, detail: str) -> None:
        """Drop the queued frames and close with 4004: the client resumes after reconnecting."""
        logger.warning(
            "realtime connection %s of user %r closed as a slow consumer: %s",
            self.connection_id,
            self.user_id,
            detail,
        )
        # The frame being sent (the first) cannot be taken back; the rest is dropped.
        if self.outgoing and not isinstance(self.outgoing[0], Close):
            first = self.outgoing[0]
            self.outgoing.clear()
            self.outgoing.append(first)
            self.queued_bytes = first[1]
        self.deferred_events = None

        self.protocol.close(
            CloseCode.SLOW_CONSUMER,
            ChatError(
                f"the client read too slowly: {detail}; read frames as they arrive",
                code=ErrorCode.SLOW_CONSUMER,
            ),
        )

        # The error frame and the close go out even though the queue is full.
        for frame in self.protocol.frames_to_send():
            self.outgoing.append((frame, 0))
        close = self.protocol.close_to_send()
        if close is not None:
            self.outgoing.append(close)
            self.close_deadline = self.loop.time() + self.settings.close_timeout
        self.wakeup.set()
        self._rearm_if_earlier()

    def _start(self, work: Coroutine[Any, Any, None]) -> None:
        task = self.loop.create_task(work, name=f"realtime-{self.connection_id}-work")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # -- hello ---------------------------------------------------------------------------

    async def _handle_hello(self, hello: HelloReceived) -> None:
        try:
            user, latest_seq, first_page = await self._open_session(hello)
        except ChatError as error:
            if isinstance(error, AuthError | PermissionDenied | NotFound | InvalidInput):
                self.endpoint.auth_failures.record(self, hello.user_id, error)
            else:
                logger.warning(
                    "realtime connection %s of user %r: the hello failed: %s (%s)",
                    self.connection_id,
                    hello.user_id,
                    error.message,
                    error.code,
                )
            self._drop_subscription()
            self.protocol.reject(error)
            self._pump()
            return
        except Exception as exc:
            logger.exception(
                "realtime connection %s of user %r: the hello failed",
                self.connection_id,
                hello.user_id,
            )
            self._drop_subscription()
            self.protocol.reject(exc)
            self._pump()
            return

        self.protocol.accept(user, latest_seq=latest_seq, resumed=first_page is not None)
        self._pump()
        if self.protocol.state is ServerState.CLOSED:
            return
        resume = "fresh" if hello.resume_after is None else "gap"
        if first_page is not None:
            resume = f"resumed after seq {hello.resume_after}"
        logger.info(
            "realtime connection %s: user %r of app %r connected from %s (%s)",
            self.connection_id,
            self.user_id,
            self.app_id,
            self.client,
            resume,
        )
        try:
            await self._replay(first_page)
        except Exception as exc:
            logger.exception(
                "realtime connection %s of user %r: replaying stored events failed",
                self.connection_id,
                self.user_id,
            )
            self.close_now(CloseCode.INTERNAL_ERROR, exc if isinstance(exc, ChatError) else None)

    async def _open_session(self, hello: HelloReceived) -> tuple[User, int, EventsPage | None]:
        """Authenticate the hello, write or read the user, subscribe and find the resume point.

        Returns the stored user, the app's latest event seq, and the first
        page of the replay, or ``None`` when not resuming (fresh, or a gap).
        """
        if hello.app_id != self.app_id:
            raise AuthError(
                f"the hello names app {hello.app_id!r}, but this endpoint serves app "
                f"{self.app_id!r}: connect to the realtime URL of app {hello.app_id!r}",
                code="app_mismatch",
            )
        hosted = self.endpoint.host.get(self.app_id)
        if hosted is None:
            raise AuthError(
                f"app {self.app_id!r} is not served by this server: check the app id, or add "
                "the app with 'talkjs-components apps create'",
                code="app_not_found",
            )
        credentials = hello.credentials
        claims = authenticate(
            hosted.app, hello.user_id, token=credentials.token, signature=credentials.signature
        )
        self._expire_credentials_with(claims)
        service = hosted.service
        if hello.user is not None:
            user = await service.upsert_user(hello.user)
        else:
            try:
                user = await service.get_user(hello.user_id)
            except NotFound as exc:
                raise AuthError(
                    f"user {hello.user_id!r} does not exist in app {self.app_id!r}: pass "
                    "sync_user=User(...) to create it, or create it on the server first",
                    code="user_not_found",
                ) from exc
        self.hosted, self.user_id = hosted, hello.user_id
        # Subscribed before reading the log's position, so that no event
        # falls between the two: the protocol skips what the replay repeats.
        self.subscription = service.subscribe(
            hello.user_id, self._on_event, on_close=self._on_service_closed, presence=True
        )
        latest_seq = (await service.get_unreads_snapshot(hello.user_id)).as_of_event_seq
        resume_after = hello.resume_after
        if resume_after is None or resume_after > latest_seq:
            return user, latest_seq, None
        try:
            page = await service.events_after(
                hello.user_id, resume_after, limit=self.settings.replay_page_size
            )
        except ChatError as error:
            if error.code != "resume_gap":
                raise
            return user, latest_seq, None
        return user, latest_seq, page

    async def _replay(self, page: EventsPage | None) -> None:
        """Send the stored events after the resume point, then the live events held meanwhile."""
        service, user_id = self._session()
        while page is not None:
            for event in page.events:
                self.protocol.send_event(event)
            self._pump()
            if not page.has_more or self.protocol.state is ServerState.CLOSED:
                break
            page = await service.events_after(
                user_id, page.next_after_seq, limit=self.settings.replay_page_size
            )
        deferred, self.deferred_events = self.deferred_events or [], None
        for event in deferred:
            self.protocol.send_event(event)
        self._pump()

    def _on_event(self, event: ChatEvent) -> None:
        if self.deferred_events is not None:
            if len(self.deferred_events) >= self.settings.max_held_events:
                self._close_slow_consumer(
                    f"{len(self.deferred_events)} live events piled up while stored events were "
                    f"replayed, over the limit of {self.settings.max_held_events} (max_held_events)"
                )
                return
            self.deferred_events.append(event)
            return
        if self.protocol.send_event(event):
            self._pump()

    def _on_service_closed(self) -> None:
        self.subscription = None
        self.close_now(
            CloseCode.GOING_AWAY,
            ChatError(
                f"the chat service of app {self.app_id!r} closed: reconnect",
                code=ErrorCode.SERVER_SHUTTING_DOWN,
            ),
        )

    def _drop_subscription(self) -> None:
        if self.subscription is not None:
            self.subscription.unsubscribe()
            self.subscription = None

    def _session(self) -> tuple[ChatService, str]:
        assert self.hosted is not None and self.user_id is not None, "requests follow the welcome"
        return self.hosted.service, self.user_id

    # -- requests -------------------------------------------------------------------------

    async def _handle_request(self, received: RequestReceived) -> None:
        request_id, request = received.request_id, received.request
        try:
            result = await self._execute(request)
        except ChatError as error:
            if isinstance(error, StorageError):
                logger.warning(
                    "realtime connection %s of user %r: the %s request failed: %s",
                    self.connection_id,
                    self.user_id,
                    request.type,
                    error.message,
                )
            elif isinstance(error, AuthError):
                self.endpoint.auth_failures.record(self, self.user_id or "", error)
            self.protocol.send_error(request_id, error)
        except Exception as exc:
            logger.exception(
                "realtime connection %s of user %r: the %s request %r failed",
                self.connection_id,
                self.user_id,
                request.type,
                request_id,
            )
            self.protocol.send_error(request_id, exc)
        else:
            self.protocol.send_result(request_id, result)
        self._pump()

    async def _execute(self, request: Request) -> object:
        """Run a request on the service as the connection's user, like the in-process transport."""
        service, user_id = self._session()
        match request:
            case SyncUser(user=user):
                if user.id != user_id:
                    raise PermissionDenied(
                        f"session of user {user_id!r} cannot update user {user.id!r}"
                    )
                return await service.upsert_user(user)
            case GetUsers(user_ids=user_ids):
                return await service.get_users(user_ids, actor=user_id)
            case SyncConversation():
                return await service.sync_conversation(
                    user_id,
                    request.conversation_id,
                    request.attributes,
                    request.participants,
                    request.new_users,
                )
            case GetConversation(conversation_id=conversation_id):
                return await service.get_conversation(user_id, conversation_id)
            case ListConversations():
                return await service.list_conversations(user_id)
            case SendMessage():
                return await service.send_message(
                    user_id,
                    request.conversation_id,
                    request.text,
                    custom=request.custom,
                    idempotency_key=request.idempotency_key,
                )
            case ListMessages():
                return await service.list_messages(
                    user_id, request.conversation_id, limit=request.limit, before=request.before
                )
            case MarkRead(conversation_id=conversation_id, message_id=message_id):
                await service.mark_read(user_id, conversation_id, message_id)
                return None
            case EditMessage():
                return await service.edit_message(
                    user_id,
                    request.conversation_id,
                    request.message_id,
                    text=request.text,
                    custom=request.custom,
                )
            case DeleteMessage(conversation_id=conversation_id, message_id=message_id):
                await service.delete_message(user_id, conversation_id, message_id)
                return None
            case SetTyping(conversation_id=conversation_id, typing=typing):
                await service.set_typing(user_id, conversation_id, typing)
                return None
            case LeaveConversation(conversation_id=conversation_id):
                await service.remove_participant(user_id, conversation_id, user_id)
                return None
            case OnlineUsers(user_ids=user_ids):
                return await service.online_users(user_ids)
            case GetUnreadsSnapshot():
                return await service.get_unreads_snapshot(user_id)
            case EventsAfter(after_seq=after_seq, limit=limit):
                return await service.events_after(user_id, after_seq, limit=limit)
            case Reauthenticate(credentials=credentials):
                assert self.hosted is not None
                claims = authenticate(
                    self.hosted.app,
                    user_id,
                    token=credentials.token,
                    signature=credentials.signature,
                )
                self._expire_credentials_with(claims)
                return None
        raise AssertionError(f"unhandled request type {request.type!r}")


class DrainingServer(uvicorn.Server):
    """uvicorn's server, draining the realtime endpoint before uvicorn closes its websockets.

    It sets the config's ``ws_per_message_deflate`` to the endpoint's
    ``RealtimeSettings.per_message_deflate``.

    uvicorn's own shutdown closes every websocket at once with 1012, before
    the app's lifespan ends. This server first stops accepting connections,
    then lets each realtime connection respond to its requests in flight and
    close with 1001, then runs uvicorn's shutdown.
    """

    def __init__(self, config: uvicorn.Config, endpoint: RealtimeEndpoint) -> None:
        # permessage-deflate is negotiated by uvicorn, not by the ASGI app,
        # so the endpoint's setting has to reach uvicorn's config.
        config.ws_per_message_deflate = endpoint.settings.per_message_deflate
        super().__init__(config)
        self.endpoint = endpoint

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        await self.endpoint.shutdown()
        await super().shutdown(sockets)
