"""TalkSession: the Python twin of TalkJS's ``Talk.Session``."""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from enum import StrEnum
from typing import Any

from ..errors import ChatError, InvalidInput, SessionDestroyed
from ..models import (
    ChatEvent,
    Conversation,
    ConversationAttributes,
    Message,
    MessageSent,
    MessagesPage,
    Participation,
    User,
)
from ..service import Subscription
from .conversation import ConversationBuilder
from .payloads import SessionMessage, to_session_message
from .transport import Credentials, InProcessTransport, Transport
from .unreads import Unreads

__all__ = ["MessageHandler", "SessionStatus", "TalkSession", "TokenFetcher"]

logger = logging.getLogger("talkjs_components.session")

TokenFetcher = Callable[[], str | Awaitable[str]]
"""Returns a fresh user token, synchronously or as an awaitable."""

MessageHandler = Callable[[SessionMessage], Any]
EventHandler = Callable[[ChatEvent], Any]

_session_ids = itertools.count(1)


class SessionStatus(StrEnum):
    """Stage in the life of a session."""

    CONNECTING = "connecting"
    READY = "ready"
    FAILED = "failed"
    DESTROYED = "destroyed"


class TalkSession:
    """A user's live connection to the chat backend.

    Create it, call :meth:`start` (or ``await`` :meth:`wait_ready`) on the
    event loop, and :meth:`destroy` it when done. Once destroyed, every method
    raises :class:`~talkjs_components.errors.SessionDestroyed`.

    Args:
        app_id: The app's id.
        me: The current user: a :class:`~talkjs_components.models.User`, whose
            set fields are written to the backend on connect, or a user id of
            an existing user.
        token: A user token (JWT) proving the user's identity.
        token_fetcher: Called for a token when none was given.
        signature: A legacy HMAC signature of the user id.
        transport: How to reach the backend; the embedded service by default.
    """

    def __init__(
        self,
        app_id: str,
        me: User | str,
        *,
        token: str | None = None,
        token_fetcher: TokenFetcher | None = None,
        signature: str | None = None,
        transport: Transport | None = None,
    ) -> None:
        if not isinstance(app_id, str) or not app_id.strip():
            raise InvalidInput(f"app_id must be a non-empty string, got {app_id!r}")
        if isinstance(me, str):
            self._sync_me = False
            me = User(id=me)
        elif isinstance(me, User):
            self._sync_me = bool(me.model_fields_set - {"id"})
        else:
            raise InvalidInput(f"me must be a User or a user id string, got {type(me).__name__}")
        self.id = next(_session_ids)
        """Number of this session within the process, for logs."""
        self.app_id = app_id
        self._me = me
        self._token = token
        self._token_fetcher = token_fetcher
        self._signature = signature
        self._transport: Transport = transport or InProcessTransport()
        self._status = SessionStatus.CONNECTING
        self._error: ChatError | None = None
        self._ready = asyncio.Event()
        self._events: asyncio.Queue[ChatEvent] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._handler_tasks: set[asyncio.Task[Any]] = set()
        self._message_handlers: list[MessageHandler] = []
        self._event_handlers: list[EventHandler] = []
        self._status_handlers: list[Callable[[SessionStatus], Any]] = []
        self._users: dict[str, User] = {}
        self.unreads = Unreads(self)
        """The user's unread conversations."""

    def __repr__(self) -> str:
        return (
            f"<TalkSession {self.id} app={self.app_id!r} user={self._me.id!r} "
            f"status={self._status.value}>"
        )

    # -- state ---------------------------------------------------------------

    @property
    def me(self) -> User:
        """The current user, as stored once connected."""
        return self._me

    @property
    def is_alive(self) -> bool:
        """Whether the session can still be used (connecting or ready)."""
        return self._status in (SessionStatus.CONNECTING, SessionStatus.READY)

    @property
    def status(self) -> SessionStatus:
        """Connection status."""
        return self._status

    @property
    def error(self) -> ChatError | None:
        """Why the session failed, when its status is ``FAILED``."""
        return self._error

    def _ensure_alive(self, operation: str) -> None:
        if not self.is_alive:
            reason = f": {self._error.message}" if self._error else ""
            raise SessionDestroyed(
                f"cannot call {operation}() on session {self.id} of user {self._me.id!r}: "
                f"it is {self._status.value}{reason}; create a new session"
            )

    # -- life cycle ----------------------------------------------------------

    def start(self) -> None:
        """Start connecting in the background; calling it again does nothing.

        Must be called on the running event loop.
        """
        self._ensure_alive("start")
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"talkjs-session-{self.id}"
            )

    async def wait_ready(self) -> None:
        """Start the session if needed and wait until it is connected.

        Raises:
            ChatError: Connecting failed, for example ``AuthError`` for invalid credentials.
            SessionDestroyed: The session was destroyed before it was ready.
        """
        self.start()
        await self._ready.wait()
        if self._status is not SessionStatus.READY:
            if self._error is not None:
                raise self._error
            self._ensure_alive("wait_ready")

    def destroy(self) -> None:
        """Disconnect and release every subscription; calling it again does nothing."""
        if self._status is SessionStatus.DESTROYED:
            return
        self._set_status(SessionStatus.DESTROYED)
        self._message_handlers.clear()
        self._event_handlers.clear()
        self._status_handlers.clear()
        self.unreads._clear()
        if self._task is not None:
            self._task.cancel()
        for task in list(self._handler_tasks):
            task.cancel()
        self._ready.set()
        logger.debug("session %s of user %r destroyed", self.id, self._me.id)

    def _set_status(self, status: SessionStatus) -> None:
        self._status = status
        for handler in list(self._status_handlers):
            try:
                handler(status)
            except Exception:
                logger.exception("status handler of session %s failed", self.id)

    def on_status_change(self, handler: Callable[[SessionStatus], Any]) -> Subscription:
        """Call ``handler`` with the new status whenever it changes (not after destroy)."""
        self._ensure_alive("on_status_change")
        self._status_handlers.append(handler)
        return Subscription(lambda: _discard(self._status_handlers, handler))

    async def _run(self) -> None:
        try:
            await self._connect()
            while True:
                event = await self._events.get()
                await self._dispatch(event)
        except asyncio.CancelledError:
            raise
        except ChatError as exc:
            self._fail(exc)
        except Exception as exc:
            logger.exception("session %s of user %r failed", self.id, self._me.id)
            self._fail(ChatError(f"session failed unexpectedly: {type(exc).__name__}"))
        finally:
            await self._transport.close()

    async def _connect(self) -> None:
        token = self._token
        if token is None and self._token_fetcher is not None:
            fetched = self._token_fetcher()
            token = await fetched if inspect.isawaitable(fetched) else fetched
        credentials = Credentials(token=token, signature=self._signature)
        self._me = await self._transport.connect(
            self.app_id, self._me, credentials, self._events.put_nowait, sync_me=self._sync_me
        )
        self._users[self._me.id] = self._me
        unreads = await self._transport.get_unreads()
        self._set_status(SessionStatus.READY)
        self._ready.set()
        logger.debug("session %s of user %r ready", self.id, self._me.id)
        self.unreads._load(unreads)

    def _fail(self, error: ChatError) -> None:
        if self._status is SessionStatus.DESTROYED:
            return
        self._error = error
        logger.error(
            "session %s of user %r in app %r failed: %s (%s)",
            self.id,
            self._me.id,
            self.app_id,
            error.message,
            error.code,
        )
        self._set_status(SessionStatus.FAILED)
        self._ready.set()

    # -- events ----------------------------------------------------------------

    def on_message(self, handler: MessageHandler) -> Subscription:
        """Call ``handler`` with each message of the user's conversations, own messages included."""
        self._ensure_alive("on_message")
        self._message_handlers.append(handler)
        return Subscription(lambda: _discard(self._message_handlers, handler))

    def on_event(self, handler: EventHandler) -> Subscription:
        """Call ``handler`` with every raw event of the user's conversations (used by the UI)."""
        self._ensure_alive("on_event")
        self._event_handlers.append(handler)
        return Subscription(lambda: _discard(self._event_handlers, handler))

    async def _dispatch(self, event: ChatEvent) -> None:
        self.unreads._apply(event, self._me.id)
        for event_handler in list(self._event_handlers):
            self._run_handler(event_handler, event, "on_event", lambda: True)
        if isinstance(event, MessageSent) and self._message_handlers:
            sender = await self._get_sender(event.message)
            payload = to_session_message(event.message, event.conversation, self._me.id, sender)
            for handler in list(self._message_handlers):
                self._run_handler(handler, payload, "on_message", self._is_subscribed(handler))

    def _is_subscribed(self, handler: MessageHandler) -> Callable[[], bool]:
        return lambda: handler in self._message_handlers

    async def _get_sender(self, message: Message) -> User | None:
        sender_id = message.sender_id
        if sender_id is None:
            return None
        if sender_id not in self._users:
            self._users.update(await self._transport.get_users([sender_id]))
        return self._users.get(sender_id)

    def _schedule_handler(
        self, handler: Callable[[Any], Any], argument: Any, name: str, active: Callable[[], bool]
    ) -> None:
        """Run ``handler(argument)`` soon on the loop, in scheduling order."""
        asyncio.get_running_loop().call_soon(self._run_handler, handler, argument, name, active)

    def _run_handler(
        self, handler: Callable[[Any], Any], argument: Any, name: str, active: Callable[[], bool]
    ) -> None:
        if not self.is_alive or not active():
            return
        try:
            result = handler(argument)
        except Exception:
            logger.exception("%s handler of session %s failed", name, self.id)
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            self._handler_tasks.add(task)
            task.add_done_callback(lambda done: self._handler_finished(done, name))

    def _handler_finished(self, task: asyncio.Future[Any], name: str) -> None:
        self._handler_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error(
                "%s handler of session %s failed", name, self.id, exc_info=task.exception()
            )

    # -- operations -------------------------------------------------------------

    async def _ready_transport(self, operation: str) -> Transport:
        self._ensure_alive(operation)
        await self.wait_ready()
        return self._transport

    def get_or_create_conversation(self, conversation_id: str) -> ConversationBuilder:
        """Return a local builder for a conversation; nothing is sent until it syncs."""
        self._ensure_alive("get_or_create_conversation")
        return ConversationBuilder(self, conversation_id)

    async def get_users(self, user_ids: list[str]) -> dict[str, User]:
        """Return the known users among ``user_ids``, from the session's cache when possible."""
        missing = [user_id for user_id in user_ids if user_id not in self._users]
        if missing:
            transport = await self._ready_transport("get_users")
            self._users.update(await transport.get_users(missing))
        return {user_id: self._users[user_id] for user_id in user_ids if user_id in self._users}

    async def sync_conversation(
        self,
        conversation_id: str,
        attributes: ConversationAttributes | None = None,
        participants: Mapping[str, Participation] | None = None,
        new_users: Sequence[User] = (),
    ) -> Conversation:
        """Create or update a conversation (the user must be, or become, a participant).

        Users in ``new_users`` that do not exist yet are created first;
        existing users are not changed.
        """
        transport = await self._ready_transport("sync_conversation")
        return await transport.sync_conversation(
            conversation_id, attributes, participants, new_users
        )

    async def get_conversation(self, conversation_id: str) -> Conversation:
        """Return a conversation the user participates in."""
        transport = await self._ready_transport("get_conversation")
        return await transport.get_conversation(conversation_id)

    async def list_conversations(self) -> list[Conversation]:
        """Return the user's conversations, most recent activity first."""
        transport = await self._ready_transport("list_conversations")
        return await transport.list_conversations()

    async def send_message(
        self,
        conversation_id: str,
        text: str,
        *,
        custom: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> Message:
        """Send a message as the user; a repeated ``idempotency_key`` returns the first message."""
        transport = await self._ready_transport("send_message")
        return await transport.send_message(
            conversation_id, text, custom=custom, idempotency_key=idempotency_key
        )

    async def list_messages(
        self, conversation_id: str, *, limit: int = 30, before: str | None = None
    ) -> MessagesPage:
        """Return up to ``limit`` messages older than ``before`` (default: newest), oldest first."""
        transport = await self._ready_transport("list_messages")
        return await transport.list_messages(conversation_id, limit=limit, before=before)

    async def mark_read(self, conversation_id: str, message_id: str | None = None) -> None:
        """Mark the conversation read up to ``message_id`` (default: the newest message)."""
        transport = await self._ready_transport("mark_read")
        await transport.mark_read(conversation_id, message_id)


def _discard(handlers: list[Any], handler: Any) -> None:
    if handler in handlers:
        handlers.remove(handler)
