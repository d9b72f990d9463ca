"""MessageCache read receipts: which blocks re-render when someone reads messages."""

from __future__ import annotations

import functools

from talkjs_components.components.message_cache import BLOCK_SIZE, MessageCache
from talkjs_components.models import Message


def _message(seq: int, sender_id: str) -> Message:
    return Message(
        id=f"m{seq}",
        conversation_id="c1",
        sender_id=sender_id,
        text=f"message {seq}",
        created_at=seq,
        seq=seq,
    )


def _cache_of(senders: list[str]) -> tuple[MessageCache, list[int]]:
    """Return a cache of one message per sender, and the list of block indexes it re-renders."""
    cache = MessageCache()
    cache.reset([_message(seq, sender) for seq, sender in enumerate(senders, 1)], has_older=False)
    changed: list[int] = []
    for index in range(cache.block_count):
        cache.on_block(index, functools.partial(changed.append, index))
    return cache, changed


def test_mark_read_by_viewer_renders_nothing() -> None:
    cache, changed = _cache_of(["bob", "alice", "bob"])

    cache.mark_read("alice", 3, viewer_id="alice")

    assert changed == []
    bob_messages = [message for message in cache.block(0) if message.sender_id == "bob"]
    assert [message.read_by for message in bob_messages] == [["alice"], ["alice"]]


def test_mark_read_of_viewer_messages_renders_block() -> None:
    cache, changed = _cache_of(["alice", "bob", "alice"])

    cache.mark_read("bob", 3, viewer_id="alice")

    assert changed == [0]
    read = cache.get("m3")
    assert read is not None
    assert read.read_by == ["bob"]


def test_mark_read_renders_only_viewer_blocks() -> None:
    # Block 0 holds only Bob's messages, block 1 starts with one of Alice's.
    senders = ["bob"] * BLOCK_SIZE + ["alice", "bob"]
    cache, changed = _cache_of(senders)

    cache.mark_read("carol", len(senders), viewer_id="alice")

    assert changed == [1]
    assert all("carol" in message.read_by for message in cache.block(0))
