"""Storage interface of the chat service, and its implementations.

A store persists users, conversations, participants, messages and read
positions for one app. It makes no authorization decisions and publishes no
events, because the service decides who may do what and publishes what
happened. The service passes its access checks to the write methods as
``authorize`` callbacks, which the store runs inside the write transaction so
that the check and the write see the same data. Every method is a coroutine;
implementations must not block the event loop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple, Protocol

from ..models import (
    Conversation,
    ConversationAttributes,
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
    "AuthorizeConversation",
    "AuthorizeMessage",
    "ConversationUpsert",
    "DeletedMessage",
    "InsertedMessage",
    "NewMessage",
    "ReadPosition",
    "Store",
    "UpdatedMessage",
]

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


class ReadPosition(NamedTuple):
    """A participant's read position after ``Store.mark_read``."""

    last_read_message_id: str | None
    last_read_seq: int
    """``seq`` of the last read message; 0 when nothing was read."""
    unread_message_count: int
    moved: bool
    """Whether this call moved the position forward."""


class ConversationUpsert(NamedTuple):
    """The result of ``Store.upsert_conversation``."""

    conversation: Conversation
    """The conversation as stored after the write."""
    created: bool
    changed: bool
    """Whether the stored conversation differs from before (always true when created)."""


class InsertedMessage(NamedTuple):
    """The result of ``Store.insert_message``, read in the insert transaction."""

    message: Message
    created: bool
    """``False`` when an earlier message with the same idempotency key was returned."""
    conversation: Conversation
    """The conversation with its participants at commit time."""
    sender: User | None
    """The sender's stored user; ``None`` for system messages and unknown senders."""


class UpdatedMessage(NamedTuple):
    """The result of ``Store.update_message``, read in the update transaction."""

    message: Message
    """The message as stored after the update."""
    conversation: Conversation
    """The conversation with its participants at commit time."""
    changed: bool
    """Whether the text or ``custom`` changed; when false nothing was written."""


class DeletedMessage(NamedTuple):
    """The result of ``Store.delete_message``, read in the delete transaction."""

    message: Message
    """The message as it was stored before the deletion."""
    conversation: Conversation
    """The conversation with its participants at commit time, after the deletion."""


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

    async def open(self) -> None:
        """Open the database and create or check its schema."""

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
    ) -> ConversationUpsert:
        """Create or update a conversation in one write transaction.

        First ``authorize`` (when given) is called with the stored
        conversation or ``None``. If it raises, nothing is written and the
        exception propagates. Then the users of ``new_users`` that do not
        exist are created, and existing users are left unchanged. Attributes
        merge like ``upsert_user``. ``participants`` adds or updates the listed
        participants and leaves the others.
        """

    async def remove_participant(self, conversation_id: str, user_id: str) -> Conversation:
        """Remove a participant and return the updated conversation."""

    async def delete_conversation(self, conversation_id: str) -> None:
        """Delete a conversation with its participants and messages."""

    async def list_user_conversations(self, user_id: str) -> list[Conversation]:
        """Return the user's conversations, most recent activity first."""

    async def insert_message(
        self, message: NewMessage, *, authorize: AuthorizeConversation | None = None
    ) -> InsertedMessage:
        """Insert a message in one write transaction.

        First ``authorize`` (when given) is called with the stored
        conversation or ``None``, as in ``upsert_conversation``. When
        ``idempotency_key`` is set and a message with the same key exists in
        that conversation from that sender, the existing message is returned
        with ``created`` false, and nothing is inserted.
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
    ) -> UpdatedMessage:
        """Edit a message's text and ``custom`` in one write transaction.

        ``authorize`` (when given) is called with the stored conversation and
        message; if it raises, nothing is written and the exception
        propagates. ``text=None`` keeps the text. ``custom`` merges like a
        user's: a key set to ``None`` is removed. ``edited_at`` is stored only
        when the text or ``custom`` changed.

        Raises:
            NotFound: the conversation does not exist, or the message is not in it.
        """

    async def delete_message(
        self,
        conversation_id: str,
        message_id: str,
        *,
        authorize: AuthorizeMessage | None = None,
    ) -> DeletedMessage:
        """Delete a message in one write transaction and return it as it was stored.

        ``authorize`` runs first, as in ``update_message``. The conversation's
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
        self, conversation_id: str, user_id: str, message_id: str | None
    ) -> ReadPosition:
        """Move the user's read position forward to ``message_id`` (``None``: the newest).

        The position never moves backwards, and ``moved`` in the result shows
        whether this call moved it. The user must be a participant when the
        write transaction runs.
        """

    async def list_messages_after(
        self, user_id: str, after_seq: int, *, limit: int
    ) -> tuple[list[Message], dict[str, Conversation], dict[str, User]]:
        """Return up to ``limit`` messages after ``after_seq`` in the user's conversations.

        Messages come oldest first, with the conversations and senders they
        belong to, keyed by id. Used to resume a session after a reconnect.
        """

    async def get_unreads_snapshot(self, user_id: str) -> UnreadsSnapshot:
        """Return the user's unreads, read positions and the app's latest ``seq``, consistently.

        All three come from one read transaction.
        """

    async def get_unreads(self, user_id: str) -> list[UnreadConversation]:
        """Return the user's conversations with unread messages, most recent first."""
