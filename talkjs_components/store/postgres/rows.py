"""PostgreSQL row conversions that differ from SQLite's, and shared SQL pieces.

asyncpg returns ``json`` and ``jsonb`` values as text and accepts text for
them, so JSON columns are encoded and decoded here with :mod:`json`.
"""

from __future__ import annotations

import asyncpg

from ...models import AccessLevel, Message, Participation
from ..rows import (
    conversation_from_row,
    event_from_row,
    from_json_or_none,
    to_json_or_none,
    user_from_row,
)
from ..rows import message_from_row as shared_message_from_row

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


def participation_from_row(row: asyncpg.Record) -> Participation:
    return Participation(access=AccessLevel(row["access"]), notify=row["notify"])


def message_from_row(row: asyncpg.Record) -> Message:
    return shared_message_from_row(row, row["read_by"])
