"""Props and selection logic shared by ``Chatbox``, ``Inbox`` and ``Popup``."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidInput
from ..session import ConversationBuilder, TalkSession

__all__ = [
    "UNSET",
    "BoxSelection",
    "SyncConversation",
    "check_ref",
    "check_selection_props",
    "class_names",
    "resolve_selection",
    "take_own_props",
]

SyncConversation = ConversationBuilder | Callable[[TalkSession], ConversationBuilder]
"""A builder, or a function that receives the session and returns one."""

UNSET: Any = object()
"""Default of ``conversation_id``: not given. It differs from ``None``, which selects none."""

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def class_names(*names: str | None) -> str:
    """Join the given CSS class names, skipping empty ones."""
    return " ".join(name for name in names if name)


def take_own_props(
    box: str, own: dict[str, Any], defaults: Mapping[str, Any], extra: Mapping[str, Any]
) -> dict[str, Any]:
    """Move @talkjs/react camelCase spellings of ``box``'s own props from ``extra`` into ``own``.

    Returns the remaining props, which are the Chatbox options. ``own`` is
    updated in place.

    Raises:
        InvalidInput: A prop is given in both spellings.
    """
    remaining: dict[str, Any] = {}
    for name, value in extra.items():
        canonical = _CAMEL_BOUNDARY.sub("_", name).lower()
        if canonical not in defaults:
            remaining[name] = value
            continue
        if own[canonical] is not defaults[canonical]:
            raise InvalidInput(f"{box} got {canonical!r} twice: pass one spelling of it")
        own[canonical] = value
    return remaining


def check_ref(box: str, name: str, value: Any) -> None:
    """Raise InvalidInput unless ``value`` is ``None`` or has a ``current`` attribute to set."""
    if value is not None and not hasattr(value, "current"):
        raise InvalidInput(
            f"{box} {name} must be a reactpy.Ref (use_ref(None)), got {type(value).__name__}"
        )


def check_selection_props(box: str, conversation_id: Any, sync_conversation: Any) -> None:
    """Raise InvalidInput unless at most one valid conversation prop is given."""
    if conversation_id is not UNSET and sync_conversation is not None:
        raise InvalidInput(
            f"{box} takes one of conversation_id and sync_conversation, not both; "
            f"got conversation_id={conversation_id!r} and a sync_conversation"
        )
    if conversation_id not in (UNSET, None) and not isinstance(conversation_id, str):
        raise InvalidInput(
            f"{box} conversation_id must be a string or None, got {type(conversation_id).__name__}"
        )


@dataclass(frozen=True)
class BoxSelection:
    """The conversation a box shows: an id (``None`` for none) or a builder to sync first."""

    conversation_id: str | None
    builder: ConversationBuilder | None


def resolve_selection(
    session: TalkSession,
    conversation_id: Any,
    sync_conversation: SyncConversation | None,
    chosen: tuple[str | None] | None,
) -> tuple[BoxSelection, object]:
    """Return what the box shows and the comparable form of the props' selection.

    ``chosen`` is a selection made in the box itself (a click or
    ``UIBox.select``). It wins over the props until the props change.
    """
    builder: ConversationBuilder | None = None
    if sync_conversation is not None:
        builder = (
            sync_conversation
            if isinstance(sync_conversation, ConversationBuilder)
            else sync_conversation(session)
        )
        prop_key: object = ("builder", builder.snapshot())
        prop_selection = BoxSelection(builder.id, builder)
    else:
        selected = None if conversation_id is UNSET else conversation_id
        prop_key = ("id", selected)
        prop_selection = BoxSelection(selected, None)
    if chosen is not None:
        return BoxSelection(chosen[0], None), prop_key
    return prop_selection, prop_key
