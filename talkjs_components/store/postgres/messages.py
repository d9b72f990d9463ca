"""Message, read position and unread operations of the PostgreSQL store.

Message ``seq`` values come from one sequence, so they are unique and never
reused, but a transaction may commit after another that drew a larger
number. Read positions compare seqs only within one conversation, and every
message insert holds its conversation's row lock until commit, so within a
conversation the seqs commit in increasing order. A reader therefore never
sees a message while an older one of that conversation is still
uncommitted, and moving a read position to "the latest message" cannot
pass over a message that appears later.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from ...errors import NotFound
from ...models import (
    Conversation,
    Message,
    MessagesPage,
    UnreadConversation,
    UnreadsSnapshot,
    now_ms,
)
from .. import (
    AuthorizeConversation,
    AuthorizeMessage,
    DeletedMessage,
    InsertedMessage,
    LogEvent,
    NewMessage,
    ReadPosition,
    UpdatedMessage,
)
from ..records import merge_custom, new_message_id
from .conversations import (
    latest_message_seq,
    load_conversations,
    lock_conversation,
    require_conversation,
)
from .events import latest_event_seq, log
from .rows import MESSAGE_COLUMNS, message_from_row
from .transaction import Transaction
from .users import get_users

__all__ = [
    "delete_message",
    "find_message",
    "get_unreads",
    "get_unreads_snapshot",
    "insert_message",
    "list_messages",
    "mark_read",
    "update_message",
]


async def insert_message(
    tx: Transaction,
    message: NewMessage,
    authorize: AuthorizeConversation | None,
    log_event: LogEvent[InsertedMessage] | None,
) -> InsertedMessage:
    conversation = await lock_conversation(tx, message.conversation_id, "NO KEY UPDATE")
    if authorize is not None:
        authorize(conversation)
    if conversation is None:
        raise NotFound(f"conversation '{message.conversation_id}' not found: create it first")
    sender = None
    if message.sender_id is not None:
        sender = (await get_users(tx, [message.sender_id])).get(message.sender_id)
    if message.idempotency_key is not None:
        existing = await _find_by_idempotency_key(tx, message)
        if existing is not None:
            found = InsertedMessage(existing, False, conversation, sender)
            return found._replace(**(await log(tx, found, log_event))._asdict())

    message_id = new_message_id()
    created_at = now_ms()
    # The conversation lock already orders sends of one conversation, so a
    # retried send normally finds its message above. The ON CONFLICT target
    # is the unique index on the idempotency key, so a writer that inserts
    # without that lock still cannot create a second message for one key.
    seq = await tx.connection.fetchval(
        """
        INSERT INTO messages (app_id, id, conversation_id, sender_id, text, type,
            created_at, custom, origin, idempotency_key)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
        ON CONFLICT (app_id, conversation_id, (coalesce(sender_id, '')), idempotency_key)
            WHERE idempotency_key IS NOT NULL
            DO NOTHING
        RETURNING seq
        """,
        tx.app_id,
        message_id,
        message.conversation_id,
        message.sender_id,
        message.text,
        message.type.value,
        created_at,
        json.dumps(dict(message.custom)),
        message.origin.value,
        message.idempotency_key,
    )
    if seq is None:
        # The conflicting row has committed (ON CONFLICT waited for it), so
        # this statement's snapshot, which is newer, sees it.
        existing = await _find_by_idempotency_key(tx, message)
        if existing is None:
            raise NotFound(
                f"message with idempotency key '{message.idempotency_key}' was deleted while "
                f"this send of conversation '{message.conversation_id}' waited for it: "
                "send again"
            )
        found = InsertedMessage(existing, False, conversation, sender)
        return found._replace(**(await log(tx, found, log_event))._asdict())

    await tx.connection.execute(
        "UPDATE conversations SET last_message_at = $3 WHERE app_id = $1 AND id = $2",
        tx.app_id,
        message.conversation_id,
        created_at,
    )
    if message.sender_id is not None:
        # Sending implies reading everything up to one's own message.
        await tx.connection.execute(
            "UPDATE participants SET last_read_seq = greatest(last_read_seq, $4)"
            " WHERE app_id = $1 AND conversation_id = $2 AND user_id = $3",
            tx.app_id,
            message.conversation_id,
            message.sender_id,
            seq,
        )
    stored = Message(
        id=message_id,
        conversation_id=message.conversation_id,
        sender_id=message.sender_id,
        text=message.text,
        type=message.type,
        created_at=created_at,
        custom=dict(message.custom),
        origin=message.origin,
        seq=seq,
    )
    updated = conversation.model_copy(update={"last_message_at": created_at})
    inserted = InsertedMessage(stored, True, updated, sender)
    return inserted._replace(**(await log(tx, inserted, log_event))._asdict())


async def _find_by_idempotency_key(tx: Transaction, message: NewMessage) -> Message | None:
    # The WHERE terms match the expression of messages_by_idempotency_key.
    row = await tx.connection.fetchrow(
        f"SELECT {MESSAGE_COLUMNS} FROM messages AS m"
        " WHERE m.app_id = $1 AND m.conversation_id = $2"
        " AND coalesce(m.sender_id, '') = coalesce($3, '') AND m.idempotency_key = $4",
        tx.app_id,
        message.conversation_id,
        message.sender_id,
        message.idempotency_key,
    )
    return message_from_row(row) if row else None


async def find_message(tx: Transaction, conversation_id: str, message_id: str) -> Message | None:
    row = await tx.connection.fetchrow(
        f"SELECT {MESSAGE_COLUMNS} FROM messages AS m"
        " WHERE m.app_id = $1 AND m.id = $2 AND m.conversation_id = $3",
        tx.app_id,
        message_id,
        conversation_id,
    )
    return message_from_row(row) if row else None


async def _require_message(tx: Transaction, conversation_id: str, message_id: str) -> Message:
    message = await find_message(tx, conversation_id, message_id)
    if message is None:
        raise NotFound(
            f"message '{message_id}' not found in conversation '{conversation_id}': "
            "it was deleted, or its id belongs to another conversation"
        )
    return message


async def _lock_existing_conversation(tx: Transaction, conversation_id: str) -> Conversation:
    conversation = await lock_conversation(tx, conversation_id, "NO KEY UPDATE")
    if conversation is None:
        raise NotFound(f"conversation '{conversation_id}' not found: create it first")
    return conversation


async def update_message(
    tx: Transaction,
    conversation_id: str,
    message_id: str,
    text: str | None,
    custom: Mapping[str, str | None] | None,
    edited_at: int,
    authorize: AuthorizeMessage | None,
    log_event: LogEvent[UpdatedMessage] | None,
) -> UpdatedMessage:
    conversation = await _lock_existing_conversation(tx, conversation_id)
    stored = await _require_message(tx, conversation_id, message_id)
    if authorize is not None:
        authorize(conversation, stored)
    new_text = stored.text if text is None else text
    new_custom = stored.custom if custom is None else merge_custom(stored.custom, custom)
    if new_text == stored.text and new_custom == stored.custom:
        unchanged = UpdatedMessage(stored, conversation, changed=False)
        return unchanged._replace(**(await log(tx, unchanged, log_event))._asdict())
    # Validated again so that the stored row always satisfies the model's limits.
    updated = Message.model_validate(
        stored.model_dump() | {"text": new_text, "custom": new_custom, "edited_at": edited_at}
    )
    await tx.connection.execute(
        "UPDATE messages SET text = $3, custom = $4, edited_at = $5 WHERE app_id = $1 AND seq = $2",
        tx.app_id,
        stored.seq,
        updated.text,
        json.dumps(updated.custom),
        updated.edited_at,
    )
    result = UpdatedMessage(updated, conversation, changed=True)
    return result._replace(**(await log(tx, result, log_event))._asdict())


async def delete_message(
    tx: Transaction,
    conversation_id: str,
    message_id: str,
    authorize: AuthorizeMessage | None,
    log_event: LogEvent[DeletedMessage] | None,
) -> DeletedMessage:
    conversation = await _lock_existing_conversation(tx, conversation_id)
    stored = await _require_message(tx, conversation_id, message_id)
    if authorize is not None:
        authorize(conversation, stored)
    await tx.connection.execute(
        "DELETE FROM messages WHERE app_id = $1 AND seq = $2", tx.app_id, stored.seq
    )
    last_message_at: int | None = await tx.connection.fetchval(
        "SELECT created_at FROM messages WHERE app_id = $1 AND conversation_id = $2"
        " ORDER BY seq DESC LIMIT 1",
        tx.app_id,
        conversation_id,
    )
    if last_message_at != conversation.last_message_at:
        await tx.connection.execute(
            "UPDATE conversations SET last_message_at = $3 WHERE app_id = $1 AND id = $2",
            tx.app_id,
            conversation_id,
            last_message_at,
        )
    updated = conversation.model_copy(update={"last_message_at": last_message_at})
    deleted = DeletedMessage(stored, updated)
    return deleted._replace(**(await log(tx, deleted, log_event))._asdict())


async def _message_seq(tx: Transaction, conversation_id: str, message_id: str) -> int:
    seq: int | None = await tx.connection.fetchval(
        "SELECT seq FROM messages WHERE app_id = $1 AND id = $2 AND conversation_id = $3",
        tx.app_id,
        message_id,
        conversation_id,
    )
    if seq is None:
        raise NotFound(f"message '{message_id}' not found in conversation '{conversation_id}'")
    return seq


async def list_messages(
    tx: Transaction, conversation_id: str, limit: int, before_message_id: str | None
) -> MessagesPage:
    await require_conversation(tx, conversation_id)
    sql = (
        f"SELECT {MESSAGE_COLUMNS} FROM messages AS m"
        " WHERE m.app_id = $1 AND m.conversation_id = $2"
    )
    parameters: list[object] = [tx.app_id, conversation_id]
    if before_message_id is not None:
        parameters.append(await _message_seq(tx, conversation_id, before_message_id))
        sql += f" AND m.seq < ${len(parameters)}"
    # Fetching one extra row shows whether older messages exist.
    parameters.append(limit + 1)
    sql += f" ORDER BY m.seq DESC LIMIT ${len(parameters)}"
    rows = await tx.connection.fetch(sql, *parameters)
    messages = [message_from_row(row) for row in rows[:limit]]
    messages.reverse()
    return MessagesPage(messages=messages, has_more=len(rows) > limit)


# Read positions


async def mark_read(
    tx: Transaction,
    conversation_id: str,
    user_id: str,
    message_id: str | None,
    authorize: AuthorizeConversation | None,
    log_event: LogEvent[ReadPosition] | None,
) -> ReadPosition:
    # A shared lock: participant changes and sends of the conversation wait
    # for it, other read position moves do not.
    conversation = await lock_conversation(tx, conversation_id, "SHARE")
    if authorize is not None:
        authorize(conversation)
    if conversation is None:
        raise NotFound(f"conversation '{conversation_id}' not found: create it first")
    previous_seq: int | None = await tx.connection.fetchval(
        "SELECT last_read_seq FROM participants"
        " WHERE app_id = $1 AND conversation_id = $2 AND user_id = $3 FOR NO KEY UPDATE",
        tx.app_id,
        conversation_id,
        user_id,
    )
    if previous_seq is None:
        raise NotFound(f"user '{user_id}' is not a participant of conversation '{conversation_id}'")
    if message_id is None:
        target_seq = await latest_message_seq(tx, conversation_id)
    else:
        target_seq = await _message_seq(tx, conversation_id, message_id)
    moved = target_seq > previous_seq
    if moved:
        await tx.connection.execute(
            "UPDATE participants SET last_read_seq = $4"
            " WHERE app_id = $1 AND conversation_id = $2 AND user_id = $3",
            tx.app_id,
            conversation_id,
            user_id,
            target_seq,
        )
    position = max(previous_seq, target_seq)
    last_read_id, last_read_seq = await _last_message_at(tx, conversation_id, position)
    result = ReadPosition(
        last_read_message_id=last_read_id,
        last_read_seq=last_read_seq,
        unread_message_count=await _count_unread(tx, conversation_id, user_id, position),
        moved=moved,
        conversation=conversation,
    )
    return result._replace(**(await log(tx, result, log_event))._asdict())


async def _last_message_at(
    tx: Transaction, conversation_id: str, seq: int
) -> tuple[str | None, int]:
    """Return the id and seq of the last message at or before ``seq``, or ``(None, 0)``."""
    row = await tx.connection.fetchrow(
        "SELECT id, seq FROM messages WHERE app_id = $1 AND conversation_id = $2 AND seq <= $3"
        " ORDER BY seq DESC LIMIT 1",
        tx.app_id,
        conversation_id,
        seq,
    )
    return (str(row["id"]), int(row["seq"])) if row else (None, 0)


async def _count_unread(tx: Transaction, conversation_id: str, user_id: str, after_seq: int) -> int:
    count: int = await tx.connection.fetchval(
        "SELECT count(*) FROM messages WHERE app_id = $1 AND conversation_id = $2"
        " AND seq > $3 AND sender_id IS DISTINCT FROM $4",
        tx.app_id,
        conversation_id,
        after_seq,
        user_id,
    )
    return count


# Unreads


async def get_unreads_snapshot(tx: Transaction, user_id: str) -> UnreadsSnapshot:
    """Read the user's unreads; the caller runs this in one REPEATABLE READ snapshot.

    The snapshot's position is the app's ``event_log.last_seq`` as of that
    snapshot, so the unreads reflect exactly the events up to it.
    """
    positions = await tx.connection.fetch(
        "SELECT conversation_id, last_read_seq FROM participants"
        " WHERE app_id = $1 AND user_id = $2",
        tx.app_id,
        user_id,
    )
    latest, _ = await latest_event_seq(tx)
    return UnreadsSnapshot(
        unreads=await get_unreads(tx, user_id),
        read_positions={row["conversation_id"]: int(row["last_read_seq"]) for row in positions},
        as_of_event_seq=latest,
    )


async def get_unreads(tx: Transaction, user_id: str) -> list[UnreadConversation]:
    counts = await tx.connection.fetch(
        """
        SELECT p.conversation_id, count(*) AS unread_count FROM participants AS p
        JOIN messages AS m ON m.app_id = p.app_id
            AND m.conversation_id = p.conversation_id
            AND m.seq > p.last_read_seq
            AND m.sender_id IS DISTINCT FROM p.user_id
        WHERE p.app_id = $1 AND p.user_id = $2
        GROUP BY p.conversation_id
        """,
        tx.app_id,
        user_id,
    )
    unread_counts = {row["conversation_id"]: int(row["unread_count"]) for row in counts}
    if not unread_counts:
        return []
    last_message_rows = await tx.connection.fetch(
        f"SELECT {MESSAGE_COLUMNS} FROM messages AS m WHERE m.seq IN ("
        " SELECT max(seq) FROM messages WHERE app_id = $1"
        " AND conversation_id = ANY($2::text[]) GROUP BY conversation_id"
        ") ORDER BY m.seq DESC",
        tx.app_id,
        list(unread_counts),
    )
    conversations = await load_conversations(tx, list(unread_counts))
    return [
        UnreadConversation(
            conversation=conversations[row["conversation_id"]],
            last_message=message_from_row(row),
            unread_message_count=unread_counts[row["conversation_id"]],
        )
        for row in last_message_rows
    ]
