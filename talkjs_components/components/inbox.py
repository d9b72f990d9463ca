"""The ``Inbox`` component: a live feed of the user's conversations next to a ``Chatbox``.

The feed's data lives in a :class:`_FeedStore` that the session's events
update. The feed list re-renders by itself only when the order of its
conversations changes, and each keyed item only when its own conversation,
preview, unread count or users change. Feed changes never re-render the
Chatbox pane.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from reactpy import Ref, component, html, use_async_effect, use_effect, use_ref, use_state
from reactpy.types import Component, VdomChild, VdomDict

from ..errors import ChatError, InvalidInput
from ..models import (
    ChatEvent,
    Conversation,
    ConversationUpdated,
    Message,
    MessageDeleted,
    MessageEdited,
    MessageSent,
    MessageType,
    PresenceChanged,
    UnreadConversation,
    User,
)
from ..predicates import ConversationMatcher, compile_conversation_predicate
from ..session import BoxKind, SessionStatus, TalkSession, UIBox
from ..session.boxes import mount_box
from ._adapter import FeedTime, InboxFocus
from .box_props import (
    UNSET,
    BoxSelection,
    SyncConversation,
    check_ref,
    check_selection_props,
    class_names,
    resolve_selection,
    take_own_props,
)
from .chatbox import Chatbox
from .chatbox_props import parse_chatbox_props
from .context import use_session, use_session_state
from .formatting import message_plain_text
from .strings import text

__all__ = ["ConversationSelectedEvent", "Inbox", "SelectConversationEvent"]

logger = logging.getLogger("talkjs_components.ui")

PREVIEW_FETCHES = 8
"""Maximum concurrent requests for last messages while the feed loads."""

PREVIEW_LENGTH = 160
"""Maximum characters of the last message in a feed item. The rest is not sent to the browser."""


def run_handler(
    tasks: set[asyncio.Task[Any]], name: str, handler: Callable[..., Any], *arguments: Any
) -> None:
    """Call an event handler, logging what it raises; an async handler runs as a task.

    The task is kept in ``tasks`` until it finishes, so it is not garbage collected.
    """
    try:
        result = handler(*arguments)
    except Exception:
        logger.exception("%s handler failed", name)
        return
    if not inspect.isawaitable(result):
        return
    task = asyncio.ensure_future(result)
    tasks.add(task)

    def finished(done: asyncio.Task[Any]) -> None:
        tasks.discard(done)
        if not done.cancelled() and done.exception() is not None:
            logger.error("%s handler failed", name, exc_info=done.exception())

    task.add_done_callback(finished)


def unread_label(count: int) -> str:
    """Return "1 unread message" or "N unread messages"."""
    return text("unread_message" if count == 1 else "unread_messages", count=count)


# --- Events --------------------------------------------------------------------


@dataclass
class SelectConversationEvent:
    """Payload of ``on_select_conversation``: the user clicked a conversation in the feed.

    The handler runs before the selection changes. Calling
    :meth:`prevent_default` in a plain (not async) handler keeps the current
    selection, as in TalkJS, where it works only synchronously. An async
    handler runs as a task after the selection was decided, so it cannot
    prevent it.
    """

    conversation: Conversation
    me: User
    participants: list[User]
    _default_prevented: bool = field(default=False, init=False, repr=False)
    _decided: bool = field(default=False, init=False, repr=False)

    @property
    def default_prevented(self) -> bool:
        """Whether a handler called :meth:`prevent_default` in time."""
        return self._default_prevented

    def prevent_default(self) -> None:
        """Keep the current selection instead of selecting this conversation."""
        if self._decided:
            logger.warning(
                "prevent_default() on the selection of conversation %r came after the "
                "selection was decided; call it from a handler that is not async",
                self.conversation.id,
            )
            return
        self._default_prevented = True


@dataclass(frozen=True)
class ConversationSelectedEvent:
    """Payload of ``on_conversation_selected``: the Inbox shows another conversation.

    ``conversation`` is ``None`` when the Inbox shows no conversation, and
    then ``participants`` is empty.
    """

    conversation: Conversation | None
    me: User
    participants: list[User]


# --- The feed's data ---------------------------------------------------------------


@dataclass(frozen=True)
class _FeedEntry:
    """One conversation of the feed with its last message, when known."""

    conversation: Conversation
    last_message: Message | None = None

    @property
    def last_message_ts(self) -> int | None:
        """Time of the last message in ms since the epoch, ``None`` without messages."""
        if self.last_message is not None:
            stored = self.conversation.last_message_at or 0
            return max(stored, self.last_message.created_at)
        return self.conversation.last_message_at

    @property
    def activity(self) -> int:
        """Time of the last message, or of the creation when there are none, in ms."""
        last = self.last_message_ts
        return last if last is not None else self.conversation.created_at

    def with_message(self, message: Message) -> _FeedEntry:
        """Return the entry with ``message`` as last message unless a later one is known."""
        if self.last_message is not None and self.last_message.seq > message.seq:
            return self
        return _FeedEntry(self.conversation, message)


Listener = Callable[[], None]


class _FeedStore:
    """The feed's conversations, last messages, users and unread counts, with listeners.

    Components read the store while they render and subscribe to the part
    they show: the list to the order of the visible conversations, an item to
    its conversation. Every change notifies only the listeners whose data
    changed. Methods must be called on the event loop.
    """

    def __init__(self, me_id: str) -> None:
        self.me_id = me_id
        self.loaded = False
        self.error: str | None = None
        self.users: dict[str, User] = {}
        self.list_version = 0
        """Incremented on each change of ``order``, ``loaded`` or ``error``."""
        self._entries: dict[str, _FeedEntry] = {}
        self._unread_counts: dict[str, int] = {}
        self._matcher = compile_conversation_predicate(None)
        self._order: tuple[str, ...] = ()
        self._item_versions: dict[str, int] = {}
        self._list_listeners: list[Listener] = []
        self._item_listeners: dict[str, list[Listener]] = {}
        # While a load runs, the entries that events changed and the
        # conversations the user left, which win over the loaded data.
        self._changed_during_load: dict[str, _FeedEntry] | None = None
        self._left_during_load: set[str] = set()
        self._missing_users: set[str] = set()
        self._stale_previews: set[str] = set()

    # -- reading -----------------------------------------------------------------

    @property
    def order(self) -> tuple[str, ...]:
        """Ids of the conversations that pass the filter, latest activity first."""
        return self._order

    def entry(self, conversation_id: str) -> _FeedEntry | None:
        return self._entries.get(conversation_id)

    def unread_count(self, conversation_id: str) -> int:
        return self._unread_counts.get(conversation_id, 0)

    def item_version(self, conversation_id: str) -> int:
        """Number of changes of one conversation's item so far."""
        return self._item_versions.get(conversation_id, 0)

    def participants(self, conversation: Conversation) -> list[User]:
        """Return the participants as users. An unknown user has only its id."""
        return [
            self.users.get(user_id) or User(id=user_id) for user_id in conversation.participants
        ]

    # -- subscriptions ----------------------------------------------------------

    def on_list(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` when the order, ``loaded`` or ``error`` change.

        Returns the function that unsubscribes it.
        """
        self._list_listeners.append(listener)
        return lambda: _discard(self._list_listeners, listener)

    def on_item(self, conversation_id: str, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` when one conversation's item changes.

        Returns the function that unsubscribes it.
        """
        self._item_listeners.setdefault(conversation_id, []).append(listener)

        def unsubscribe() -> None:
            listeners = self._item_listeners.get(conversation_id, [])
            _discard(listeners, listener)
            if not listeners:
                self._item_listeners.pop(conversation_id, None)

        return unsubscribe

    # -- loading ------------------------------------------------------------------

    def begin_load(self) -> None:
        """Start recording event changes, which win over the data of the coming load."""
        self._changed_during_load = {}
        self._left_during_load = set()

    def end_load(self) -> None:
        """Stop recording event changes (after a finished, failed or cancelled load)."""
        self._changed_during_load = None
        self._left_during_load = set()

    def finish_load(
        self,
        conversations: Iterable[Conversation],
        last_messages: Mapping[str, Message],
        users: Mapping[str, User],
    ) -> None:
        """Replace the feed with loaded data, merged with the changes events made meanwhile."""
        changed = self._changed_during_load or {}
        left = self._left_during_load
        entries: dict[str, _FeedEntry] = {}
        for conversation in conversations:
            if conversation.id in left:
                continue
            entry = _FeedEntry(conversation, last_messages.get(conversation.id))
            newer = changed.get(conversation.id)
            if newer is not None:
                entry = (
                    newer if entry.last_message is None else newer.with_message(entry.last_message)
                )
            entries[conversation.id] = entry
        for conversation_id, entry in changed.items():
            entries.setdefault(conversation_id, entry)
        self.end_load()
        touched = self._entries.keys() | entries.keys()
        self._entries = entries
        self.users.update(users)
        self._note_missing_users(entries.values())
        self.loaded = True
        self.error = None
        for conversation_id in touched:
            self._notify_item(conversation_id)
        self._update_order(force_notify=True)

    def fail(self, message: str) -> None:
        """Show ``message`` instead of the feed."""
        self.end_load()
        self.error = message
        self._update_order(force_notify=True)

    # -- changes ------------------------------------------------------------------

    def apply(self, event: ChatEvent) -> None:
        """Update the feed from one session event."""
        if isinstance(event, PresenceChanged):
            return
        conversation = event.conversation
        conversation_id = conversation.id
        if isinstance(event, ConversationUpdated) and self.me_id in event.removed_user_ids:
            self._remove(conversation_id)
            return
        if self.me_id not in conversation.participants:
            return
        previous = self._entries.get(conversation_id)
        if isinstance(event, MessageSent):
            if event.sender is not None:
                self.users.setdefault(event.sender.id, event.sender)
            base = previous or _FeedEntry(conversation)
            entry = _FeedEntry(conversation, base.last_message).with_message(event.message)
        elif previous is None:
            entry = _FeedEntry(conversation)
            if conversation.last_message_at is not None:
                self._stale_previews.add(conversation_id)
        else:
            entry = _FeedEntry(conversation, self._changed_preview(event, previous.last_message))
        if self._changed_during_load is not None:
            self._changed_during_load[conversation_id] = entry
        if entry == previous:
            return
        self._entries[conversation_id] = entry
        self._note_missing_users([entry])
        self._notify_item(conversation_id)
        self._update_order()

    def _changed_preview(self, event: ChatEvent, last_message: Message | None) -> Message | None:
        """Return the preview after an edit or deletion event. Other events keep it."""
        if last_message is None:
            return None
        if isinstance(event, MessageEdited) and event.message.id == last_message.id:
            return event.message
        if isinstance(event, MessageDeleted) and event.message_id == last_message.id:
            # The previewed message is gone: fetch the new last message.
            self._stale_previews.add(event.conversation.id)
            return None
        return last_message

    def _remove(self, conversation_id: str) -> None:
        if self._changed_during_load is not None:
            self._changed_during_load.pop(conversation_id, None)
            self._left_during_load.add(conversation_id)
        if self._entries.pop(conversation_id, None) is None:
            return
        self._notify_item(conversation_id)
        self._update_order()

    def set_unreads(self, unreads: list[UnreadConversation] | None) -> None:
        """Take the unread counts from the session's unread list."""
        counts = {unread.conversation.id: unread.unread_message_count for unread in unreads or ()}
        previous = self._unread_counts
        changed = [
            conversation_id
            for conversation_id in counts.keys() | previous.keys()
            if counts.get(conversation_id) != previous.get(conversation_id)
        ]
        self._unread_counts = counts
        for conversation_id in changed:
            self._notify_item(conversation_id)
        if changed:
            self._update_order()

    def set_filter(self, matcher: ConversationMatcher) -> None:
        if matcher == self._matcher:
            return
        self._matcher = matcher
        self._update_order()

    def add_users(self, users: Mapping[str, User]) -> None:
        """Store fetched users and re-render the items that show them."""
        self.users.update(users)
        for conversation_id, entry in self._entries.items():
            shown_user_ids = set(entry.conversation.participants)
            if entry.last_message is not None and entry.last_message.sender_id:
                shown_user_ids.add(entry.last_message.sender_id)
            if not shown_user_ids.isdisjoint(users):
                self._notify_item(conversation_id)

    def set_preview(self, conversation_id: str, message: Message | None) -> None:
        """Store a fetched last message unless an event brought a later one meanwhile."""
        entry = self._entries.get(conversation_id)
        if entry is None:
            return
        current = entry.last_message
        if current is not None and (message is None or current.seq > message.seq):
            return
        updated = _FeedEntry(entry.conversation, message)
        if updated == entry:
            return
        self._entries[conversation_id] = updated
        self._note_missing_users([updated])
        self._notify_item(conversation_id)
        self._update_order()

    def take_missing_users(self) -> list[str]:
        """Return the ids of shown users not known yet, once each."""
        missing = sorted(self._missing_users - self.users.keys())
        self._missing_users.clear()
        return missing

    def take_stale_previews(self) -> list[str]:
        """Return the conversations whose last message must be fetched, once each."""
        stale = sorted(self._stale_previews)
        self._stale_previews.clear()
        return stale

    # -- internals ------------------------------------------------------------------

    def _note_missing_users(self, entries: Iterable[_FeedEntry]) -> None:
        for entry in entries:
            self._missing_users.update(entry.conversation.participants)
            if entry.last_message is not None and entry.last_message.sender_id:
                self._missing_users.add(entry.last_message.sender_id)
        self._missing_users -= self.users.keys()

    def _matches(self, entry: _FeedEntry) -> bool:
        return self._matcher(
            entry.conversation,
            user_id=self.me_id,
            has_unread_messages=self.unread_count(entry.conversation.id) > 0,
            last_message_ts=entry.last_message_ts,
        )

    def _update_order(self, *, force_notify: bool = False) -> None:
        visible = [entry for entry in self._entries.values() if self._matches(entry)]
        visible.sort(
            key=lambda entry: (
                -entry.activity,
                -(entry.last_message.seq if entry.last_message else 0),
                entry.conversation.id,
            )
        )
        order = tuple(entry.conversation.id for entry in visible)
        if order == self._order and not force_notify:
            return
        self._order = order
        self.list_version += 1
        for listener in list(self._list_listeners):
            listener()

    def _notify_item(self, conversation_id: str) -> None:
        self._item_versions[conversation_id] = self.item_version(conversation_id) + 1
        for listener in list(self._item_listeners.get(conversation_id, ())):
            listener()


def _discard(listeners: list[Listener], listener: Listener) -> None:
    if listener in listeners:
        listeners.remove(listener)


async def _load_feed(session: TalkSession, store: _FeedStore) -> None:
    """Load the user's conversations, their last messages and users into ``store``."""
    store.begin_load()
    try:
        conversations = await session.list_conversations()
        last_messages = await _fetch_last_messages(session, conversations)
        user_ids = {
            user_id for conversation in conversations for user_id in conversation.participants
        }
        user_ids.update(m.sender_id for m in last_messages.values() if m.sender_id is not None)
        users = await session.get_users(sorted(user_ids))
    except ChatError as exc:
        logger.info("inbox of user %r could not load conversations: %s", session.me.id, exc.message)
        store.fail(text("feed_load_failed", reason=exc.message))
        return
    except asyncio.CancelledError:
        store.end_load()
        raise
    store.finish_load(conversations, last_messages, users)


async def _fetch_last_messages(
    session: TalkSession, conversations: list[Conversation]
) -> dict[str, Message]:
    """Return the last message of each conversation that has one."""
    slots = asyncio.Semaphore(PREVIEW_FETCHES)

    async def fetch(conversation: Conversation) -> Message | None:
        async with slots:
            try:
                page = await session.list_messages(conversation.id, limit=1)
            except ChatError as exc:
                # The feed still shows the conversation, without a preview.
                logger.info(
                    "inbox of user %r could not load the last message of %r: %s",
                    session.me.id,
                    conversation.id,
                    exc.message,
                )
                return None
        return page.messages[-1] if page.messages else None

    with_messages = [c for c in conversations if c.last_message_at is not None]
    found = await asyncio.gather(*(fetch(conversation) for conversation in with_messages))
    return {
        conversation.id: message
        for conversation, message in zip(with_messages, found, strict=True)
        if message is not None
    }


async def _fetch_users(session: TalkSession, store: _FeedStore, user_ids: list[str]) -> None:
    try:
        store.add_users(await session.get_users(user_ids))
    except ChatError as exc:
        logger.info(
            "inbox of user %r could not load users %s: %s", session.me.id, user_ids, exc.message
        )


async def _refresh_preview(session: TalkSession, store: _FeedStore, conversation_id: str) -> None:
    try:
        page = await session.list_messages(conversation_id, limit=1)
    except ChatError as exc:
        logger.info(
            "inbox of user %r could not load the last message of %r: %s",
            session.me.id,
            conversation_id,
            exc.message,
        )
        return
    store.set_preview(conversation_id, page.messages[-1] if page.messages else None)


# --- Components ----------------------------------------------------------------------

_INBOX_DEFAULTS: dict[str, Any] = {
    "conversation_id": UNSET,
    "sync_conversation": None,
    "feed_filter": None,
    "show_feed_header": True,
    "show_chat_header": True,
    "inbox_ref": None,
    "loading_component": None,
    "class_name": None,
    "style": None,
    "on_select_conversation": None,
    "on_conversation_selected": None,
}


@dataclass(frozen=True)
class _InboxProps:
    """Validated props of an Inbox."""

    conversation_id: Any
    sync_conversation: SyncConversation | None
    matcher: ConversationMatcher | None
    """``None`` when ``feed_filter`` is invalid, and then ``filter_error`` contains the reason."""
    filter_error: str | None
    show_feed_header: bool
    show_chat_header: bool
    inbox_ref: Ref[UIBox | None] | None
    loading_component: Any
    on_select_conversation: Callable[[SelectConversationEvent], Any] | None
    on_conversation_selected: Callable[[ConversationSelectedEvent], Any] | None
    chatbox_options: Mapping[str, Any]


@component
def Inbox(
    conversation_id: str | None = UNSET,
    sync_conversation: SyncConversation | None = None,
    *,
    feed_filter: object = None,
    show_feed_header: bool = True,
    show_chat_header: bool = True,
    inbox_ref: Ref[UIBox | None] | None = None,
    loading_component: Any = None,
    class_name: str | None = None,
    style: Mapping[str, Any] | None = None,
    on_select_conversation: Callable[[SelectConversationEvent], Any] | None = None,
    on_conversation_selected: Callable[[ConversationSelectedEvent], Any] | None = None,
    **chatbox_options: Any,
) -> VdomDict | Component:
    """Show a feed of the user's conversations and the selected one in a ``Chatbox``.

    Render it inside a ``Session``. The feed lists every conversation of the
    user, latest activity first, with title, picture, last message, its age
    and the unread count, and follows the session's events live. Below 640 px
    of width the Inbox shows one pane at a time, with a Back button in the
    chat pane. The @talkjs/react camelCase spellings of every prop work too.

    Args:
        conversation_id: Id of the conversation to select; ``None`` or not
            given selects none. (TalkJS shows the latest conversation when
            none is given; this Inbox waits for the user's choice.)
        sync_conversation: A ``ConversationBuilder``, or a function given the
            session that returns one, to sync and select.
        feed_filter: A TalkJS ConversationPredicate (see
            :mod:`talkjs_components.predicates`) or a compiled matcher;
            ``None`` shows every conversation. An invalid one shows an error
            in place of the feed.
        show_feed_header: Show the "Conversations" header above the feed.
        show_chat_header: Show the Chatbox header.
        inbox_ref: A ``reactpy.Ref`` set to the Inbox's ``UIBox`` while
            mounted and to ``None`` after unmount. Its ``select(id)`` selects
            a conversation.
        loading_component: Shown while the session connects.
        class_name, style: Extra CSS classes and inline styles of the outer element.
        on_select_conversation: Called with a :class:`SelectConversationEvent`
            when the user clicks a conversation, before it is selected.
        on_conversation_selected: Called with a
            :class:`ConversationSelectedEvent` after the selection changed,
            also on mount and through ``UIBox.select``.
        chatbox_options: Passed on to the ``Chatbox``, for example
            ``message_filter`` or ``on_send_message``.
    """
    state = use_session_state()
    session = use_session()
    own: dict[str, Any] = {
        "conversation_id": conversation_id,
        "sync_conversation": sync_conversation,
        "feed_filter": feed_filter,
        "show_feed_header": show_feed_header,
        "show_chat_header": show_chat_header,
        "inbox_ref": inbox_ref,
        "loading_component": loading_component,
        "class_name": class_name,
        "style": style,
        "on_select_conversation": on_select_conversation,
        "on_conversation_selected": on_conversation_selected,
    }
    try:
        options = take_own_props("Inbox", own, _INBOX_DEFAULTS, chatbox_options)
        check_selection_props("Inbox", own["conversation_id"], own["sync_conversation"])
        check_ref("Inbox", "inbox_ref", own["inbox_ref"])
        # Checked here too, so that a bad Chatbox prop shows before any
        # conversation is selected, not only once the chatbox renders.
        parse_chatbox_props(options)
    except InvalidInput as exc:
        # Shown rather than raised: ReactPy would log the failed render with every prop.
        logger.error("Inbox has invalid props: %s", exc.message)
        return html.div(
            {"className": "tjs-inbox"},
            html.p({"className": "tjs-error", "role": "alert"}, exc.message),
        )
    attributes: dict[str, Any] = {"className": class_names("tjs-inbox", own["class_name"])}
    if own["style"]:
        attributes["style"] = dict(own["style"])
    if session is None:
        if state.error is not None:
            notice = html.p(
                {"className": "tjs-error", "role": "alert"},
                text("connect_failed", reason=state.error.message),
            )
        else:
            notice = own["loading_component"] or html.p(
                {"className": "tjs-loading"}, text("loading")
            )
        return html.div(attributes, notice)

    matcher: ConversationMatcher | None = None
    filter_error: str | None = None
    try:
        matcher = compile_conversation_predicate(own["feed_filter"])
    except InvalidInput as exc:
        logger.error("Inbox has an invalid feed_filter: %s", exc.message)
        filter_error = exc.message
    props = _InboxProps(
        conversation_id=own["conversation_id"],
        sync_conversation=own["sync_conversation"],
        matcher=matcher,
        filter_error=filter_error,
        show_feed_header=bool(own["show_feed_header"]),
        show_chat_header=bool(own["show_chat_header"]),
        inbox_ref=own["inbox_ref"],
        loading_component=own["loading_component"],
        on_select_conversation=own["on_select_conversation"],
        on_conversation_selected=own["on_conversation_selected"],
        chatbox_options=options,
    )
    # A new session object remounts the inbox, so no state crosses sessions.
    return _ActiveInbox(session, props, attributes, key=f"session-{session.id}")


@component
def _ActiveInbox(session: TalkSession, props: _InboxProps, attributes: dict[str, Any]) -> VdomDict:
    # Only the selection and the focus request are state here, and the feed
    # follows the store by itself, so feed changes never re-render the Chatbox.
    store: _FeedStore = use_state(lambda: _FeedStore(session.me.id))[0]
    no_choice: tuple[str | None] | None = None
    chosen, set_chosen = use_state(no_choice)
    # (request number, pane to focus, conversation to focus in the feed)
    no_focus: tuple[int, str, str | None] = (0, "", None)
    focus, set_focus = use_state(no_focus)
    box: Ref[UIBox | None] = use_ref(None)
    latest: Ref[_InboxProps] = use_ref(props)
    latest.current = props
    handler_tasks: set[asyncio.Task[Any]] = use_ref(set()).current
    connected = use_session_state().status is not SessionStatus.RECONNECTING

    selection, prop_key = resolve_selection(
        session, props.conversation_id, props.sync_conversation, chosen
    )
    selected_id = selection.conversation_id
    inbox_ref = props.inbox_ref

    @use_effect(dependencies=[session, inbox_ref])
    def register_box() -> Callable[[], None] | None:
        if not session.is_alive:
            return None
        box.current, unmount = mount_box(
            session,
            BoxKind.INBOX,
            lambda selected: set_chosen((selected,)),
            inbox_ref,
            selected_id,
        )
        return unmount

    @use_effect(dependencies=[prop_key])
    def follow_props() -> None:
        set_chosen(None)

    @use_effect(dependencies=[selected_id])
    def track_selection() -> None:
        if box.current is not None:
            box.current.current_conversation_id = selected_id

    matcher = props.matcher

    @use_effect(dependencies=[store, matcher])
    def apply_filter() -> None:
        if matcher is not None:
            store.set_filter(matcher)

    # Keep the store current. While the session reconnects, the events it
    # replays still arrive. Once it is ready again, the feed reloads, because
    # conversations can also change without a message.
    @use_async_effect(dependencies=[session, store, connected])
    async def follow_feed() -> None:
        if not session.is_alive:
            return
        tasks: set[asyncio.Task[None]] = set()

        def start(work: Any) -> None:
            task: asyncio.Task[None] = asyncio.ensure_future(work)
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        def fetch_missing() -> None:
            missing = store.take_missing_users()
            if missing:
                start(_fetch_users(session, store, missing))
            for conversation_id in store.take_stale_previews():
                start(_refresh_preview(session, store, conversation_id))

        def on_event(event: ChatEvent) -> None:
            store.apply(event)
            fetch_missing()

        events = session.on_event(on_event)
        unreads = session.unreads.on_change(store.set_unreads)
        try:
            if connected:
                await _load_feed(session, store)
                fetch_missing()
            await asyncio.Event().wait()
        finally:
            events.unsubscribe()
            unreads.unsubscribe()
            for task in tasks:
                task.cancel()

    @use_async_effect(dependencies=[session, selected_id])
    async def report_selection() -> None:
        handler = latest.current.on_conversation_selected
        if handler is None or not session.is_alive:
            return
        event = await _selected_event(session, store, selection)
        if event is not None:
            run_handler(handler_tasks, "on_conversation_selected", handler, event)

    def choose(conversation_id: str) -> None:
        entry = store.entry(conversation_id)
        handler = latest.current.on_select_conversation
        if handler is not None and entry is not None:
            event = SelectConversationEvent(
                entry.conversation, session.me, store.participants(entry.conversation)
            )
            run_handler(handler_tasks, "on_select_conversation", handler, event)
            event._decided = True
            if event.default_prevented:
                return
        set_chosen((conversation_id,))
        set_focus(lambda previous: (previous[0] + 1, "chat", conversation_id))

    def go_back(_event: Any) -> None:
        set_chosen((None,))
        set_focus(lambda previous: (previous[0] + 1, "feed", selected_id))

    feed: list[VdomChild] = []
    if props.show_feed_header:
        # A heading, so screen reader users can jump to the feed. Level 2
        # suits an Inbox under the page's own h1.
        feed.append(html.h2({"className": "tjs-inbox__feed-header"}, text("inbox_title")))
    if props.filter_error is not None:
        feed.append(html.p({"className": "tjs-error", "role": "alert"}, props.filter_error))
    else:
        feed.append(_FeedList(store, selected_id, choose, key="feed-list"))

    chat_open = selected_id is not None
    return html.div(
        {
            **attributes,
            "className": class_names(
                attributes["className"], "tjs-inbox--chat-open" if chat_open else None
            ),
        },
        InboxFocus({"token": focus[0], "target": focus[1], "conversationId": focus[2]}),
        html.section({"className": "tjs-inbox__feed"}, *feed),
        html.section(
            {"className": "tjs-inbox__chat"},
            html.button(
                {
                    "type": "button",
                    "className": "tjs-inbox__back",
                    "aria-label": text("back_label"),
                    "onClick": go_back,
                },
                text("back"),
            ),
            _chatbox(selection, props),
        ),
    )


def _chatbox(selection: BoxSelection, props: _InboxProps) -> Any:
    """Return the Chatbox of the chat pane with the options meant for it."""
    # NOTE: this Chatbox registers its own CHATBOX UIBox, so
    # session.get_chatboxes() lists it next to the Inbox's INBOX box.
    options: dict[str, Any] = dict(props.chatbox_options)
    if props.loading_component is not None:
        options["loading_component"] = props.loading_component
    if not props.show_chat_header:
        options["show_chat_header"] = False
    if selection.builder is not None:
        return Chatbox(sync_conversation=selection.builder, key="chatbox", **options)
    return Chatbox(conversation_id=selection.conversation_id, key="chatbox", **options)


async def _selected_event(
    session: TalkSession, store: _FeedStore, selection: BoxSelection
) -> ConversationSelectedEvent | None:
    """Build the ``on_conversation_selected`` payload, or ``None`` when loading it failed."""
    if selection.conversation_id is None:
        return ConversationSelectedEvent(None, session.me, [])
    entry = store.entry(selection.conversation_id)
    try:
        if entry is not None:
            conversation = entry.conversation
        elif selection.builder is not None:
            conversation = await selection.builder.sync()
        else:
            conversation = await session.get_conversation(selection.conversation_id)
        users = await session.get_users(sorted(conversation.participants))
    except ChatError as exc:
        # The Chatbox shows this failure, and there is no conversation to report.
        logger.info(
            "inbox of user %r could not load selected conversation %r: %s",
            session.me.id,
            selection.conversation_id,
            exc.message,
        )
        return None
    participants = [users.get(user_id) or User(id=user_id) for user_id in conversation.participants]
    return ConversationSelectedEvent(conversation, session.me, participants)


@component
def _FeedList(
    store: _FeedStore, selected_id: str | None, on_choose: Callable[[str], None]
) -> VdomDict:
    """Render the feed: keyed items in the store's order, or its loading, empty or error state."""
    _, set_version = use_state(0)
    rendered_version = store.list_version

    @use_effect(dependencies=[store])
    def follow_order() -> Callable[[], None]:
        unsubscribe = store.on_list(lambda: set_version(lambda version: version + 1))
        if store.list_version != rendered_version:
            set_version(lambda version: version + 1)
        return unsubscribe

    if store.error is not None:
        return html.p({"className": "tjs-error", "role": "alert"}, store.error)
    if not store.loaded:
        return html.p({"className": "tjs-loading", "role": "status"}, text("feed_loading"))
    if not store.order:
        return html.p({"className": "tjs-empty"}, text("feed_empty"))
    return html.ul(
        {"className": "tjs-feed", "role": "list", "aria-label": text("feed_label")},
        [
            _FeedItem(
                store,
                conversation_id,
                conversation_id == selected_id,
                on_choose,
                key=conversation_id,
            )
            for conversation_id in store.order
        ],
    )


@component
def _FeedItem(
    store: _FeedStore, conversation_id: str, selected: bool, on_choose: Callable[[str], None]
) -> VdomDict:
    """Render one conversation of the feed, re-rendering by itself when its data changes."""
    _, set_version = use_state(0)
    rendered_version = store.item_version(conversation_id)

    @use_effect(dependencies=[store, conversation_id])
    def follow_item() -> Callable[[], None]:
        unsubscribe = store.on_item(
            conversation_id, lambda: set_version(lambda version: version + 1)
        )
        if store.item_version(conversation_id) != rendered_version:
            set_version(lambda version: version + 1)
        return unsubscribe

    entry = store.entry(conversation_id)
    if entry is None:
        # Removed from the store; the list drops this item on its next render.
        return html.li({"key": conversation_id, "className": "tjs-feed__item", "hidden": True})
    unread = store.unread_count(conversation_id)
    title = conversation_title(entry.conversation, store.users, store.me_id)
    content: list[VdomChild] = [
        _feed_avatar(entry.conversation, store.users, store.me_id, title),
        html.span({"className": "tjs-feed__title", "dir": "auto"}, title),
        html.span(
            {"className": "tjs-feed__time"},
            FeedTime({"ms": entry.activity, "nowLabel": text("feed_now")}),
        ),
        html.span({"className": "tjs-feed__preview"}, *_preview(entry, store.users, store.me_id)),
    ]
    if unread > 0:
        content.append(
            html.span(
                {"className": "tjs-feed__badge"},
                html.span({"aria-hidden": "true"}, str(unread)),
                html.span({"className": "tjs-visually-hidden"}, unread_label(unread)),
            )
        )
    button: dict[str, Any] = {
        "type": "button",
        "className": "tjs-feed__button",
        "onClick": lambda _event: on_choose(conversation_id),
    }
    if selected:
        button["aria-current"] = "true"
    # The key is repeated here because ReactPy gives a component's key to no
    # DOM node. Without it, a reorder patches another conversation into the
    # focused node, and keyboard focus silently changes conversation. With it,
    # the browser replaces the node and InboxFocus restores the focus.
    return html.li(
        {
            "key": conversation_id,
            "className": class_names(
                "tjs-feed__item", "tjs-feed__item--unread" if unread > 0 else None
            ),
            "data-conversation-id": conversation_id,
        },
        html.button(button, *content),
    )


def conversation_title(conversation: Conversation, users: Mapping[str, User], me_id: str) -> str:
    """Return the subject, else the other participants' names, else "You"."""
    if conversation.subject:
        return conversation.subject
    names = [
        users[user_id].display_name if user_id in users else user_id
        for user_id in conversation.participants
        if user_id != me_id
    ]
    return ", ".join(names) or text("you")


def _feed_avatar(
    conversation: Conversation, users: Mapping[str, User], me_id: str, title: str
) -> VdomDict:
    """Return the conversation's picture, the other user's in a 1:1, else the title's initials."""
    photo_url = conversation.photo_url
    others = [user_id for user_id in conversation.participants if user_id != me_id]
    if photo_url is None and len(others) == 1 and others[0] in users:
        photo_url = users[others[0]].photo_url
    if photo_url:
        return html.img(
            {"className": "tjs-feed__avatar", "src": photo_url, "alt": "", "loading": "lazy"}
        )
    initials = "".join(word[0] for word in title.split()[:2]).upper() or "?"
    return html.span({"className": "tjs-feed__avatar", "aria-hidden": "true"}, initials)


def _preview(entry: _FeedEntry, users: Mapping[str, User], me_id: str) -> list[VdomChild]:
    """Return the last message as "sender: text", each part isolated for bidirectional text."""
    message = entry.last_message
    if message is None:
        # A conversation without messages shows "No messages yet". While its
        # last message is loading, the preview stays empty.
        return [text("feed_no_messages")] if entry.last_message_ts is None else []
    # Formatting is parsed on a prefix only: the preview never needs more.
    line = " ".join(message_plain_text(message.text[: PREVIEW_LENGTH * 4]).split())
    if len(line) > PREVIEW_LENGTH:
        line = line[:PREVIEW_LENGTH] + "…"
    body = html.bdi({"dir": "auto"}, line)
    if message.type is MessageType.SYSTEM or message.sender_id is None:
        return [body]
    if message.sender_id == me_id:
        sender = text("you")
    else:
        known = users.get(message.sender_id)
        sender = known.display_name if known else message.sender_id
    return [html.bdi({"dir": "auto"}, sender), ": ", body]
