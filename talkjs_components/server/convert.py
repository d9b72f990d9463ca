"""Conversion of the domain models to the REST API's wire models.

Fields are copied one by one, so a domain field that the REST API does not
have (a message's ``seq``) never reaches a response.
"""

from __future__ import annotations

from ..models import Conversation, Message, User
from ..rest.models import (
    RestConversation,
    RestMessage,
    RestParticipant,
    RestUser,
    RestUserConversation,
)
from ..store import UserConversation

__all__ = ["rest_conversation", "rest_message", "rest_user", "rest_user_conversation"]


def rest_user(user: User) -> RestUser:
    """Return the REST form of a user."""
    return RestUser(
        id=user.id,
        name=user.name,
        email=user.email,
        phone=user.phone,
        photo_url=user.photo_url,
        role=user.role,
        locale=user.locale,
        welcome_message=user.welcome_message,
        custom={key: value for key, value in user.custom.items() if value is not None}
        if user.custom is not None
        else None,
        created_at=user.created_at,
    )


def rest_message(message: Message) -> RestMessage:
    """Return the REST form of a message."""
    return RestMessage(
        id=message.id,
        conversation_id=message.conversation_id,
        type=message.type,
        sender_id=message.sender_id,
        text=message.text,
        origin=message.origin.value,
        custom=dict(message.custom),
        read_by=list(message.read_by),
        created_at=message.created_at,
        edited_at=message.edited_at,
    )


def rest_conversation(conversation: Conversation, last_message: Message | None) -> RestConversation:
    """Return the REST form of a conversation with its latest message."""
    return RestConversation(
        id=conversation.id,
        subject=conversation.subject,
        photo_url=conversation.photo_url,
        welcome_messages=conversation.welcome_messages,
        custom=dict(conversation.custom),
        participants={
            user_id: RestParticipant(access=participation.access, notify=participation.notify)
            for user_id, participation in conversation.participants.items()
        },
        created_at=conversation.created_at,
        last_message=rest_message(last_message) if last_message is not None else None,
    )


def rest_user_conversation(entry: UserConversation) -> RestUserConversation:
    """Return the REST form of one of a user's conversations, with the unread state."""
    base = rest_conversation(entry.conversation, entry.last_message)
    return RestUserConversation(
        **dict(base),
        unread_message_count=entry.unread_message_count,
        is_unread=entry.unread_message_count > 0,
    )
