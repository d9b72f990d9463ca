"""The ``Chatbox`` component: one conversation's messages and a composer."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any

from reactpy import Ref, component, html, use_async_effect, use_effect, use_ref, use_state
from reactpy.types import VdomDict

from ..errors import ChatError, InvalidInput
from ..models import (
    MAX_TEXT_LENGTH,
    AccessLevel,
    ChatEvent,
    Conversation,
    ConversationUpdated,
    Message,
    MessageSent,
    MessageType,
    User,
)
from ..session import BoxKind, ConversationBuilder, SessionStatus, TalkSession, UIBox
from ._adapter import Composer, MessageLog, Timestamp
from .context import use_session, use_session_state
from .strings import text

__all__ = ["Chatbox"]

logger = logging.getLogger("talkjs_components.ui")

SyncConversation = ConversationBuilder | Callable[[TalkSession], ConversationBuilder]

PAGE_SIZE = 50
"""Messages loaded when a conversation opens."""

_UNSET: Any = object()


def _class_names(*names: str | None) -> str:
    return " ".join(name for name in names if name)


@component
def Chatbox(
    conversation_id: str | None = _UNSET,
    sync_conversation: SyncConversation | None = None,
    *,
    loading_component: Any = None,
    class_name: str | None = None,
    style: dict[str, Any] | None = None,
) -> VdomDict | Any:
    """Show one conversation: its messages, live, and a composer to write in it.

    Render it inside a ``Session``. Select the conversation with exactly one of
    ``conversation_id`` and ``sync_conversation``.

    Args:
        conversation_id: Id of a conversation the user participates in;
            ``None`` shows an empty state.
        sync_conversation: A ``ConversationBuilder``, or a function given the
            session that returns one; it is synced (created or updated) first.
        loading_component: Shown while the session connects.
        class_name: Extra CSS class names of the outer element.
        style: Inline styles of the outer element.
    """
    if conversation_id is not _UNSET and sync_conversation is not None:
        raise InvalidInput(
            "Chatbox takes one of conversation_id and sync_conversation, not both; "
            f"got conversation_id={conversation_id!r} and a sync_conversation"
        )
    state = use_session_state()
    session = use_session()
    classes = _class_names("tjs-chatbox", class_name)
    attributes: dict[str, Any] = {"className": classes}
    if style:
        attributes["style"] = style
    if session is None:
        if state.error is not None:
            notice = html.p(
                {"className": "tjs-error", "role": "alert"},
                text("connect_failed", reason=state.error.message),
            )
        else:
            notice = loading_component or html.p({"className": "tjs-loading"}, text("loading"))
        return html.div(attributes, notice)
    selected = None if conversation_id is _UNSET else conversation_id
    return _ActiveChatbox(
        session,
        selected,
        sync_conversation,
        attributes,
        # A new session object remounts the chatbox, so no state crosses sessions.
        key=f"session-{session.id}",
    )


def _merge(messages: tuple[Message, ...], new: Iterable[Message]) -> tuple[Message, ...]:
    """Return ``messages`` with ``new`` added or replaced by id, in store order (``seq``)."""
    by_id = {message.id: message for message in messages}
    for message in new:
        by_id[message.id] = message
    return tuple(sorted(by_id.values(), key=lambda message: message.seq))


@component
def _ActiveChatbox(
    session: TalkSession,
    conversation_id: str | None,
    sync_conversation: SyncConversation | None,
    attributes: dict[str, Any],
) -> VdomDict:
    no_conversation: Conversation | None = None
    no_messages: tuple[Message, ...] = ()
    no_users: dict[str, User] = {}
    no_error: str | None = None
    conversation, set_conversation = use_state(no_conversation)
    messages, set_messages = use_state(no_messages)
    users, set_users = use_state(no_users)
    error, set_error = use_state(no_error)
    # The outcome of the latest send, so the composer can restore a failed draft.
    no_ack: dict[str, Any] | None = None
    ack, set_ack = use_state(no_ack)
    # A conversation chosen through UIBox.select(); it wins until the props change.
    no_override: tuple[str | None] | None = None
    override, set_override = use_state(no_override)
    box: Ref[UIBox | None] = use_ref(None)
    reconnecting = use_session_state().status is SessionStatus.RECONNECTING

    builder: ConversationBuilder | None = None
    if sync_conversation is not None:
        builder = (
            sync_conversation
            if isinstance(sync_conversation, ConversationBuilder)
            else sync_conversation(session)
        )
        prop_selection: object = ("builder", builder.snapshot())
    else:
        prop_selection = ("id", conversation_id)

    if override is not None:
        builder = None
        conversation_id = override[0]
        selection: object = ("selected", conversation_id)
    else:
        selection = prop_selection
    target_id = builder.id if builder is not None else conversation_id

    @use_effect(dependencies=[session])
    def register_box() -> Callable[[], None] | None:
        if not session.is_alive:
            return None
        registered = UIBox(session, BoxKind.CHATBOX)
        registered.on_select = lambda selected: set_override((selected,))
        box.current = registered
        return registered.destroy

    @use_effect(dependencies=[prop_selection])
    def follow_props() -> None:
        set_override(None)

    # Open the selected conversation and follow it until unmount or a new
    # selection. The subscription starts before the first page loads and
    # messages merge by id in seq order, so nothing sent in between is lost,
    # doubled or reordered. Handlers of a superseded selection stop touching
    # state: ``following`` turns false when the effect ends.
    @use_async_effect(dependencies=[session, selection])
    async def open_and_follow() -> None:
        set_error(None)
        set_messages(())
        set_conversation(None)
        if box.current is not None:
            box.current.current_conversation_id = target_id
        if target_id is None:
            return
        following = [True]

        async def remember_users(user_ids: Iterable[str]) -> None:
            known = await session.get_users(sorted(set(user_ids)))
            if following[0]:
                set_users(lambda old: {**old, **known})

        async def on_event(event: ChatEvent) -> None:
            if not following[0] or event.conversation.id != target_id:
                return
            if isinstance(event, ConversationUpdated):
                set_conversation(event.conversation)
                return
            if not isinstance(event, MessageSent):
                return
            message, sender = event.message, event.sender
            if sender is not None:
                set_users(lambda old: {**old, sender.id: sender})
            set_messages(lambda old: _merge(old, [message]))
            if message.sender_id != session.me.id and session.is_alive:
                await session.mark_read(target_id, message.id)

        subscription = session.on_event(on_event)
        try:
            try:
                opened = (
                    await builder.sync() if builder else await session.get_conversation(target_id)
                )
                set_conversation(opened)
                page = await session.list_messages(opened.id, limit=PAGE_SIZE)
                set_messages(lambda old: _merge(old, page.messages))
                senders = {m.sender_id for m in page.messages if m.sender_id is not None}
                await remember_users([*senders, *opened.participants])
                # NOTE: this marks the whole conversation read, including unread
                # messages older than the loaded page, which cannot be scrolled to yet.
                await session.mark_read(opened.id)
            except ChatError as exc:
                logger.info(
                    "chatbox of user %r could not open conversation %r: %s",
                    session.me.id,
                    target_id,
                    exc.message,
                )
                set_error(text("load_failed", reason=exc.message))
            await asyncio.Event().wait()
        finally:
            following[0] = False
            subscription.unsubscribe()

    async def send(event: dict[str, Any]) -> None:
        body = str(event.get("text") or "")
        key = str(event.get("key") or "")
        if conversation is None:
            set_error(text("send_failed", reason=text("not_loaded")))
            set_ack({"key": key, "ok": False, "text": body})
            return
        try:
            await session.send_message(conversation.id, body, idempotency_key=key or None)
        except ChatError as exc:
            logger.info(
                "user %r could not send to conversation %r: %s (%s)",
                session.me.id,
                conversation.id,
                exc.message,
                exc.code,
            )
            set_error(text("send_failed", reason=exc.message))
            set_ack({"key": key, "ok": False, "text": body})
            return
        set_error(None)
        set_ack({"key": key, "ok": True})

    if builder is None and conversation_id is None:
        return html.div(attributes, html.p({"className": "tjs-empty"}, text("no_conversation")))

    return html.div(
        attributes,
        _header(conversation, users, session.me.id, failed=error is not None),
        html.p({"className": "tjs-error", "role": "alert"}, error) if error else "",
        html.p({"className": "tjs-notice", "role": "status"}, text("reconnecting"))
        if reconnecting
        else "",
        _message_log(messages, users, session.me.id, loaded=conversation is not None),
        Composer(
            {
                "onSend": send,
                "label": text("message_label"),
                "sendLabel": text("send"),
                "placeholder": text("placeholder"),
                "disabledPlaceholder": text("read_only_placeholder")
                if conversation is not None
                else "",
                "disabled": conversation is None
                or conversation.access_of(session.me.id) is not AccessLevel.READ_WRITE,
                "conversationId": conversation.id if conversation else None,
                "ack": ack,
                "maxLength": MAX_TEXT_LENGTH,
            }
        ),
    )


def _header(
    conversation: Conversation | None, users: dict[str, User], me_id: str, *, failed: bool
) -> VdomDict:
    if conversation is None:
        title = text("unavailable") if failed else text("loading")
        return html.div({"className": "tjs-chatbox__header"}, title)
    others = [
        users[user_id].display_name if user_id in users else user_id
        for user_id in conversation.participants
        if user_id != me_id
    ]
    names = ", ".join(others)
    title = conversation.subject or names or text("you")
    return html.header(
        {"className": "tjs-chatbox__header"},
        html.span({"dir": "auto"}, title),
        html.small({"dir": "auto"}, names) if conversation.subject and names else "",
    )


def _message_log(
    messages: tuple[Message, ...], users: dict[str, User], me_id: str, *, loaded: bool
) -> Any:
    rows = [_message_row(message, users, me_id) for message in messages]
    if loaded and not rows:
        rows = [html.p({"key": "empty", "className": "tjs-empty"}, text("no_messages"))]
    # NOTE: appending a message re-renders the whole list and ReactPy sends the
    # whole list model; keyed blocks or an incremental JS list would keep the
    # update small for long histories.
    return MessageLog({"label": text("messages_label"), "className": "tjs-log"}, *rows)


def _message_row(message: Message, users: dict[str, User], me_id: str) -> VdomDict:
    if message.type is MessageType.SYSTEM:
        modifier = "tjs-message--system"
        sender_name = ""
    else:
        own = message.sender_id == me_id
        modifier = "tjs-message--own" if own else "tjs-message--other"
        sender = users.get(message.sender_id or "")
        sender_name = sender.display_name if sender else (message.sender_id or "")
    return html.div(
        {
            "key": message.id,
            "className": f"tjs-message {modifier}",
            "data-message-id": message.id,
            "data-sender-id": message.sender_id or "",
        },
        html.div(
            {"className": "tjs-message__meta"},
            html.span({"className": "tjs-message__sender", "dir": "auto"}, sender_name),
            Timestamp({"ms": message.created_at}),
        ),
        html.div({"className": "tjs-message__text", "dir": "auto"}, message.text),
    )
