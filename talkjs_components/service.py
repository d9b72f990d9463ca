"""ChatService: every chat operation as one typed method that authorizes, persists and publishes.

An *actor* is the party on whose behalf an operation runs: a user id, checked
against the conversation's participants, or :data:`TRUSTED` for server code
that holds the app's secret key (REST calls, seeding, admin scripts).
Authorization rules:

- only participants read a conversation and its messages;
- only ReadWrite participants send messages;
- a user may create a conversation that includes themselves, and may change a
  conversation's attributes and participants while they are a ReadWrite
  participant.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .broker import Broker
from .models import (
    ChatEvent,
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
from .store import Store

__all__ = ["TRUSTED", "Actor", "ChatService", "Limits", "Subscription"]


class _Trusted(enum.Enum):
    TRUSTED = "trusted"


TRUSTED = _Trusted.TRUSTED
"""Actor for server-side code holding the secret key: passes every authorization check."""

Actor = str | _Trusted
"""A user id, or :data:`TRUSTED`."""


@dataclass(frozen=True)
class Limits:
    """Limits enforced by the service; the defaults are documented in docs/limits.md."""

    max_page_size: int = 100
    """Maximum messages returned by one ``list_messages`` call."""


class Subscription:
    """Handle returned by ``subscribe``; ``unsubscribe()`` stops delivery and is idempotent."""

    def __init__(self, cancel: Callable[[], None]) -> None:
        self._cancel: Callable[[], None] | None = cancel

    @property
    def active(self) -> bool:
        """Whether events are still delivered."""
        return self._cancel is not None

    def unsubscribe(self) -> None:
        """Stop delivery."""
        cancel, self._cancel = self._cancel, None
        if cancel is not None:
            cancel()


class ChatService:
    """The chat domain core of one app."""

    def __init__(
        self, store: Store, broker: Broker, *, app_id: str, limits: Limits | None = None
    ) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        """Open the store and subscribe to the broker."""
        raise NotImplementedError

    async def close(self) -> None:
        """Unsubscribe from the broker and close the store."""
        raise NotImplementedError

    async def upsert_user(self, user: User) -> User:
        """Create or update a user (unset fields kept, ``None`` deletes)."""
        raise NotImplementedError

    async def get_user(self, user_id: str) -> User:
        """Return a user; raise ``NotFound`` for an unknown id."""
        raise NotImplementedError

    async def get_users(self, user_ids: list[str]) -> dict[str, User]:
        """Return the known users among ``user_ids``."""
        raise NotImplementedError

    async def sync_conversation(
        self,
        actor: Actor,
        conversation_id: str,
        attributes: ConversationAttributes | None = None,
        participants: Mapping[str, Participation] | None = None,
    ) -> Conversation:
        """Create or update a conversation and add or update participants."""
        raise NotImplementedError

    async def get_conversation(self, actor: Actor, conversation_id: str) -> Conversation:
        """Return a conversation the actor participates in."""
        raise NotImplementedError

    async def remove_participant(
        self, actor: Actor, conversation_id: str, user_id: str
    ) -> Conversation:
        """Remove a participant (users may remove themselves)."""
        raise NotImplementedError

    async def list_conversations(self, user_id: str) -> list[Conversation]:
        """Return the user's conversations, most recent activity first."""
        raise NotImplementedError

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
        """Store a message and publish it to the conversation's participants."""
        raise NotImplementedError

    async def list_messages(
        self, actor: Actor, conversation_id: str, *, limit: int = 30, before: str | None = None
    ) -> MessagesPage:
        """Return a page of messages, oldest first."""
        raise NotImplementedError

    async def mark_read(
        self, user_id: str, conversation_id: str, message_id: str | None = None
    ) -> None:
        """Mark the conversation read up to ``message_id`` (default: the newest)."""
        raise NotImplementedError

    async def get_unreads(self, user_id: str) -> list[UnreadConversation]:
        """Return the user's conversations with unread messages."""
        raise NotImplementedError

    def subscribe(self, user_id: str, listener: Callable[[ChatEvent], None]) -> Subscription:
        """Call ``listener`` with every event of the user's conversations."""
        raise NotImplementedError
