"""Conversation and participant operations of the PostgreSQL store.

Every write of a conversation, its participants or its messages first locks
the conversation's row, so the ``authorize`` callback and the write see the
same participants, and writes of one conversation run one at a time. Reads
of read positions (``mark_read``) take a shared lock, which waits for those
writes but not for each other. The app's event log row is always locked last
(see ``events``), so no two transactions wait for each other in a cycle.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Literal

from ...errors import InvalidInput, NotFound, StorageError
from ...models import Conversation, ConversationAttributes, Message, Participation, User, now_ms
from .. import (
    AuthorizeConversation,
    ConversationUpsert,
    ConversationWithLastMessage,
    DeletedConversation,
    LogEvent,
    RemovedParticipant,
    UserConversation,
)
from ..records import merge_conversation
from .events import log
from .rows import (
    MESSAGE_COLUMNS,
    conversation_from_row,
    message_from_row,
    participation_from_row,
    to_json_or_none,
)
from .transaction import Transaction
from .users import get_users, insert_missing_users

__all__ = [
    "delete_conversation",
    "find_conversation",
    "last_messages",
    "latest_message_seq",
    "list_conversations",
    "list_user_conversation_page",
    "list_user_conversations",
    "load_conversations",
    "lock_conversation",
    "remove_participant",
    "require_conversation",
    "upsert_conversation",
]

LockMode = Literal["UPDATE", "NO KEY UPDATE", "SHARE"]
"""Row lock of a conversation: ``UPDATE`` to delete it, ``NO KEY UPDATE`` to
change it, its participants or messages, ``SHARE`` to move a read position."""

# A common table expression ``mine`` of the conversations of one user ($1 is
# the app id and $2 the user id), with their sort keys and the user's unread
# count: messages after the read position that others sent.
_USER_CONVERSATIONS = """
    WITH mine AS (
        SELECT
            c.id,
            coalesce(c.last_message_at, c.created_at) AS activity,
            coalesce(
                (
                    SELECT max(m.seq) FROM messages AS m
                    WHERE m.app_id = c.app_id AND m.conversation_id = c.id
                ),
                0
            ) AS latest_seq,
            (
                SELECT count(*) FROM messages AS m
                WHERE m.app_id = c.app_id AND m.conversation_id = c.id
                    AND m.seq > p.last_read_seq AND m.sender_id IS DISTINCT FROM p.user_id
            ) AS unread_count
        FROM conversations AS c
        JOIN participants AS p ON p.app_id = c.app_id AND p.conversation_id = c.id
        WHERE p.app_id = $1 AND p.user_id = $2
    )
"""


async def load_conversations(
    tx: Transaction, conversation_ids: Sequence[str]
) -> dict[str, Conversation]:
    """Load conversations with their participants in two queries, keyed by id."""
    ids = list(conversation_ids)
    conversation_rows = await tx.connection.fetch(
        "SELECT * FROM conversations WHERE app_id = $1 AND id = ANY($2::text[])", tx.app_id, ids
    )
    participants = await _load_participants(tx, ids)
    return {
        row["id"]: conversation_from_row(row, participants.get(row["id"], {}))
        for row in conversation_rows
    }


async def _load_participants(
    tx: Transaction, conversation_ids: list[str]
) -> dict[str, dict[str, Participation]]:
    rows = await tx.connection.fetch(
        "SELECT conversation_id, user_id, access, notify FROM participants"
        " WHERE app_id = $1 AND conversation_id = ANY($2::text[])"
        " ORDER BY joined_at, user_id",
        tx.app_id,
        conversation_ids,
    )
    participants: dict[str, dict[str, Participation]] = {}
    for row in rows:
        participants.setdefault(row["conversation_id"], {})[row["user_id"]] = (
            participation_from_row(row)
        )
    return participants


async def find_conversation(tx: Transaction, conversation_id: str) -> Conversation | None:
    return (await load_conversations(tx, [conversation_id])).get(conversation_id)


async def require_conversation(tx: Transaction, conversation_id: str) -> Conversation:
    conversation = await find_conversation(tx, conversation_id)
    if conversation is None:
        raise NotFound(f"conversation '{conversation_id}' not found: create it first")
    return conversation


async def lock_conversation(
    tx: Transaction, conversation_id: str, mode: LockMode
) -> Conversation | None:
    """Lock the conversation's row in ``mode`` and load it with its participants.

    Returns ``None`` when it does not exist. The lock is held until the
    transaction ends; the module docstring gives the lock order.
    """
    row = await tx.connection.fetchrow(
        f"SELECT * FROM conversations WHERE app_id = $1 AND id = $2 FOR {mode}",
        tx.app_id,
        conversation_id,
    )
    if row is None:
        return None
    participants = await _load_participants(tx, [conversation_id])
    return conversation_from_row(row, participants.get(conversation_id, {}))


async def _lock_or_reserve(tx: Transaction, conversation_id: str) -> Conversation | None:
    """Lock the conversation, or insert its row when it does not exist; return the stored one.

    Returns ``None`` after inserting a new row, which reserves the id until
    commit. A concurrent create of the same id waits and then finds this
    transaction's conversation, as it would with one writer.
    """
    for _ in range(3):
        existing = await lock_conversation(tx, conversation_id, "NO KEY UPDATE")
        if existing is not None:
            return existing
        inserted = await tx.connection.fetchval(
            "INSERT INTO conversations (app_id, id, created_at) VALUES ($1, $2, $3)"
            " ON CONFLICT (app_id, id) DO NOTHING RETURNING true",
            tx.app_id,
            conversation_id,
            now_ms(),
        )
        if inserted is not None:
            return None
    # Each round either finds the row or inserts it, unless another
    # transaction deletes the conversation in between, three times over.
    raise StorageError(
        f"conversation '{conversation_id}' was created and deleted by other writers "
        "three times during this write: try again"
    )


async def upsert_conversation(
    tx: Transaction,
    conversation_id: str,
    attributes: ConversationAttributes | None,
    participants: Mapping[str, Participation] | None,
    authorize: AuthorizeConversation | None,
    new_users: Sequence[User],
    log_event: LogEvent[ConversationUpsert] | None,
) -> ConversationUpsert:
    existing = await _lock_or_reserve(tx, conversation_id)
    if authorize is not None:
        authorize(existing)
    await insert_missing_users(tx, new_users)
    merged = merge_conversation(existing, conversation_id, attributes)
    if existing is None or merged != existing.model_copy(update={"participants": {}}):
        await tx.connection.execute(
            """
            UPDATE conversations SET subject = $3, photo_url = $4, welcome_messages = $5,
                custom = $6, created_at = $7
            WHERE app_id = $1 AND id = $2
            """,
            tx.app_id,
            conversation_id,
            merged.subject,
            merged.photo_url,
            to_json_or_none(merged.welcome_messages),
            json.dumps(merged.custom),
            merged.created_at,
        )
    if participants:
        await _upsert_participants(tx, conversation_id, participants)
    stored = await require_conversation(tx, conversation_id)
    result = ConversationUpsert(stored, created=existing is None, changed=stored != existing)
    return result._replace(**(await log(tx, result, log_event))._asdict())


async def _upsert_participants(
    tx: Transaction, conversation_id: str, participants: Mapping[str, Participation]
) -> None:
    users = await get_users(tx, participants)
    missing = [user_id for user_id in participants if user_id not in users]
    if missing:
        raise NotFound(
            f"user '{missing[0]}' not found: upsert the user first or pass it as a User "
            f"with a name in new_users, to add it to conversation '{conversation_id}'"
        )
    for user_id, participation in participants.items():
        await _upsert_participant(tx, conversation_id, user_id, participation)


async def _upsert_participant(
    tx: Transaction, conversation_id: str, user_id: str, participation: Participation
) -> None:
    existing = await tx.connection.fetchrow(
        "SELECT access, notify FROM participants"
        " WHERE app_id = $1 AND conversation_id = $2 AND user_id = $3",
        tx.app_id,
        conversation_id,
        user_id,
    )
    if existing is None:
        # The conversation is locked, so no message insert runs concurrently
        # and the latest seq is final: the new participant has read it.
        await tx.connection.execute(
            "INSERT INTO participants (app_id, conversation_id, user_id, access, notify,"
            " last_read_seq, joined_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            tx.app_id,
            conversation_id,
            user_id,
            participation.access.value,
            participation.notify,
            await latest_message_seq(tx, conversation_id),
            now_ms(),
        )
        return
    fields_set = participation.model_fields_set
    access = participation.access.value if "access" in fields_set else existing["access"]
    notify = participation.notify if "notify" in fields_set else existing["notify"]
    await tx.connection.execute(
        "UPDATE participants SET access = $4, notify = $5"
        " WHERE app_id = $1 AND conversation_id = $2 AND user_id = $3",
        tx.app_id,
        conversation_id,
        user_id,
        access,
        notify,
    )


async def remove_participant(
    tx: Transaction, conversation_id: str, user_id: str, log_event: LogEvent[Conversation] | None
) -> RemovedParticipant:
    if await lock_conversation(tx, conversation_id, "NO KEY UPDATE") is None:
        raise NotFound(f"conversation '{conversation_id}' not found: create it first")
    removed = await tx.connection.fetchval(
        "DELETE FROM participants WHERE app_id = $1 AND conversation_id = $2 AND user_id = $3"
        " RETURNING true",
        tx.app_id,
        conversation_id,
        user_id,
    )
    if removed is None:
        raise NotFound(f"user '{user_id}' is not a participant of conversation '{conversation_id}'")
    updated = await require_conversation(tx, conversation_id)
    return RemovedParticipant(updated, *await log(tx, updated, log_event))


async def delete_conversation(
    tx: Transaction,
    conversation_id: str,
    authorize: AuthorizeConversation | None,
    log_event: LogEvent[Conversation] | None,
) -> DeletedConversation:
    existing = await lock_conversation(tx, conversation_id, "UPDATE")
    if authorize is not None:
        authorize(existing)
    if existing is None:
        raise NotFound(f"conversation '{conversation_id}' not found")
    # Participants and messages go with it (ON DELETE CASCADE).
    await tx.connection.execute(
        "DELETE FROM conversations WHERE app_id = $1 AND id = $2", tx.app_id, conversation_id
    )
    return DeletedConversation(existing, *await log(tx, existing, log_event))


async def list_user_conversations(tx: Transaction, user_id: str) -> list[Conversation]:
    rows = await tx.connection.fetch(
        """
        SELECT c.id FROM conversations AS c
        JOIN participants AS p ON p.app_id = c.app_id AND p.conversation_id = c.id
        WHERE p.app_id = $1 AND p.user_id = $2
        ORDER BY
            coalesce(c.last_message_at, c.created_at) DESC,
            -- Times have millisecond resolution; the latest seq breaks ties,
            -- and a conversation without messages comes last, as in SQLite.
            (
                SELECT max(m.seq) FROM messages AS m
                WHERE m.app_id = c.app_id AND m.conversation_id = c.id
            ) DESC NULLS LAST,
            c.id
        """,
        tx.app_id,
        user_id,
    )
    ids = [row["id"] for row in rows]
    conversations = await load_conversations(tx, ids)
    return [conversations[conversation_id] for conversation_id in ids]


async def list_user_conversation_page(
    tx: Transaction, user_id: str, limit: int, starting_after: str | None, unreads_only: bool
) -> list[UserConversation]:
    # The order is that of list_user_conversations, with 0 for "no message",
    # which sorts last in DESC order like the NULL there.
    sql = _USER_CONVERSATIONS + " SELECT * FROM mine WHERE (NOT $3 OR unread_count > 0)"
    parameters: list[object] = [tx.app_id, user_id, unreads_only]

    # The page continues after the sort key of the conversation starting_after.
    if starting_after is not None:
        cursor = await tx.connection.fetchrow(
            _USER_CONVERSATIONS + " SELECT * FROM mine WHERE id = $3",
            tx.app_id,
            user_id,
            starting_after,
        )
        if cursor is None:
            raise InvalidInput(
                f"startingAfter '{starting_after}' is not a conversation of user "
                f"'{user_id}': pass the id of the last conversation of the previous page"
            )
        sql += (
            " AND (activity < $4 OR (activity = $4 AND"
            " (latest_seq < $5 OR (latest_seq = $5 AND id > $6))))"
        )
        parameters += [cursor["activity"], cursor["latest_seq"], starting_after]

    sql += f" ORDER BY activity DESC, latest_seq DESC, id LIMIT ${len(parameters) + 1}"
    parameters.append(limit)
    rows = await tx.connection.fetch(sql, *parameters)

    ids = [row["id"] for row in rows]
    conversations = await load_conversations(tx, ids)
    latest = await last_messages(tx, ids)
    return [
        UserConversation(
            conversation=conversations[row["id"]],
            last_message=latest.get(row["id"]),
            unread_message_count=int(row["unread_count"]),
        )
        for row in rows
    ]


async def list_conversations(
    tx: Transaction, limit: int, starting_after: str | None
) -> list[ConversationWithLastMessage]:
    rows = await tx.connection.fetch(
        "SELECT id FROM conversations WHERE app_id = $1 AND id > $2 ORDER BY id LIMIT $3",
        tx.app_id,
        starting_after if starting_after is not None else "",
        limit,
    )
    ids = [row["id"] for row in rows]
    conversations = await load_conversations(tx, ids)
    latest = await last_messages(tx, ids)
    return [ConversationWithLastMessage(conversations[id_], latest.get(id_)) for id_ in ids]


async def last_messages(tx: Transaction, conversation_ids: Sequence[str]) -> dict[str, Message]:
    """Return the latest message of each conversation that has one, keyed by conversation id."""
    rows = await tx.connection.fetch(
        f"SELECT {MESSAGE_COLUMNS} FROM messages AS m WHERE m.seq IN ("
        " SELECT max(seq) FROM messages WHERE app_id = $1"
        " AND conversation_id = ANY($2::text[]) GROUP BY conversation_id"
        ")",
        tx.app_id,
        list(conversation_ids),
    )
    return {row["conversation_id"]: message_from_row(row) for row in rows}


async def latest_message_seq(tx: Transaction, conversation_id: str) -> int:
    """Return the seq of the conversation's latest message, or 0 when it has none."""
    seq: int = await tx.connection.fetchval(
        "SELECT coalesce(max(seq), 0) FROM messages WHERE app_id = $1 AND conversation_id = $2",
        tx.app_id,
        conversation_id,
    )
    return seq
