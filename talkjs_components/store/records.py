"""Rules that every store implementation shares: message ids and merging partial updates.

The merge functions compute the stored result of a partial update from the
stored value, so that SQLite and PostgreSQL apply ``upsert_user``,
``upsert_conversation`` and ``update_message`` the same way.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from ..errors import InvalidInput
from ..models import MAX_CUSTOM_FIELDS, Conversation, ConversationAttributes, User, now_ms

__all__ = ["merge_conversation", "merge_custom", "merge_user", "new_message_id"]

_CROCKFORD_BASE32 = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_message_id() -> str:
    """Generate a message id: ``"msg_"`` and 26 characters of Crockford base32.

    The 128 encoded bits are the current time in milliseconds (48 bits) and 80
    random bits from :mod:`secrets`, as in a ULID. Ids therefore sort by
    creation time to the millisecond and cannot be guessed.
    """
    value = (now_ms() << 80) | secrets.randbits(80)
    characters = []
    for _ in range(26):
        characters.append(_CROCKFORD_BASE32[value & 31])
        value >>= 5
    return "msg_" + "".join(reversed(characters))


def merge_custom(
    stored: Mapping[str, str] | None, update: Mapping[str, str | None]
) -> dict[str, str]:
    """Merge ``update`` into ``stored``: a key set to ``None`` is removed."""
    merged = dict(stored or {})
    for key, value in update.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    if len(merged) > MAX_CUSTOM_FIELDS:
        raise InvalidInput(
            f"custom would have {len(merged)} keys after the update, over the limit of "
            f"{MAX_CUSTOM_FIELDS}: remove keys by setting them to None"
        )
    return merged


def merge_user(existing: User | None, update: User) -> User:
    """Apply the fields set in ``update`` to ``existing`` (``None``: a new user).

    ``created_at`` is set only for a new user, to ``update.created_at`` or now.

    Raises:
        InvalidInput: the merged ``custom`` has more than ``MAX_CUSTOM_FIELDS`` keys.
    """
    fields: dict[str, Any] = existing.model_dump() if existing else {"id": update.id}
    for name in update.model_fields_set - {"id", "custom", "created_at"}:
        fields[name] = getattr(update, name)
    if "custom" in update.model_fields_set:
        fields["custom"] = (
            None if update.custom is None else merge_custom(fields.get("custom"), update.custom)
        )
    if existing is None:
        fields["created_at"] = update.created_at if update.created_at is not None else now_ms()
    return User.model_validate(fields)


def merge_conversation(
    existing: Conversation | None,
    conversation_id: str,
    attributes: ConversationAttributes | None,
) -> Conversation:
    """Apply ``attributes`` to ``existing`` (``None``: a new conversation, created now).

    The result has no participants. ``custom=None`` in ``attributes`` empties ``custom``.

    Raises:
        InvalidInput: the merged ``custom`` has more than ``MAX_CUSTOM_FIELDS`` keys.
    """
    fields: dict[str, Any] = (
        existing.model_dump(exclude={"participants"})
        if existing
        else {"id": conversation_id, "created_at": now_ms()}
    )
    if attributes is not None:
        for name in attributes.model_fields_set - {"custom"}:
            fields[name] = getattr(attributes, name)
        if "custom" in attributes.model_fields_set:
            fields["custom"] = (
                {}
                if attributes.custom is None
                else merge_custom(fields.get("custom"), attributes.custom)
            )
    return Conversation.model_validate(fields)
