"""TalkSession: the Python twin of TalkJS's ``Talk.Session``."""

from __future__ import annotations

import asyncio
import functools
import inspect
import itertools
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .. import embedded
from ..errors import AuthError, ChatError, ConnectionRejected, InvalidInput, SessionDestroyed
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
from ..subscription import Subscription
from .backoff import Backoff
from .boxes import BoxKind, UIBox
from .conversation import ConversationBuilder
from .notifications import (
    BrowserPermissionDeniedEvent,
    BrowserPermissionNeededEvent,
    DesktopNotificationClickedEvent,
    DesktopNotifications,
)
from .payloads import SessionMessage, to_session_message
from .tokens import TokenFetcher, TokenKeeper
from .transport import Credentials, InProcessTransport, Transport
from .unreads import Unreads
from .websocket_transport import WebSocketTransport

__all__ = ["ErrorHandler", "MessageHandler", "SessionStatus", "TalkSession", "TokenFetcher"]

logger = logging.getLogger("talkjs_components.session")

MessageHandler = Callable[[SessionMessage], Any]
EventHandler = Callable[[ChatEvent], Any]
ErrorHandler = Callable[[ChatError], Any]

UNREACHABLE_CODE = "connection_failed"
"""Error code of a transport that could not reach its server; the session keeps trying."""

CONNECT_ATTEMPTS = 3
"""Connection attempts when the first fails with a token a fetcher can replace."""

REPLAY_PAGE_SIZE = 500
"""Events requested per ``events_after`` call while resuming after a reconnect."""

_session_ids = itertools.count(1)

_UNSET: Any = object()


class SessionStatus(StrEnum):
    """Stage in the life of a session."""

    CONNECTING = "connecting"
    READY = "ready"
    RECONNECTING = "reconnecting"
    """The connection dropped; the session connects again with backoff."""
    FAILED = "failed"
    DESTROYED = "destroyed"


@dataclass(frozen=True)
class _Disconnected:
    """Queue item: the connection with this number was lost."""

    connection: int
    error: ChatError


class TalkSession:
    """A user's live connection to the chat backend.

    Create it, call :meth:`start` (or ``await`` :meth:`wait_ready`) on the
    event loop, and :meth:`destroy` it when done. Once destroyed, every
    operation and subscription raises
    :class:`~talkjs_components.errors.SessionDestroyed`, and
    :meth:`has_valid_credentials` returns ``False``.

    Args:
        app_id: The app's id.
        me: The current user: a :class:`~talkjs_components.models.User`, whose
            set fields are written to the backend on connect, or a user id of
            an existing user.
        token: A user token (JWT) proving the user's identity.
        token_fetcher: Called for a token when none was given, shortly before
            the current token expires, and when the backend rejects a token.
        signature: A legacy HMAC signature of the user id.
        transport: How to reach the backend. By default, a websocket to the
            app's chat server when one is configured (``server_url`` of
            :func:`talkjs_components.embedded.configure`, or
            ``$TALKJS_SERVER_URL``), else the embedded backend.
        retry_backoff: Delays between failed token refreshes.
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
        retry_backoff: Backoff | None = None,
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
        self._backoff = retry_backoff or Backoff()
        self._tokens = TokenKeeper(token, token_fetcher, backoff=self._backoff)
        self._token_task: asyncio.Task[None] | None = None
        self._signature = signature
        self._transport: Transport = transport or _default_transport(app_id)
        self._status = SessionStatus.CONNECTING
        self._error: ChatError | None = None
        self._ready = asyncio.Event()
        # Events in delivery order, and markers of lost connections.
        self._events: asyncio.Queue[ChatEvent | _Disconnected] = asyncio.Queue()
        # Number of the latest connection, so that the marker of an earlier
        # one (lost while resuming) does not start another reconnect.
        self._connection = 0
        # The event seq this session is consistent with: the highest seq it
        # delivered, or the position of its unreads snapshot or replay.
        self._last_seq = 0
        self._task: asyncio.Task[None] | None = None
        self._handler_tasks: set[asyncio.Task[Any]] = set()
        self._message_handlers: list[MessageHandler] = []
        self._event_handlers: list[EventHandler] = []
        self._status_handlers: list[Callable[[SessionStatus], Any]] = []
        self._error_handlers: list[ErrorHandler] = []
        self._users: dict[str, User] = {}
        self._boxes: list[UIBox] = []
        self.unreads = Unreads(self)
        """The user's unread conversations."""
        self.desktop_notifications = DesktopNotifications(self)
        """Desktop notification state, shown by the page's Notifier component."""

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
        """Whether the session can still be used (connecting, ready or reconnecting)."""
        return self._status in (
            SessionStatus.CONNECTING,
            SessionStatus.READY,
            SessionStatus.RECONNECTING,
        )

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
        self._error_handlers.clear()
        self.unreads._clear()
        self.desktop_notifications._clear()
        for box in list(self._boxes):
            box.destroy()
        for task in (self._task, self._token_task):
            if task is not None:
                task.cancel()
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
                item = await self._events.get()
                if not isinstance(item, _Disconnected):
                    await self._dispatch(item)
                elif item.connection == self._connection:
                    await self._reconnect(item.error)
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
        # An unreachable server at the first connect is treated like a lost
        # connection: the session stays CONNECTING and tries again with backoff.
        attempt = 0
        while True:
            try:
                await self._open(sync_me=self._sync_me)
                break
            except ChatError as error:
                if error.code != UNREACHABLE_CODE:
                    raise
                self._report_error(error)
                await asyncio.sleep(self._backoff.delay(attempt))
                attempt += 1
        self._token_task = asyncio.get_running_loop().create_task(
            self._tokens.keep_fresh(self._reauthenticate, self._report_error),
            name=f"talkjs-session-{self.id}-tokens",
        )
        self._token_task.add_done_callback(self._token_task_done)
        snapshot = await self._transport.get_unreads_snapshot()
        # Events up to the snapshot's position are in it already; they may
        # still be in the queue, because the subscription started first.
        self._last_seq = snapshot.as_of_event_seq
        self._set_status(SessionStatus.READY)
        self._ready.set()
        logger.debug("session %s of user %r ready", self.id, self._me.id)
        self.unreads._load(snapshot)

    async def _reconnect(self, reason: ChatError) -> None:
        """Connect again with backoff, then deliver every stored event missed, each once.

        An attempt connects and then resumes. A failure in either (other than
        rejected credentials) is followed by another attempt, which resumes
        from the last event delivered.

        Raises:
            AuthError: The backend no longer accepts the credentials.
            ConnectionRejected: The server refused the connection for good.
        """
        if isinstance(reason, ConnectionRejected):
            raise reason
        self._ready.clear()
        self._set_status(SessionStatus.RECONNECTING)
        self._report_error(reason)
        attempt = 0
        while True:
            await asyncio.sleep(self._backoff.delay(attempt))
            attempt += 1
            try:
                await self._open(sync_me=False)
                await self._resume()
                break
            except (AuthError, ConnectionRejected):
                raise
            except ChatError as error:
                logger.info(
                    "session %s: reconnect attempt %d failed: %s", self.id, attempt, error.message
                )
        logger.info("session %s of user %r reconnected", self.id, self._me.id)
        self._set_status(SessionStatus.READY)
        self._ready.set()

    async def _resume(self) -> None:
        """Deliver the stored events after ``_last_seq``, oldest first, or reload on a gap.

        The subscription started before the first ``events_after`` call, so
        an event stored meanwhile comes both ways and ``_dispatch`` drops the
        second copy.
        """
        while True:
            try:
                page = await self._transport.events_after(self._last_seq, limit=REPLAY_PAGE_SIZE)
            except ChatError as error:
                if error.code != "resume_gap":
                    raise
                await self._reload(error)
                return
            for event in page.events:
                await self._dispatch(event)
            self._last_seq = max(self._last_seq, page.next_after_seq)
            if not page.has_more:
                return

    async def _reload(self, gap: ChatError) -> None:
        """Start again from a fresh unreads snapshot after events were lost for good.

        The unread list is replaced, mounted boxes are asked to reload their
        conversations, and ``on_error`` handlers receive ``gap`` (code
        ``resume_gap``), which tells the app that events were skipped.
        """
        snapshot = await self._transport.get_unreads_snapshot()
        # Assigned, not raised to the maximum: after a reset log the snapshot's
        # position is below the old one, and later events must not be dropped.
        self._last_seq = snapshot.as_of_event_seq
        self.unreads._load(snapshot)
        for box in list(self._boxes):
            box._request_reload()
        self._report_error(gap)

    async def _open(self, *, sync_me: bool) -> None:
        """Connect the transport, fetching a new token when a rejected one can be replaced."""
        tokens = self._tokens
        for attempt in range(CONNECT_ATTEMPTS):
            try:
                if tokens.token is None and tokens.has_fetcher:
                    tokens.update(token=await tokens.fetch())
                credentials = Credentials(token=tokens.token, signature=self._signature)
                self._connection += 1
                self._me = await self._transport.connect(
                    self.app_id,
                    self._me,
                    credentials,
                    self._events.put_nowait,
                    sync_me=sync_me,
                    on_disconnect=functools.partial(self._disconnected, self._connection),
                )
                break
            except AuthError as error:
                # A rejected or unobtainable token is worth another fetch when a fetcher exists.
                retryable = tokens.has_fetcher and error.code.startswith("token_")
                if not retryable or attempt + 1 == CONNECT_ATTEMPTS:
                    raise
                self._report_error(error)
                await asyncio.sleep(self._backoff.delay(attempt))
                tokens.update(token=None)
        self._users[self._me.id] = self._me

    def _disconnected(self, connection: int, error: ChatError) -> None:
        self._events.put_nowait(_Disconnected(connection, error))

    async def _reauthenticate(self, token: str) -> None:
        await self._transport.reauthenticate(Credentials(token=token, signature=self._signature))

    def _token_task_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        if isinstance(error, ChatError):
            self._fail(error)
        elif error is not None:
            logger.error("token refresh of session %s crashed", self.id, exc_info=error)
            self._fail(ChatError(f"token refresh failed unexpectedly: {type(error).__name__}"))

    def _report_error(self, error: ChatError) -> None:
        logger.warning(
            "session %s of user %r: %s (%s)", self.id, self._me.id, error.message, error.code
        )
        for handler in list(self._error_handlers):
            self._run_handler(handler, error, "on_error", lambda: True)

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
        for task in (self._task, self._token_task):
            if task is not None and task is not asyncio.current_task():
                task.cancel()

    # -- events ----------------------------------------------------------------

    def on_message(self, handler: MessageHandler) -> Subscription:
        """Call ``handler`` with each message of the user's conversations, own messages included."""
        self._ensure_alive("on_message")
        self._message_handlers.append(handler)
        return Subscription(lambda: _discard(self._message_handlers, handler))

    def on_error(self, handler: ErrorHandler) -> Subscription:
        """Call ``handler`` with each error the session recovers from, like a failed token refresh.

        An error that ends the session is not passed here: the status becomes
        ``FAILED`` and :attr:`error` contains it.
        """
        self._ensure_alive("on_error")
        self._error_handlers.append(handler)
        return Subscription(lambda: _discard(self._error_handlers, handler))

    def on_event(self, handler: EventHandler) -> Subscription:
        """Call ``handler`` with every raw event that reaches the user (used by the UI).

        These are the events of the user's conversations, and the
        ``PresenceChanged`` of every user who shares a conversation with them.
        """
        self._ensure_alive("on_event")
        self._event_handlers.append(handler)
        return Subscription(lambda: _discard(self._event_handlers, handler))

    async def _dispatch(self, event: ChatEvent) -> None:
        if event.seq is not None:
            # A stored event that was delivered before (live, or replayed after
            # a reconnect) or that the unreads snapshot reflects is skipped.
            # Events arrive in seq order, so a seq at or below the last one was
            # handled already.
            if event.seq <= self._last_seq:
                return
            self._last_seq = event.seq
        self.unreads._apply(event, self._me.id)
        for event_handler in list(self._event_handlers):
            self._run_handler(event_handler, event, "on_event", lambda: True)
        if not isinstance(event, MessageSent):
            return
        notify = self.desktop_notifications.enabled and event.message.sender_id != self._me.id
        if not self._message_handlers and not notify:
            return
        sender = await self._get_sender(event)
        if notify:
            shown = any(box.current_conversation_id == event.conversation.id for box in self._boxes)
            self.desktop_notifications._consider(event, sender, shown)
        payload = to_session_message(event.message, event.conversation, self._me.id, sender)
        for handler in list(self._message_handlers):
            self._run_handler(handler, payload, "on_message", self._is_subscribed(handler))

    def _is_subscribed(self, handler: MessageHandler) -> Callable[[], bool]:
        return lambda: handler in self._message_handlers

    async def _get_sender(self, event: MessageSent) -> User | None:
        """Return the sender of ``event``'s message, from the event itself when it carries one."""
        if event.sender is not None:
            self._users[event.sender.id] = event.sender
            return event.sender
        sender_id = event.message.sender_id
        if sender_id is None:
            return None
        if sender_id not in self._users:
            try:
                self._users.update(await self._transport.get_users([sender_id]))
            except ChatError as error:
                # A missing name is no reason to end the session: the payload gets sender None.
                logger.warning(
                    "session %s could not look up sender %r: %s", self.id, sender_id, error.message
                )
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

    def _log_handler_error(self, name: str) -> None:
        logger.exception("%s handler of session %s failed", name, self.id)

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

    def update_credentials(
        self, *, token: str | None = _UNSET, token_fetcher: TokenFetcher | None = _UNSET
    ) -> None:
        """Use a new token or token fetcher from now on, without reconnecting."""
        self._ensure_alive("update_credentials")
        self._tokens.update(token=token, fetcher=token_fetcher)

    async def has_valid_credentials(self) -> bool:
        """Return whether the backend accepts the session's current credentials.

        A rejection, or any other ``ChatError``, returns ``False`` instead of raising.
        """
        if not self.is_alive:
            return False
        try:
            await self.wait_ready()
            await self._reauthenticate_current()
        except ChatError:
            return False
        return True

    async def _reauthenticate_current(self) -> None:
        credentials = Credentials(token=self._tokens.token, signature=self._signature)
        await self._transport.reauthenticate(credentials)

    async def update_me(self, user: User) -> User:
        """Write the set fields of ``user`` (the session's own user) and return the stored user.

        Fields set to ``None`` are deleted and unset fields are left as stored.

        Raises:
            InvalidInput: ``user`` is someone else.
        """
        if user.id != self._me.id:
            raise InvalidInput(
                f"update_me() got user {user.id!r}, but the session's user is {self._me.id!r}"
            )
        transport = await self._ready_transport("update_me")
        self._me = await transport.sync_user(user)
        self._users[self._me.id] = self._me
        return self._me

    # -- UI boxes and desktop notifications ----------------------------------------

    def _register_box(self, box: UIBox) -> None:
        self._ensure_alive("create a UI box")
        self._boxes.append(box)

    def _unregister_box(self, box: UIBox) -> None:
        _discard(self._boxes, box)

    def get_chatboxes(self) -> list[UIBox]:
        """Return the mounted Chatboxes of this session."""
        return [box for box in self._boxes if box.kind is BoxKind.CHATBOX]

    def get_inboxes(self) -> list[UIBox]:
        """Return the mounted Inboxes of this session."""
        return [box for box in self._boxes if box.kind is BoxKind.INBOX]

    def get_popups(self) -> list[UIBox]:
        """Return the mounted Popups of this session."""
        return [box for box in self._boxes if box.kind is BoxKind.POPUP]

    def set_desktop_notification_enabled(self, enabled: bool) -> None:
        """Turn desktop notifications on or off for this session.

        The browser requests permission from the user on their next click or key
        press, after ``on_browser_permission_needed`` handlers ran.

        Raises:
            ChatError: The page reported notifications as unsupported or denied.
        """
        self.desktop_notifications.set_enabled(enabled)

    def on_desktop_notification_clicked(
        self, handler: Callable[[DesktopNotificationClickedEvent], Any]
    ) -> Subscription:
        """Call ``handler`` when the user clicks a desktop notification.

        With no handler, clicking selects the conversation in a mounted Inbox.
        """
        self._ensure_alive("on_desktop_notification_clicked")
        return self.desktop_notifications.on_clicked(handler)

    def on_browser_permission_needed(
        self, handler: Callable[[BrowserPermissionNeededEvent], Any]
    ) -> Subscription:
        """Call ``handler`` before the browser prompts for notification permission."""
        self._ensure_alive("on_browser_permission_needed")
        return self.desktop_notifications.on_permission_needed(handler)

    def on_browser_permission_denied(
        self, handler: Callable[[BrowserPermissionDeniedEvent], Any]
    ) -> Subscription:
        """Call ``handler`` when notification permission is refused."""
        self._ensure_alive("on_browser_permission_denied")
        return self.desktop_notifications.on_permission_denied(handler)

    # -- conversations and messages ------------------------------------------------

    def get_or_create_conversation(self, conversation_id: str) -> ConversationBuilder:
        """Return a local builder for a conversation; nothing is sent until it syncs."""
        self._ensure_alive("get_or_create_conversation")
        return ConversationBuilder(self, conversation_id)

    async def get_users(self, user_ids: list[str]) -> dict[str, User]:
        """Return the known users among ``user_ids``, from the session's cache when possible.

        Users who share no conversation with the session's user are left out.
        """
        self._ensure_alive("get_users")
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

    async def edit_message(
        self,
        conversation_id: str,
        message_id: str,
        *,
        text: str | None = None,
        custom: Mapping[str, str | None] | None = None,
    ) -> Message:
        """Edit the text or custom data of one of the user's own messages."""
        transport = await self._ready_transport("edit_message")
        return await transport.edit_message(conversation_id, message_id, text=text, custom=custom)

    async def delete_message(self, conversation_id: str, message_id: str) -> None:
        """Delete one of the user's own messages."""
        transport = await self._ready_transport("delete_message")
        await transport.delete_message(conversation_id, message_id)

    async def online_users(self, user_ids: list[str]) -> list[str]:
        """Return those of ``user_ids`` who are online; ``PresenceChanged`` events follow."""
        transport = await self._ready_transport("online_users")
        return await transport.online_users(user_ids)

    async def leave_conversation(self, conversation_id: str) -> None:
        """Remove the session's user from a conversation."""
        transport = await self._ready_transport("leave_conversation")
        await transport.leave_conversation(conversation_id)

    async def set_typing(self, conversation_id: str, typing: bool) -> None:
        """Show or clear "typing…" for the user in a conversation; it expires by itself."""
        transport = await self._ready_transport("set_typing")
        await transport.set_typing(conversation_id, typing)

    async def mark_read(self, conversation_id: str, message_id: str | None = None) -> None:
        """Mark the conversation read up to ``message_id`` (default: the newest message)."""
        transport = await self._ready_transport("mark_read")
        await transport.mark_read(conversation_id, message_id)


def _default_transport(app_id: str) -> Transport:
    """Return the transport to the app's configured chat server, else to the embedded backend."""
    server_url = embedded.server_url_of(app_id)
    if server_url is not None:
        return WebSocketTransport(server_url)
    return InProcessTransport()


def _discard(handlers: list[Any], handler: Any) -> None:
    if handler in handlers:
        handlers.remove(handler)
