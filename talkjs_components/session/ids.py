"""Conversation ids computed the way TalkJS computes them."""

from __future__ import annotations

import hashlib
import json

from ..models import User

__all__ = ["one_on_one_id"]


def one_on_one_id(user: User | str, other: User | str) -> str:
    """Return the conversation id TalkJS's ``Talk.oneOnOneId`` gives two users.

    TalkJS sorts the two ids, serializes them with ``JSON.stringify`` and keeps
    the first 20 hex digits of the SHA-1 digest. JavaScript sorts strings by
    UTF-16 code units, so the sort key here is the UTF-16 encoding.
    """
    ids = [item.id if isinstance(item, User) else item for item in (user, other)]
    ids.sort(key=lambda text: text.encode("utf-16-be", "surrogatepass"))
    serialized = json.dumps(ids, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha1(serialized.encode("utf-8", "surrogatepass")).hexdigest()[:20]
