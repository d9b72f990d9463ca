"""The ``Chatbox`` component: one conversation's messages and a composer."""

from __future__ import annotations

import asyncio
import functools
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
    MessageDeleted,
    MessageEdited,
    MessageSent,
    MessagesRead,
    PresenceChanged,
    TypingChanged,
    User,
    now_ms,
)
from ..session import BoxKind, SessionStatus, TalkSession, UIBox
from ..session.boxes import mount_box
from ._adapter import Composer
from .box_props import (
    UNSET,
    SyncConversation,
    check_selection_props,
    class_names,
    resolve_selection,
)
from .chatbox_events import LeaveConversationEvent, run_send_message_handler
from .chatbox_props import ChatboxOptions, parse_chatbox_props
from .context import use_session, use_session_state
from .message_actions import MessageActionRunner
from .message_cache import MessageCache
from .message_list import ListContext, MessageActions, MessageList, avatar, block_window
from .strings import text

__all__ = ["Chatbox"]

logger = logging.getLogger("talkjs_components.ui")

PAGE_SIZE = 50
"""Messages loaded when a conversation opens."""


@component
def Chatbox(
    conversation_id: str | None = UNSET,
    sync_conversation: SyncConversation | None = None,
    **props: Any,
) -> VdomDict | Any:
    """Show one conversation: its messages, live, and a composer to write in it.

    Render it inside a ``Session``. Select the conversation with exactly one of
    ``conversation_id`` (``None`` shows an empty state) and
    ``sync_conversation`` (a ``ConversationBuilder``, or a function given the
    session that returns one; it is synced first). The @talkjs/react
    camelCase spellings of every prop work too.

    Props:
        as_guest: Read only, and reading marks nothing read.
        chatbox_ref: A ``reactpy.Ref`` set to the chatbox's ``UIBox`` while
            mounted, ``None`` after unmount.
        loading_component: Shown while the session connects.
        class_name, style: Extra CSS classes and inline styles of the outer element.
        show_chat_header: Show the header with title and participants (default true).
        message_field: Composer options: ``placeholder`` (default "Say
            something..."), ``enter_sends_message`` (true), ``visible`` (true),
            ``autofocus`` (true), ``spellcheck`` (false).
        theme: CSS custom properties, e.g. ``{"accent": "#0a7"}`` sets ``--tjs-accent``.
        dir: ``"ltr"``, ``"rtl"`` or ``"auto"``.
        message_filter: A TalkJS MessagePredicate; ``None`` shows every message.
        highlighted_words: Words marked in message text; ``None`` clears them.
        on_send_message: Called before each send with a ``SendMessageEvent``
            whose ``override(text=, custom=, cancel=)`` changes or stops it.
        on_focus, on_blur: The composer gained or lost focus.
        on_leave_conversation: Called with a cancellable event before the user
            leaves the conversation from the header.
        message_actions: A list of ``MessageAction`` offered in a "Message
            actions" menu on each message they are allowed on (none for
            guests or system messages).
        on_custom_message_action: Called with a ``MessageActionEvent`` when
            the user picks a custom action. A dict of action name to handler
            works too, and then an action without a handler is ignored.
    """
    state = use_session_state()
    session = use_session()
    try:
        check_selection_props("Chatbox", conversation_id, sync_conversation)
        options = parse_chatbox_props(props)
    except InvalidInput as exc:
        # Shown rather than raised: ReactPy logs a failed render with all props.
        logger.error("Chatbox has invalid props: %s", exc.message)
        return html.div(
            {"className": "tjs-chatbox"},
            html.p({"className": "tjs-error", "role": "alert"}, exc.message),
        )
    classes = class_names("tjs-chatbox", options.class_name)
    attributes: dict[str, Any] = {"className": classes}
    style = {**options.css_variables(), **dict(options.style or {})}
    if style:
        attributes["style"] = style
    if options.dir:
        attributes["dir"] = options.dir
    if session is None:
        if state.error is not None:
            notice = html.p(
                {"className": "tjs-error", "role": "alert"},
                text("connect_failed", reason=state.error.message),
            )
        else:
            notice = options.loading_component or html.p(
                {"className": "tjs-loading"}, text("loading")
            )
        return html.div(attributes, notice)
    return _ActiveChatbox(
        session,
        conversation_id,
        sync_conversation,
        attributes,
        options,
        # A new session object remounts the chatbox, so no state crosses sessions.
        key=f"session-{session.id}",
    )


@component
def _ActiveChatbox(
    session: TalkSession,
    conversation_id: str | None,
    sync_conversation: SyncConversation | None,
    attributes: dict[str, Any],
    options: ChatboxOptions,
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
    # The id of the conversation whose messages the cache contains, set before they render.
    # The browser can report them seen before the render that sets
    # ``conversation`` has replaced the handler, so mark_seen reads this.
    loaded_id: Ref[str | None] = use_ref(None)
    # The chatbox re-renders itself only when the cache outgrows the rendered blocks.
    rendered_blocks: Ref[range] = use_ref(range(0))
    _, set_layout_version = use_state(0)
    # Bumped when the session could not replay every missed event, so the
    # conversation is loaded again instead of showing a stale list.
    reloads, set_reloads = use_state(0)
    reconnecting = use_session_state().status is SessionStatus.RECONNECTING

    shown, prop_selection = resolve_selection(session, conversation_id, sync_conversation, override)
    builder = shown.builder
    target_id = shown.conversation_id
    selected: object = ("selected", target_id) if override is not None else prop_selection
    selection = (selected, reloads)

    actions: MessageActions = use_ref(MessageActions()).current
    action_runner: MessageActionRunner = use_ref(MessageActionRunner(cache)).current
    latest_options: Ref[ChatboxOptions] = use_ref(options)
    latest_options.current = options
    chatbox_ref = options.chatbox_ref

    @use_effect(dependencies=[session, chatbox_ref])
    def register_box() -> Callable[[], None] | None:
        if not session.is_alive:
            return None
        box.current, unmount = mount_box(
            session, BoxKind.CHATBOX, lambda selected: set_override((selected,)), chatbox_ref
        )
        box.current.on_reload = lambda: set_reloads(lambda count: count + 1)
        return unmount

    @use_effect(dependencies=[prop_selection])
    def follow_props() -> None:
        set_override(None)

    @use_effect(dependencies=[cache])
    def follow_growth() -> Callable[[], None]:
        def changed() -> None:
            if block_window(cache, rendered_blocks.current) != rendered_blocks.current:
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
        loaded_id.current = None
        if box.current is not None:
            box.current.current_conversation_id = target_id
        if target_id is None:
            return
        following = [True]
        lookups: set[asyncio.Task[None]] = set()

        async def learn_new_participants(participant_ids: list[str]) -> None:
            try:
                known = await session.get_users(participant_ids)
            except ChatError as exc:
                logger.info(
                    "chatbox of user %r could not read new participants %r: %s",
                    session.me.id,
                    participant_ids,
                    exc.message,
                )
                return
            if following[0]:
                cache.add_users(known)
                set_layout_version(lambda version: version + 1)

        def on_event(event: ChatEvent) -> None:
            if not following[0] or isinstance(event, PresenceChanged):
                return
            if event.conversation.id != target_id:
                return
            if isinstance(event, ConversationUpdated):
                set_conversation(event.conversation)
                # The header names participants from cache.users, which holds
                # only the users read when the conversation opened.
                unknown = sorted(set(event.conversation.participants) - cache.users.keys())
                if unknown:
                    lookup = asyncio.get_running_loop().create_task(learn_new_participants(unknown))
                    lookups.add(lookup)
                    lookup.add_done_callback(lookups.discard)
            elif isinstance(event, MessageSent):
                if event.sender is not None:
                    cache.add_users({event.sender.id: event.sender})
                cache.upsert(event.message)
            elif isinstance(event, MessagesRead):
                cache.mark_read(event.user_id, event.last_read_seq, viewer_id=session.me.id)
            elif isinstance(event, MessageEdited):
                cache.upsert(event.message)
            elif isinstance(event, MessageDeleted):
                cache.remove(event.message_id)

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
                    loaded_id.current = opened.id
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
            for lookup in lookups:
                lookup.cancel()

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

    async def edit(message_id: str, new_text: str) -> None:
        if conversation is not None:
            await session.edit_message(conversation.id, message_id, text=new_text)

    async def delete(message_id: str) -> None:
        if conversation is not None:
            await session.delete_message(conversation.id, message_id)

    writable = (
        conversation is not None
        and not options.as_guest
        and conversation.access_of(session.me.id) is AccessLevel.READ_WRITE
    )
    actions.edit = edit if writable else None
    actions.delete = delete if writable else None
    action_runner.update(
        session.me.id,
        conversation,
        options.message_actions,
        options.events.get("on_custom_message_action"),
    )

    async def mark_seen(event: Any) -> None:
        seen_id = loaded_id.current
        if seen_id is None or not session.is_alive or latest_options.current.as_guest:
            return
        # Read up to the last message the browser showed, not the newest
        # stored one: a message that arrived after the report is still unread.
        last_id = event.get("lastId") if isinstance(event, dict) else None
        shown = cache.get(last_id) if isinstance(last_id, str) else None
        if isinstance(last_id, str) and shown is None:
            return  # a report about a message the list no longer contains
        try:
            await session.mark_read(seen_id, shown.id if shown is not None else None)
        except ChatError as exc:
            logger.info("user %r could not mark %r read: %s", session.me.id, seen_id, exc)

    if target_id is None:
        return html.div(attributes, html.p({"className": "tjs-empty"}, text("no_conversation")))

    context = ListContext(
        me_id=session.me.id,
        participant_count=len(conversation.participants) if conversation else 0,
        highlighted_words=options.highlighted_words,
        message_filter=options.message_filter,
        actions=actions if writable else None,
        message_actions=() if options.as_guest else options.message_actions,
        action_runner=None if options.as_guest else action_runner,
    )
    welcome = tuple(conversation.welcome_messages or ()) if conversation else ()
    user_welcome = _user_welcome_messages(conversation, cache.users, session.me.id)
    rendered_blocks.current = block_window(cache, rendered_blocks.current)
    header = (
        _Header(session, conversation, cache.users, options, failed=error is not None)
        if options.show_chat_header
        else ""
    )
    return html.div(
        attributes,
        header,
        html.p({"className": "tjs-error", "role": "alert"}, error) if error else "",
        html.p({"className": "tjs-notice", "role": "status"}, text("reconnecting"))
        if reconnecting
        else "",
        MessageList(
            cache,
            rendered_blocks.current,
            context,
            welcome,
            conversation is not None,
            load_older,
            mark_seen,
            user_welcome=user_welcome,
        ),
        _TypingIndicator(session, conversation.id if conversation else None, cache),
        _ComposerArea(session, conversation, options, writable=writable, on_error=set_error)
        if options.message_field.visible and not options.as_guest
        else "",
    )


@component
def _ComposerArea(
    session: TalkSession,
    conversation: Conversation | None,
    options: ChatboxOptions,
    *,
    writable: bool,
    on_error: Callable[[str | None], None],
) -> VdomDict:
    """Render the composer; the outcome of each send is state here, not in the chatbox."""
    # The outcome of the latest send, so the composer can restore a failed draft.
    no_ack: dict[str, Any] | None = None
    ack, set_ack = use_state(no_ack)
    events = options.events

    async def send(event: dict[str, Any]) -> None:
        body = str(event.get("text") or "")
        key = str(event.get("key") or "")
        if conversation is None:
            on_error(text("send_failed", reason=text("not_loaded")))
            set_ack({"key": key, "ok": False, "text": body})
            return
        custom: dict[str, str] | None = None
        handler = events.get("on_send_message")
        if handler is not None:
            outcome = await run_send_message_handler(handler, session, conversation, body)
            if outcome.cancel:
                set_ack({"key": key, "ok": True})
                return
            body, custom = outcome.text, outcome.custom
        try:
            await session.send_message(
                conversation.id, body, custom=custom, idempotency_key=key or None
            )
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

    async def typing(event: dict[str, Any]) -> None:
        if conversation is None or not writable or not session.is_alive:
            return
        try:
            await session.set_typing(conversation.id, bool(event.get("typing")))
        except ChatError as exc:
            logger.debug("typing signal of %r failed: %s", session.me.id, exc.message)

    def focus_event(name: str) -> Callable[[Any], None]:
        def handle(_event: Any) -> None:
            callback = events.get(name)
            if callback is not None:
                callback()

        return handle

    field = options.message_field
    element: VdomDict = Composer(
        {
            "onSend": send,
            "onTyping": typing,
            "onFocus": focus_event("on_focus"),
            "onBlur": focus_event("on_blur"),
            "label": text("message_label"),
            "sendLabel": text("send"),
            "placeholder": field.placeholder or text("placeholder"),
            "disabledPlaceholder": text("read_only_placeholder") if conversation else "",
            "disabled": not writable,
            "enterSendsMessage": field.enter_sends_message,
            "autofocus": field.autofocus,
            "spellcheck": field.spellcheck,
            "conversationId": conversation.id if conversation else None,
            "ack": ack,
            "maxLength": MAX_TEXT_LENGTH,
        }
    )
    return element


@component
def _TypingIndicator(
    session: TalkSession, conversation_id: str | None, cache: MessageCache
) -> VdomDict:
    """Show who else is typing, until each typist sends, goes quiet or goes offline."""
    no_typists: dict[str, int] = {}
    typists, set_typists = use_state(no_typists)

    @use_async_effect(dependencies=[session, conversation_id])
    async def follow() -> None:
        set_typists({})
        if conversation_id is None:
            return

        def on_event(event: ChatEvent) -> None:
            if isinstance(event, PresenceChanged):
                # A typist whose connection dropped never sends typing=False.
                # Presence events name no conversation, but only participants
                # of this one are typists here, so others remove nothing.
                if not event.online:
                    gone_id = event.user_id
                    set_typists(lambda old: {k: v for k, v in old.items() if k != gone_id})
                return
            if event.conversation.id != conversation_id:
                return
            if isinstance(event, TypingChanged) and event.user_id != session.me.id:
                user_id, expires_at = event.user_id, event.expires_at
                if event.typing:
                    set_typists(lambda old: {**old, user_id: expires_at})
                else:
                    set_typists(lambda old: {k: v for k, v in old.items() if k != user_id})
            elif isinstance(event, MessageSent) and event.message.sender_id:
                sender_id = event.message.sender_id
                set_typists(lambda old: {k: v for k, v in old.items() if k != sender_id})

        subscription = session.on_event(on_event)
        try:
            # Expire indicators whose typist went quiet or disconnected.
            while True:
                await asyncio.sleep(1)
                set_typists(functools.partial(_unexpired, now_ms()))
        finally:
            subscription.unsubscribe()

    names = sorted(
        (cache.users[user_id].display_name if user_id in cache.users else user_id)
        for user_id in typists
    )
    if not names:
        label = ""
    elif len(names) == 1:
        label = text("typing_one", name=names[0])
    elif len(names) == 2:
        label = text("typing_two", first=names[0], second=names[1])
    else:
        label = text("typing_many")
    return html.div({"className": "tjs-typing", "role": "status", "aria-live": "polite"}, label)


@component
def _Presence(session: TalkSession, conversation: Conversation) -> VdomDict:
    """Show whether the other participants are online, following presence events."""
    no_online: frozenset[str] = frozenset()
    online, set_online = use_state(no_online)
    others = sorted(user_id for user_id in conversation.participants if user_id != session.me.id)

    @use_async_effect(dependencies=[session, conversation.id, tuple(others)])
    async def follow() -> None:
        # Presence changes received while the online_users query runs. Its result may
        # predate them, so they are applied on top of it. A change that the
        # result already contains is applied twice, which does no harm.
        changes_during_query: dict[str, bool] = {}

        def on_event(event: ChatEvent) -> None:
            # A presence event names no conversation, so it concerns this one
            # when its user is a participant.
            if isinstance(event, PresenceChanged) and event.user_id in conversation.participants:
                user_id = event.user_id
                changes_during_query[user_id] = event.online
                if event.online:
                    set_online(lambda old: old | {user_id})
                else:
                    set_online(lambda old: old - {user_id})

        subscription = session.on_event(on_event)
        try:
            try:
                found = set(await session.online_users(others))
            except ChatError as exc:
                logger.debug("presence of %r unknown: %s", others, exc.message)
            else:
                for user_id, is_online in changes_during_query.items():
                    if is_online:
                        found.add(user_id)
                    else:
                        found.discard(user_id)
                set_online(frozenset(found))
            await asyncio.Event().wait()
        finally:
            subscription.unsubscribe()

    present = [user_id for user_id in others if user_id in online]
    if not others:
        label = ""
    elif len(others) == 1:
        label = text("online") if present else text("offline")
    else:
        label = text("online_count", count=len(present))
    state = "online" if present else "offline"
    return html.span({"className": f"tjs-presence tjs-presence--{state}", "role": "status"}, label)


def _user_welcome_messages(
    conversation: Conversation | None, users: dict[str, User], me_id: str
) -> tuple[tuple[str, str], ...]:
    """Return ``(name, text)`` of each other participant's welcome message, in participant order.

    A user's welcome message greets the other people in their chats, so the
    session user's own is not shown.
    """
    if conversation is None:
        return ()
    found: list[tuple[str, str]] = []
    for user_id in conversation.participants:
        user = users.get(user_id)
        if user_id != me_id and user is not None and user.welcome_message:
            found.append((user.display_name, user.welcome_message))
    return tuple(found)


def _unexpired(now: int, typists: dict[str, int]) -> dict[str, int]:
    return {user_id: expires for user_id, expires in typists.items() if expires > now}


@component
def _Header(
    session: TalkSession,
    conversation: Conversation | None,
    users: dict[str, User],
    options: ChatboxOptions,
    *,
    failed: bool,
) -> VdomDict:
    """Render the title, the participants and a leave button."""
    no_error: str | None = None
    leave_error, set_leave_error = use_state(no_error)
    if conversation is None:
        title = text("unavailable") if failed else text("loading")
        return html.div({"className": "tjs-chatbox__header"}, title)

    async def leave(_event: Any) -> None:
        handler = options.events.get("on_leave_conversation")
        event = LeaveConversationEvent(conversation)
        if handler is not None:
            handler(event)
            if event.default_prevented:
                return
        try:
            await session.leave_conversation(conversation.id)
        except ChatError as exc:
            set_leave_error(text("leave_failed", reason=exc.message))

    element = _header(conversation, users, session.me.id, failed=failed)
    element["children"] = [
        *element.get("children", []),
        _Presence(session, conversation, key="presence"),
    ]
    if session.me.id in conversation.participants and not options.as_guest:
        element["children"] = [
            *element.get("children", []),
            html.button(
                {"type": "button", "className": "tjs-leave", "onClick": leave}, text("leave")
            ),
        ]
    if leave_error:
        element["children"] = [
            *element.get("children", []),
            html.span({"className": "tjs-error", "role": "alert"}, leave_error),
        ]
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
    other_ids = [user_id for user_id in conversation.participants if user_id != me_id]
    if conversation.photo_url or len(other_ids) != 1:
        picture = avatar(title, conversation.photo_url, large=True)
    else:
        other = users.get(other_ids[0])
        picture = avatar(title, other.photo_url if other else None, large=True)
    return html.header(
        {"className": "tjs-chatbox__header"},
        picture,
        html.div(
            {"className": "tjs-title"},
            html.span({"dir": "auto"}, title),
            html.small({"dir": "auto"}, names) if conversation.subject and names else "",
        ),
    )
