"""Storage interface of the chat service, and its implementations.

A store persists users, conversations, participants, messages, read
positions and the event log for one app. It makes no authorization decisions
and publishes no events, because the service decides who may do what and
publishes what happened. The service passes its access checks to the write
methods as ``authorize`` callbacks, which the store runs inside the write
transaction so that the check and the write see the same data.

The service also passes ``log_event`` callbacks, which build the event that
describes a change and name its recipients. The store appends that event to
the log in the same write transaction, numbered with ``seq`` from one
increasing counter. So a committed change always has its event, and no event
exists without its change. The log keeps events for a retention period and
then prunes them, a few per write. Every method is a coroutine;
implementations must not block the event loop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple, Protocol, TypeVar

from ..models import (
    ChatEvent,
    Conversation,
    ConversationAttributes,
    EventsPage,
    Message,
    MessageOrigin,
    MessagesPage,
    MessageType,
    Participation,
    UnreadConversation,
    UnreadsSnapshot,
    User,
)

__all__ = [
    "DEFAULT_EVENT_RETENTION_MS",
    "NOTHING_LOGGED",
    "AuthorizeConversation",
    "AuthorizeMessage",
    "ConversationUpsert",
    "ConversationWithLastMessage",
    "DeletedConversation",
    "DeletedMessage",
    "InsertedMessage",
    "LogEvent",
    "LoggedEvent",
    "NewEvent",
    "NewMessage",
    "ReadPosition",
    "RemovedParticipant",
    "Store",
    "UpdatedMessage",
    "UserConversation",
]

DEFAULT_EVENT_RETENTION_MS = 7 * 24 * 60 * 60 * 1000
"""Milliseconds a stored event stays in the log by default: 7 days.

A client that was disconnected for longer cannot resume by replaying events
and reloads instead.
"""

_Change = TypeVar("_Change")

AuthorizeConversation = Callable[[Conversation | None], None]
"""An access check that a store runs inside a write transaction.

It receives the conversation as currently stored, or ``None`` when it does
not exist, and raises to reject the operation. The store then rolls back and
re-raises the exception. The check runs on the store's worker thread while the
write lock is held, so it must be pure and fast, without I/O or blocking calls.
"""

AuthorizeMessage = Callable[[Conversation, Message], None]
"""An access check on one stored message, run inside a write transaction.

It receives the conversation and the message as currently stored, after the
store has checked that both exist. It raises to reject the operation, and
must be pure and fast like :data:`AuthorizeConversation`.
"""


class NewEvent(NamedTuple):
    """An event to append to the log, with the users who may see it."""

    event: ChatEvent
    """The event; its ``seq`` is ignored, because the store assigns it."""
    recipients: Sequence[str]
    """The users whose ``events_after`` returns the event."""


class LoggedEvent(NamedTuple):
    """An event as the store appended it, with its place in the app's log."""

    event: ChatEvent | None
    """The event with its ``seq``; ``None`` when ``log_event`` logged nothing."""
    prev_seq: int | None
    """``seq`` of the app's event before this one in its log, or 0 for the app's first event.

    The store reads it in the appending transaction, so no other event of the
    app lies between the two. ``None`` when nothing was logged.
    """


NOTHING_LOGGED = LoggedEvent(None, None)
"""The :class:`LoggedEvent` of a write whose ``log_event`` returned ``None``."""


LogEvent = Callable[[_Change], NewEvent | None]
"""Builds the event of a change inside the write transaction, or ``None`` to log nothing.

It receives the write's result before the commit. The store appends the
returned event with the next ``seq`` and puts it, with that ``seq``, in the
result's ``event`` field, and the app's previous ``seq`` in ``prev_seq``.
Like the ``authorize`` callbacks it runs with the write lock held, so it
must be pure and fast. If it raises, the whole write is rolled back.
"""


class ReadPosition(NamedTuple):
    """A participant's read position after ``Store.mark_read``."""

    last_read_message_id: str | None
    last_read_seq: int
    """``seq`` of the last read message; 0 when nothing was read."""
    unread_message_count: int
    moved: bool
    """Whether this call moved the position forward."""
    conversation: Conversation
    """The conversation with its participants, read in the same transaction."""
    event: ChatEvent | None = None
    """The event ``log_event`` built, with its ``seq``; ``None`` when it logged nothing."""
    prev_seq: int | None = None
    """``seq`` of the app's event before ``event`` (0 for the first); ``None`` with no event."""


class ConversationUpsert(NamedTuple):
    """The result of ``Store.upsert_conversation``."""

    conversation: Conversation
    """The conversation as stored after the write."""
    created: bool
    changed: bool
    """Whether the stored conversation differs from before (always true when created)."""
    event: ChatEvent | None = None
    """The event ``log_event`` built, with its ``seq``; ``None`` when it logged nothing."""
    prev_seq: int | None = None
    """``seq`` of the app's event before ``event`` (0 for the first); ``None`` with no event."""


class RemovedParticipant(NamedTuple):
    """The result of ``Store.remove_participant``."""

    conversation: Conversation
    """The conversation as stored after the removal."""
    event: ChatEvent | None = None
    """The event ``log_event`` built, with its ``seq``; ``None`` when it logged nothing."""
    prev_seq: int | None = None
    """``seq`` of the app's event before ``event`` (0 for the first); ``None`` with no event."""


class DeletedConversation(NamedTuple):
    """The result of ``Store.delete_conversation``."""

    conversation: Conversation
    """The conversation with its participants as stored before the deletion."""
    event: ChatEvent | None = None
    """The event ``log_event`` built, with its ``seq``; ``None`` when it logged nothing."""
    prev_seq: int | None = None
    """``seq`` of the app's event before ``event`` (0 for the first); ``None`` with no event."""


class InsertedMessage(NamedTuple):
    """The result of ``Store.insert_message``, read in the insert transaction."""

    message: Message
    created: bool
    """``False`` when an earlier message with the same idempotency key was returned."""
    conversation: Conversation
    """The conversation with its participants at commit time."""
    sender: User | None
    """The sender's stored user; ``None`` for system messages and unknown senders."""
    event: ChatEvent | None = None
    """The event ``log_event`` built, with its ``seq``; ``None`` when it logged nothing."""
    prev_seq: int | None = None
    """``seq`` of the app's event before ``event`` (0 for the first); ``None`` with no event."""


class UpdatedMessage(NamedTuple):
    """The result of ``Store.update_message``, read in the update transaction."""

    message: Message
    """The message as stored after the update."""
    conversation: Conversation
    """The conversation with its participants at commit time."""
    changed: bool
    """Whether the text or ``custom`` changed; when false nothing was written."""
    event: ChatEvent | None = None
    """The event ``log_event`` built, with its ``seq``; ``None`` when it logged nothing."""
    prev_seq: int | None = None
    """``seq`` of the app's event before ``event`` (0 for the first); ``None`` with no event."""


class DeletedMessage(NamedTuple):
    """The result of ``Store.delete_message``, read in the delete transaction."""

    message: Message
    """The message as it was stored before the deletion."""
    conversation: Conversation
    """The conversation with its participants at commit time, after the deletion."""
    event: ChatEvent | None = None
    """The event ``log_event`` built, with its ``seq``; ``None`` when it logged nothing."""
    prev_seq: int | None = None
    """``seq`` of the app's event before ``event`` (0 for the first); ``None`` with no event."""


class ConversationWithLastMessage(NamedTuple):
    """A conversation with its latest message, as ``Store.list_conversations`` returns it."""

    conversation: Conversation
    last_message: Message | None
    """The latest message; ``None`` when the conversation has none."""


class UserConversation(NamedTuple):
    """One of a user's conversations with that user's unread count."""

    conversation: Conversation
    last_message: Message | None
    """The latest message; ``None`` when the conversation has none."""
    unread_message_count: int
    """Messages after the user's read position that others sent."""


class NewMessage(Protocol):
    """The fields a store needs to insert a message."""

    conversation_id: str
    sender_id: str | None
    text: str
    type: MessageType
    custom: dict[str, str]
    origin: MessageOrigin
    idempotency_key: str | None


class Store(Protocol):
    """Persistence of one app's chat data."""

    async def open(self, *, event_retention_ms: int = DEFAULT_EVENT_RETENTION_MS) -> None:
        """Open the database and create, upgrade or check its schema.

        Events older than ``event_retention_ms`` milliseconds are pruned from
        the log, oldest first, a bounded number per logged write.
        """

    async def close(self) -> None:
        """Finish pending writes and close the database."""

    async def upsert_user(self, user: User) -> User:
        """Create or update a user and return the stored result.

        Only the fields in ``user.model_fields_set`` change; a field set to
        ``None`` is deleted, and a ``custom`` key set to ``None`` is removed.
        """

    async def get_users(
        self, user_ids: Sequence[str], *, visible_to: str | None = None
    ) -> dict[str, User]:
        """Return the stored users among ``user_ids``, keyed by id; unknown ids are left out.

        With ``visible_to``, only that user and the users who share at least
        one conversation with them are returned; the others are left out too.
        """

    async def get_conversation(self, conversation_id: str) -> Conversation | None:
        """Return a conversation with its participants, or ``None`` when it does not exist."""

    async def upsert_conversation(
        self,
        conversation_id: str,
        attributes: ConversationAttributes | None,
        participants: dict[str, Participation] | None,
        *,
        authorize: AuthorizeConversation | None = None,
        new_users: Sequence[User] = (),
        log_event: LogEvent[ConversationUpsert] | None = None,
    ) -> ConversationUpsert:
        """Create or update a conversation in one write transaction.

        First ``authorize`` (when given) is called with the stored
        conversation or ``None``. If it raises, nothing is written and the
        exception propagates. Then the users of ``new_users`` that do not
        exist are created, and existing users are left unchanged. Attributes
        merge like ``upsert_user``. ``participants`` adds or updates the listed
        participants and leaves the others. Last, the event ``log_event``
        builds from the result is appended to the log.
        """

    async def remove_participant(
        self,
        conversation_id: str,
        user_id: str,
        *,
        log_event: LogEvent[Conversation] | None = None,
    ) -> RemovedParticipant:
        """Remove a participant in one write transaction.

        ``log_event`` receives the conversation after the removal.
        """

    async def delete_conversation(
        self,
        conversation_id: str,
        *,
        authorize: AuthorizeConversation | None = None,
        log_event: LogEvent[Conversation] | None = None,
    ) -> DeletedConversation:
        """Delete a conversation with its participants and messages in one write transaction.

        ``authorize`` (when given) is called first with the stored
        conversation or ``None``, as in ``upsert_conversation``. The result
        contains the conversation with its participants as it was stored
        before the deletion, which ``log_event`` receives too. Logged events of the
        conversation stay in the log until they expire.

        Raises:
            NotFound: the conversation does not exist.
        """

    async def list_user_conversations(self, user_id: str) -> list[Conversation]:
        """Return the user's conversations, most recent activity first."""

    async def list_user_conversation_page(
        self, user_id: str, *, limit: int, starting_after: str | None, unreads_only: bool
    ) -> list[UserConversation]:
        """Return up to ``limit`` of the user's conversations, most recent activity first.

        The order is that of ``list_user_conversations``. The page starts
        after the conversation ``starting_after``, or at the most recent one.
        With ``unreads_only``, only conversations with unread messages count.

        Raises:
            InvalidInput: ``starting_after`` is not one of the user's conversations.
        """

    async def list_conversations(
        self, *, limit: int, starting_after: str | None
    ) -> list[ConversationWithLastMessage]:
        """Return up to ``limit`` conversations ordered by id, with ids after ``starting_after``."""

    async def ping(self) -> None:
        """Run a trivial query to check that the database is reachable.

        Raises:
            StorageError: the database is not open, or the query failed.
        """

    async def insert_message(
        self,
        message: NewMessage,
        *,
        authorize: AuthorizeConversation | None = None,
        log_event: LogEvent[InsertedMessage] | None = None,
    ) -> InsertedMessage:
        """Insert a message in one write transaction.

        First ``authorize`` (when given) is called with the stored
        conversation or ``None``, as in ``upsert_conversation``. When
        ``idempotency_key`` is set and a message with the same key exists in
        that conversation from that sender, the existing message is returned
        with ``created`` false, and nothing is inserted. ``log_event`` is
        called in both cases and may return ``None``.
        """

    async def update_message(
        self,
        conversation_id: str,
        message_id: str,
        *,
        text: str | None,
        custom: Mapping[str, str | None] | None,
        edited_at: int,
        authorize: AuthorizeMessage | None = None,
        log_event: LogEvent[UpdatedMessage] | None = None,
    ) -> UpdatedMessage:
        """Edit a message's text and ``custom`` in one write transaction.

        ``authorize`` (when given) is called with the stored conversation and
        message; if it raises, nothing is written and the exception
        propagates. ``text=None`` keeps the text. ``custom`` merges like a
        user's: a key set to ``None`` is removed. ``edited_at`` is stored only
        when the text or ``custom`` changed. ``log_event`` is called in both
        cases and may return ``None``.

        Raises:
            NotFound: the conversation does not exist, or the message is not in it.
        """

    async def delete_message(
        self,
        conversation_id: str,
        message_id: str,
        *,
        authorize: AuthorizeMessage | None = None,
        log_event: LogEvent[DeletedMessage] | None = None,
    ) -> DeletedMessage:
        """Delete a message in one write transaction and return it as it was stored.

        ``authorize`` runs first, as in ``update_message``, and ``log_event``
        last. The conversation's
        ``last_message_at`` becomes that of the latest remaining message.
        Read positions are ``seq`` values, so they stay valid.

        Raises:
            NotFound: the conversation does not exist, or the message is not in it.
        """

    async def list_messages(
        self, conversation_id: str, *, limit: int, before_message_id: str | None
    ) -> MessagesPage:
        """Return up to ``limit`` messages before ``before_message_id``, oldest first.

        Without ``before_message_id``, the newest messages are returned.
        """

    async def mark_read(
        self,
        conversation_id: str,
        user_id: str,
        message_id: str | None,
        *,
        authorize: AuthorizeConversation | None = None,
        log_event: LogEvent[ReadPosition] | None = None,
    ) -> ReadPosition:
        """Move the user's read position forward to ``message_id`` (``None``: the newest).

        ``authorize`` runs first, as in ``upsert_conversation``. The position
        never moves backwards, and ``moved`` in the result shows whether this
        call moved it. The user must be a participant when the write
        transaction runs. ``log_event`` is called whether or not the position
        moved, and may return ``None``.
        """

    async def events_after(self, user_id: str, after_seq: int, *, limit: int) -> EventsPage:
        """Return up to ``limit`` of the user's logged events after ``after_seq``, oldest first.

        Raises:
            ChatError: code ``resume_gap`` when the log no longer contains every
                event after ``after_seq`` (they were pruned), or when
                ``after_seq`` is beyond the log's end (the log was reset).
        """

    async def app_events_after(self, after_seq: int, *, limit: int) -> EventsPage:
        """Return up to ``limit`` of the app's logged events after ``after_seq``, oldest first.

        Unlike ``events_after``, the events of every recipient are returned,
        each once. A service reads them to fill a gap in what its broker
        delivered. When ``has_more`` is false, ``next_after_seq`` is the app's
        latest event ``seq``.

        Raises:
            ChatError: code ``resume_gap`` in the cases of ``events_after``.
        """

    async def latest_event_seq(self) -> int:
        """Return the ``seq`` of the app's latest logged event; 0 when the app has none."""

    async def get_unreads_snapshot(self, user_id: str) -> UnreadsSnapshot:
        """Return the user's unreads, read positions and the app's latest event ``seq``.

        All three come from one read transaction.
        """

    async def get_unreads(self, user_id: str) -> list[UnreadConversation]:
        """Return the user's conversations with unread messages, most recent first."""

    async def upsert_users(self, users: Sequence[User]) -> list[User]:
        """Create or update several users in one write transaction, all or none.

        Each user merges like ``upsert_user``. If one of them fails, nothing
        is written and the error names that user.
        """

    async def list_users(self, *, limit: int, starting_after: str | None) -> list[User]:
        """Return up to ``limit`` users ordered by id, with ids after ``starting_after``."""

    async def get_message(self, conversation_id: str, message_id: str) -> Message | None:
        """Return a message of the conversation, or ``None`` when it is not there."""
