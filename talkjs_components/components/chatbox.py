"""The ``Chatbox`` component: one conversation's messages and a composer."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
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
    MessageSent,
    MessagesRead,
    User,
)
from ..session import BoxKind, ConversationBuilder, SessionStatus, TalkSession, UIBox
from ._adapter import Composer
from .context import use_session, use_session_state
from .message_cache import MessageCache
from .message_list import ListContext, MessageList, slot_count
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


@component
def _ActiveChatbox(
    session: TalkSession,
    conversation_id: str | None,
    sync_conversation: SyncConversation | None,
    attributes: dict[str, Any],
) -> VdomDict:
    # Only rarely changing state lives here: this component re-renders the
    # whole chatbox, the message list included. Messages live in the cache,
    # whose blocks re-render by themselves.
    no_conversation: Conversation | None = None
    no_error: str | None = None
    conversation, set_conversation = use_state(no_conversation)
    error, set_error = use_state(no_error)
    cache: MessageCache = use_ref(MessageCache()).current
    # A conversation chosen through UIBox.select(); it wins until the props change.
    no_override: tuple[str | None] | None = None
    override, set_override = use_state(no_override)
    box: Ref[UIBox | None] = use_ref(None)
    loading_older: Ref[bool] = use_ref(False)
    # The chatbox re-renders itself only when the cache outgrows the rendered blocks.
    rendered_slots: Ref[int] = use_ref(0)
    _, set_layout_version = use_state(0)
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

    @use_effect(dependencies=[cache])
    def follow_growth() -> Callable[[], None]:
        def changed() -> None:
            if slot_count(cache) > rendered_slots.current:
                set_layout_version(lambda version: version + 1)

        return cache.on_layout(changed)

    # Open the selected conversation and follow it until unmount or a new
    # selection. The subscription starts before the first page loads and the
    # cache orders messages by seq, so nothing sent in between is lost,
    # doubled or reordered. Handlers of a superseded selection stop touching
    # state: ``following`` turns false when the effect ends.
    @use_async_effect(dependencies=[session, selection])
    async def open_and_follow() -> None:
        set_error(None)
        set_conversation(None)
        cache.reset((), has_older=False)
        if box.current is not None:
            box.current.current_conversation_id = target_id
        if target_id is None:
            return
        following = [True]

        def on_event(event: ChatEvent) -> None:
            if not following[0] or event.conversation.id != target_id:
                return
            if isinstance(event, ConversationUpdated):
                set_conversation(event.conversation)
            elif isinstance(event, MessageSent):
                if event.sender is not None:
                    cache.add_users({event.sender.id: event.sender})
                cache.upsert(event.message)
            elif isinstance(event, MessagesRead):
                cache.mark_read(event.user_id, event.last_read_seq)

        subscription = session.on_event(on_event)
        try:
            try:
                opened = (
                    await builder.sync() if builder else await session.get_conversation(target_id)
                )
                page = await session.list_messages(opened.id, limit=PAGE_SIZE)
                senders = {m.sender_id for m in page.messages if m.sender_id is not None}
                known = await session.get_users(sorted({*senders, *opened.participants}))
                if following[0]:
                    cache.add_users(known)
                    cache.prepend(page.messages, has_older=page.has_more)
                    set_conversation(opened)
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

    async def load_older(_event: Any) -> None:
        first = cache.first
        if conversation is None or first is None or loading_older.current:
            return
        loading_older.current = True
        try:
            page = await session.list_messages(conversation.id, limit=PAGE_SIZE, before=first.id)
            senders = {m.sender_id for m in page.messages if m.sender_id is not None}
            cache.add_users(await session.get_users(sorted(senders)))
            cache.prepend(page.messages, has_older=page.has_more)
        except ChatError as exc:
            set_error(text("load_failed", reason=exc.message))
        finally:
            loading_older.current = False

    async def mark_seen(_event: Any) -> None:
        if conversation is None or not session.is_alive:
            return
        try:
            await session.mark_read(conversation.id)
        except ChatError as exc:
            logger.info("user %r could not mark %r read: %s", session.me.id, conversation.id, exc)

    if builder is None and conversation_id is None:
        return html.div(attributes, html.p({"className": "tjs-empty"}, text("no_conversation")))

    context = ListContext(
        me_id=session.me.id,
        participant_count=len(conversation.participants) if conversation else 0,
    )
    welcome = tuple(conversation.welcome_messages or ()) if conversation else ()
    rendered_slots.current = slot_count(cache)
    return html.div(
        attributes,
        _header(conversation, cache.users, session.me.id, failed=error is not None),
        html.p({"className": "tjs-error", "role": "alert"}, error) if error else "",
        html.p({"className": "tjs-notice", "role": "status"}, text("reconnecting"))
        if reconnecting
        else "",
        MessageList(
            cache,
            rendered_slots.current,
            context,
            welcome,
            conversation is not None,
            load_older,
            mark_seen,
        ),
        _ComposerArea(session, conversation, on_error=set_error),
    )


@component
def _ComposerArea(
    session: TalkSession,
    conversation: Conversation | None,
    on_error: Callable[[str | None], None],
) -> VdomDict:
    """Render the composer; the outcome of each send is state here, not in the chatbox."""
    # The outcome of the latest send, so the composer can restore a failed draft.
    no_ack: dict[str, Any] | None = None
    ack, set_ack = use_state(no_ack)

    async def send(event: dict[str, Any]) -> None:
        body = str(event.get("text") or "")
        key = str(event.get("key") or "")
        if conversation is None:
            on_error(text("send_failed", reason=text("not_loaded")))
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
            on_error(text("send_failed", reason=exc.message))
            set_ack({"key": key, "ok": False, "text": body})
            return
        set_ack({"key": key, "ok": True})

    writable = (
        conversation is not None and conversation.access_of(session.me.id) is AccessLevel.READ_WRITE
    )
    element: VdomDict = Composer(
        {
            "onSend": send,
            "label": text("message_label"),
            "sendLabel": text("send"),
            "placeholder": text("placeholder"),
            "disabledPlaceholder": text("read_only_placeholder") if conversation else "",
            "disabled": not writable,
            "conversationId": conversation.id if conversation else None,
            "ack": ack,
            "maxLength": MAX_TEXT_LENGTH,
        }
    )
    return element


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
