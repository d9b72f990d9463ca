"""The unread conversations of a session, kept current from its events."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..models import (
    ChatEvent,
    ConversationUpdated,
    MessageDeleted,
    MessageSent,
    MessagesRead,
    PresenceChanged,
    UnreadConversation,
    UnreadsSnapshot,
)
from ..subscription import Subscription

if TYPE_CHECKING:
    from .talk_session import TalkSession

__all__ = ["Unreads", "UnreadsHandler"]

UnreadsHandler = Callable[[list[UnreadConversation]], Any]


class Unreads:
    """Conversations in which the session's user has unread messages.

    The list is loaded when the session connects, and again after a
    reconnect that could not replay every missed event. In between it is
    updated from the session's events without querying the backend. The
    session passes on only events after the snapshot's ``as_of_event_seq``,
    each once and in ``seq`` order, so nothing is counted twice.
    """

    def __init__(self, session: TalkSession) -> None:
        self._session = session
        self._by_conversation: dict[str, UnreadConversation] | None = None
        self._read_positions: dict[str, int] = {}
        self._handlers: list[UnreadsHandler] = []

    @property
    def loaded(self) -> bool:
        """Whether the initial list has arrived."""
        return self._by_conversation is not None

    @property
    def current(self) -> list[UnreadConversation] | None:
        """The unread conversations, most recent message first; ``None`` until loaded."""
        if self._by_conversation is None:
            return None
        return sorted(
            self._by_conversation.values(),
            key=lambda unread: unread.last_message.seq,
            reverse=True,
        )

    def on_change(self, handler: UnreadsHandler) -> Subscription:
        """Call ``handler`` with the list once it is loaded and again on every change.

        A handler registered after the load first receives the current list.
        Async handlers are scheduled as tasks of the session.
        """
        self._session._ensure_alive("unreads.on_change")
        self._handlers.append(handler)
        if self._by_conversation is not None:
            self._session._schedule_handler(
                handler, self.current, "on_unreads_change", lambda: handler in self._handlers
            )
        return Subscription(lambda: self._remove(handler))

    def _remove(self, handler: UnreadsHandler) -> None:
        if handler in self._handlers:
            self._handlers.remove(handler)

    def _clear(self) -> None:
        self._handlers.clear()

    def _load(self, snapshot: UnreadsSnapshot) -> None:
        self._by_conversation = {unread.conversation.id: unread for unread in snapshot.unreads}
        self._read_positions = dict(snapshot.read_positions)
        self._notify()

    def _apply(self, event: ChatEvent, me_id: str) -> None:
        if self._by_conversation is None:
            return
        if self._update(event, me_id):
            self._notify()

    def _update(self, event: ChatEvent, me_id: str) -> bool:
        """Apply an event that came after the snapshot; return whether the list changed."""
        table = self._by_conversation
        assert table is not None
        if isinstance(event, PresenceChanged):
            return False
        conversation_id = event.conversation.id
        if isinstance(event, MessageSent):
            message = event.message
            if message.sender_id == me_id:
                # Sending moves the sender's read position to their message.
                self._read_positions[conversation_id] = message.seq
                return table.pop(conversation_id, None) is not None
            previous = table.get(conversation_id)
            count = previous.unread_message_count + 1 if previous else 1
            table[conversation_id] = UnreadConversation(
                conversation=event.conversation,
                last_message=message,
                unread_message_count=count,
            )
            return True
        if isinstance(event, MessagesRead):
            if event.user_id != me_id:
                return False
            if event.last_read_seq <= self._read_positions.get(conversation_id, 0):
                return False
            self._read_positions[conversation_id] = event.last_read_seq
            previous = table.get(conversation_id)
            if event.unread_message_count == 0:
                return table.pop(conversation_id, None) is not None
            if previous is None or previous.unread_message_count == event.unread_message_count:
                return False
            table[conversation_id] = previous.model_copy(
                update={"unread_message_count": event.unread_message_count}
            )
            return True
        if isinstance(event, MessageDeleted):
            previous = table.get(conversation_id)
            if previous is None or event.message_seq <= self._read_positions.get(
                conversation_id, 0
            ):
                return False
            # Every message above the read position was sent by someone else,
            # so the deleted one was counted as unread.
            remaining = previous.unread_message_count - 1
            if remaining <= 0:
                return table.pop(conversation_id, None) is not None
            table[conversation_id] = previous.model_copy(update={"unread_message_count": remaining})
            return True
        if isinstance(event, ConversationUpdated):
            if me_id in event.removed_user_ids:
                self._read_positions.pop(conversation_id, None)
                return table.pop(conversation_id, None) is not None
            previous = table.get(conversation_id)
            if previous is None:
                return False
            table[conversation_id] = previous.model_copy(
                update={"conversation": event.conversation}
            )
            return True
        return False

    def _notify(self) -> None:
        current = self.current
        for handler in list(self._handlers):
            self._session._run_handler(
                handler, current, "on_unreads_change", self._is_subscribed(handler)
            )

    def _is_subscribed(self, handler: UnreadsHandler) -> Callable[[], bool]:
        return lambda: handler in self._handlers
