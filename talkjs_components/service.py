"""ChatService: every chat operation as one typed method that authorizes, persists and publishes.

An *actor* is the party on whose behalf an operation runs: a user id, checked
against the conversation's participants, or :data:`TRUSTED` for server code
that has the app's secret key (REST calls, seeding, admin scripts).
Authorization rules:

- only participants read a conversation and its messages;
- only ReadWrite participants send messages and set their typing indicator;
- a user may edit and delete only messages they sent, and only while they are
  a ReadWrite participant;
- a user may create a conversation that includes themselves, and may change a
  conversation's attributes and participants while they are a ReadWrite
  participant;
- a user may read the profiles of users who share a conversation with them.

Checks that depend on the stored conversation run inside the store's write
transaction (the ``authorize`` callbacks of ``Store.upsert_conversation``,
``Store.insert_message``, ``Store.update_message``,
``Store.delete_message`` and ``Store.mark_read``), so a concurrent change
cannot slip in between the check and the write.

Every change a user can see is also an event in the store's event log: the
service passes a ``log_event`` callback to the write, and the store appends
the event, numbered with ``seq``, in the change's own transaction. The
recipients logged with it come from :func:`_recipients`, the rule live
delivery uses, so replay and live delivery reach the same users.
``events_after`` returns a user's logged events after a ``seq``, which is how
a client that reconnects gets every event it missed, once.

Events travel through the broker even inside one process: every operation
that changes something publishes its logged event, ``seq`` included, on the
channel ``events:{app_id}``, as JSON ``{"prevSeq": ..., "event": ...}``
where ``prevSeq`` is the ``seq`` of the app's event before it in the log.
``set_typing`` and presence changes publish events that are not logged and
have no ``seq`` or ``prevSeq``. A ``PresenceChanged`` names no conversation,
so its message also carries its recipients (``"recipients": [...]``), the
users who share a conversation with the user whose presence changed. Every
service of that app decodes each payload once and calls the local
listeners of the event's recipients. A service therefore reads nothing
from the store to deliver an event. When publishing fails after a change
was stored, the operation still succeeds and the failure is logged, because
the change and its event are durable: clients get them by replay or reload,
and other services read them from the store once a later event shows them
the gap.

Each service delivers an app's logged events to its listeners in ``seq``
order, each once, so a receiver may drop any event whose ``seq`` is not
above the last one it handled. One service publishes in ``seq`` order: each
operation publishes right after the store call returns, with no other
``await`` in between, and the store returns its writes in ``seq`` order.
Several services of one app (server nodes behind a shared broker) publish
independently, so a :class:`~talkjs_components.reorder.ReorderBuffer` puts
the events it receives back in order, using ``prevSeq``, and reads from the
store the events that do not arrive (``Limits.reorder_wait_ms``). Typing
and presence events skip it and are delivered as they arrive.

Presence is counted per service and combined across services by the
broker's :class:`~talkjs_components.broker.PresenceTracker`, which decides
when a user came online anywhere or went offline everywhere. The service
where that is decided publishes one ``PresenceChanged`` for the change.
"""

from __future__ import annotations

import enum
import functools
import itertools
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, ParamSpec, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from .broker import Broker, BrokerSubscription
from .broker.memory import MemoryBroker
from .errors import ChatError, InvalidInput, NotFound, PermissionDenied
from .models import (
    MAX_CUSTOM_FIELDS,
    MAX_ID_LENGTH,
    MAX_TEXT_LENGTH,
    AccessLevel,
    ChatEvent,
    Conversation,
    ConversationAttributes,
    ConversationEvent,
    ConversationUpdated,
    EventsPage,
    Id,
    Message,
    MessageDeleted,
    MessageEdited,
    MessageOrigin,
    MessageSent,
    MessagesPage,
    MessagesRead,
    MessageType,
    Participation,
    PresenceChanged,
    TypingChanged,
    UnreadConversation,
    UnreadsSnapshot,
    User,
    now_ms,
)
from .presence import PresenceReporter
from .reorder import ReorderBuffer
from .republish import Republisher
from .store import (
    DEFAULT_EVENT_RETENTION_MS,
    ConversationUpsert,
    ConversationWithLastMessage,
    DeletedMessage,
    InsertedMessage,
    NewEvent,
    ReadPosition,
    Store,
    UpdatedMessage,
    UserConversation,
)
from .subscription import Subscription

__all__ = [
    "MAX_NEW_USERS_PER_SYNC",
    "MAX_USERS_PER_BATCH",
    "TRUSTED",
    "TYPING_EXPIRY_MS",
    "TYPING_REPEAT_INTERVAL_MS",
    "TYPING_STATE_MAX_AGE_MS",
    "Actor",
    "ChatService",
    "Limits",
    "MessageDraft",
    "Subscription",
]

logger = logging.getLogger("talkjs_components.service")

_P = ParamSpec("_P")
_R = TypeVar("_R")
_M = TypeVar("_M", bound=BaseModel)

MAX_NEW_USERS_PER_SYNC = 20
"""Maximum number of users that one ``sync_conversation`` call may create."""

MAX_USERS_PER_BATCH = 100
"""Maximum number of users that one ``upsert_users`` call may write, as in TalkJS's REST API."""

TYPING_REPEAT_INTERVAL_MS = 3_000
"""Milliseconds after a published ``typing=True`` in which a repeat of it publishes nothing."""

TYPING_EXPIRY_MS = 8_000
"""Milliseconds after a ``typing=True`` event at which receivers turn the indicator off."""

TYPING_STATE_MAX_AGE_MS = 10_000
"""Milliseconds after which the service drops its record of a user's last ``typing=True``.

Longer than ``TYPING_EXPIRY_MS``, so that a message sent while the indicator
is still on finds the record and publishes ``typing=False``.
"""

_ID_ADAPTER: TypeAdapter[str] = TypeAdapter(Id)

_MAX_OWN_PAYLOADS = 1_000
"""Published payloads remembered until the in-process broker delivers them.

The broker delivers on the next turns of the event loop, so only the
payloads of one burst of publishes wait here. An entry over the limit is
dropped, and its payload is then decoded like any other.
"""


class _OwnPayload(NamedTuple):
    """A payload this service published, with what it encodes."""

    payload: bytes
    event: ChatEvent
    prev_seq: int | None
    recipients: Sequence[str] | None


INVALID_PAYLOAD_LOG_INTERVAL = 60.0
"""Seconds between two log lines about ignored broker payloads.

The payloads ignored in between are counted in the next line.
"""


def _describe_subject(event: ChatEvent) -> str:
    """Return what ``event`` is about, for log messages: its conversation or its user."""
    if isinstance(event, PresenceChanged):
        return f"of user {event.user_id!r}"
    return f"of conversation {event.conversation.id!r}"


class _BrokerMessage(BaseModel):
    """Message that a service publishes on the app's channel: an event and its place in the log."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    prev_seq: int | None = Field(default=None, alias="prevSeq")
    """``seq`` of the app's event before ``event`` in the log; ``None`` for an unlogged event."""
    recipients: list[str] | None = None
    """Users who receive a ``PresenceChanged``, and ``None`` for the other events.

    The other events name their conversation, whose participants are the
    recipients (:func:`_recipients`).
    """
    event: ChatEvent

    @model_validator(mode="after")
    def _check_presence_fields(self) -> _BrokerMessage:
        event = self.event
        if isinstance(event, PresenceChanged):
            if self.recipients is None:
                raise ValueError(
                    f"recipients missing for the presence_changed event of user "
                    f"{event.user_id!r}: a presence event is delivered to its recipients only"
                )
            if event.seq is not None:
                raise ValueError(
                    f"the presence_changed event of user {event.user_id!r} has seq "
                    f"{event.seq}, but presence events are not logged and have none"
                )
        elif self.recipients is not None:
            raise ValueError(
                f"recipients are set for a {self.event.type} event, whose conversation names them"
            )
        return self


def _encode_broker_message(
    event: ChatEvent, prev_seq: int | None, recipients: Sequence[str] | None = None
) -> bytes:
    """Return the JSON of a :class:`_BrokerMessage`, serializing the event only once."""
    prev = b"null" if prev_seq is None else str(prev_seq).encode()
    recipients_field = b"" if recipients is None else b',"recipients":' + _json_list(recipients)
    return (
        b'{"prevSeq":'
        + prev
        + recipients_field
        + b',"event":'
        + event.model_dump_json(by_alias=True).encode()
        + b"}"
    )


def _json_list(values: Sequence[str]) -> bytes:
    return json.dumps(list(values), separators=(",", ":")).encode()


def _monotonic_ms() -> int:
    """Return a monotonic clock in milliseconds, which the typing rate limit uses."""
    return time.monotonic_ns() // 1_000_000


class _Trusted(enum.Enum):
    TRUSTED = "trusted"


TRUSTED = _Trusted.TRUSTED
"""Actor for server-side code holding the secret key: passes every authorization check."""

Actor = str | _Trusted
"""A user id, or :data:`TRUSTED`."""


@dataclass(frozen=True)
class Limits:
    """Limits enforced by the service; docs/limits.md lists them with the model limits."""

    max_page_size: int = 100
    """Maximum messages returned by one ``list_messages`` call."""

    max_events_page_size: int = 1000
    """Maximum events returned by one ``events_after`` call."""

    event_retention_ms: int = DEFAULT_EVENT_RETENTION_MS
    """Milliseconds a logged event stays available to ``events_after``: 7 days by default.

    Older events are pruned, a few per logged write. A client whose last
    ``seq`` is older gets ``resume_gap`` and reloads instead of replaying.
    """

    reorder_wait_ms: int = 200
    """Milliseconds an event that arrived before an earlier one waits for it.

    Then the service reads the missing events from the store. Events from
    another server node normally arrive within a few milliseconds, so the
    wait only adds latency when a publish was lost.
    """

    reorder_buffer_size: int = 1000
    """Maximum events waiting for an earlier one; one more makes the service read the store."""


@dataclass(slots=True)
class _NewMessage:
    """The fields of a message to insert; satisfies ``store.NewMessage``."""

    conversation_id: str
    sender_id: str | None
    text: str
    type: MessageType
    custom: dict[str, str] = field(default_factory=dict)
    origin: MessageOrigin = MessageOrigin.WEB
    idempotency_key: str | None = None


@dataclass(frozen=True)
class MessageDraft:
    """One message of a ``send_messages`` call; the fields are those of ``send_message``."""

    text: str
    sender_id: str | None = None
    type: MessageType = MessageType.USER
    custom: Mapping[str, str] | None = None
    idempotency_key: str | None = None


class _State(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    CLOSED = "closed"


def _converting_validation_errors(
    method: Callable[_P, Coroutine[Any, Any, _R]],
) -> Callable[_P, Coroutine[Any, Any, _R]]:
    """Wrap a service method so that a pydantic ``ValidationError`` becomes ``InvalidInput``."""

    @functools.wraps(method)
    async def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return await method(*args, **kwargs)
        except ValidationError as exc:
            raise _invalid_input_from(exc) from exc

    return wrapper


class ChatService:
    """The chat domain core of one app.

    Args:
        store: The app's store. ``start()`` opens it and ``close()`` closes it.
        broker: The broker that carries events between the services of the app.
        app_id: The app's id; it names the broker channel.
        limits: Limits to enforce; the defaults of :class:`Limits` when omitted.
        owns_broker: Whether ``start()`` starts the broker and ``close()``
            closes it. Pass ``False`` for a broker shared by several services,
            and start and close it yourself.

    The service runs from ``start()`` to ``close()``. Other operations raise
    :class:`~talkjs_components.errors.ChatError` with code
    ``service_not_running`` before ``start()`` and ``service_closed`` after
    ``close()``. A closed service cannot be started again.
    """

    def __init__(
        self,
        store: Store,
        broker: Broker,
        *,
        app_id: str,
        limits: Limits | None = None,
        owns_broker: bool = True,
    ) -> None:
        self._store = store
        self._broker = broker
        self._app_id = app_id
        self._limits = limits or Limits()
        self._owns_broker = owns_broker
        self._channel = f"events:{app_id}"
        self._state = _State.NEW
        self._broker_subscription: BrokerSubscription | None = None
        self._listeners: dict[str, dict[int, Callable[[ChatEvent], None]]] = {}
        self._close_callbacks: dict[int, Callable[[], None]] = {}
        self._reorder = ReorderBuffer(
            app_id,
            self._read_app_events,
            self._dispatch_event,
            wait_ms=self._limits.reorder_wait_ms,
            max_held=self._limits.reorder_buffer_size,
            page_size=self._limits.max_events_page_size,
        )
        self._presence = PresenceReporter(
            app_id, broker.presence_tracker(app_id), self._publish_presence
        )
        self._republisher = Republisher(app_id, self._publish_payload)
        # The in-process broker hands this service back the very bytes object
        # it published, so the event need not be decoded again: decoding took
        # 6% of the server's CPU in a profile of 8 senders. Keyed by id() of
        # the payload, which the entry keeps alive, so an id is never reused.
        self._reuses_own_payloads = isinstance(broker, MemoryBroker)
        self._own_payloads: OrderedDict[int, _OwnPayload] = OrderedDict()
        # Broker payloads ignored since the last log line about them, and
        # time.monotonic() of that line (see _report_invalid_payload).
        self._invalid_payloads = 0
        self._invalid_payloads_logged_at: float | None = None
        self._listener_ids = itertools.count()
        # (conversation id, user id) -> _monotonic_ms() of the last published
        # typing=True, oldest first. Entries older than TYPING_STATE_MAX_AGE_MS
        # are dropped on every typing update, which bounds the dictionary.
        self._typing_since: OrderedDict[tuple[str, str], int] = OrderedDict()

    @property
    def app_id(self) -> str:
        """The app whose data this service manages."""
        return self._app_id

    @property
    def limits(self) -> Limits:
        """The limits this service enforces."""
        return self._limits

    # Lifecycle

    async def start(self) -> None:
        """Open the store, start the broker if the service owns it, and subscribe to events.

        Raises:
            ChatError: the service was already started or closed.
            StorageError: the store cannot be opened.
        """
        if self._state is not _State.NEW:
            raise ChatError(
                f"chat service for app '{self._app_id}' was already started: "
                "call start() once, or create a new ChatService after close()",
                code="service_already_started",
            )
        await self._store.open(event_retention_ms=self._limits.event_retention_ms)
        try:
            if self._owns_broker:
                await self._broker.start()
            self._broker_subscription = await self._broker.subscribe(
                self._channel, self._on_broker_payload, on_resubscribed=self._reorder.catch_up
            )
            # Read after subscribing: every later event arrives through the
            # broker, and sessions read the earlier ones themselves.
            self._reorder.start(await self._store.latest_event_seq())
            await self._presence.start()
        except BaseException:
            await self._reorder.close()
            await self._close_broker_and_store()
            raise
        self._state = _State.RUNNING
        logger.info("chat service started for app %r", self._app_id)

    async def check_store(self) -> None:
        """Run a trivial store query, for readiness checks.

        Raises:
            ChatError: the service is not running.
            StorageError: the store query failed.
        """
        self._require_running()
        await self._store.ping()

    async def close(self) -> None:
        """Unsubscribe from the broker, close the broker if the service owns it, close the store.

        Local listeners are dropped. Calling ``close()`` again does nothing.
        """
        if self._state is _State.CLOSED:
            return
        was_running = self._state is _State.RUNNING
        self._state = _State.CLOSED
        self._listeners.clear()
        self._typing_since.clear()
        self._own_payloads.clear()
        await self._reorder.close()
        await self._republisher.close()
        callbacks, self._close_callbacks = self._close_callbacks, {}
        for callback in callbacks.values():
            try:
                callback()
            except Exception:
                logger.exception("close callback of app %r failed", self._app_id)
        if not was_running:
            return
        await self._close_broker_and_store()
        logger.info("chat service closed for app %r", self._app_id)

    async def _close_broker_and_store(self) -> None:
        subscription, self._broker_subscription = self._broker_subscription, None
        try:
            await self._presence.close()
            if subscription is not None:
                await subscription.unsubscribe()
            if self._owns_broker:
                await self._broker.close()
        finally:
            await self._store.close()

    def _require_running(self) -> None:
        if self._state is _State.NEW:
            raise ChatError(
                f"chat service for app '{self._app_id}' is not running: "
                "call await service.start() first",
                code="service_not_running",
            )
        if self._state is _State.CLOSED:
            raise self._closed_error()

    def _closed_error(self) -> ChatError:
        return ChatError(
            f"chat service for app '{self._app_id}' is closed: create a new ChatService",
            code="service_closed",
        )

    # Users

    @_converting_validation_errors
    async def upsert_user(self, user: User) -> User:
        """Create or update a user (unset fields kept, ``None`` deletes).

        A ``custom`` key set to ``None`` is removed and the other keys are
        merged into the stored ones. No event is published, because events
        describe conversations.
        """
        self._require_running()
        user = _as_model(User, user)
        return await self._store.upsert_user(user)

    @_converting_validation_errors
    async def get_user(self, user_id: str) -> User:
        """Return a user; raise ``NotFound`` for an unknown id."""
        self._require_running()
        user_id = _check_id("user id", user_id)
        user = (await self._store.get_users([user_id])).get(user_id)
        if user is None:
            raise NotFound(f"user '{user_id}' not found: upsert the user first")
        return user

    @_converting_validation_errors
    async def get_users(
        self, user_ids: Sequence[str], *, actor: Actor = TRUSTED
    ) -> dict[str, User]:
        """Return the users among ``user_ids`` that exist and that the actor may see.

        :data:`TRUSTED` may read every user. A user actor may read their own
        profile and those of the users who share at least one conversation
        with them. Other ids are left out silently, like unknown ids, so a
        caller cannot tell a hidden user from a missing one. Runs one store
        query.
        """
        self._require_running()
        actor = _check_actor(actor)
        checked = [_check_id("user id", user_id) for user_id in user_ids]
        visible_to = None if actor is TRUSTED else actor
        return await self._store.get_users(list(dict.fromkeys(checked)), visible_to=visible_to)

    @_converting_validation_errors
    async def upsert_users(self, users: Sequence[User]) -> list[User]:
        """Create or update up to ``MAX_USERS_PER_BATCH`` users in one transaction: all or none.

        Each user merges like in ``upsert_user``. Every user is validated
        before anything is written, and a failure while writing rolls the
        whole batch back. Publishes nothing, like ``upsert_user``.

        Raises:
            InvalidInput: there are more than ``MAX_USERS_PER_BATCH`` users, an
                id is listed twice, or a user is invalid; the message names the
                user.
        """
        self._require_running()
        if len(users) > MAX_USERS_PER_BATCH:
            raise InvalidInput(
                f"the batch has {len(users)} users, over the limit of {MAX_USERS_PER_BATCH}: "
                "split it into several calls"
            )
        checked: list[User] = []
        seen: set[str] = set()
        for user in users:
            try:
                checked.append(_as_model(User, user))
            except ValidationError as exc:
                user_id = user.get("id") if isinstance(user, Mapping) else None
                raise InvalidInput(
                    f"user {_shorten(user_id)}: {_invalid_input_from(exc).message}"
                ) from exc
            if checked[-1].id in seen:
                raise InvalidInput(
                    f"user '{checked[-1].id}' is listed twice in the batch: list each user once"
                )
            seen.add(checked[-1].id)
        return await self._store.upsert_users(checked)

    @_converting_validation_errors
    async def list_users(self, *, limit: int, starting_after: str | None = None) -> list[User]:
        """Return up to ``limit`` of the app's users ordered by id, for trusted server code.

        The page contains the users whose ids sort after ``starting_after``
        (compared as UTF-8 bytes); pass the last id of a page to get the next
        one. A page shorter than ``limit`` is the last.

        Raises:
            InvalidInput: ``limit`` is outside 1 to ``limits.max_page_size``, or
                ``starting_after`` is not a valid id.
        """
        self._require_running()
        _check_limit(limit, self._limits.max_page_size)
        if starting_after is not None:
            starting_after = _check_id("startingAfter", starting_after)
        return await self._store.list_users(limit=limit, starting_after=starting_after)

    # Conversations

    @_converting_validation_errors
    async def sync_conversation(
        self,
        actor: Actor,
        conversation_id: str,
        attributes: ConversationAttributes | None = None,
        participants: Mapping[str, Participation] | None = None,
        new_users: Sequence[User] = (),
    ) -> Conversation:
        """Create or update a conversation and add or update participants.

        Attributes merge like ``upsert_user``. Listed participants are added
        or updated and the others are left as they are. Each user in
        ``new_users`` must also be listed in ``participants``, and is created
        when it does not exist yet; existing users are never changed. The
        authorization check, the new users and the conversation are written in
        one store transaction, so a rejected call creates nothing. Publishes
        ``ConversationUpdated`` when the conversation was created or changed.

        Raises:
            InvalidInput: a user in ``new_users`` is not in ``participants`` or
                is listed twice, or there are more than
                ``MAX_NEW_USERS_PER_SYNC`` of them.
            PermissionDenied: a user actor creates a conversation without
                including themselves, or changes one where they are not a
                ReadWrite participant.
            NotFound: a listed participant is neither a stored user nor in ``new_users``.
        """
        self._require_running()
        actor = _check_actor(actor)
        conversation_id = _check_id("conversation id", conversation_id)
        if attributes is not None:
            attributes = _as_model(ConversationAttributes, attributes)
        checked_participants = _check_participants(participants)
        checked_new_users = _check_new_users(new_users, checked_participants)

        result = await self._store.upsert_conversation(
            conversation_id,
            attributes,
            checked_participants,
            authorize=functools.partial(
                _authorize_sync, actor, conversation_id, checked_participants
            ),
            new_users=checked_new_users,
            log_event=_conversation_updated_event,
        )
        await self._publish_logged(result.event, result.prev_seq)
        return result.conversation

    @_converting_validation_errors
    async def get_conversation(self, actor: Actor, conversation_id: str) -> Conversation:
        """Return a conversation the actor participates in.

        Raises:
            NotFound: the conversation does not exist.
            PermissionDenied: the actor is a user who is not a participant.
        """
        self._require_running()
        actor = _check_actor(actor)
        conversation_id = _check_id("conversation id", conversation_id)
        conversation = await self._require_conversation(conversation_id)
        _require_participant(actor, conversation)
        return conversation

    @_converting_validation_errors
    async def remove_participant(
        self, actor: Actor, conversation_id: str, user_id: str
    ) -> Conversation:
        """Remove a participant (users may remove themselves).

        Other removals need :data:`TRUSTED` or a ReadWrite participant.
        Publishes ``ConversationUpdated`` with ``removed_user_ids``, which the
        removed user receives as their last event of the conversation.

        Raises:
            NotFound: the conversation does not exist or ``user_id`` is not a participant.
            PermissionDenied: the actor may not remove ``user_id``.
        """
        self._require_running()
        actor = _check_actor(actor)
        conversation_id = _check_id("conversation id", conversation_id)
        user_id = _check_id("user id", user_id)

        conversation = await self._require_conversation(conversation_id)
        if actor != user_id:
            _require_write_access(actor, conversation, "removing other participants")
        if conversation.access_of(user_id) is None:
            raise NotFound(
                f"user '{user_id}' is not a participant of conversation '{conversation_id}'"
            )
        removed = await self._store.remove_participant(
            conversation_id, user_id, log_event=functools.partial(_removal_event, user_id)
        )
        await self._publish_logged(removed.event, removed.prev_seq)
        return removed.conversation

    @_converting_validation_errors
    async def list_conversations(self, user_id: str) -> list[Conversation]:
        """Return the user's conversations, most recent activity first."""
        self._require_running()
        user_id = _check_id("user id", user_id)
        return await self._store.list_user_conversations(user_id)

    @_converting_validation_errors
    async def list_user_conversations(
        self,
        user_id: str,
        *,
        limit: int,
        starting_after: str | None = None,
        unreads_only: bool = False,
    ) -> list[UserConversation]:
        """Return a page of the user's conversations with their unread counts.

        The order is that of ``list_conversations``: most recent activity
        first. The page starts after the conversation ``starting_after``;
        pass the last id of a page to get the next one. With
        ``unreads_only``, only conversations with unread messages are
        returned. Each entry carries the latest message.

        Raises:
            InvalidInput: ``limit`` is outside 1 to ``limits.max_page_size``,
                or ``starting_after`` is not one of the user's conversations.
        """
        self._require_running()
        user_id = _check_id("user id", user_id)
        _check_limit(limit, self._limits.max_page_size)
        if starting_after is not None:
            starting_after = _check_id("startingAfter", starting_after)
        if not isinstance(unreads_only, bool):
            raise InvalidInput(f"unreads_only {unreads_only!r} is not a bool: pass True or False")
        return await self._store.list_user_conversation_page(
            user_id, limit=limit, starting_after=starting_after, unreads_only=unreads_only
        )

    @_converting_validation_errors
    async def list_all_conversations(
        self, *, limit: int, starting_after: str | None = None
    ) -> list[ConversationWithLastMessage]:
        """Return up to ``limit`` of the app's conversations ordered by id, for trusted server code.

        Paging works like ``list_users``. Each entry carries the latest message.

        Raises:
            InvalidInput: ``limit`` is outside 1 to ``limits.max_page_size``, or
                ``starting_after`` is not a valid id.
        """
        self._require_running()
        _check_limit(limit, self._limits.max_page_size)
        if starting_after is not None:
            starting_after = _check_id("startingAfter", starting_after)
        return await self._store.list_conversations(limit=limit, starting_after=starting_after)

    @_converting_validation_errors
    async def set_participant(
        self,
        actor: Actor,
        conversation_id: str,
        user_id: str,
        participation: Participation,
        *,
        existing_only: bool = False,
    ) -> Conversation:
        """Add a user to an existing conversation, or change a participant's settings.

        Unlike ``sync_conversation``, this never creates the conversation.
        The fields set in ``participation`` replace the stored ones, the
        others keep their stored values, and a new participant gets the
        defaults for them. With ``existing_only``, the user must already be a
        participant. A user actor needs ReadWrite access, as for
        ``sync_conversation``. The checks run in the store's write
        transaction. Publishes ``ConversationUpdated`` when something changed.

        Raises:
            NotFound: the conversation or the user does not exist, or, with
                ``existing_only``, the user is not a participant.
            PermissionDenied: the actor is a user without ReadWrite access.
        """
        self._require_running()
        actor = _check_actor(actor)
        conversation_id = _check_id("conversation id", conversation_id)
        user_id = _check_id("user id", user_id)
        participation = _as_model(Participation, participation)

        result = await self._store.upsert_conversation(
            conversation_id,
            None,
            {user_id: participation},
            authorize=functools.partial(
                _authorize_participant_change, actor, conversation_id, user_id, existing_only
            ),
            log_event=_conversation_updated_event,
        )
        await self._publish_logged(result.event, result.prev_seq)
        return result.conversation

    @_converting_validation_errors
    async def delete_conversation(self, actor: Actor, conversation_id: str) -> None:
        """Delete a conversation with its participants and messages; only :data:`TRUSTED` may.

        Publishes ``ConversationUpdated`` with no participants left and every
        former participant in ``removed_user_ids``, so live sessions drop the
        conversation. Deleting cannot be undone.

        Raises:
            NotFound: the conversation does not exist.
            PermissionDenied: the actor is a user.
        """
        self._require_running()
        actor = _check_actor(actor)
        conversation_id = _check_id("conversation id", conversation_id)
        if actor is not TRUSTED:
            raise PermissionDenied(
                f"user '{actor}' cannot delete conversation '{conversation_id}': only trusted "
                "server code can delete conversations; a user can leave with remove_participant"
            )

        deleted = await self._store.delete_conversation(
            conversation_id,
            authorize=functools.partial(_authorize_delete, conversation_id),
            log_event=_deletion_event,
        )
        await self._publish_logged(deleted.event, deleted.prev_seq)

    # Messages

    @_converting_validation_errors
    async def send_message(
        self,
        actor: Actor,
        conversation_id: str,
        text: str,
        *,
        sender_id: str | None = None,
        type: MessageType = MessageType.USER,
        custom: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        origin: MessageOrigin = MessageOrigin.WEB,
    ) -> Message:
        """Store a message and publish it to the conversation's participants.

        A user actor sends as themselves: ``sender_id`` may be omitted or equal
        to the actor. :data:`TRUSTED` must pass ``sender_id`` for a
        UserMessage and is the only actor that may send a SystemMessage, which
        has no sender. Sending with an ``idempotency_key`` that the same
        sender already used in the conversation returns the first message and
        publishes nothing, when text, ``custom`` and type equal the first
        message's.

        The published ``MessageSent`` carries the sender's stored user. The
        sender's access, the sender and the conversation are all read in the
        insert transaction. When ``set_typing`` marked the sender as typing in
        the conversation and the indicator has not expired, a
        ``TypingChanged`` with ``typing=False`` follows the ``MessageSent``.

        Raises:
            InvalidInput: an id, the text, ``custom`` or the key is invalid, or
                the key was already used for a different message (code
                ``idempotency_key_reused``).
            NotFound: the conversation does not exist.
            PermissionDenied: the sender is not a ReadWrite participant when
                the message is stored, or the actor may not send as
                ``sender_id`` or send a SystemMessage.
        """
        self._require_running()
        actor = _check_actor(actor)
        conversation_id = _check_id("conversation id", conversation_id)
        message_type = _check_enum(MessageType, type, "type")
        new_message = _NewMessage(
            conversation_id=conversation_id,
            sender_id=_resolve_sender(actor, sender_id, message_type),
            text=_check_text(text, message_type),
            type=message_type,
            custom=_check_custom(custom),
            origin=_check_enum(MessageOrigin, origin, "origin"),
            idempotency_key=_check_idempotency_key(idempotency_key),
        )

        inserted = await self._store.insert_message(
            new_message,
            authorize=functools.partial(_authorize_send, new_message.sender_id, conversation_id),
            log_event=_message_sent_event,
        )
        message = inserted.message
        if not inserted.created:
            _require_same_message(new_message, message)
            logger.debug(
                "idempotency key %r of conversation %r matched message %r; nothing published",
                new_message.idempotency_key,
                conversation_id,
                message.id,
            )
            return message
        await self._publish_logged(inserted.event, inserted.prev_seq)
        if message.sender_id is not None:
            await self._clear_typing(inserted.conversation, message.sender_id)
        return message

    @_converting_validation_errors
    async def send_messages(
        self,
        actor: Actor,
        conversation_id: str,
        drafts: Sequence[MessageDraft],
        *,
        origin: MessageOrigin = MessageOrigin.WEB,
    ) -> list[Message]:
        """Check several messages, then send them in order like ``send_message``.

        Every draft is checked before the first is stored: its text,
        ``custom``, key and sender, the sender's ReadWrite access, and that
        no sender uses one idempotency key twice in the batch. So an invalid
        batch stores nothing. The messages are then inserted one by one, each
        in its own transaction.

        NOTE: the batch is not one transaction. If a sender loses access, or
        the conversation is deleted, while the batch is being stored, the
        messages before that point stay stored and the call raises. Resending
        the batch with the same idempotency keys then stores only the rest.

        Raises:
            InvalidInput: a draft is invalid; the message names its position.
            NotFound: the conversation does not exist.
            PermissionDenied: a sender is not a ReadWrite participant, or the
                actor may not send a draft as its sender or type.
        """
        self._require_running()
        actor = _check_actor(actor)
        conversation_id = _check_id("conversation id", conversation_id)
        origin = _check_enum(MessageOrigin, origin, "origin")
        checked: list[_NewMessage] = []
        keys: set[tuple[str | None, str]] = set()
        for position, draft in enumerate(drafts, start=1):
            try:
                message_type = _check_enum(MessageType, draft.type, "type")
                new_message = _NewMessage(
                    conversation_id=conversation_id,
                    sender_id=_resolve_sender(actor, draft.sender_id, message_type),
                    text=_check_text(draft.text, message_type),
                    type=message_type,
                    custom=_check_custom(draft.custom),
                    origin=origin,
                    idempotency_key=_check_idempotency_key(draft.idempotency_key),
                )
            except ChatError as exc:
                raise type(exc)(
                    f"message {position} of {len(drafts)}: {exc.message}", code=exc.code
                ) from exc
            if new_message.idempotency_key is not None:
                key = (new_message.sender_id, new_message.idempotency_key)
                if key in keys:
                    raise InvalidInput(
                        f"message {position} of {len(drafts)} repeats idempotency_key "
                        f"{_shorten(key[1])} of an earlier message of the same sender: use a "
                        "new key for each message"
                    )
                keys.add(key)
            checked.append(new_message)

        conversation = await self._require_conversation(conversation_id)
        for new_message in checked:
            if new_message.sender_id is not None:
                _require_write_access(new_message.sender_id, conversation, "sending")

        return [
            await self.send_message(
                actor,
                conversation_id,
                new_message.text,
                sender_id=new_message.sender_id,
                type=new_message.type,
                custom=new_message.custom,
                idempotency_key=new_message.idempotency_key,
                origin=origin,
            )
            for new_message in checked
        ]

    @_converting_validation_errors
    async def edit_message(
        self,
        actor: Actor,
        conversation_id: str,
        message_id: str,
        *,
        text: str | None = None,
        custom: Mapping[str, str | None] | None = None,
    ) -> Message:
        """Change a message's text or ``custom`` and publish ``MessageEdited``.

        A user actor may edit only the UserMessages they sent, and only while
        they are a ReadWrite participant. :data:`TRUSTED` may edit any
        message, SystemMessages included. ``text=None`` keeps the text, and a
        new text follows the rules of ``send_message``. ``custom`` merges into
        the stored keys, and a key set to ``None`` is removed. The message's
        ``edited_at`` becomes the current time.

        An edit that changes neither the text nor ``custom`` (including a call
        with neither argument) is still authorized, but it writes nothing,
        keeps ``edited_at`` and publishes nothing. It returns the stored
        message.

        Raises:
            InvalidInput: an id, the text or ``custom`` is invalid, or the
                merged ``custom`` has more than ``MAX_CUSTOM_FIELDS`` keys.
            NotFound: the conversation does not exist, or the message is not in it.
            PermissionDenied: the actor is a user who did not send the message
                or is not a ReadWrite participant when the edit is stored.
        """
        self._require_running()
        actor = _check_actor(actor)
        conversation_id = _check_id("conversation id", conversation_id)
        message_id = _check_id("message id", message_id)
        if text is not None:
            text = _check_text_length(text)
        custom_update = _check_custom_update(custom)

        updated = await self._store.update_message(
            conversation_id,
            message_id,
            text=text,
            custom=custom_update,
            edited_at=now_ms(),
            authorize=functools.partial(_authorize_edit, actor, text),
            log_event=_message_edited_event,
        )
        if updated.changed:
            await self._publish_logged(updated.event, updated.prev_seq)
        else:
            logger.debug(
                "edit of message %r in conversation %r changed nothing; nothing published",
                message_id,
                conversation_id,
            )
        return updated.message

    @_converting_validation_errors
    async def delete_message(self, actor: Actor, conversation_id: str, message_id: str) -> None:
        """Delete a message and publish ``MessageDeleted``.

        A user actor may delete only the messages they sent, and only while
        they are a ReadWrite participant, so a user demoted to Read access can
        no longer delete their messages. :data:`TRUSTED` may delete any
        message. The message is removed from the store, as in TalkJS, and no
        longer counts as unread. Its idempotency key is freed with it, so
        sending again with that key stores a new message.

        Raises:
            InvalidInput: an id is invalid.
            NotFound: the conversation does not exist, or the message is not in it.
            PermissionDenied: the actor is a user who did not send the message
                or is not a ReadWrite participant when the deletion is stored.
        """
        self._require_running()
        actor = _check_actor(actor)
        conversation_id = _check_id("conversation id", conversation_id)
        message_id = _check_id("message id", message_id)

        deleted = await self._store.delete_message(
            conversation_id,
            message_id,
            authorize=functools.partial(_authorize_message_change, actor, "delete"),
            log_event=_message_deleted_event,
        )
        await self._publish_logged(deleted.event, deleted.prev_seq)

    @_converting_validation_errors
    async def set_typing(self, user_id: str, conversation_id: str, typing: bool) -> None:
        """Publish whether a user is typing in a conversation, as ``TypingChanged``.

        Nothing is stored. The event goes to every participant, the typist
        included, and receivers skip their own user's events. A
        ``typing=True`` event expires ``TYPING_EXPIRY_MS`` after it is sent,
        so clients call this again while the user keeps typing. A repeat of
        ``typing=True`` within ``TYPING_REPEAT_INTERVAL_MS`` of the last
        published one publishes nothing, and ``typing=False`` always
        publishes. Each call reads the conversation from the store once.

        The repeat interval is tracked per service. A user whose sessions
        are on two services (server nodes) of the app may therefore have
        ``typing=True`` published once per node within the interval. That is
        harmless: the limit only bounds how often one node republishes, a
        repeat merely extends the indicator, and receivers also clear it on
        the typist's ``MessageSent``, which a node without the record does
        not follow with ``typing=False``.

        Raises:
            InvalidInput: an id is invalid or ``typing`` is not a bool.
            NotFound: the conversation does not exist.
            PermissionDenied: the user is not a ReadWrite participant.
        """
        self._require_running()
        user_id = _check_id("user id", user_id)
        conversation_id = _check_id("conversation id", conversation_id)
        if not isinstance(typing, bool):
            raise InvalidInput(f"typing {typing!r} is not a bool: pass True or False")

        conversation = await self._require_conversation(conversation_id)
        _require_write_access(user_id, conversation, "typing")

        # No await from here to the publish, so concurrent calls for one user
        # see each other's entries and only one of them publishes.
        now = _monotonic_ms()
        self._forget_old_typing(now)
        key = (conversation_id, user_id)
        if not typing:
            self._typing_since.pop(key, None)
            await self._publish_typing(conversation, user_id, typing=False)
            return
        last_published = self._typing_since.get(key)
        if last_published is not None and now - last_published < TYPING_REPEAT_INTERVAL_MS:
            return
        self._typing_since[key] = now
        self._typing_since.move_to_end(key)
        await self._publish_typing(conversation, user_id, typing=True)

    async def _clear_typing(self, conversation: Conversation, user_id: str) -> None:
        """Publish ``typing=False`` for a user whose typing indicator is still on."""
        now = _monotonic_ms()
        self._forget_old_typing(now)
        last_published = self._typing_since.pop((conversation.id, user_id), None)
        if last_published is None or now - last_published >= TYPING_EXPIRY_MS:
            return
        await self._publish_typing(conversation, user_id, typing=False)

    def _forget_old_typing(self, now: int) -> None:
        # Entries are ordered by time because each update moves its entry to
        # the end and the clock is monotonic.
        while self._typing_since:
            key, last_published = next(iter(self._typing_since.items()))
            if now - last_published < TYPING_STATE_MAX_AGE_MS:
                return
            del self._typing_since[key]

    async def _publish_typing(
        self, conversation: Conversation, user_id: str, *, typing: bool
    ) -> None:
        sent_at = now_ms()
        await self._publish(
            TypingChanged(
                conversation=conversation,
                user_id=user_id,
                typing=typing,
                expires_at=sent_at + TYPING_EXPIRY_MS if typing else sent_at,
            )
        )

    @_converting_validation_errors
    async def list_messages(
        self, actor: Actor, conversation_id: str, *, limit: int = 30, before: str | None = None
    ) -> MessagesPage:
        """Return a page of messages, oldest first.

        The page contains the newest ``limit`` messages older than the message
        ``before`` (or the newest messages without it). Pass the first
        message's id as ``before`` to fetch the previous page.

        Raises:
            InvalidInput: ``limit`` is outside 1 to ``limits.max_page_size``.
            NotFound: the conversation or the message ``before`` does not exist.
            PermissionDenied: the actor is a user who is not a participant.
        """
        self._require_running()
        actor = _check_actor(actor)
        conversation_id = _check_id("conversation id", conversation_id)
        _check_limit(limit, self._limits.max_page_size)
        if before is not None:
            before = _check_id("message id", before)

        conversation = await self._require_conversation(conversation_id)
        _require_participant(actor, conversation)
        return await self._store.list_messages(
            conversation_id, limit=limit, before_message_id=before
        )

    @_converting_validation_errors
    async def get_message(self, actor: Actor, conversation_id: str, message_id: str) -> Message:
        """Return one message of a conversation the actor participates in.

        Raises:
            NotFound: the conversation does not exist, or the message is not in it.
            PermissionDenied: the actor is a user who is not a participant.
        """
        self._require_running()
        actor = _check_actor(actor)
        conversation_id = _check_id("conversation id", conversation_id)
        message_id = _check_id("message id", message_id)

        conversation = await self._require_conversation(conversation_id)
        _require_participant(actor, conversation)
        message = await self._store.get_message(conversation_id, message_id)
        if message is None:
            raise NotFound(
                f"message '{message_id}' not found in conversation '{conversation_id}': "
                "it was deleted, or its id belongs to another conversation"
            )
        return message

    # Read positions

    @_converting_validation_errors
    async def mark_read(
        self, user_id: str, conversation_id: str, message_id: str | None = None
    ) -> None:
        """Mark the conversation read up to ``message_id`` (default: the newest).

        The read position never moves backwards. Publishes ``MessagesRead``
        only when the position moved. Any participant may mark read; the
        check, the move and the event's participant list are all read in one
        write transaction.

        Raises:
            NotFound: the conversation or the message does not exist.
            PermissionDenied: the user is not a participant.
        """
        self._require_running()
        user_id = _check_id("user id", user_id)
        conversation_id = _check_id("conversation id", conversation_id)
        if message_id is not None:
            message_id = _check_id("message id", message_id)

        position = await self._store.mark_read(
            conversation_id,
            user_id,
            message_id,
            authorize=functools.partial(_authorize_read, user_id, conversation_id),
            log_event=functools.partial(_messages_read_event, user_id),
        )
        await self._publish_logged(position.event, position.prev_seq)

    @_converting_validation_errors
    async def events_after(self, user_id: str, after_seq: int, *, limit: int = 100) -> EventsPage:
        """Return the user's logged events with ``seq`` above ``after_seq``, oldest first.

        A client resumes with this after a reconnect: it passes the last
        ``seq`` it handled (or an ``UnreadsSnapshot``'s ``as_of_event_seq``)
        and gets every stored event it missed, each once, in the order they
        happened. These are the events live delivery sends to the user: of
        the conversations the user took part in when each event happened, and
        the ``ConversationUpdated`` that removed them. A user's numbers
        increase but skip the app's other events. When ``has_more`` is true,
        call again with ``next_after_seq``. Typing and presence events are
        not stored and never come back.

        Raises:
            InvalidInput: ``after_seq`` is negative or not an integer, or
                ``limit`` is outside 1 to ``limits.max_events_page_size``.
            ChatError: code ``resume_gap`` when events after ``after_seq`` were
                pruned (``limits.event_retention_ms``) or ``after_seq`` is
                beyond the log's end. Reload the unreads snapshot and the
                open conversations, then resume after the snapshot's
                ``as_of_event_seq``.
        """
        self._require_running()
        user_id = _check_id("user id", user_id)
        if isinstance(after_seq, bool) or not isinstance(after_seq, int) or after_seq < 0:
            raise InvalidInput(
                f"after_seq {after_seq!r} is invalid: pass 0 or the seq of an event "
                "or snapshot you received"
            )
        _check_limit(limit, self._limits.max_events_page_size)
        return await self._store.events_after(user_id, after_seq, limit=limit)

    @_converting_validation_errors
    async def get_unreads_snapshot(self, user_id: str) -> UnreadsSnapshot:
        """Return the user's unreads with the event ``seq`` they are consistent with.

        A session subscribes first and takes this snapshot second. It skips
        the events up to ``as_of_event_seq``, which the snapshot already
        reflects, and resumes after it with ``events_after``.
        """
        self._require_running()
        user_id = _check_id("user id", user_id)
        return await self._store.get_unreads_snapshot(user_id)

    @_converting_validation_errors
    async def get_unreads(self, user_id: str) -> list[UnreadConversation]:
        """Return the user's conversations with unread messages, most recent first."""
        self._require_running()
        user_id = _check_id("user id", user_id)
        return await self._store.get_unreads(user_id)

    # Events

    def listener_count(self, user_id: str | None = None) -> int:
        """Return how many listeners are subscribed, for ``user_id`` or for all users."""
        if user_id is not None:
            return len(self._listeners.get(user_id, {}))
        return sum(len(listeners) for listeners in self._listeners.values())

    async def online_users(self, user_ids: Sequence[str]) -> list[str]:
        """Return those of ``user_ids`` with a session subscribed with ``presence=True``.

        Sessions on this service count at once. Those on other services of
        the app count through the broker's presence tracker. When the
        tracker fails, only this service's sessions count, and the failure
        is logged.
        """
        return await self._presence.online(user_ids)

    async def flush_presence(self) -> None:
        """Wait until the presence changes of the subscriptions so far are published.

        ``subscribe(presence=True)`` and ending such a subscription publish
        ``PresenceChanged`` in the background; tests and orderly shutdowns
        wait for it here. Returns at once when the service is not running.
        """
        if self._state is _State.RUNNING:
            await self._presence.flush()

    async def _publish_presence(self, user_id: str, online: bool) -> None:
        """Publish one ``PresenceChanged`` to every user who shares a conversation with the user."""
        try:
            conversations = await self._store.list_user_conversations(user_id)
        except ChatError as exc:
            logger.warning("presence of user %r not published: %s", user_id, exc.message)
            return
        recipients = list(
            dict.fromkeys(
                participant
                for conversation in conversations
                for participant in conversation.participants
            )
        )
        # The user is a participant of each of these conversations, so the
        # list is empty only when the user is in no conversation.
        if recipients:
            await self._publish(
                PresenceChanged(user_id=user_id, online=online), recipients=recipients
            )

    def subscribe(
        self,
        user_id: str,
        listener: Callable[[ChatEvent], None],
        *,
        on_close: Callable[[], None] | None = None,
        presence: bool = False,
    ) -> Subscription:
        """Call ``listener`` with every event of the user's conversations.

        The listener runs on the event loop, receives one user's logged
        events in ``seq`` order, each once, and also receives the
        ``ConversationUpdated`` that removes the user from a conversation.
        Typing and presence events arrive as they are published. A listener
        that raises is logged and does not affect the other listeners.
        Listeners may be added before ``start()``. ``on_close`` is called
        once if the service closes while the subscription is active. With
        ``presence``, the subscription counts as the user being online: when
        the user had no such subscription on any service of the app, one
        ``PresenceChanged(online=True)`` is published to every user who
        shares a conversation with the user, the user included, and when
        the last one anywhere ends, ``online=False``. Nothing is published
        for a user in no conversation. Each service publishes the changes it
        decides in the order they happened.

        Raises:
            InvalidInput: ``user_id`` is not a valid id.
            ChatError: the service is closed.
        """
        if self._state is _State.CLOSED:
            raise self._closed_error()
        user_id = _check_id("user id", user_id)
        listener_id = next(self._listener_ids)
        self._listeners.setdefault(user_id, {})[listener_id] = listener
        if presence:
            self._presence.add(user_id, listener_id)
        if on_close is not None:
            self._close_callbacks[listener_id] = on_close
        return Subscription(functools.partial(self._remove_listener, user_id, listener_id))

    def _remove_listener(self, user_id: str, listener_id: int) -> None:
        self._close_callbacks.pop(listener_id, None)
        listeners = self._listeners.get(user_id)
        if listeners is None:
            return
        listeners.pop(listener_id, None)
        if not listeners:
            del self._listeners[user_id]
        self._presence.remove(user_id, listener_id)

    async def _publish_logged(self, event: ChatEvent | None, prev_seq: int | None) -> None:
        """Publish the event a store write logged; ``None`` (nothing logged) publishes nothing."""
        if event is not None:
            await self._publish(event, prev_seq)

    async def _publish(
        self,
        event: ChatEvent,
        prev_seq: int | None = None,
        *,
        recipients: Sequence[str] | None = None,
    ) -> None:
        """Publish ``event`` on the app's channel, with ``recipients`` for a ``PresenceChanged``.

        ``recipients`` is required for a ``PresenceChanged`` and allowed for no other event.

        Raises:
            ValueError: ``recipients`` is missing for a ``PresenceChanged``, or set for
                another event.
        """
        if isinstance(event, PresenceChanged) != (recipients is not None):
            raise ValueError(
                f"recipients {'missing' if recipients is None else 'set'} for a {event.type} "
                "event: pass them for presence_changed only"
            )
        payload = _encode_broker_message(event, prev_seq, recipients)
        if self._reuses_own_payloads:
            self._own_payloads[id(payload)] = _OwnPayload(payload, event, prev_seq, recipients)
            if len(self._own_payloads) > _MAX_OWN_PAYLOADS:
                self._own_payloads.popitem(last=False)
        try:
            await self._publish_payload(payload)
        except Exception:
            self._own_payloads.pop(id(payload), None)
            # The change and its event are already stored, so the operation
            # succeeded. Only the live update is delayed: other services read
            # a logged event from the store once a later event shows them the
            # gap, and the republisher publishes the newest one again. Typing
            # and presence events are not logged, and are lost.
            logger.exception(
                "publishing %s %s on channel %r failed; %s",
                event.type,
                _describe_subject(event),
                self._channel,
                "publishing it again later" if event.seq is not None else "listeners miss it",
            )
            if event.seq is not None:
                self._republisher.failed(event.seq, payload)
            return
        if event.seq is not None:
            self._republisher.published(event.seq)

    async def _publish_payload(self, payload: bytes) -> None:
        await self._broker.publish(self._channel, payload)

    def _on_broker_payload(self, payload: bytes) -> None:
        if self._state is _State.CLOSED:
            return
        own = self._own_payloads.pop(id(payload), None)
        if own is not None and own.payload is payload:
            event, prev_seq, recipients = own.event, own.prev_seq, own.recipients
        else:
            try:
                message = _BrokerMessage.model_validate_json(payload)
            except ValidationError as exc:
                self._report_invalid_payload(payload, exc)
                return
            event, prev_seq, recipients = message.event, message.prev_seq, message.recipients
        if isinstance(event, PresenceChanged):
            # Every presence event has recipients, because _publish requires
            # them and _BrokerMessage rejects a message without them.
            for user_id in recipients or ():
                self._dispatch(user_id, event)
        elif event.seq is None:
            self._dispatch_event(event)
        else:
            self._reorder.receive(event, prev_seq)

    def _report_invalid_payload(self, payload: bytes, error: ValidationError) -> None:
        """Log an ignored broker payload: the first in full, then a count per interval.

        A node of another release can send a payload this one cannot read for
        every event, so logging each one would flood the log.
        """
        self._invalid_payloads += 1
        now = time.monotonic()
        last = self._invalid_payloads_logged_at
        if last is not None and now - last < INVALID_PAYLOAD_LOG_INTERVAL:
            return
        count, self._invalid_payloads = self._invalid_payloads, 0
        self._invalid_payloads_logged_at = now
        problem = error.errors()[0]
        logger.error(
            "ignored %d invalid event payload(s) on channel %r since the last report; "
            "the latest has %d bytes: %s at %s",
            count,
            self._channel,
            len(payload),
            problem["msg"],
            problem["loc"],
            exc_info=error if last is None else None,
        )

    async def _read_app_events(self, after_seq: int, limit: int) -> EventsPage:
        return await self._store.app_events_after(after_seq, limit=limit)

    def _dispatch_event(self, event: ChatEvent) -> None:
        """Deliver an event that names its conversation to the conversation's recipients."""
        # Presence events are never logged, and _on_broker_payload dispatches
        # them to the recipients of their message.
        assert not isinstance(event, PresenceChanged), "presence_changed has no conversation"
        for user_id in _recipients(event):
            self._dispatch(user_id, event)

    def _dispatch(self, user_id: str, event: ChatEvent) -> None:
        listeners = self._listeners.get(user_id)
        if not listeners:
            return
        for listener_id, listener in list(listeners.items()):
            # An earlier listener may have unsubscribed this one.
            if listener_id not in listeners:
                continue
            try:
                listener(event)
            except Exception:
                logger.exception(
                    "event listener of user %r raised on %s %s; "
                    "other listeners still receive the event",
                    user_id,
                    event.type,
                    _describe_subject(event),
                )

    async def _require_conversation(self, conversation_id: str) -> Conversation:
        conversation = await self._store.get_conversation(conversation_id)
        return _require_found(conversation_id, conversation)


# Authorization


def _require_found(conversation_id: str, conversation: Conversation | None) -> Conversation:
    if conversation is None:
        raise NotFound(
            f"conversation '{conversation_id}' not found: create it with sync_conversation first"
        )
    return conversation


def _require_participant(actor: Actor, conversation: Conversation) -> None:
    if actor is TRUSTED or conversation.access_of(actor) is not None:
        return
    raise PermissionDenied(
        f"user '{actor}' is not a participant of conversation '{conversation.id}': "
        "add the user with sync_conversation first"
    )


def _require_write_access(actor: Actor, conversation: Conversation, action: str) -> None:
    """Raise ``PermissionDenied`` unless the actor is trusted or a ReadWrite participant."""
    if actor is TRUSTED:
        return
    access = conversation.access_of(actor)
    if access is AccessLevel.READ_WRITE:
        return
    if access is None:
        raise PermissionDenied(
            f"user '{actor}' is not a participant of conversation '{conversation.id}'; "
            f"{action} needs ReadWrite access"
        )
    raise PermissionDenied(
        f"user '{actor}' has {access.value} access to conversation '{conversation.id}'; "
        f"{action} needs ReadWrite"
    )


def _authorize_participant_change(
    actor: Actor,
    conversation_id: str,
    user_id: str,
    existing_only: bool,
    conversation: Conversation | None,
) -> None:
    """Authorize a ``set_participant``. It runs in the store's write transaction, so no I/O."""
    conversation = _require_found(conversation_id, conversation)
    if existing_only and conversation.access_of(user_id) is None:
        raise NotFound(
            f"user '{user_id}' is not a participant of conversation '{conversation_id}': "
            "add the user first"
        )
    _require_write_access(actor, conversation, "changing participants")


def _authorize_delete(conversation_id: str, conversation: Conversation | None) -> None:
    """Check, in the store's delete transaction, that the conversation exists."""
    _require_found(conversation_id, conversation)


def _authorize_sync(
    actor: Actor,
    conversation_id: str,
    participants: Mapping[str, Participation] | None,
    existing: Conversation | None,
) -> None:
    """Authorize a ``sync_conversation``. It runs in the store's write transaction, so no I/O."""
    if actor is TRUSTED:
        return
    if existing is not None:
        _require_write_access(actor, existing, "changing the conversation")
        return
    if participants is None or actor not in participants:
        raise PermissionDenied(
            f"user '{actor}' cannot create conversation '{conversation_id}' without "
            "being one of its participants: include the user in participants"
        )


def _authorize_send(
    sender_id: str | None, conversation_id: str, conversation: Conversation | None
) -> None:
    """Authorize a ``send_message``. It runs in the store's write transaction, so no I/O."""
    conversation = _require_found(conversation_id, conversation)
    if sender_id is not None:
        _require_write_access(sender_id, conversation, "sending")


_MessageChange = Literal["edit", "delete"]

# The action named in a "needs ReadWrite" error, keyed by the change.
_MESSAGE_CHANGE_ACTIONS: dict[_MessageChange, str] = {
    "edit": "editing a message",
    "delete": "deleting a message",
}


def _authorize_message_change(
    actor: Actor, verb: _MessageChange, conversation: Conversation, message: Message
) -> None:
    """Authorize an edit or a deletion. It runs in the store's write transaction, so no I/O."""
    if actor is TRUSTED:
        return
    _require_write_access(actor, conversation, _MESSAGE_CHANGE_ACTIONS[verb])
    if message.type is MessageType.USER and message.sender_id == actor:
        return
    sender = f"user '{message.sender_id}'" if message.sender_id is not None else "the system"
    raise PermissionDenied(
        f"user '{actor}' cannot {verb} message '{message.id}' in conversation "
        f"'{conversation.id}', which {sender} sent: users may {verb} only their own "
        f"messages, and only trusted server code may {verb} other messages"
    )


def _authorize_edit(
    actor: Actor, text: str | None, conversation: Conversation, message: Message
) -> None:
    """Authorize an ``edit_message`` and check the new text against the message's type.

    It runs in the store's write transaction, so no I/O.
    """
    _authorize_message_change(actor, "edit", conversation, message)
    if text is not None:
        _check_text(text, message.type)


def _require_same_message(new_message: _NewMessage, stored: Message) -> None:
    """Raise ``InvalidInput`` when an idempotency key matched a different message.

    An edited message no longer has the text and ``custom`` it was sent with,
    so only its type is compared. A retry of a send that was edited since
    returns the edited message.
    """
    compared: list[tuple[str, object, object]] = []
    if stored.edited_at is None:
        compared += [
            ("text", new_message.text, stored.text),
            ("custom", new_message.custom, stored.custom),
        ]
    compared.append(("type", new_message.type, stored.type))
    differences = [name for name, new_value, stored_value in compared if new_value != stored_value]
    if not differences:
        return
    raise InvalidInput(
        f"idempotency_key {_shorten(new_message.idempotency_key)} was already used for "
        f"message '{stored.id}' in conversation '{stored.conversation_id}' with a different "
        f"{' and '.join(differences)}: use a new idempotency key for each message, and "
        "reuse a key only to retry the same message",
        code="idempotency_key_reused",
    )


def _resolve_sender(actor: Actor, sender_id: str | None, message_type: MessageType) -> str | None:
    """Return the sender of a new message after checking it against the actor and type."""
    if sender_id is not None:
        sender_id = _check_id("sender_id", sender_id)
    if message_type is MessageType.SYSTEM:
        if actor is not TRUSTED:
            raise PermissionDenied(
                f"user '{actor}' cannot send a SystemMessage: only trusted server code can"
            )
        if sender_id is not None:
            raise InvalidInput(
                f"sender_id '{sender_id}' is not allowed on a SystemMessage: "
                "leave sender_id unset, because system messages have no sender"
            )
        return None
    if actor is TRUSTED:
        if sender_id is None:
            raise InvalidInput(
                "sender_id is missing: a UserMessage sent as TRUSTED needs the sender's user id"
            )
        return sender_id
    if sender_id is not None and sender_id != actor:
        raise PermissionDenied(
            f"user '{actor}' cannot send as '{sender_id}': leave sender_id unset or pass '{actor}'"
        )
    return actor


def _authorize_read(user_id: str, conversation_id: str, conversation: Conversation | None) -> None:
    """Authorize a ``mark_read``. It runs in the store's write transaction, so no I/O."""
    _require_participant(user_id, _require_found(conversation_id, conversation))


def _recipients(event: ConversationEvent) -> list[str]:
    """Return who receives ``event``, live and by replay alike.

    These are the participants in the event's ``conversation``, which the
    store reads in the transaction of the change, plus the users a
    ``ConversationUpdated`` removed, so that they learn of their removal.
    A ``PresenceChanged`` names no conversation, so its recipients travel
    in its broker message.
    """
    user_ids = list(event.conversation.participants)
    if isinstance(event, ConversationUpdated):
        user_ids.extend(event.removed_user_ids)
    return list(dict.fromkeys(user_ids))


# Builders of the logged events, passed to the store as ``log_event``. They
# run inside the write transaction and return None when nothing changed.


def _logged(event: ConversationEvent) -> NewEvent:
    return NewEvent(event, _recipients(event))


def _conversation_updated_event(result: ConversationUpsert) -> NewEvent | None:
    if not result.changed:
        return None
    return _logged(ConversationUpdated(conversation=result.conversation))


def _removal_event(user_id: str, conversation: Conversation) -> NewEvent:
    return _logged(ConversationUpdated(conversation=conversation, removed_user_ids=[user_id]))


def _deletion_event(conversation: Conversation) -> NewEvent:
    # Every former participant is removed, so each receives this last event.
    return _logged(
        ConversationUpdated(
            conversation=conversation.model_copy(update={"participants": {}}),
            removed_user_ids=list(conversation.participants),
        )
    )


def _message_sent_event(result: InsertedMessage) -> NewEvent | None:
    if not result.created:
        return None
    return _logged(
        MessageSent(conversation=result.conversation, message=result.message, sender=result.sender)
    )


def _message_edited_event(result: UpdatedMessage) -> NewEvent | None:
    if not result.changed:
        return None
    return _logged(MessageEdited(conversation=result.conversation, message=result.message))


def _message_deleted_event(result: DeletedMessage) -> NewEvent:
    return _logged(
        MessageDeleted(
            conversation=result.conversation,
            message_id=result.message.id,
            message_seq=result.message.seq,
        )
    )


def _messages_read_event(user_id: str, position: ReadPosition) -> NewEvent | None:
    if not position.moved:
        return None
    return _logged(
        MessagesRead(
            conversation=position.conversation,
            user_id=user_id,
            last_read_message_id=position.last_read_message_id,
            last_read_seq=position.last_read_seq,
            unread_message_count=position.unread_message_count,
        )
    )


# Input validation


def _shorten(value: object) -> str:
    """Quote a value for an error message, cut to 60 characters."""
    text = str(value)
    if len(text) <= 60:
        return f"'{text}'"
    return f"'{text[:60]}...' ({len(text)} characters)"


def _check_id(kind: str, value: object) -> str:
    try:
        return _ID_ADAPTER.validate_python(value)
    except ValidationError as exc:
        raise InvalidInput(
            f"{kind} {_shorten(value)} is invalid: use 1 to {MAX_ID_LENGTH} characters "
            "without slashes, backslashes or control characters, other than '.' or '..'"
        ) from exc


def _check_actor(actor: Actor) -> Actor:
    if actor is TRUSTED:
        return actor
    return _check_id("actor user id", actor)


def _check_limit(limit: int, max_page_size: int) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise InvalidInput(f"limit {limit!r} is not an integer: use 1 to {max_page_size}")
    if not 1 <= limit <= max_page_size:
        raise InvalidInput(f"limit {limit} is out of range: use 1 to {max_page_size}")


def _check_text_length(text: str) -> str:
    """Check that ``text`` is a string within ``MAX_TEXT_LENGTH``; it may be empty."""
    if not isinstance(text, str):
        raise InvalidInput(f"message text must be a string, not {type(text).__name__}")
    if len(text) > MAX_TEXT_LENGTH:
        raise InvalidInput(
            f"message text has {len(text)} characters, over the limit of {MAX_TEXT_LENGTH}: "
            "shorten it or split it into several messages"
        )
    _reject_unstorable(text, "message text")
    return text


def _check_text(text: str, message_type: MessageType) -> str:
    _check_text_length(text)
    if message_type is MessageType.USER and not text.strip():
        raise InvalidInput(
            "message text is empty: a UserMessage needs at least one non-whitespace character"
        )
    return text


def _check_custom(custom: Mapping[str, str] | None) -> dict[str, str]:
    if custom is None:
        return {}
    if len(custom) > MAX_CUSTOM_FIELDS:
        raise InvalidInput(
            f"custom has {len(custom)} keys, over the limit of {MAX_CUSTOM_FIELDS}: "
            "store fewer keys"
        )
    for key, value in custom.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidInput(
                f"custom entry {_shorten(key)} is invalid: keys and values must be strings"
            )
    _reject_unstorable(custom, "custom")
    return dict(custom)


def _check_custom_update(
    custom: Mapping[str, str | None] | None,
) -> dict[str, str | None] | None:
    """Check a ``custom`` update, in which a value of ``None`` removes the key."""
    if custom is None:
        return None
    if len(custom) > MAX_CUSTOM_FIELDS:
        raise InvalidInput(
            f"custom has {len(custom)} keys, over the limit of {MAX_CUSTOM_FIELDS}: "
            "change fewer keys in one call"
        )
    for key, value in custom.items():
        if not isinstance(key, str) or not (value is None or isinstance(value, str)):
            raise InvalidInput(
                f"custom entry {_shorten(key)} is invalid: keys must be strings, and values "
                "strings or None to remove the key"
            )
    _reject_unstorable(custom, "custom")
    return dict(custom)


def _check_idempotency_key(key: str | None) -> str | None:
    if key is None:
        return None
    if not isinstance(key, str) or not 1 <= len(key) <= MAX_ID_LENGTH:
        raise InvalidInput(
            f"idempotency_key {_shorten(key)} is invalid: use a string of 1 to "
            f"{MAX_ID_LENGTH} characters"
        )
    _reject_unstorable(key, "idempotency_key")
    return key


_E = TypeVar("_E", bound=enum.Enum)


def _check_enum(enum_type: type[_E], value: object, name: str) -> _E:
    try:
        return enum_type(value)
    except ValueError as exc:
        allowed = ", ".join(str(member.value) for member in enum_type)
        raise InvalidInput(f"{name} {_shorten(value)} is invalid: use one of {allowed}") from exc


def _check_participants(
    participants: Mapping[str, Participation] | None,
) -> dict[str, Participation] | None:
    if participants is None:
        return None
    return {
        _check_id("participant user id", user_id): _as_model(Participation, participation)
        for user_id, participation in participants.items()
    }


def _check_new_users(
    new_users: Sequence[User], participants: Mapping[str, Participation] | None
) -> list[User]:
    if len(new_users) > MAX_NEW_USERS_PER_SYNC:
        raise InvalidInput(
            f"new_users has {len(new_users)} users, over the limit of {MAX_NEW_USERS_PER_SYNC} "
            "per sync_conversation call: create the others with upsert_user first"
        )
    checked = [_as_model(User, user) for user in new_users]
    seen: set[str] = set()
    for user in checked:
        if participants is None or user.id not in participants:
            raise InvalidInput(
                f"new user '{user.id}' is not in participants: list every user of "
                "new_users in participants too, because sync_conversation creates only "
                "users it adds to the conversation"
            )
        if user.id in seen:
            raise InvalidInput(
                f"new user '{user.id}' is listed twice in new_users: list each user once"
            )
        seen.add(user.id)
    return checked


def _as_model(model: type[_M], value: object) -> _M:
    """Return ``value`` when it is a ``model`` instance, else validate it as one.

    Raises:
        ValidationError: ``value`` does not validate; the service methods turn
            it into ``InvalidInput``.
    """
    checked = value if isinstance(value, model) else model.model_validate(value)
    _reject_unstorable(checked.model_dump(), model.__name__)
    return checked


def _reject_unstorable(value: object, where: str) -> None:
    """Raise ``InvalidInput`` when a string in ``value`` contains U+0000 or a lone surrogate.

    PostgreSQL can't store U+0000 and SQLite can, so the service rejects it
    for every store: data must not depend on the database. A lone surrogate
    (U+D800 to U+DFFF outside a pair) has no UTF-8 form, so no store, broker
    or JSON encoder can carry it. Strings that arrive through pydantic models
    never contain one, but direct Python calls can pass any ``str``.
    """
    if isinstance(value, str):
        if "\x00" in value:
            raise InvalidInput(
                f"{where} contains the character U+0000 (NUL), which can't be stored: remove it"
            )
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                code_point = ord(value[exc.start])
                raise InvalidInput(
                    f"{where} contains the lone surrogate U+{code_point:04X} at index "
                    f"{exc.start}, which has no UTF-8 form and can't be stored: pass valid "
                    "Unicode text (decode bytes with errors='replace' if they may be broken)"
                ) from None
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _reject_unstorable(key, where)
            _reject_unstorable(item, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        for item in value:
            _reject_unstorable(item, where)


# Next steps for pydantic error types whose message names the limit but not
# the fix, keyed by the error type.
_VALIDATION_FIXES = {
    "string_too_long": "shorten it",
    "too_long": "remove entries",
    "string_pattern_mismatch": "remove slashes, backslashes and control characters",
    "extra_forbidden": "remove the field",
}


def _invalid_input_from(exc: ValidationError) -> InvalidInput:
    """Turn pydantic's error into ``InvalidInput`` naming the field, the value and the fix."""
    errors = exc.errors(include_url=False)
    if not errors:
        return InvalidInput(f"invalid {exc.title}: {exc}")
    first = errors[0]
    field_name = ".".join(str(part) for part in first["loc"]) or exc.title
    more = f" (and {len(errors) - 1} more errors)" if len(errors) > 1 else ""
    if first["type"] == "missing":
        return InvalidInput(f"field '{field_name}' of {exc.title} is missing: set it{more}")
    # Pydantic's messages start with a capital ("String should have at most
    # 1000 characters"), and here they continue a sentence.
    reason = first["msg"][:1].lower() + first["msg"][1:]
    fix = _VALIDATION_FIXES.get(first["type"])
    if fix is not None:
        reason = f"{reason}, so {fix}"
    return InvalidInput(
        f"invalid value {_shorten(first['input'])} for field '{field_name}' of "
        f"{exc.title}: {reason}{more}"
    )
