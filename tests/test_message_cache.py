"""MessageCache blocks: where messages go and which blocks re-render on each change."""

from __future__ import annotations

import functools

from talkjs_components.components.message_cache import BLOCK_SIZE, ORIGIN_BLOCK, MessageCache
from talkjs_components.components.message_list import SPARE_BLOCKS, block_window
from talkjs_components.models import Message

# Every test listens to this many blocks on each side of the origin block.
_LISTENED = 40


def _message(seq: int, sender_id: str = "bob") -> Message:
    return Message(
        id=f"m{seq}",
        conversation_id="c1",
        sender_id=sender_id,
        text=f"message {seq}",
        created_at=seq,
        seq=seq,
    )


def _messages(seqs: range) -> list[Message]:
    return [_message(seq) for seq in seqs]


def _listen(cache: MessageCache, origin_block: int = ORIGIN_BLOCK) -> list[int]:
    """Return the list that collects the index of every block that re-renders."""
    changed: list[int] = []
    for index in range(max(origin_block - _LISTENED, 0), origin_block + _LISTENED):
        cache.on_block(index, functools.partial(changed.append, index))
    return changed


def _cache_of(senders: list[str]) -> tuple[MessageCache, list[int]]:
    """Return a cache of one message per sender, and the list of block indexes it re-renders."""
    cache = MessageCache()
    cache.reset([_message(seq, sender) for seq, sender in enumerate(senders, 1)], has_older=False)
    return cache, _listen(cache)


def _placement(cache: MessageCache) -> dict[str, int]:
    """Return the block index of every message id."""
    return {message.id: index for index in cache.blocks for message in cache.block(index)}


def _assert_consistent(cache: MessageCache, expected_seqs: list[int]) -> None:
    """Assert that the blocks hold the messages in order and ``before`` links them."""
    in_blocks = [message for index in cache.blocks for message in cache.block(index)]
    assert [message.seq for message in in_blocks] == expected_seqs
    assert cache.block(cache.blocks.start - 1) == []
    assert cache.block(cache.blocks.stop) == []
    assert cache.before(cache.blocks.start) is None
    for index in cache.blocks[1:]:
        before = cache.before(index)
        assert before is not None
        assert cache.block(index - 1)[-1] == before


def test_mark_read_by_viewer_renders_nothing() -> None:
    cache, changed = _cache_of(["bob", "alice", "bob"])

    cache.mark_read("alice", 3, viewer_id="alice")

    assert changed == []
    first = cache.blocks.start
    bob_messages = [message for message in cache.block(first) if message.sender_id == "bob"]
    assert [message.read_by for message in bob_messages] == [["alice"], ["alice"]]


def test_mark_read_of_viewer_messages_renders_block() -> None:
    cache, changed = _cache_of(["alice", "bob", "alice"])

    cache.mark_read("bob", 3, viewer_id="alice")

    assert changed == [cache.blocks.start]
    read = cache.get("m3")
    assert read is not None
    assert read.read_by == ["bob"]


def test_mark_read_renders_only_viewer_blocks() -> None:
    # The first block holds only Bob's messages, the second starts with one of Alice's.
    senders = ["bob"] * BLOCK_SIZE + ["alice", "bob"]
    cache, changed = _cache_of(senders)

    cache.mark_read("carol", len(senders), viewer_id="alice")

    assert changed == [cache.blocks.start + 1]
    assert all("carol" in message.read_by for message in cache.block(cache.blocks.start))


def test_reset_places_messages_at_origin() -> None:
    cache = MessageCache()
    changed = _listen(cache)

    cache.reset(_messages(range(1, BLOCK_SIZE + 2)), has_older=True)

    assert cache.blocks == range(ORIGIN_BLOCK, ORIGIN_BLOCK + 2)
    assert changed == [ORIGIN_BLOCK, ORIGIN_BLOCK + 1]
    assert cache.has_older
    _assert_consistent(cache, list(range(1, BLOCK_SIZE + 2)))


def test_reset_renders_old_and_new_blocks() -> None:
    cache = MessageCache()
    cache.prepend(_messages(range(100, 100 + 2 * BLOCK_SIZE)), has_older=True)
    old_blocks = cache.blocks
    changed = _listen(cache)

    cache.reset([_message(1)], has_older=False)

    assert changed == sorted({*old_blocks, ORIGIN_BLOCK})
    _assert_consistent(cache, [1])


def test_first_page_ends_before_origin() -> None:
    cache = MessageCache()
    changed = _listen(cache)

    cache.prepend(_messages(range(1, BLOCK_SIZE + 1)), has_older=True)

    assert cache.blocks == range(ORIGIN_BLOCK - 1, ORIGIN_BLOCK)
    assert changed == [ORIGIN_BLOCK - 1]
    _assert_consistent(cache, list(range(1, BLOCK_SIZE + 1)))


def test_prepend_keeps_held_messages_in_their_blocks() -> None:
    cache = MessageCache()
    cache.prepend(_messages(range(1000, 1000 + 3 * BLOCK_SIZE + 1)), has_older=True)
    before = _placement(cache)

    cache.prepend(_messages(range(500, 500 + 2 * BLOCK_SIZE + 3)), has_older=False)

    after = _placement(cache)
    assert {message_id: after[message_id] for message_id in before} == before
    assert not cache.has_older
    _assert_consistent(
        cache,
        [*range(500, 500 + 2 * BLOCK_SIZE + 3), *range(1000, 1000 + 3 * BLOCK_SIZE + 1)],
    )


def test_prepend_renders_filled_and_old_first() -> None:
    # The first page fills whole blocks, so the old first message starts a block.
    cache = MessageCache()
    cache.prepend(_messages(range(1000, 1000 + 2 * BLOCK_SIZE)), has_older=True)
    old_first = cache.blocks.start
    changed = _listen(cache)

    cache.prepend(_messages(range(500, 500 + BLOCK_SIZE + 1)), has_older=True)

    # The old first block, whose first row groups with the message now
    # before it, goes first. The new messages follow upwards: a block with
    # one message, then a full one.
    assert changed == [old_first, old_first - 1, old_first - 2]


def test_prepend_fills_partial_first_block() -> None:
    cache = MessageCache()
    cache.prepend(_messages(range(1000, 1000 + BLOCK_SIZE + 1)), has_older=True)
    # The first message is the last of its block.
    old_first = cache.blocks.start
    assert len(cache.block(old_first)) == 1
    changed = _listen(cache)

    cache.prepend(_messages(range(900, 900 + BLOCK_SIZE - 1)), has_older=True)

    assert changed == [old_first]
    assert cache.blocks.start == old_first
    assert len(cache.block(old_first)) == BLOCK_SIZE


def test_prepend_of_known_messages_renders_no_block() -> None:
    cache = MessageCache()
    cache.prepend(_messages(range(10, 20)), has_older=True)
    changed = _listen(cache)
    layouts: list[bool] = []
    cache.on_layout(lambda: layouts.append(True))

    cache.prepend(_messages(range(10, 15)), has_older=False)

    assert changed == []
    assert layouts == [True]
    assert not cache.has_older


def test_prepend_adds_newer_messages_in_order() -> None:
    cache = MessageCache()
    cache.prepend([_message(10), _message(30)], has_older=True)

    cache.prepend([_message(5), _message(20)], has_older=True)

    _assert_consistent(cache, [5, 10, 20, 30])


def test_append_renders_last_block_only() -> None:
    cache = MessageCache()
    cache.reset(_messages(range(1, BLOCK_SIZE)), has_older=False)
    changed = _listen(cache)

    cache.upsert(_message(BLOCK_SIZE))
    cache.upsert(_message(BLOCK_SIZE + 1))

    assert changed == [ORIGIN_BLOCK, ORIGIN_BLOCK + 1]
    assert cache.blocks == range(ORIGIN_BLOCK, ORIGIN_BLOCK + 2)


def test_edit_renders_its_block_only() -> None:
    cache = MessageCache()
    cache.reset(_messages(range(1, 3 * BLOCK_SIZE)), has_older=False)
    changed = _listen(cache)

    edited = _message(BLOCK_SIZE + 1).model_copy(update={"text": "edited", "edited_at": 99})
    cache.upsert(edited)

    assert changed == [ORIGIN_BLOCK + 1]
    assert cache.get(edited.id) == edited


def test_insert_near_end_moves_later_messages() -> None:
    cache = MessageCache()
    seqs = list(range(0, 8 * BLOCK_SIZE, 2))  # four blocks of even seqs
    cache.reset([_message(seq) for seq in seqs], has_older=False)
    first = cache.blocks.start
    changed = _listen(cache)

    # After the first message of the third block.
    inserted = seqs[2 * BLOCK_SIZE] + 1
    cache.upsert(_message(inserted))

    assert changed == [first + 2, first + 3, first + 4]
    assert cache.blocks.start == first
    _assert_consistent(cache, sorted([*seqs, inserted]))


def test_insert_near_start_moves_earlier_messages() -> None:
    cache = MessageCache()
    seqs = list(range(0, 8 * BLOCK_SIZE, 2))
    cache.reset([_message(seq) for seq in seqs], has_older=False)
    first = cache.blocks.start
    changed = _listen(cache)

    # Before the last message of the second block.
    inserted = seqs[2 * BLOCK_SIZE - 1] - 1
    cache.upsert(_message(inserted))

    # The first block moves one message into the block before it, and the
    # second block holds the inserted message; later blocks stay. Blocks that
    # lose a message go before the block that receives it.
    assert changed == [first + 1, first, first - 1]
    assert cache.blocks == range(first - 1, first + 4)
    _assert_consistent(cache, sorted([*seqs, inserted]))


def test_insert_before_first_renders_two_blocks() -> None:
    cache = MessageCache()
    cache.reset(_messages(range(10, 10 + 2 * BLOCK_SIZE)), has_older=False)
    changed = _listen(cache)

    cache.upsert(_message(1))

    assert changed == [ORIGIN_BLOCK, ORIGIN_BLOCK - 1]
    _assert_consistent(cache, [1, *range(10, 10 + 2 * BLOCK_SIZE)])


def test_remove_near_end_moves_later_messages() -> None:
    cache = MessageCache()
    cache.reset(_messages(range(1, 4 * BLOCK_SIZE + 1)), has_older=False)
    first = cache.blocks.start
    changed = _listen(cache)
    layouts: list[bool] = []
    cache.on_layout(lambda: layouts.append(True))

    removed = 3 * BLOCK_SIZE - 1  # the second to last message of the third block
    cache.remove(f"m{removed}")

    # The last block gives its first message to the third block, and goes first.
    assert changed == [first + 3, first + 2]
    assert layouts == [True]
    _assert_consistent(cache, [seq for seq in range(1, 4 * BLOCK_SIZE + 1) if seq != removed])


def test_remove_near_start_moves_earlier_messages() -> None:
    cache = MessageCache()
    cache.reset(_messages(range(1, 4 * BLOCK_SIZE + 1)), has_older=False)
    first = cache.blocks.start
    changed = _listen(cache)

    removed = BLOCK_SIZE  # the last message of the first block
    cache.remove(f"m{removed}")

    # The first block's messages move on by one. The second block's first row
    # now follows another message.
    assert changed == [first, first + 1]
    assert cache.blocks.start == first
    _assert_consistent(cache, [seq for seq in range(1, 4 * BLOCK_SIZE + 1) if seq != removed])


def test_remove_last_renders_its_block() -> None:
    cache = MessageCache()
    cache.reset(_messages(range(1, BLOCK_SIZE + 2)), has_older=False)
    changed = _listen(cache)

    cache.remove(f"m{BLOCK_SIZE + 1}")
    cache.remove("unknown")

    assert changed == [ORIGIN_BLOCK + 1]
    assert cache.blocks == range(ORIGIN_BLOCK, ORIGIN_BLOCK + 1)


def test_prepend_below_zero_rebases() -> None:
    cache = MessageCache(origin_block=1)
    cache.prepend(_messages(range(1000, 1000 + BLOCK_SIZE)), has_older=True)
    assert cache.blocks == range(0, 1)
    changed = _listen(cache, origin_block=0)

    cache.prepend(_messages(range(900, 900 + BLOCK_SIZE + 1)), has_older=True)

    # The held block moves up by the two missing blocks plus the origin block,
    # and every block before and after the move re-renders: the block it
    # leaves, the block it enters, then the new messages upwards.
    assert cache.blocks == range(1, 4)
    assert changed == [0, 3, 2, 1]
    _assert_consistent(cache, [*range(900, 900 + BLOCK_SIZE + 1), *range(1000, 1000 + BLOCK_SIZE)])


def test_insert_at_zero_rebases() -> None:
    cache = MessageCache(origin_block=0)
    cache.reset(_messages(range(10, 10 + 3 * BLOCK_SIZE)), has_older=False)
    changed = _listen(cache, origin_block=0)

    cache.upsert(_message(5))

    # The three blocks move up by one block, and the new message takes the
    # last position of the block before them.
    assert cache.blocks == range(0, 4)
    assert changed == [0, 1, 2, 3]
    _assert_consistent(cache, [5, *range(10, 10 + 3 * BLOCK_SIZE)])


def test_block_window_keeps_covering_range() -> None:
    cache = MessageCache()
    cache.prepend(_messages(range(1, 51)), has_older=True)

    window = block_window(cache, range(0))

    assert window.start == cache.blocks.start - SPARE_BLOCKS
    assert window.stop == cache.blocks.stop + SPARE_BLOCKS
    cache.upsert(_message(51))
    cache.prepend(_messages(range(-49, 1)), has_older=True)
    assert block_window(cache, window) is window


def test_block_window_grows_past_spare_blocks() -> None:
    cache = MessageCache()
    cache.prepend(_messages(range(1, 11)), has_older=True)
    window = block_window(cache, range(0))

    older = (SPARE_BLOCKS + 1) * BLOCK_SIZE
    cache.prepend(_messages(range(1 - older, 1)), has_older=True)
    grown = block_window(cache, window)

    held = len(cache.blocks)
    assert held > SPARE_BLOCKS
    assert grown.start == cache.blocks.start - held
    assert grown.stop == cache.blocks.stop + held


def test_block_revision_counts_changes() -> None:
    cache = MessageCache()
    cache.reset(_messages(range(1, BLOCK_SIZE + 1)), has_older=False)
    rendered = cache.block_revision(ORIGIN_BLOCK - 1)

    # A page that arrives before the block component subscribed reaches no
    # listener, so the component compares revisions and renders again.
    cache.prepend([_message(0)], has_older=False)

    assert cache.block_revision(ORIGIN_BLOCK - 1) == rendered + 1
    assert cache.block_revision(ORIGIN_BLOCK) == 2
    assert cache.block_revision(ORIGIN_BLOCK + 1) == 0
