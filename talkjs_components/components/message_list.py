"""The message list of a Chatbox: blocks of message rows over a MessageCache."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from reactpy import component, html, use_effect, use_state
from reactpy.types import VdomDict

from ..models import Message, MessageType, User
from ._adapter import DaySeparator, MessageLog, Timestamp
from .message_cache import MessageCache
from .strings import text

__all__ = ["MIN_BLOCKS", "SPARE_BLOCKS", "ListContext", "MessageList", "slot_count"]

SPARE_BLOCKS = 4
"""Empty blocks rendered after the last one, so new messages rarely re-render the list."""

MIN_BLOCKS = 48
"""Blocks rendered at least: room for 1,200 messages before the list re-renders."""

GROUP_WINDOW_MS = 5 * 60 * 1000
"""Messages of one sender closer than this (5 minutes) share one sender heading."""


@dataclass(frozen=True)
class ListContext:
    """What every row needs besides its message; equal contexts do not re-render blocks."""

    me_id: str
    participant_count: int
    highlighted_words: tuple[str, ...] = ()


def slot_count(cache: MessageCache) -> int:
    """Return how many block components to render for ``cache``."""
    return max(MIN_BLOCKS, cache.block_count + SPARE_BLOCKS)


@component
def MessageList(
    cache: MessageCache,
    slots: int,
    context: ListContext,
    welcome: tuple[str, ...],
    loaded: bool,
    on_near_top: Callable[[Any], Any],
    on_seen: Callable[[Any], Any],
) -> VdomDict:
    """Render the welcome messages and ``slots`` block components.

    This component has no state and re-renders only with the chatbox. ReactPy
    2.0.0b13's serial rendering can fail on a component rendered by itself
    right after its parent rendered by itself ("detached model state"), so the
    blocks are the only parts that render by themselves.
    """
    rows: list[Any] = [
        html.div(
            {"key": f"welcome-{number}", "className": "tjs-message tjs-message--system"},
            html.div({"className": "tjs-message__text", "dir": "auto"}, line),
        )
        for number, line in enumerate(welcome)
    ]
    rows.append(_ListStatus(cache, loaded, bool(welcome), key="status"))
    rows.extend(
        _MessageBlock(cache, index, context, key=f"block-{index}") for index in range(slots)
    )
    element: VdomDict = MessageLog(
        {
            "label": text("messages_label"),
            "className": "tjs-log",
            "newMessagesLabel": text("new_messages"),
            "onNearTop": on_near_top,
            "onSeen": on_seen,
        },
        *rows,
    )
    return element


@component
def _ListStatus(cache: MessageCache, loaded: bool, has_welcome: bool) -> VdomDict:
    """Render the older-messages marker and the empty state, following the cache."""
    _, set_version = use_state(0)

    @use_effect(dependencies=[cache])
    def follow_layout() -> Callable[[], None]:
        return cache.on_layout(lambda: set_version(lambda version: version + 1))

    attributes = {
        "className": "tjs-list-status",
        "data-has-older": "true" if cache.has_older else "false",
        "data-first-id": cache.first.id if cache.first else "",
        "data-last-id": cache.last.id if cache.last else "",
    }
    if loaded and not len(cache) and not has_welcome:
        return html.p({**attributes, "className": "tjs-empty"}, text("no_messages"))
    return html.div(attributes)


@component
def _MessageBlock(cache: MessageCache, index: int, context: ListContext) -> VdomDict:
    _, set_version = use_state(0)

    @use_effect(dependencies=[cache, index])
    def follow_block() -> Callable[[], None]:
        return cache.on_block(index, lambda: set_version(lambda version: version + 1))

    messages = cache.block(index)
    previous = cache.before(index)
    rows: list[VdomDict] = []
    for message in messages:
        rows.append(_message_row(message, previous, cache.users, context))
        previous = message
    return html.div({"className": "tjs-block", "role": "presentation"}, *rows)


def _starts_group(message: Message, previous: Message | None) -> bool:
    if previous is None or previous.type is not message.type:
        return True
    if previous.sender_id != message.sender_id:
        return True
    return message.created_at - previous.created_at > GROUP_WINDOW_MS


def _receipt(message: Message, context: ListContext) -> str:
    others = max(context.participant_count - 1, 0)
    if not message.read_by:
        return text("receipt_sent")
    if len(message.read_by) >= others:
        return text("receipt_read")
    return text("receipt_read_by_some")


def _avatar(user: User | None, fallback_id: str) -> VdomDict:
    name = user.display_name if user else fallback_id
    if user is not None and user.photo_url:
        return html.img(
            {"className": "tjs-avatar", "src": user.photo_url, "alt": "", "loading": "lazy"}
        )
    initials = "".join(part[0] for part in name.split()[:2]).upper() or "?"
    return html.span(
        {"className": "tjs-avatar tjs-avatar--initials", "aria-hidden": "true"}, initials
    )


def _message_row(
    message: Message, previous: Message | None, users: dict[str, User], context: ListContext
) -> VdomDict:
    """Return the row of one message: a day heading when the day changes, then the bubble."""
    separator = DaySeparator(
        {"ms": message.created_at, "previousMs": previous.created_at if previous else None}
    )
    if message.type is MessageType.SYSTEM:
        bubble = html.div(
            {"className": "tjs-message tjs-message--system", "data-message-id": message.id},
            html.div({"className": "tjs-message__text", "dir": "auto"}, message.text),
        )
        return html.div(
            {"key": message.id, "className": "tjs-row tjs-row--system"}, separator, bubble
        )
    own = message.sender_id == context.me_id
    side = "own" if own else "other"
    sender_id = message.sender_id or ""
    sender = users.get(sender_id)
    heading = _starts_group(message, previous)
    classes = f"tjs-message tjs-message--{side}" + ("" if heading else " tjs-message--grouped")
    meta: list[Any] = []
    if heading:
        meta.append(_avatar(sender, sender_id))
        meta.append(
            html.span(
                {"className": "tjs-message__sender", "dir": "auto"},
                sender.display_name if sender else sender_id,
            )
        )
    meta.append(Timestamp({"ms": message.created_at}))
    if message.edited_at is not None:
        meta.append(html.span({"className": "tjs-message__edited"}, text("edited")))
    if own:
        meta.append(html.span({"className": "tjs-message__receipt"}, _receipt(message, context)))
    bubble = html.div(
        {"className": classes, "data-message-id": message.id, "data-sender-id": sender_id},
        html.div({"className": "tjs-message__meta"}, *meta),
        html.div({"className": "tjs-message__text", "dir": "auto"}, message.text),
    )
    return html.div({"key": message.id, "className": f"tjs-row tjs-row--{side}"}, separator, bubble)
