"""Conversions between PostgreSQL rows and the package's models, and shared SQL pieces.

asyncpg returns ``json`` and ``jsonb`` values as text and accepts text for
them, so JSON columns are encoded and decoded here with :mod:`json`.
"""

from __future__ import annotations

import json
from typing import Any

import asyncpg
from pydantic import TypeAdapter

from ...models import (
    AccessLevel,
    ChatEvent,
    Conversation,
    Message,
    MessageOrigin,
    MessageType,
    Participation,
    User,
)

__all__ = [
    "MESSAGE_COLUMNS",
    "conversation_from_row",
    "event_from_row",
    "from_json_or_none",
    "message_from_row",
    "participation_from_row",
    "to_json_or_none",
    "user_from_row",
]

_EVENT_ADAPTER: TypeAdapter[ChatEvent] = TypeAdapter(ChatEvent)

MESSAGE_COLUMNS = """
    m.seq, m.id, m.conversation_id, m.sender_id, m.text, m.type, m.created_at,
    m.edited_at, m.custom, m.origin,
    ARRAY(
        SELECT p.user_id FROM participants AS p
        WHERE p.app_id = m.app_id
            AND p.conversation_id = m.conversation_id
            AND p.last_read_seq >= m.seq
            AND p.user_id IS DISTINCT FROM m.sender_id
    ) AS read_by
"""
"""Columns of a message row ``m``, with ``read_by``.

``read_by`` is the participants other than the sender whose read position
is at or after the message.
"""


def to_json_or_none(value: object) -> str | None:
    return None if value is None else json.dumps(value)


def from_json_or_none(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def user_from_row(row: asyncpg.Record) -> User:
    return User(
        id=row["id"],
        name=row["name"],
        email=from_json_or_none(row["email"]),
        phone=from_json_or_none(row["phone"]),
        photo_url=row["photo_url"],
        role=row["role"],
        locale=row["locale"],
        welcome_message=row["welcome_message"],
        custom=from_json_or_none(row["custom"]),
        created_at=row["created_at"],
    )


def participation_from_row(row: asyncpg.Record) -> Participation:
    return Participation(access=AccessLevel(row["access"]), notify=row["notify"])


def conversation_from_row(
    row: asyncpg.Record, participants: dict[str, Participation]
) -> Conversation:
    return Conversation(
        id=row["id"],
        subject=row["subject"],
        photo_url=row["photo_url"],
        welcome_messages=from_json_or_none(row["welcome_messages"]),
        custom=json.loads(row["custom"]),
        participants=participants,
        created_at=row["created_at"],
        last_message_at=row["last_message_at"],
    )


def message_from_row(row: asyncpg.Record) -> Message:
    return Message(
        id=row["id"],
        conversation_id=row["conversation_id"],
        sender_id=row["sender_id"],
        text=row["text"],
        type=MessageType(row["type"]),
        created_at=row["created_at"],
        edited_at=row["edited_at"],
        read_by=sorted(row["read_by"]),
        custom=json.loads(row["custom"]),
        origin=MessageOrigin(row["origin"]),
        seq=row["seq"],
    )


def event_from_row(row: asyncpg.Record) -> ChatEvent:
    event = _EVENT_ADAPTER.validate_json(row["payload"])
    return event.model_copy(update={"seq": int(row["seq"])})
