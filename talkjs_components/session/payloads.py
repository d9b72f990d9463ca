"""Payloads that sessions hand to event handlers, shaped like TalkJS's."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..models import Conversation, Message, MessageOrigin, User, WireModel

__all__ = ["SessionMessage", "to_session_message"]


class SessionMessage(WireModel):
    """A message as ``on_message`` handlers receive it, mirroring TalkJS's ``Message``.

    ``body`` is the text. ``read`` is, for the user's own message, whether
    any other participant read it, and for someone else's message, whether the
    user read it. ``attachment`` and ``location`` are always ``None`` here
    because this backend stores text messages only.
    """

    id: str
    conversation: Conversation
    is_by_me: bool
    sender_id: str | None
    sender: User | None
    body: str
    type: Literal["text", "media", "location"] = "text"
    timestamp: int
    read: bool
    origin: MessageOrigin
    custom: dict[str, str] = Field(default_factory=dict)
    attachment: None = None
    location: None = None
    message: Message
    """The stored message this payload was made from."""


def to_session_message(
    message: Message, conversation: Conversation, me_id: str, sender: User | None
) -> SessionMessage:
    """Build the handler payload of ``message`` for user ``me_id``."""
    is_by_me = message.sender_id == me_id
    read = bool(message.read_by) if is_by_me else me_id in message.read_by
    return SessionMessage(
        id=message.id,
        conversation=conversation,
        is_by_me=is_by_me,
        sender_id=message.sender_id,
        sender=sender,
        body=message.text,
        timestamp=message.created_at,
        read=read,
        origin=message.origin,
        custom=dict(message.custom),
        message=message,
    )
