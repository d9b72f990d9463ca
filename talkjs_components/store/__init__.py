"""Storage interface of the chat service, and its implementations.

A store persists users, conversations, participants, messages and read
positions for one app. It does no authorization and publishes no events, because the
service decides who may do what and publishes what happened. Every method is
a coroutine; implementations must not block the event loop.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    User,
)

__all__ = ["NewMessage", "ReadPosition", "Store"]


class ReadPosition(NamedTuple):
    """A participant's read position after ``Store.mark_read``."""

    last_read_message_id: str | None
    unread_message_count: int
    moved: bool
    """Whether this call moved the position forward."""


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

    async def get_users(self, user_ids: Sequence[str]) -> dict[str, User]:
        """Return the stored users among ``user_ids``, keyed by id; unknown ids are left out."""

    async def get_conversation(self, conversation_id: str) -> Conversation | None:
        """Return a conversation with its participants, or ``None`` when it does not exist."""

    async def upsert_conversation(
        self,
        conversation_id: str,
        attributes: ConversationAttributes | None,
        participants: dict[str, Participation] | None,
    ) -> tuple[Conversation, bool]:
        """Create or update a conversation in one transaction.

        Attributes merge like ``upsert_user``. ``participants`` adds or updates
        the listed participants and leaves the others. Returns the stored
        conversation and whether it was created.
        """

    async def remove_participant(self, conversation_id: str, user_id: str) -> Conversation:
        """Remove a participant and return the updated conversation."""

    async def delete_conversation(self, conversation_id: str) -> None:
        """Delete a conversation with its participants and messages."""

    async def list_user_conversations(self, user_id: str) -> list[Conversation]:
        """Return the user's conversations, most recent activity first."""

    async def insert_message(self, message: NewMessage) -> tuple[Message, bool]:
        """Insert a message and return it with whether it was created.

        When ``idempotency_key`` is set and a message with the same key
        exists in that conversation from that sender, the existing message is
        returned with ``False``, and nothing is inserted.
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
        whether this call moved it.
        """

    async def get_unreads(self, user_id: str) -> list[UnreadConversation]:
        """Return the user's conversations with unread messages, most recent first."""
