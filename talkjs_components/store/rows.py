"""Conversions from database rows to the package's models, shared by every store.

Both drivers return rows that are read by column name (``sqlite3.Row`` and
``asyncpg.Record``), and both stores keep JSON columns as text, so one set of
functions serves SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Protocol

from pydantic import TypeAdapter

from ..models import (
    ChatEvent,
    Conversation,
    Message,
    MessageOrigin,
    MessageType,
    Participation,
    User,
)

__all__ = [
    "Row",
    "conversation_from_row",
    "event_from_row",
    "from_json_or_none",
    "message_from_row",
    "to_json_or_none",
    "user_from_row",
]

_EVENT_ADAPTER: TypeAdapter[ChatEvent] = TypeAdapter(ChatEvent)


class Row(Protocol):
    """A database row whose columns are read by name."""

    def __getitem__(self, key: str, /) -> Any: ...


def to_json_or_none(value: object) -> str | None:
    return None if value is None else json.dumps(value)


def from_json_or_none(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def user_from_row(row: Row) -> User:
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


def conversation_from_row(row: Row, participants: dict[str, Participation]) -> Conversation:
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


def message_from_row(row: Row, read_by: Iterable[str]) -> Message:
    """Return the message of ``row``; each store computes ``read_by`` in its own SQL."""
    return Message(
        id=row["id"],
        conversation_id=row["conversation_id"],
        sender_id=row["sender_id"],
        text=row["text"],
        type=MessageType(row["type"]),
        created_at=row["created_at"],
        edited_at=row["edited_at"],
        read_by=sorted(read_by),
        custom=json.loads(row["custom"]),
        origin=MessageOrigin(row["origin"]),
        seq=row["seq"],
    )


def event_from_row(row: Row) -> ChatEvent:
    """Return the logged event of ``row``; the stored payload has no ``seq``, the row has."""
    event = _EVENT_ADAPTER.validate_json(row["payload"])
    return event.model_copy(update={"seq": int(row["seq"])})
