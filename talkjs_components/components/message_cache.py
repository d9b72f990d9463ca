"""The messages a Chatbox shows, split into fixed-size blocks that re-render on their own.

ReactPy sends a component's whole rendered subtree whenever it re-renders,
and a parent re-renders all its child components. If the list of messages
lived in the Chatbox's state, every new message would resend the whole list.
Instead, this cache holds the messages, and each block component of
``BLOCK_SIZE`` messages subscribes to changes of its own block.

Blocks are anchored: every message has a virtual position, and block ``i``
holds the positions ``[i * BLOCK_SIZE, (i + 1) * BLOCK_SIZE)``. Newer messages
take the positions after the last one, and older messages the positions
before the first one, so neither moves the messages already held between
blocks. A new message re-renders its block, and a page of older messages
re-renders the blocks it fills plus the block of the old first message.
Only a message inserted or removed between others moves messages: those on
its shorter side, towards the first or the last message.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable

from ..models import Message, User

__all__ = ["BLOCK_SIZE", "ORIGIN_BLOCK", "MessageCache"]

BLOCK_SIZE = 8
"""Messages per block: a new message re-renders at most this many rows.

Measured in Chromium on a 2-core VM with the short messages of
``benchmarks/ui_app.py``, which take about 870 bytes per row. With blocks
of 25, a new message's update was 10.3 KB at p50 and 18.2 KB at p95; with
blocks of 8, 4.2 KB and 7.7 KB. Smaller blocks cost more frames when a
page of older messages arrives: scrolling back through 1,000 messages took
about 2.1 s with blocks of 25 and 2.6 s with blocks of 8.
"""

ORIGIN_BLOCK = 1_000_000
"""Block index where ``reset`` places the first message, leaving room for older pages.

Older messages take lower positions. Only when a page would need a position
below zero do all messages move to higher blocks (a re-base), which
re-renders every block: after ``ORIGIN_BLOCK * BLOCK_SIZE`` older messages.
"""


class MessageCache:
    """Messages of one conversation in ``seq`` order, with the users who sent them.

    ``on_layout`` listeners hear about every change of the id of the first or
    last message, of ``blocks`` or of ``has_older``. Block listeners hear about
    changes inside their block only, including a change of the message just
    before the block, which decides the grouping and day heading of the
    block's first row. Block listeners are called before layout listeners, so
    components that re-render for the layout (the list's status element,
    which the browser reads to learn that a page of messages arrived) render
    after the blocks.
    """

    def __init__(self, *, origin_block: int = ORIGIN_BLOCK) -> None:
        if origin_block < 0:
            raise ValueError(f"origin_block must be 0 or more, not {origin_block}")
        self._origin = origin_block * BLOCK_SIZE
        self._messages: list[Message] = []
        self._seqs: list[int] = []
        # Virtual position of self._messages[0]; never negative.
        self._offset = self._origin
        self.users: dict[str, User] = {}
        """Known users by id, for sender names and avatars."""
        self.has_older = False
        """Whether older messages exist before the first one held."""
        self._block_listeners: dict[int, set[Callable[[], None]]] = {}
        # Changes per block index, kept for the life of the cache: at most one
        # entry per block index ever used.
        self._block_revisions: dict[int, int] = {}
        self._layout_listeners: set[Callable[[], None]] = set()

    # -- reading -----------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._messages)

    @property
    def blocks(self) -> range:
        """Indexes of the blocks that contain messages; empty (at the origin block) when none do."""
        first = self._offset // BLOCK_SIZE
        if not self._messages:
            return range(first, first)
        return range(first, (self._offset + len(self._messages) - 1) // BLOCK_SIZE + 1)

    def block(self, index: int) -> list[Message]:
        """Return the messages of block ``index`` (empty outside ``blocks``)."""
        start = max(index * BLOCK_SIZE - self._offset, 0)
        stop = max((index + 1) * BLOCK_SIZE - self._offset, 0)
        return self._messages[start:stop]

    def before(self, index: int) -> Message | None:
        """Return the message just before block ``index``, for grouping across blocks."""
        position = index * BLOCK_SIZE - self._offset - 1
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

    def block_revision(self, index: int) -> int:
        """Return how many times block ``index`` changed, to detect a change missed by a listener.

        A block component renders, and subscribes only afterwards in an
        effect. A change in between reaches no listener, so the component
        compares the revision it rendered with the one at subscription.
        """
        return self._block_revisions.get(index, 0)

    def on_block(self, index: int, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener`` when block ``index`` changes; return the function that stops it."""
        self._block_listeners.setdefault(index, set()).add(listener)
        return lambda: self._block_listeners.get(index, set()).discard(listener)

    def on_layout(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener`` when ``blocks``, ``first``, ``last`` or ``has_older`` may change."""
        self._layout_listeners.add(listener)
        return lambda: self._layout_listeners.discard(listener)

    def _block_of(self, index: int) -> int:
        """Return the block of ``self._messages[index]``."""
        return (self._offset + index) // BLOCK_SIZE

    def _span_blocks(self, start: int, stop: int) -> range:
        """Return the blocks to re-render after the messages at positions ``[start, stop)`` changed.

        Positions are virtual and taken after the change. The block that
        starts at ``stop`` is included when it holds a message, because the
        message before it changed.
        """
        if stop <= start:
            return range(0)
        last = (stop - 1) // BLOCK_SIZE
        if stop % BLOCK_SIZE == 0 and stop < self._offset + len(self._messages):
            last += 1
        return range(start // BLOCK_SIZE, last + 1)

    def _changed_blocks(self, indexes: Iterable[int]) -> None:
        """Notify the listeners of each block in ``indexes`` once, in the order given.

        ReactPy sends each block's re-render as an update of its own, in the
        order of the notifications. When messages move between blocks, the
        block they leave goes first, so that the browser never shows a message
        twice. It may miss one for a moment, which ``MessageLog`` allows for.
        """
        for index in dict.fromkeys(indexes):
            self._block_revisions[index] = self._block_revisions.get(index, 0) + 1
            for listener in list(self._block_listeners.get(index, ())):
                listener()

    def _changed_layout(self) -> None:
        for listener in list(self._layout_listeners):
            listener()

    # -- writing -------------------------------------------------------------------

    def reset(self, messages: Iterable[Message], *, has_older: bool) -> None:
        """Replace everything with ``messages``, placed from the origin block on."""
        old = self.blocks
        self._messages = sorted(messages, key=lambda message: message.seq)
        self._seqs = [message.seq for message in self._messages]
        self._offset = self._origin
        self.has_older = has_older
        self._changed_blocks(sorted({*old, *self.blocks}))
        self._changed_layout()

    def prepend(self, older: Iterable[Message], *, has_older: bool) -> None:
        """Add a page of older messages before the first one held.

        The messages held keep their blocks: the page fills the blocks before
        them, and the block of the old first message re-renders because the
        message before it changed. Messages not older than the first one held
        are added as ``upsert`` adds them.

        Blocks re-render from the old first block upwards. ``MessageLog`` keeps
        the reader's place by the message at the top of the view, and picks
        that message again after each update. So the one change below the new
        messages, the old first message's day heading and grouping, comes
        first. Each later update only adds messages above all the others.
        """
        known = set(self._seqs)
        added = sorted(
            (message for message in older if message.seq not in known),
            key=lambda message: message.seq,
        )
        self.has_older = has_older
        first_seq = self._seqs[0] if self._seqs else None
        front = [message for message in added if first_seq is None or message.seq < first_seq]
        changed: list[int] = []
        if front:
            if self._offset < len(front):
                changed.extend(self._rebase(len(front)))
            old_offset = self._offset
            self._offset -= len(front)
            self._messages[:0] = front
            self._seqs[:0] = [message.seq for message in front]
            changed.extend(reversed(self._span_blocks(self._offset, old_offset)))
        self._changed_blocks(changed)
        for message in added[len(front) :]:
            self.upsert(message)
        self._changed_layout()

    def _rebase(self, room: int) -> list[int]:
        """Move every message to higher blocks so that ``room`` positions fit before the first.

        Return the blocks that changed: every block before and after the move.
        """
        old = self.blocks
        missing_blocks = -(-(room - self._offset) // BLOCK_SIZE)
        self._offset += (missing_blocks + self._origin // BLOCK_SIZE) * BLOCK_SIZE
        return [*old, *self.blocks]

    def upsert(self, message: Message) -> None:
        """Add a new message or replace one with the same id, keeping ``seq`` order.

        A message inserted between others moves the messages on its shorter
        side by one position, and their blocks re-render.
        """
        position = bisect.bisect_left(self._seqs, message.seq)
        if position < len(self._seqs) and self._seqs[position] == message.seq:
            self._messages[position] = message
            self._changed_blocks([self._block_of(position)])
            return
        changed: list[int] = []
        if position < len(self._messages) - position:
            # Nearer the first message: it and the others before the new one
            # move to lower positions, so the later blocks go first.
            if self._offset == 0:
                changed.extend(self._rebase(1))
            self._offset -= 1
            self._messages.insert(position, message)
            self._seqs.insert(position, message.seq)
            changed.extend(reversed(self._span_blocks(self._offset, self._offset + position + 1)))
        else:
            # Appended, or nearer the last message: the messages after the new
            # one move to higher positions, so the earlier blocks go first.
            self._messages.insert(position, message)
            self._seqs.insert(position, message.seq)
            start = self._offset + position
            changed.extend(self._span_blocks(start, self._offset + len(self._messages)))
        self._changed_blocks(changed)
        self._changed_layout()

    def remove(self, message_id: str) -> None:
        """Drop a message by id; the messages on its shorter side move by one position."""
        position = next(
            (index for index, message in enumerate(self._messages) if message.id == message_id),
            None,
        )
        if position is None:
            return
        old_offset = self._offset
        old_length = len(self._messages)
        del self._messages[position]
        del self._seqs[position]
        if position < old_length - 1 - position:
            # Nearer the first message: it and the others before the removed
            # one move to higher positions, so the earlier blocks go first.
            self._offset += 1
            self._changed_blocks(self._span_blocks(old_offset, old_offset + position + 1))
        else:
            # The messages after the removed one move to lower positions, so
            # the later blocks go first.
            span = self._span_blocks(old_offset + position, old_offset + old_length)
            self._changed_blocks(reversed(span))
        self._changed_layout()

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
                changed.append(self._block_of(position))
        self._changed_blocks(changed)

    def add_users(self, users: dict[str, User]) -> None:
        """Remember users; blocks re-render only when a known user changed or a new one arrived."""
        fresh = {key: user for key, user in users.items() if self.users.get(key) != user}
        if not fresh:
            return
        self.users.update(fresh)
        affected = [
            self._block_of(position)
            for position, message in enumerate(self._messages)
            if message.sender_id in fresh
        ]
        self._changed_blocks(affected)
