"""The message list of a Chatbox: blocks of message rows over a MessageCache."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from reactpy import component, html, use_effect, use_state
from reactpy.types import VdomDict

from ..errors import ChatError
from ..models import MAX_TEXT_LENGTH, Message, MessageType, User
from ..predicates import MessageMatcher, compile_message_predicate
from ._adapter import DaySeparator, MessageEditor, MessageLog, Timestamp
from .formatting import format_message_text
from .message_actions import CompiledMessageAction, MessageActionRunner, action_menu
from .message_cache import BLOCK_SIZE, MessageCache
from .strings import text

__all__ = [
    "SPARE_BLOCKS",
    "ListContext",
    "MessageList",
    "avatar",
    "block_window",
]

SPARE_BLOCKS = max(500 // BLOCK_SIZE, 4)
"""Empty blocks rendered at least before the first message's block and after the last one's.

Older pages and new messages fill these blocks, each block re-rendering by
itself. Only a message outside them re-renders the list, after about 500
messages at either end: 10 older pages of ``chatbox.PAGE_SIZE`` messages.
"""

GROUP_WINDOW_MS = 5 * 60 * 1000
"""Messages of one sender closer than this (5 minutes) share one sender heading."""


class MessageActions:
    """Edit and delete operations of one chatbox, shared by its blocks.

    One instance lives as long as the chatbox, so a ``ListContext`` holding it
    compares equal between renders.
    """

    def __init__(self) -> None:
        self.edit: Callable[[str, str], Awaitable[None]] | None = None
        self.delete: Callable[[str], Awaitable[None]] | None = None


@dataclass(frozen=True)
class ListContext:
    """Data every row needs besides its message; equal contexts do not re-render blocks."""

    me_id: str
    participant_count: int
    highlighted_words: tuple[str, ...] = ()
    message_filter: MessageMatcher = field(default_factory=lambda: compile_message_predicate(None))
    actions: MessageActions | None = None
    """Edit and delete of own messages; ``None`` makes the list read-only."""
    message_actions: tuple[CompiledMessageAction, ...] = ()
    """Custom actions offered in each message's menu; empty for guests."""
    action_runner: MessageActionRunner | None = None
    """Runs a picked custom action; ``None`` offers no custom actions."""


def block_window(cache: MessageCache, rendered: range) -> range:
    """Return the indexes of the blocks to render: ``rendered`` while it contains ``cache.blocks``.

    Otherwise return a new range with spare blocks at both ends, at least
    ``SPARE_BLOCKS`` and at least as many as contain messages, so that the list
    re-renders less often the longer it gets.
    """
    occupied = cache.blocks
    if rendered and rendered.start <= occupied.start and occupied.stop <= rendered.stop:
        return rendered
    spare = max(SPARE_BLOCKS, len(occupied))
    return range(max(occupied.start - spare, 0), occupied.stop + spare)


@component
def MessageList(
    cache: MessageCache,
    blocks: range,
    context: ListContext,
    welcome: tuple[str, ...],
    loaded: bool,
    on_near_top: Callable[[Any], Any],
    on_seen: Callable[[Any], Any],
    user_welcome: tuple[tuple[str, str], ...] = (),
) -> VdomDict:
    """Render the welcome messages and a block component for each index in ``blocks``.

    ``welcome`` holds the conversation's welcome messages. ``user_welcome``
    holds ``(name, text)`` pairs of the other participants' welcome messages,
    shown after them as system messages with the participant's name.

    This component has no state and re-renders only with the chatbox, which
    happens when the cache outgrows the rendered blocks. Everything that
    changes often renders by itself: each block, and the status element.
    Blocks are keyed by index, so a block keeps its state (an open editor)
    when ``blocks`` changes.
    """
    rows: list[Any] = [
        html.div(
            {"key": f"welcome-{number}", "className": "tjs-message tjs-message--system"},
            html.div({"className": "tjs-message__text", "dir": "auto"}, line),
        )
        for number, line in enumerate(welcome)
    ]
    rows.extend(
        html.div(
            {"key": f"user-welcome-{number}", "className": "tjs-message tjs-message--system"},
            html.div(
                {"className": "tjs-message__meta"},
                html.span({"className": "tjs-message__sender", "dir": "auto"}, name),
            ),
            html.div({"className": "tjs-message__text", "dir": "auto"}, line),
        )
        for number, (name, line) in enumerate(user_welcome)
    )
    rows.append(_ListStatus(cache, loaded, bool(welcome or user_welcome), key="status"))
    rows.extend(_MessageBlock(cache, index, context, key=f"block-{index}") for index in blocks)
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
    # Editing and delete confirmation are per block, so they re-render this block only.
    no_id: str | None = None
    editing, set_editing = use_state(no_id)
    confirming, set_confirming = use_state(no_id)
    no_error: str | None = None
    failure, set_failure = use_state(no_error)

    rendered_revision = cache.block_revision(index)

    @use_effect(dependencies=[cache, index])
    def follow_block() -> Callable[[], None]:
        def changed() -> None:
            set_version(lambda version: version + 1)

        stop = cache.on_block(index, changed)
        # Runs once, after the first render. A change in between, such as an
        # older page that arrived while the list rendered, reached no listener.
        if cache.block_revision(index) != rendered_revision:
            changed()
        return stop

    async def save(message_id: str, new_text: str) -> None:
        if context.actions is None or context.actions.edit is None:
            return
        try:
            await context.actions.edit(message_id, new_text)
        except ChatError as exc:
            set_failure(text("edit_failed", reason=exc.message))
            return
        set_failure(None)
        set_editing(None)

    async def delete(message_id: str) -> None:
        if context.actions is None or context.actions.delete is None:
            return
        try:
            await context.actions.delete(message_id)
        except ChatError as exc:
            set_failure(text("delete_failed", reason=exc.message))
            return
        set_failure(None)
        set_confirming(None)

    state = _RowState(
        editing=editing,
        confirming=confirming,
        failure=failure,
        start_edit=set_editing,
        confirm_delete=set_confirming,
        save=save,
        delete=delete,
    )
    previous = cache.before(index)
    rows: list[VdomDict] = []
    for message in cache.block(index):
        sender = cache.users.get(message.sender_id or "")
        if not context.message_filter(message, sender):
            continue
        rows.append(_message_row(message, previous, cache.users, context, state))
        previous = message
    return html.div({"className": "tjs-block", "role": "presentation"}, *rows)


@dataclass(frozen=True)
class _RowState:
    """Per-block editing state and its callbacks, for the rows of one block."""

    editing: str | None
    confirming: str | None
    failure: str | None
    start_edit: Callable[[str | None], None]
    confirm_delete: Callable[[str | None], None]
    save: Callable[[str, str], Awaitable[None]]
    delete: Callable[[str], Awaitable[None]]


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
    return avatar(name, user.photo_url if user else None)


def avatar(name: str, photo_url: str | None, *, large: bool = False) -> VdomDict:
    """Return a picture, or the name's initials when there is no picture; decorative."""
    classes = "tjs-avatar tjs-avatar--large" if large else "tjs-avatar"
    if photo_url:
        return html.img({"className": classes, "src": photo_url, "alt": "", "loading": "lazy"})
    initials = "".join(part[0] for part in name.split()[:2]).upper() or "?"
    return html.span(
        {"className": f"{classes} tjs-avatar--initials", "aria-hidden": "true"}, initials
    )


def _message_row(
    message: Message,
    previous: Message | None,
    users: dict[str, User],
    context: ListContext,
    state: _RowState,
) -> VdomDict:
    """Return the row of one message: a day heading when the day changes, then the bubble."""
    separator = DaySeparator(
        {"ms": message.created_at, "previousMs": previous.created_at if previous else None}
    )
    body = html.div(
        {"className": "tjs-message__text", "dir": "auto"},
        *format_message_text(message.text, highlighted_words=context.highlighted_words),
    )
    if message.type is MessageType.SYSTEM:
        bubble = html.div(
            {"className": "tjs-message tjs-message--system", "data-message-id": message.id}, body
        )
        row_attributes = {"key": message.id, "className": "tjs-row tjs-row--system"}
        return html.div(row_attributes, separator, bubble)
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
    # Only own messages may depend on read_by: MessageCache.mark_read re-renders only their blocks.
    if own:
        meta.append(html.span({"className": "tjs-message__receipt"}, _receipt(message, context)))
    content: list[Any] = [html.div({"className": "tjs-message__meta"}, *meta)]
    if own and state.editing == message.id:
        content.append(_editor(message, state))
    else:
        content.append(body)
    controls: list[Any] = []
    if own and context.actions is not None:
        controls.append(_actions(message, state))
    menu = action_menu(
        message, sender, context.me_id, context.message_actions, context.action_runner
    )
    if menu is not None:
        controls.append(menu)
    if controls:
        # One line for Edit, Delete and the "Message actions" menu.
        content.append(html.div({"className": "tjs-message__controls"}, *controls))
    if state.failure and state.editing in (None, message.id):
        content.append(html.p({"className": "tjs-error", "role": "alert"}, state.failure))
    bubble = html.div(
        {"className": classes, "data-message-id": message.id, "data-sender-id": sender_id},
        *content,
    )
    return html.div({"key": message.id, "className": f"tjs-row tjs-row--{side}"}, separator, bubble)


def _editor(message: Message, state: _RowState) -> VdomDict:
    async def on_save(event: dict[str, Any]) -> None:
        await state.save(message.id, str(event.get("text") or ""))

    element: VdomDict = MessageEditor(
        {
            "initialText": message.text,
            "label": text("edit_label"),
            "saveLabel": text("save"),
            "cancelLabel": text("cancel"),
            "maxLength": MAX_TEXT_LENGTH,
            "onSave": on_save,
            "onCancel": lambda _event: state.start_edit(None),
        }
    )
    return element


def _actions(message: Message, state: _RowState) -> VdomDict:
    if state.confirming == message.id:

        async def on_confirm(_event: Any) -> None:
            await state.delete(message.id)

        return html.div(
            {"className": "tjs-actions", "role": "group", "aria-label": text("confirm_delete")},
            html.span(text("confirm_delete")),
            html.button({"type": "button", "onClick": on_confirm}, text("delete")),
            html.button(
                {
                    "type": "button",
                    # Escape in the list presses the button of this class.
                    "className": "tjs-cancel",
                    "onClick": lambda _event: state.confirm_delete(None),
                },
                text("cancel"),
            ),
        )
    if state.editing == message.id:
        return html.div({"className": "tjs-actions"})
    return html.div(
        {"className": "tjs-actions"},
        html.button(
            {
                "type": "button",
                "aria-label": text("edit_message"),
                "onClick": lambda _event: state.start_edit(message.id),
            },
            text("edit"),
        ),
        html.button(
            {
                "type": "button",
                "aria-label": text("delete_message"),
                "onClick": lambda _event: state.confirm_delete(message.id),
            },
            text("delete"),
        ),
    )
