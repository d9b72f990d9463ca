"""The messages a Chatbox shows, split into fixed-size blocks that re-render on their own.

ReactPy sends a component's whole rendered subtree whenever it re-renders,
and a parent re-renders all its child components. If the list of messages
lived in the Chatbox's state, every new message would resend the whole list.
Instead, this cache holds the messages, and each block component of
``BLOCK_SIZE`` messages subscribes to changes of its own block. A new message
re-renders one block. Older messages loaded in front move every message, so
every block re-renders, each in an update of its own. The list itself
re-renders only when the number of blocks grows past its spare blocks.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable

from ..models import Message, User

__all__ = ["BLOCK_SIZE", "MessageCache"]

BLOCK_SIZE = 25
"""Messages per block: a new message re-renders at most this many rows.

Smaller blocks would make that update smaller, but loading older messages
re-renders every block, each in an update of its own, and the ReactPy client
renders the whole page again for every update. In Chromium on a 2-core VM,
with 1,000 short messages of ``benchmarks/ui_app.py`` on screen, the next
page of older messages took 1.3 to 1.6 s with blocks of 8, against 0.5 s with 25.
"""


class MessageCache:
    """Messages of one conversation in ``seq`` order, with the users who sent them.

    ``on_layout`` listeners hear about every change of the first or last
    message, the number of blocks or ``has_older``. Block listeners hear
    about changes inside their block only. Block listeners are called before
    layout listeners, so components that re-render for the layout (the list's
    status element, which the browser reads to learn that a page of messages
    arrived) render after the blocks.
    """

    def __init__(self) -> None:
        self._messages: list[Message] = []
        self._seqs: list[int] = []
        self.users: dict[str, User] = {}
        """Known users by id, for sender names and avatars."""
        self.has_older = False
        """Whether older messages exist before the first one held."""
        self._block_listeners: dict[int, set[Callable[[], None]]] = {}
        self._layout_listeners: set[Callable[[], None]] = set()

    # -- reading -----------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._messages)

    @property
    def block_count(self) -> int:
        """Number of blocks the messages fill."""
        return -(-len(self._messages) // BLOCK_SIZE)

    def block(self, index: int) -> list[Message]:
        """Return the messages of block ``index`` (empty past the end)."""
        return self._messages[index * BLOCK_SIZE : (index + 1) * BLOCK_SIZE]

    def before(self, index: int) -> Message | None:
        """Return the message just before block ``index``, for grouping across blocks."""
        position = index * BLOCK_SIZE - 1
        return self._messages[position] if 0 <= position < len(self._messages) else None

    @property
    def first(self) -> Message | None:
        """The oldest message held."""
        return self._messages[0] if self._messages else None

    @property
    def last(self) -> Message | None:
        """The newest message held."""
        return self._messages[-1] if self._messages else None

    def get(self, message_id: str) -> Message | None:
        """Return the current version of the message with ``message_id``, or ``None``."""
        # A linear scan from the newest end, where the messages asked about
        # (the last one shown, one just acted on) usually are; never per render.
        return next(
            (message for message in reversed(self._messages) if message.id == message_id), None
        )

    # -- subscriptions -------------------------------------------------------------

    def on_block(self, index: int, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener`` when block ``index`` changes; return the function that stops it."""
        self._block_listeners.setdefault(index, set()).add(listener)
        return lambda: self._block_listeners.get(index, set()).discard(listener)

    def on_layout(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener`` when blocks are added or messages move between blocks."""
        self._layout_listeners.add(listener)
        return lambda: self._layout_listeners.discard(listener)

    def _changed_blocks(self, indexes: Iterable[int]) -> None:
        for index in sorted(set(indexes)):
            for listener in list(self._block_listeners.get(index, ())):
                listener()

    def _changed_layout(self) -> None:
        for listener in list(self._layout_listeners):
            listener()

    # -- writing -------------------------------------------------------------------

    def reset(self, messages: Iterable[Message], *, has_older: bool) -> None:
        """Replace everything with ``messages``."""
        self._messages = sorted(messages, key=lambda message: message.seq)
        self._seqs = [message.seq for message in self._messages]
        self.has_older = has_older
        self._changed_blocks(range(self.block_count))
        self._changed_layout()

    def prepend(self, older: Iterable[Message], *, has_older: bool) -> None:
        """Add a page of older messages in front; every block shifts."""
        known = set(self._seqs)
        added = [message for message in older if message.seq not in known]
        self.has_older = has_older
        if added:
            self.reset([*added, *self._messages], has_older=has_older)
        else:
            self._changed_layout()

    def upsert(self, message: Message) -> None:
        """Add a new message or replace one with the same id, keeping ``seq`` order."""
        position = bisect.bisect_left(self._seqs, message.seq)
        if position < len(self._seqs) and self._seqs[position] == message.seq:
            self._messages[position] = message
            self._changed_blocks([position // BLOCK_SIZE])
            return
        self._messages.insert(position, message)
        self._seqs.insert(position, message.seq)
        if position < len(self._messages) - 1:
            # Inserted before others: later messages move, as their blocks do.
            self._changed_blocks(range(position // BLOCK_SIZE, self.block_count))
            self._changed_layout()
            return
        self._changed_blocks([position // BLOCK_SIZE])
        self._changed_layout()

    def remove(self, message_id: str) -> None:
        """Drop a message by id; later messages move up."""
        for position, message in enumerate(self._messages):
            if message.id == message_id:
                del self._messages[position]
                del self._seqs[position]
                self._changed_blocks(range(position // BLOCK_SIZE, self.block_count + 1))
                self._changed_layout()
                return

    def mark_read(self, user_id: str, last_read_seq: int, *, viewer_id: str) -> None:
        """Record that ``user_id`` read every message up to ``last_read_seq``.

        ``viewer_id`` is the user whose list shows these messages. Only that
        user's own messages show read receipts, so only blocks where one of
        those changed re-render. A viewer's own read, which changes only the
        other participants' messages, re-renders nothing.
        """
        changed: list[int] = []
        end = bisect.bisect_right(self._seqs, last_read_seq)
        for position in range(end - 1, -1, -1):
            message = self._messages[position]
            if user_id in message.read_by:
                # Earlier messages were read already: read positions only move forward.
                break
            if message.sender_id == user_id:
                continue
            self._messages[position] = message.model_copy(
                update={"read_by": [*message.read_by, user_id]}
            )
            if message.sender_id == viewer_id:
                changed.append(position // BLOCK_SIZE)
        self._changed_blocks(changed)

    def add_users(self, users: dict[str, User]) -> None:
        """Remember users; blocks re-render only when a known user changed or a new one arrived."""
        fresh = {key: user for key, user in users.items() if self.users.get(key) != user}
        if not fresh:
            return
        self.users.update(fresh)
        affected = [
            position // BLOCK_SIZE
            for position, message in enumerate(self._messages)
            if message.sender_id in fresh
        ]
        self._changed_blocks(affected)
