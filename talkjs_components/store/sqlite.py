"""SQLite implementation of the :class:`~talkjs_components.store.Store` interface.

All database calls run on one worker thread owned by the store, so the event
loop never blocks. The connection is used only by the thread that opened it,
which sqlite3 enforces (``check_same_thread`` is left on). Each operation is
one function that runs on that thread inside a single transaction:
``BEGIN IMMEDIATE`` for writes and a deferred ``BEGIN`` for reads, so every
operation sees one consistent snapshot.

Every row carries an ``app_id`` so that several apps can share one file. The
schema version is stored in ``PRAGMA user_version``. Opening a file of an
older version upgrades it in place, in one transaction.

Messages are ordered by ``seq``, an ``INTEGER PRIMARY KEY AUTOINCREMENT``
that is never reused. A participant's read position is the ``seq`` of the
last message they read (0 when none). The store keeps this invariant: every
message after a participant's read position was sent by someone else, because
sending moves the sender's position to their own message and a new
participant starts at the conversation's latest message. Removing a
participant deletes their position with them, so a user who is removed and
added back starts again at the latest message: what was sent while they were
away never counts as unread. Deleting a message leaves every read position
as it is, and a position at the deleted ``seq`` still separates read messages
from unread ones.

The event log is the ``events`` table, whose ``seq`` is an ``INTEGER PRIMARY
KEY AUTOINCREMENT`` of its own, separate from the messages' ``seq``. SQLite
has one writer at a time and assigns the number inside the write
transaction, so events commit in ``seq`` order and a reader never sees a
number before a smaller one commits. ``event_recipients`` has one row per
recipient, keyed by ``(app_id, user_id, seq)``, so a user's events are one
index range. The numbers are shared by every app in the file, so one app's
events, and one user's, increase but skip values. Pruning removes a prefix of
an app's log and records its end in ``event_log.pruned_through_seq``: every
event of the app up to it is gone and every later one is kept.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from ..errors import ChatError, InvalidInput, NotFound, StorageError
from ..models import (
    AccessLevel,
    Conversation,
    ConversationAttributes,
    EventsPage,
    Message,
    MessagesPage,
    Participation,
    UnreadConversation,
    UnreadsSnapshot,
    User,
    now_ms,
)
from . import (
    DEFAULT_EVENT_RETENTION_MS,
    NOTHING_LOGGED,
    AuthorizeConversation,
    AuthorizeMessage,
    ConversationUpsert,
    ConversationWithLastMessage,
    DeletedConversation,
    DeletedMessage,
    InsertedMessage,
    LogEvent,
    LoggedEvent,
    NewEvent,
    NewMessage,
    ReadPosition,
    RemovedParticipant,
    UpdatedMessage,
    UserConversation,
)
from .records import merge_conversation, merge_custom, merge_user, new_message_id
from .rows import conversation_from_row as _conversation_from_row
from .rows import event_from_row as _event_from_row
from .rows import message_from_row
from .rows import to_json_or_none as _to_json_or_none
from .rows import user_from_row as _user_from_row

__all__ = ["SCHEMA_VERSION", "SQLiteStore", "new_message_id"]

SCHEMA_VERSION = 2
"""Schema version that this code creates and reads, stored in ``PRAGMA user_version``.

Version 1 had no event log. Version 2 adds the ``events``,
``event_recipients`` and ``event_log`` tables.
"""

PRUNE_BATCH = 2
"""Maximum number of expired events each logged write deletes.

More than one, so that a backlog of expired events (after a quiet period, or
a shorter retention) shrinks while the app keeps writing. The work per write
stays bounded: a two-row index read, plus the rows of at most this many events.
"""

logger = logging.getLogger("talkjs_components.store")

_T = TypeVar("_T")
_R = TypeVar("_R")


# The schema of version 1, which every new file starts from before the
# upgrades in _UPGRADES run. It must not change: files of version 1 exist.
_SCHEMA_VERSION_1 = (
    """
    CREATE TABLE users (
        app_id TEXT NOT NULL,
        id TEXT NOT NULL,
        name TEXT,
        email TEXT,            -- JSON list of strings
        phone TEXT,            -- JSON list of strings
        photo_url TEXT,
        role TEXT,
        locale TEXT,
        welcome_message TEXT,
        custom TEXT,           -- JSON object of strings
        created_at INTEGER NOT NULL,
        PRIMARY KEY (app_id, id)
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE conversations (
        app_id TEXT NOT NULL,
        id TEXT NOT NULL,
        subject TEXT,
        photo_url TEXT,
        welcome_messages TEXT, -- JSON list of strings
        custom TEXT NOT NULL DEFAULT '{}',
        created_at INTEGER NOT NULL,
        last_message_at INTEGER,
        PRIMARY KEY (app_id, id)
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE participants (
        app_id TEXT NOT NULL,
        conversation_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        access TEXT NOT NULL CHECK (access IN ('Read', 'ReadWrite')),
        notify INTEGER NOT NULL,
        last_read_seq INTEGER NOT NULL DEFAULT 0,
        joined_at INTEGER NOT NULL,
        PRIMARY KEY (app_id, conversation_id, user_id),
        FOREIGN KEY (app_id, conversation_id)
            REFERENCES conversations (app_id, id) ON DELETE CASCADE,
        FOREIGN KEY (app_id, user_id) REFERENCES users (app_id, id)
    ) WITHOUT ROWID
    """,
    "CREATE INDEX participants_by_user ON participants (app_id, user_id)",
    """
    CREATE TABLE messages (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        app_id TEXT NOT NULL,
        id TEXT NOT NULL,
        conversation_id TEXT NOT NULL,
        sender_id TEXT,        -- NULL for system messages
        text TEXT NOT NULL,
        type TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        edited_at INTEGER,
        custom TEXT NOT NULL DEFAULT '{}',
        origin TEXT NOT NULL,
        idempotency_key TEXT,
        UNIQUE (app_id, id),
        FOREIGN KEY (app_id, conversation_id)
            REFERENCES conversations (app_id, id) ON DELETE CASCADE
    )
    """,
    "CREATE INDEX messages_by_conversation ON messages (app_id, conversation_id, seq)",
    # A plain UNIQUE constraint treats NULL senders as distinct, so system
    # messages (no sender) would never collide. Ids are never empty, so ''
    # stands for "no sender" without clashing with a user id.
    """
    CREATE UNIQUE INDEX messages_by_idempotency_key
        ON messages (app_id, conversation_id, coalesce(sender_id, ''), idempotency_key)
        WHERE idempotency_key IS NOT NULL
    """,
)

# The statements that upgrade a file from the key's version to the next one.
_UPGRADES: dict[int, tuple[str, ...]] = {
    1: (
        """
        CREATE TABLE events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            app_id TEXT NOT NULL,
            type TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            recipients TEXT NOT NULL,  -- JSON list of user ids, to prune event_recipients
            payload TEXT NOT NULL      -- the event as JSON with camelCase keys, without seq
        )
        """,
        # Finds an app's oldest events to prune and its latest seq.
        "CREATE INDEX events_by_app ON events (app_id, seq)",
        """
        CREATE TABLE event_recipients (
            app_id TEXT NOT NULL,
            user_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            PRIMARY KEY (app_id, user_id, seq)
        ) WITHOUT ROWID
        """,
        # One row per app that has pruned events: every event of the app with
        # seq up to pruned_through_seq is deleted, and every later one is kept.
        """
        CREATE TABLE event_log (
            app_id TEXT PRIMARY KEY,
            pruned_through_seq INTEGER NOT NULL
        ) WITHOUT ROWID
        """,
    ),
}

# Columns of a message row, with read_by: the participants other than the
# sender whose read position is at or after the message, as a JSON list.
_MESSAGE_COLUMNS = """
    m.seq, m.id, m.conversation_id, m.sender_id, m.text, m.type, m.created_at,
    m.edited_at, m.custom, m.origin,
    (
        SELECT json_group_array(p.user_id) FROM participants AS p
        WHERE p.app_id = m.app_id
            AND p.conversation_id = m.conversation_id
            AND p.last_read_seq >= m.seq
            AND p.user_id IS NOT m.sender_id
    ) AS read_by
"""

_INSERT_USER = """
    INSERT INTO users (app_id, id, name, email, phone, photo_url, role, locale,
        welcome_message, custom, created_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
_UPSERT_USER = (
    _INSERT_USER
    + """
    ON CONFLICT (app_id, id) DO UPDATE SET
        name = excluded.name, email = excluded.email, phone = excluded.phone,
        photo_url = excluded.photo_url, role = excluded.role,
        locale = excluded.locale, welcome_message = excluded.welcome_message,
        custom = excluded.custom
    """
)
_INSERT_USER_IF_MISSING = _INSERT_USER + " ON CONFLICT (app_id, id) DO NOTHING"

# SQL condition for get_users(visible_to=...): the user row ``u`` shares at
# least one conversation with the user id bound to the parameter.
_SHARES_CONVERSATION_WITH = """
    EXISTS (
        SELECT 1 FROM participants AS mine
        JOIN participants AS theirs ON theirs.app_id = mine.app_id
            AND theirs.conversation_id = mine.conversation_id
        WHERE mine.app_id = u.app_id AND mine.user_id = ? AND theirs.user_id = u.id
    )
"""

# A common table expression ``mine`` of the conversations of one user (the
# parameters are the app id and the user id), with their sort keys and the
# user's unread count: messages after the read position that others sent.
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
                    AND m.seq > p.last_read_seq AND m.sender_id IS NOT p.user_id
            ) AS unread_count
        FROM conversations AS c
        JOIN participants AS p ON p.app_id = c.app_id AND p.conversation_id = c.id
        WHERE p.app_id = ? AND p.user_id = ?
    )
"""


class SQLiteStore:
    """Store of one app's chat data in an SQLite file.

    Args:
        path: The database file; it is created when missing.
        app_id: The app whose rows this store reads and writes.
        busy_timeout: Seconds an operation waits for a lock held by another
            connection to the file before it fails with ``StorageError``.

    Every method raises :class:`~talkjs_components.errors.StorageError` when
    SQLite fails or when the store is not open.
    """

    def __init__(
        self, path: str | os.PathLike[str], app_id: str, *, busy_timeout: float = 5.0
    ) -> None:
        self._path = os.fspath(path)
        self._app_id = app_id
        self._busy_timeout = busy_timeout
        self._executor: ThreadPoolExecutor | None = None
        self._database: _Database | None = None

    @property
    def path(self) -> str:
        """The database file path."""
        return self._path

    async def open(self, *, event_retention_ms: int = DEFAULT_EVENT_RETENTION_MS) -> None:
        """Open the database file and create, upgrade or check its schema.

        A file of an older schema version is upgraded in place. Each write
        that logs an event then deletes up to ``PRUNE_BATCH`` of the app's
        events older than ``event_retention_ms`` milliseconds, oldest first.

        Raises:
            InvalidInput: ``event_retention_ms`` is not a positive integer.
            StorageError: the file cannot be opened, is not a database of this
                package, or has a schema version newer than ``SCHEMA_VERSION``.
        """
        if isinstance(event_retention_ms, bool) or not isinstance(event_retention_ms, int):
            raise InvalidInput(
                f"event_retention_ms {event_retention_ms!r} is not an integer: "
                "pass the retention in milliseconds"
            )
        if event_retention_ms <= 0:
            raise InvalidInput(
                f"event_retention_ms {event_retention_ms} is not positive: "
                "pass the retention in milliseconds, for example 604800000 for 7 days"
            )
        if self._database is not None:
            raise StorageError(f"SQLite store '{self._path}' is already open")
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="talkjs-sqlite")
        loop = asyncio.get_running_loop()
        try:
            connection = await loop.run_in_executor(
                executor, _connect, self._path, self._busy_timeout
            )
        except sqlite3.Error as exc:
            executor.shutdown(wait=False)
            raise StorageError(f"opening SQLite database '{self._path}' failed: {exc}") from exc
        except BaseException:
            executor.shutdown(wait=False)
            raise
        self._executor = executor
        self._database = _Database(connection, self._app_id, event_retention_ms)

    async def close(self) -> None:
        """Wait for operations already submitted, then close the database.

        Closing a store that is not open does nothing.
        """
        database, executor = self._database, self._executor
        if database is None or executor is None:
            return
        self._database = None
        self._executor = None
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(executor, database.connection.close)
        except sqlite3.Error as exc:
            raise StorageError(f"closing SQLite database '{self._path}' failed: {exc}") from exc
        finally:
            # The queue is empty once the close job has run, so this does not wait.
            executor.shutdown(wait=True)

    async def upsert_user(self, user: User) -> User:
        """Create or update a user and return the stored result.

        Only the fields in ``user.model_fields_set`` change. A field set to
        ``None`` is deleted, and a ``custom`` key set to ``None`` is removed.
        ``created_at`` is set when the user is created (now, unless given)
        and never changes afterwards.

        Raises:
            InvalidInput: the merged ``custom`` has more than ``MAX_CUSTOM_FIELDS`` keys.
        """
        return await self._write("upsert user", lambda db: db.upsert_user(user))

    async def get_users(
        self, user_ids: Sequence[str], *, visible_to: str | None = None
    ) -> dict[str, User]:
        """Return the stored users among ``user_ids``, keyed by id; unknown ids are left out.

        With ``visible_to``, only that user and the users who share at least
        one conversation with them are returned. Runs one query either way.
        """
        return await self._read("get users", lambda db: db.get_users(user_ids, visible_to))

    async def get_conversation(self, conversation_id: str) -> Conversation | None:
        """Return a conversation with its participants, or ``None`` when it does not exist."""
        return await self._read(
            "get conversation",
            lambda db: db.find_conversation(conversation_id),
        )

    async def upsert_conversation(
        self,
        conversation_id: str,
        attributes: ConversationAttributes | None,
        participants: dict[str, Participation] | None,
        *,
        authorize: AuthorizeConversation | None = None,
        new_users: Sequence[User] = (),
        log_event: LogEvent[ConversationUpsert] | None = None,
    ) -> ConversationUpsert:
        """Create or update a conversation in one write transaction.

        The steps run in this order, and any error rolls back all of them:

        1. ``authorize`` (when given) is called with the stored conversation,
           or ``None`` when it does not exist. It runs on the store's worker
           thread with the write lock held, so it must be pure (no I/O).
        2. The users of ``new_users`` that do not exist are created. Existing
           users are left unchanged.
        3. Attributes merge like ``upsert_user``.
        4. ``participants`` adds or updates the listed participants and leaves
           the others. For an existing participant, only the fields in
           ``model_fields_set`` change. A new participant's read position
           starts at the latest message, and so does that of a user who was
           removed and is added back.
        5. The event that ``log_event`` (when given) builds from the result
           is appended to the log.

        Raises:
            NotFound: a listed participant is neither a stored user nor in ``new_users``.
            Exception: whatever ``authorize`` or ``log_event`` raises.
        """
        return await self._write(
            "upsert conversation",
            lambda db: db.upsert_conversation(
                conversation_id, attributes, participants, authorize, new_users, log_event
            ),
        )

    async def remove_participant(
        self,
        conversation_id: str,
        user_id: str,
        *,
        log_event: LogEvent[Conversation] | None = None,
    ) -> RemovedParticipant:
        """Remove a participant in one write transaction.

        ``log_event`` (when given) receives the conversation after the
        removal, and its event is appended to the log.

        Raises:
            NotFound: the conversation does not exist or the user is not a participant.
            Exception: whatever ``log_event`` raises.
        """
        return await self._write(
            "remove participant",
            lambda db: db.remove_participant(conversation_id, user_id, log_event),
        )

    async def delete_conversation(
        self,
        conversation_id: str,
        *,
        authorize: AuthorizeConversation | None = None,
        log_event: LogEvent[Conversation] | None = None,
    ) -> DeletedConversation:
        """Delete a conversation with its participants and messages in one write transaction.

        ``authorize`` (when given) is called first with the stored
        conversation, or ``None`` when it does not exist, on the worker thread
        with the write lock held. The result contains the conversation with its
        participants as it was stored before the deletion, which
        ``log_event`` (when given) receives too. The logged events of the
        conversation stay until they expire, so that clients can replay them.

        Raises:
            NotFound: the conversation does not exist.
            Exception: whatever ``authorize`` or ``log_event`` raises.
        """
        return await self._write(
            "delete conversation",
            lambda db: db.delete_conversation(conversation_id, authorize, log_event),
        )

    async def list_user_conversations(self, user_id: str) -> list[Conversation]:
        """Return the user's conversations, most recent activity first.

        Activity is the last message time, or the creation time for a
        conversation without messages.
        """
        return await self._read(
            "list user conversations", lambda db: db.list_user_conversations(user_id)
        )

    async def list_user_conversation_page(
        self, user_id: str, *, limit: int, starting_after: str | None, unreads_only: bool
    ) -> list[UserConversation]:
        """Return up to ``limit`` of the user's conversations, most recent activity first.

        The order is that of ``list_user_conversations``, and the page starts
        after the conversation ``starting_after``. A conversation whose
        activity changes between two calls moves in that order, so paging
        while messages arrive can repeat or skip it. Runs three queries in one
        read transaction, plus one to locate ``starting_after``.

        Raises:
            InvalidInput: ``starting_after`` is not one of the user's conversations.
        """
        return await self._read(
            "list user conversation page",
            lambda db: db.list_user_conversation_page(user_id, limit, starting_after, unreads_only),
        )

    async def list_conversations(
        self, *, limit: int, starting_after: str | None
    ) -> list[ConversationWithLastMessage]:
        """Return up to ``limit`` conversations ordered by id, with ids after ``starting_after``.

        Ids compare as UTF-8 bytes (SQLite's BINARY collation), so
        ``starting_after`` need not be a stored id. Runs three queries.
        """
        return await self._read(
            "list conversations", lambda db: db.list_conversations(limit, starting_after)
        )

    async def ping(self) -> None:
        """Run ``SELECT 1`` on the worker thread, to check that the database is reachable."""
        await self._read("ping", lambda db: db.query_one("SELECT 1"))

    async def insert_message(
        self,
        message: NewMessage,
        *,
        authorize: AuthorizeConversation | None = None,
        log_event: LogEvent[InsertedMessage] | None = None,
    ) -> InsertedMessage:
        """Insert a message in one write transaction.

        ``authorize`` (when given) is called first with the stored
        conversation, or ``None`` when it does not exist, as in
        ``upsert_conversation``. When ``idempotency_key`` is set and a message
        with the same key exists in that conversation from that sender, the
        existing message is returned with ``created`` false. A new message
        sets the conversation's ``last_message_at`` and moves the sender's
        read position to it. Last, the event that ``log_event`` (when given)
        builds from the result is appended to the log.

        Raises:
            NotFound: the conversation does not exist.
            Exception: whatever ``authorize`` or ``log_event`` raises.
        """
        return await self._write(
            "insert message", lambda db: db.insert_message(message, authorize, log_event)
        )

    async def update_message(
        self,
        conversation_id: str,
        message_id: str,
        *,
        text: str | None,
        custom: Mapping[str, str | None] | None,
        edited_at: int,
        authorize: AuthorizeMessage | None = None,
        log_event: LogEvent[UpdatedMessage] | None = None,
    ) -> UpdatedMessage:
        """Edit a message's text and ``custom`` in one write transaction.

        ``authorize`` (when given) is called with the stored conversation and
        message, on the worker thread with the write lock held, so it must be
        pure (no I/O). ``text=None`` keeps the text, and ``custom`` merges
        like ``upsert_user``'s. When neither the text nor ``custom`` changes,
        nothing is written, ``edited_at`` keeps its stored value and
        ``changed`` is false. ``log_event`` (when given) is called in both
        cases, and the event it returns is appended to the log.

        Raises:
            NotFound: the conversation does not exist, or the message is not in it.
            InvalidInput: the merged ``custom`` has more than ``MAX_CUSTOM_FIELDS`` keys.
            Exception: whatever ``authorize`` or ``log_event`` raises.
        """
        return await self._write(
            "update message",
            lambda db: db.update_message(
                conversation_id, message_id, text, custom, edited_at, authorize, log_event
            ),
        )

    async def delete_message(
        self,
        conversation_id: str,
        message_id: str,
        *,
        authorize: AuthorizeMessage | None = None,
        log_event: LogEvent[DeletedMessage] | None = None,
    ) -> DeletedMessage:
        """Delete a message in one write transaction and return it as it was stored.

        ``authorize`` runs first, as in ``update_message``, and the event of
        ``log_event`` is appended last. The conversation's
        ``last_message_at`` becomes the creation time of its latest remaining
        message, or ``None`` when none remain. Read positions are ``seq``
        values and are left as they are: ``seq`` is never reused, so a
        position at the deleted message still orders correctly against every
        other message.

        Raises:
            NotFound: the conversation does not exist, or the message is not in it.
            Exception: whatever ``authorize`` or ``log_event`` raises.
        """
        return await self._write(
            "delete message",
            lambda db: db.delete_message(conversation_id, message_id, authorize, log_event),
        )

    async def list_messages(
        self, conversation_id: str, *, limit: int, before_message_id: str | None
    ) -> MessagesPage:
        """Return the newest ``limit`` messages older than ``before_message_id``, oldest first.

        Without ``before_message_id`` the page ends at the newest message.

        Raises:
            NotFound: the conversation does not exist, or ``before_message_id``
                is not a message of it.
        """
        return await self._read(
            "list messages",
            lambda db: db.list_messages(conversation_id, limit, before_message_id),
        )

    async def mark_read(
        self,
        conversation_id: str,
        user_id: str,
        message_id: str | None,
        *,
        authorize: AuthorizeConversation | None = None,
        log_event: LogEvent[ReadPosition] | None = None,
    ) -> ReadPosition:
        """Move the user's read position forward to ``message_id`` (``None``: the newest).

        ``authorize`` (when given) is called first with the stored
        conversation or ``None``, as in ``upsert_conversation``. The position
        never moves backwards. ``moved`` shows whether this call moved it, as
        decided inside the write transaction. ``log_event`` (when given) is
        called whether or not it moved, and the event it returns is appended
        to the log.

        Raises:
            NotFound: the conversation does not exist, the user is not a
                participant when the transaction runs, or ``message_id`` is
                not a message of the conversation.
            Exception: whatever ``authorize`` or ``log_event`` raises.
        """
        return await self._write(
            "mark read",
            lambda db: db.mark_read(conversation_id, user_id, message_id, authorize, log_event),
        )

    async def events_after(self, user_id: str, after_seq: int, *, limit: int) -> EventsPage:
        """Return up to ``limit`` of the user's logged events after ``after_seq``, oldest first.

        Runs four index lookups in one read transaction, whatever the page size.

        Raises:
            ChatError: code ``resume_gap`` when events of the app after
                ``after_seq`` were pruned, or when ``after_seq`` is beyond the
                app's latest event (the log was reset, for example by a new file).
        """
        return await self._read(
            "list events", lambda db: db.events_after(user_id, after_seq, limit)
        )

    async def app_events_after(self, after_seq: int, *, limit: int) -> EventsPage:
        """Return up to ``limit`` of the app's logged events after ``after_seq``, oldest first.

        Reads one range of the ``events_by_app`` index in one read transaction.

        Raises:
            ChatError: code ``resume_gap`` in the cases of ``events_after``.
        """
        return await self._read("list app events", lambda db: db.app_events_after(after_seq, limit))

    async def latest_event_seq(self) -> int:
        """Return the ``seq`` of the app's latest logged event; 0 when the app has none."""
        return await self._read("read latest event seq", lambda db: db.latest_event_seq())

    async def get_unreads_snapshot(self, user_id: str) -> UnreadsSnapshot:
        """Return the user's unreads with their read positions and the app's latest event ``seq``.

        Everything comes from one read transaction, so it describes one moment.
        """
        return await self._read("get unreads", lambda db: db.get_unreads_snapshot(user_id))

    async def get_unreads(self, user_id: str) -> list[UnreadConversation]:
        """Return the user's conversations with unread messages, most recent first.

        ``last_message`` is the conversation's latest message. Runs four
        queries however many conversations the user is in.
        """
        return await self._read("get unreads", lambda db: db.get_unreads(user_id))

    async def upsert_users(self, users: Sequence[User]) -> list[User]:
        """Create or update several users in one write transaction, all or none.

        Each user merges like ``upsert_user``. When one fails, nothing is
        written.

        Raises:
            InvalidInput: a user's merged ``custom`` has more than
                ``MAX_CUSTOM_FIELDS`` keys; the message names the user.
        """
        return await self._write("upsert users", lambda db: db.upsert_users(users))

    async def list_users(self, *, limit: int, starting_after: str | None) -> list[User]:
        """Return up to ``limit`` users ordered by id, with ids after ``starting_after``.

        Ids compare as in ``list_conversations``.
        """
        return await self._read("list users", lambda db: db.list_users(limit, starting_after))

    async def get_message(self, conversation_id: str, message_id: str) -> Message | None:
        """Return a message of the conversation, or ``None`` when it is not there."""
        return await self._read(
            "get message", lambda db: db.find_message(conversation_id, message_id)
        )

    async def _read(self, operation: str, work: Callable[[_Database], _T]) -> _T:
        return await self._run(operation, work, write=False)

    async def _write(self, operation: str, work: Callable[[_Database], _T]) -> _T:
        return await self._run(operation, work, write=True)

    async def _run(self, operation: str, work: Callable[[_Database], _T], *, write: bool) -> _T:
        database, executor = self._database, self._executor
        if database is None or executor is None:
            raise StorageError(
                f"cannot {operation}: SQLite store '{self._path}' is not open; "
                "call await store.open() first"
            )
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(executor, database.transaction, work, write)
        except sqlite3.Error as exc:
            raise StorageError(f"SQLite {operation} failed in '{self._path}': {exc}") from exc


def _connect(path: str, busy_timeout: float) -> sqlite3.Connection:
    """Open the connection, check, create or upgrade the schema and set the pragmas."""
    # isolation_level=None: the sqlite3 module opens no transactions itself,
    # so the explicit BEGIN statements below are the only ones.
    connection = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None)
    try:
        connection.row_factory = sqlite3.Row
        # The version check comes first so that a file of a newer version is
        # rejected before the journal mode pragma rewrites it.
        _check_schema_version(connection, path)
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = NORMAL")
        connection.execute("PRAGMA foreign_keys = ON")
        _create_or_upgrade_schema(connection, path)
    except BaseException:
        connection.close()
        raise
    return connection


def _read_user_version(connection: sqlite3.Connection) -> int:
    version: int = connection.execute("PRAGMA user_version").fetchone()[0]
    return version


def _check_schema_version(connection: sqlite3.Connection, path: str) -> None:
    version = _read_user_version(connection)
    if version > SCHEMA_VERSION:
        raise StorageError(
            f"database '{path}' has schema version {version}, but this version of "
            f"talkjs-components supports schema version {SCHEMA_VERSION} only: "
            "upgrade talkjs-components, or use another database file"
        )


def _create_or_upgrade_schema(connection: sqlite3.Connection, path: str) -> None:
    """Create the schema in a new file, or upgrade an older one, in one transaction.

    SQLite runs DDL inside transactions, so a failed upgrade leaves the file
    at its old version with nothing changed.
    """
    connection.execute("BEGIN IMMEDIATE")
    try:
        # Checked again inside the transaction: another process may have
        # created or upgraded the schema since the first check.
        _check_schema_version(connection, path)
        version = _read_user_version(connection)
        if version == 0:
            _create_schema_version_1(connection, path)
        for from_version in range(max(version, 1), SCHEMA_VERSION):
            for statement in _UPGRADES[from_version]:
                connection.execute(statement)
        if version != SCHEMA_VERSION:
            connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    if 0 < version < SCHEMA_VERSION:
        logger.info(
            "upgraded database %r from schema version %d to %d", path, version, SCHEMA_VERSION
        )


def _create_schema_version_1(connection: sqlite3.Connection, path: str) -> None:
    table_count: int = connection.execute(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
    ).fetchone()[0]
    if table_count:
        raise StorageError(
            f"database '{path}' has tables but no talkjs-components schema version "
            "(PRAGMA user_version is 0): use a new or empty database file"
        )
    for statement in _SCHEMA_VERSION_1:
        connection.execute(statement)


class _Database:
    """The synchronous operations, run on the store's worker thread only."""

    def __init__(
        self, connection: sqlite3.Connection, app_id: str, event_retention_ms: int
    ) -> None:
        self.connection = connection
        self.app_id = app_id
        self.event_retention_ms = event_retention_ms

    def transaction(self, work: Callable[[_Database], _T], write: bool) -> _T:
        """Run ``work`` in one transaction, commit on success and roll back on any error."""
        self.connection.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            result = work(self)
        except BaseException:
            if self.connection.in_transaction:
                self.connection.execute("ROLLBACK")
            raise
        self.connection.execute("COMMIT")
        return result

    def query(self, sql: str, *parameters: object) -> list[sqlite3.Row]:
        return self.connection.execute(sql, parameters).fetchall()

    def query_one(self, sql: str, *parameters: object) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.connection.execute(sql, parameters).fetchone()
        return row

    def execute(self, sql: str, *parameters: object) -> sqlite3.Cursor:
        return self.connection.execute(sql, parameters)

    # Users

    def upsert_user(self, user: User) -> User:
        existing = self.get_users([user.id]).get(user.id)
        merged = merge_user(existing, user)
        self._write_user(_UPSERT_USER, merged)
        return merged

    def upsert_users(self, users: Sequence[User]) -> list[User]:
        stored = []
        for user in users:
            try:
                stored.append(self.upsert_user(user))
            except InvalidInput as exc:
                raise InvalidInput(f"user '{user.id}': {exc.message}", code=exc.code) from exc
        return stored

    def list_users(self, limit: int, starting_after: str | None) -> list[User]:
        rows = self.query(
            "SELECT * FROM users WHERE app_id = ? AND id > ? ORDER BY id LIMIT ?",
            self.app_id,
            starting_after if starting_after is not None else "",
            limit,
        )
        return [_user_from_row(row) for row in rows]

    def _insert_missing_users(self, users: Iterable[User]) -> None:
        for user in users:
            self._write_user(_INSERT_USER_IF_MISSING, merge_user(None, user))

    def _write_user(self, sql: str, user: User) -> None:
        self.execute(
            sql,
            self.app_id,
            user.id,
            user.name,
            _to_json_or_none(user.email),
            _to_json_or_none(user.phone),
            user.photo_url,
            user.role,
            user.locale,
            user.welcome_message,
            _to_json_or_none(user.custom),
            user.created_at,
        )

    def get_users(self, user_ids: Iterable[str], visible_to: str | None = None) -> dict[str, User]:
        sql = (
            "SELECT u.* FROM users AS u"
            " WHERE u.app_id = ? AND u.id IN (SELECT value FROM json_each(?))"
        )
        parameters: list[object] = [self.app_id, json.dumps(list(user_ids))]
        if visible_to is not None:
            sql += f" AND (u.id = ? OR {_SHARES_CONVERSATION_WITH})"
            parameters += [visible_to, visible_to]
        rows = self.query(sql, *parameters)
        return {row["id"]: _user_from_row(row) for row in rows}

    # Conversations and participants

    def load_conversations(self, conversation_ids: Sequence[str]) -> dict[str, Conversation]:
        """Load conversations with their participants in two queries, keyed by id."""
        ids_json = json.dumps(list(conversation_ids))
        conversation_rows = self.query(
            "SELECT * FROM conversations"
            " WHERE app_id = ? AND id IN (SELECT value FROM json_each(?))",
            self.app_id,
            ids_json,
        )
        participant_rows = self.query(
            "SELECT conversation_id, user_id, access, notify FROM participants"
            " WHERE app_id = ? AND conversation_id IN (SELECT value FROM json_each(?))"
            " ORDER BY joined_at, user_id",
            self.app_id,
            ids_json,
        )
        participants: dict[str, dict[str, Participation]] = {}
        for row in participant_rows:
            participants.setdefault(row["conversation_id"], {})[row["user_id"]] = Participation(
                access=AccessLevel(row["access"]), notify=bool(row["notify"])
            )
        return {
            row["id"]: _conversation_from_row(row, participants.get(row["id"], {}))
            for row in conversation_rows
        }

    def find_conversation(self, conversation_id: str) -> Conversation | None:
        return self.load_conversations([conversation_id]).get(conversation_id)

    def require_conversation(self, conversation_id: str) -> Conversation:
        conversation = self.find_conversation(conversation_id)
        if conversation is None:
            raise NotFound(f"conversation '{conversation_id}' not found: create it first")
        return conversation

    def upsert_conversation(
        self,
        conversation_id: str,
        attributes: ConversationAttributes | None,
        participants: Mapping[str, Participation] | None,
        authorize: AuthorizeConversation | None,
        new_users: Sequence[User],
        log_event: LogEvent[ConversationUpsert] | None,
    ) -> ConversationUpsert:
        existing = self.find_conversation(conversation_id)
        # The check and the writes below run in one BEGIN IMMEDIATE
        # transaction, so no other writer can change the conversation between
        # them. Of two concurrent creates of one id, the second finds the first stored.
        if authorize is not None:
            authorize(existing)
        self._insert_missing_users(new_users)
        merged = merge_conversation(existing, conversation_id, attributes)
        self.execute(
            """
            INSERT INTO conversations (app_id, id, subject, photo_url, welcome_messages,
                custom, created_at, last_message_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (app_id, id) DO UPDATE SET
                subject = excluded.subject, photo_url = excluded.photo_url,
                welcome_messages = excluded.welcome_messages, custom = excluded.custom
            """,
            self.app_id,
            merged.id,
            merged.subject,
            merged.photo_url,
            _to_json_or_none(merged.welcome_messages),
            json.dumps(merged.custom),
            merged.created_at,
            merged.last_message_at,
        )
        if participants:
            self._upsert_participants(conversation_id, participants)
        stored = self.require_conversation(conversation_id)
        result = ConversationUpsert(stored, created=existing is None, changed=stored != existing)
        return result._replace(**self.log(result, log_event)._asdict())

    def _upsert_participants(
        self, conversation_id: str, participants: Mapping[str, Participation]
    ) -> None:
        users = self.get_users(participants)
        missing = [user_id for user_id in participants if user_id not in users]
        if missing:
            raise NotFound(
                f"user '{missing[0]}' not found: upsert the user first or pass it as a User "
                f"with a name in new_users, to add it to conversation '{conversation_id}'"
            )
        for user_id, participation in participants.items():
            self._upsert_participant(conversation_id, user_id, participation)

    def _upsert_participant(
        self, conversation_id: str, user_id: str, participation: Participation
    ) -> None:
        existing = self.query_one(
            "SELECT access, notify FROM participants"
            " WHERE app_id = ? AND conversation_id = ? AND user_id = ?",
            self.app_id,
            conversation_id,
            user_id,
        )
        if existing is None:
            self.execute(
                "INSERT INTO participants (app_id, conversation_id, user_id, access, notify,"
                " last_read_seq, joined_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                self.app_id,
                conversation_id,
                user_id,
                participation.access.value,
                participation.notify,
                self.latest_seq(conversation_id),
                now_ms(),
            )
            return
        fields_set = participation.model_fields_set
        access = participation.access.value if "access" in fields_set else existing["access"]
        notify = participation.notify if "notify" in fields_set else bool(existing["notify"])
        self.execute(
            "UPDATE participants SET access = ?, notify = ?"
            " WHERE app_id = ? AND conversation_id = ? AND user_id = ?",
            access,
            notify,
            self.app_id,
            conversation_id,
            user_id,
        )

    def remove_participant(
        self, conversation_id: str, user_id: str, log_event: LogEvent[Conversation] | None
    ) -> RemovedParticipant:
        self.require_conversation(conversation_id)
        cursor = self.execute(
            "DELETE FROM participants WHERE app_id = ? AND conversation_id = ? AND user_id = ?",
            self.app_id,
            conversation_id,
            user_id,
        )
        if cursor.rowcount == 0:
            raise NotFound(
                f"user '{user_id}' is not a participant of conversation '{conversation_id}'"
            )
        updated = self.require_conversation(conversation_id)
        return RemovedParticipant(updated, *self.log(updated, log_event))

    def delete_conversation(
        self,
        conversation_id: str,
        authorize: AuthorizeConversation | None,
        log_event: LogEvent[Conversation] | None,
    ) -> DeletedConversation:
        existing = self.find_conversation(conversation_id)
        if authorize is not None:
            authorize(existing)
        if existing is None:
            raise NotFound(f"conversation '{conversation_id}' not found")
        # Participants and messages go with it (ON DELETE CASCADE).
        self.execute(
            "DELETE FROM conversations WHERE app_id = ? AND id = ?", self.app_id, conversation_id
        )
        return DeletedConversation(existing, *self.log(existing, log_event))

    def list_user_conversations(self, user_id: str) -> list[Conversation]:
        rows = self.query(
            """
            SELECT c.id FROM conversations AS c
            JOIN participants AS p ON p.app_id = c.app_id AND p.conversation_id = c.id
            WHERE p.app_id = ? AND p.user_id = ?
            ORDER BY
                coalesce(c.last_message_at, c.created_at) DESC,
                -- Times have millisecond resolution; the latest seq breaks ties.
                (
                    SELECT max(m.seq) FROM messages AS m
                    WHERE m.app_id = c.app_id AND m.conversation_id = c.id
                ) DESC,
                c.id
            """,
            self.app_id,
            user_id,
        )
        ids = [row["id"] for row in rows]
        conversations = self.load_conversations(ids)
        return [conversations[conversation_id] for conversation_id in ids]

    def list_user_conversation_page(
        self, user_id: str, limit: int, starting_after: str | None, unreads_only: bool
    ) -> list[UserConversation]:
        # The order is that of list_user_conversations, with 0 for "no
        # message", which sorts last in DESC order like the NULL there.
        sql = _USER_CONVERSATIONS + " SELECT * FROM mine WHERE (? = 0 OR unread_count > 0)"
        parameters: list[object] = [self.app_id, user_id, unreads_only]

        # The page continues after the sort key of the conversation starting_after.
        if starting_after is not None:
            cursor = self.query_one(
                _USER_CONVERSATIONS + " SELECT * FROM mine WHERE id = ?",
                self.app_id,
                user_id,
                starting_after,
            )
            if cursor is None:
                raise InvalidInput(
                    f"startingAfter '{starting_after}' is not a conversation of user "
                    f"'{user_id}': pass the id of the last conversation of the previous page"
                )
            sql += (
                " AND (activity < ? OR (activity = ? AND"
                " (latest_seq < ? OR (latest_seq = ? AND id > ?))))"
            )
            parameters += [cursor["activity"], cursor["activity"]]
            parameters += [cursor["latest_seq"], cursor["latest_seq"], starting_after]

        sql += " ORDER BY activity DESC, latest_seq DESC, id LIMIT ?"
        parameters.append(limit)
        rows = self.query(sql, *parameters)

        ids = [row["id"] for row in rows]
        conversations = self.load_conversations(ids)
        last_messages = self.last_messages(ids)
        return [
            UserConversation(
                conversation=conversations[row["id"]],
                last_message=last_messages.get(row["id"]),
                unread_message_count=int(row["unread_count"]),
            )
            for row in rows
        ]

    def list_conversations(
        self, limit: int, starting_after: str | None
    ) -> list[ConversationWithLastMessage]:
        rows = self.query(
            "SELECT id FROM conversations WHERE app_id = ? AND id > ? ORDER BY id LIMIT ?",
            self.app_id,
            starting_after if starting_after is not None else "",
            limit,
        )
        ids = [row["id"] for row in rows]
        conversations = self.load_conversations(ids)
        last_messages = self.last_messages(ids)
        return [
            ConversationWithLastMessage(conversations[id_], last_messages.get(id_)) for id_ in ids
        ]

    def last_messages(self, conversation_ids: Sequence[str]) -> dict[str, Message]:
        """Return the latest message of each conversation that has one, keyed by conversation id."""
        rows = self.query(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages AS m WHERE m.seq IN ("
            " SELECT max(seq) FROM messages WHERE app_id = ?"
            " AND conversation_id IN (SELECT value FROM json_each(?)) GROUP BY conversation_id"
            ")",
            self.app_id,
            json.dumps(list(conversation_ids)),
        )
        return {row["conversation_id"]: _message_from_row(row) for row in rows}

    # Messages

    def latest_seq(self, conversation_id: str) -> int:
        """Return the seq of the conversation's latest message, or 0 when it has none."""
        row = self.query_one(
            "SELECT coalesce(max(seq), 0) FROM messages WHERE app_id = ? AND conversation_id = ?",
            self.app_id,
            conversation_id,
        )
        return int(row[0]) if row else 0

    def insert_message(
        self,
        message: NewMessage,
        authorize: AuthorizeConversation | None,
        log_event: LogEvent[InsertedMessage] | None,
    ) -> InsertedMessage:
        conversation = self.find_conversation(message.conversation_id)
        # Checked in the write transaction, so the check reads the participants
        # as they are at commit time and no other writer can change them before.
        if authorize is not None:
            authorize(conversation)
        if conversation is None:
            raise NotFound(f"conversation '{message.conversation_id}' not found: create it first")
        sender = None
        if message.sender_id is not None:
            sender = self.get_users([message.sender_id]).get(message.sender_id)
        if message.idempotency_key is not None:
            existing = self._find_by_idempotency_key(message)
            if existing is not None:
                found = InsertedMessage(existing, False, conversation, sender)
                return found._replace(**self.log(found, log_event)._asdict())
        message_id = new_message_id()
        created_at = now_ms()
        cursor = self.execute(
            """
            INSERT INTO messages (app_id, id, conversation_id, sender_id, text, type,
                created_at, custom, origin, idempotency_key)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            self.app_id,
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
        seq = cursor.lastrowid
        if seq is None:
            raise StorageError(f"SQLite returned no seq for the new message '{message_id}'")
        self.execute(
            "UPDATE conversations SET last_message_at = ? WHERE app_id = ? AND id = ?",
            created_at,
            self.app_id,
            message.conversation_id,
        )
        if message.sender_id is not None:
            # Sending implies reading everything up to one's own message.
            self.execute(
                "UPDATE participants SET last_read_seq = max(last_read_seq, ?)"
                " WHERE app_id = ? AND conversation_id = ? AND user_id = ?",
                seq,
                self.app_id,
                message.conversation_id,
                message.sender_id,
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
        return inserted._replace(**self.log(inserted, log_event)._asdict())

    def _find_by_idempotency_key(self, message: NewMessage) -> Message | None:
        # The WHERE terms match the expression of messages_by_idempotency_key.
        row = self.query_one(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages AS m"
            " WHERE m.app_id = ? AND m.conversation_id = ?"
            " AND coalesce(m.sender_id, '') = coalesce(?, '') AND m.idempotency_key = ?",
            self.app_id,
            message.conversation_id,
            message.sender_id,
            message.idempotency_key,
        )
        return _message_from_row(row) if row else None

    def find_message(self, conversation_id: str, message_id: str) -> Message | None:
        row = self.query_one(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages AS m"
            " WHERE m.app_id = ? AND m.id = ? AND m.conversation_id = ?",
            self.app_id,
            message_id,
            conversation_id,
        )
        return _message_from_row(row) if row else None

    def _require_message(self, conversation_id: str, message_id: str) -> Message:
        message = self.find_message(conversation_id, message_id)
        if message is None:
            raise NotFound(
                f"message '{message_id}' not found in conversation '{conversation_id}': "
                "it was deleted, or its id belongs to another conversation"
            )
        return message

    def update_message(
        self,
        conversation_id: str,
        message_id: str,
        text: str | None,
        custom: Mapping[str, str | None] | None,
        edited_at: int,
        authorize: AuthorizeMessage | None,
        log_event: LogEvent[UpdatedMessage] | None,
    ) -> UpdatedMessage:
        conversation = self.require_conversation(conversation_id)
        stored = self._require_message(conversation_id, message_id)
        if authorize is not None:
            authorize(conversation, stored)
        new_text = stored.text if text is None else text
        new_custom = stored.custom if custom is None else merge_custom(stored.custom, custom)
        if new_text == stored.text and new_custom == stored.custom:
            unchanged = UpdatedMessage(stored, conversation, changed=False)
            return unchanged._replace(**self.log(unchanged, log_event)._asdict())
        # Validated again so that the stored row always satisfies the model's limits.
        updated = Message.model_validate(
            stored.model_dump() | {"text": new_text, "custom": new_custom, "edited_at": edited_at}
        )
        self.execute(
            "UPDATE messages SET text = ?, custom = ?, edited_at = ? WHERE app_id = ? AND seq = ?",
            updated.text,
            json.dumps(updated.custom),
            updated.edited_at,
            self.app_id,
            stored.seq,
        )
        result = UpdatedMessage(updated, conversation, changed=True)
        return result._replace(**self.log(result, log_event)._asdict())

    def delete_message(
        self,
        conversation_id: str,
        message_id: str,
        authorize: AuthorizeMessage | None,
        log_event: LogEvent[DeletedMessage] | None,
    ) -> DeletedMessage:
        conversation = self.require_conversation(conversation_id)
        stored = self._require_message(conversation_id, message_id)
        if authorize is not None:
            authorize(conversation, stored)
        self.execute("DELETE FROM messages WHERE app_id = ? AND seq = ?", self.app_id, stored.seq)
        latest = self.query_one(
            "SELECT created_at FROM messages WHERE app_id = ? AND conversation_id = ?"
            " ORDER BY seq DESC LIMIT 1",
            self.app_id,
            conversation_id,
        )
        last_message_at = int(latest["created_at"]) if latest is not None else None
        if last_message_at != conversation.last_message_at:
            self.execute(
                "UPDATE conversations SET last_message_at = ? WHERE app_id = ? AND id = ?",
                last_message_at,
                self.app_id,
                conversation_id,
            )
        updated = conversation.model_copy(update={"last_message_at": last_message_at})
        deleted = DeletedMessage(stored, updated)
        return deleted._replace(**self.log(deleted, log_event)._asdict())

    def message_seq(self, conversation_id: str, message_id: str) -> int:
        row = self.query_one(
            "SELECT seq FROM messages WHERE app_id = ? AND id = ? AND conversation_id = ?",
            self.app_id,
            message_id,
            conversation_id,
        )
        if row is None:
            raise NotFound(f"message '{message_id}' not found in conversation '{conversation_id}'")
        return int(row["seq"])

    def list_messages(
        self, conversation_id: str, limit: int, before_message_id: str | None
    ) -> MessagesPage:
        self.require_conversation(conversation_id)
        sql = (
            f"SELECT {_MESSAGE_COLUMNS} FROM messages AS m"
            " WHERE m.app_id = ? AND m.conversation_id = ?"
        )
        parameters: list[object] = [self.app_id, conversation_id]
        if before_message_id is not None:
            sql += " AND m.seq < ?"
            parameters.append(self.message_seq(conversation_id, before_message_id))
        # Fetching one extra row shows whether older messages exist.
        sql += " ORDER BY m.seq DESC LIMIT ?"
        parameters.append(limit + 1)
        rows = self.query(sql, *parameters)
        messages = [_message_from_row(row) for row in rows[:limit]]
        messages.reverse()
        return MessagesPage(messages=messages, has_more=len(rows) > limit)

    # Read positions

    def mark_read(
        self,
        conversation_id: str,
        user_id: str,
        message_id: str | None,
        authorize: AuthorizeConversation | None,
        log_event: LogEvent[ReadPosition] | None,
    ) -> ReadPosition:
        conversation = self.find_conversation(conversation_id)
        if authorize is not None:
            authorize(conversation)
        if conversation is None:
            raise NotFound(f"conversation '{conversation_id}' not found: create it first")
        row = self.query_one(
            "SELECT last_read_seq FROM participants"
            " WHERE app_id = ? AND conversation_id = ? AND user_id = ?",
            self.app_id,
            conversation_id,
            user_id,
        )
        if row is None:
            raise NotFound(
                f"user '{user_id}' is not a participant of conversation '{conversation_id}'"
            )
        previous_seq = int(row["last_read_seq"])
        if message_id is None:
            target_seq = self.latest_seq(conversation_id)
        else:
            target_seq = self.message_seq(conversation_id, message_id)
        moved = target_seq > previous_seq
        if moved:
            self.execute(
                "UPDATE participants SET last_read_seq = ?"
                " WHERE app_id = ? AND conversation_id = ? AND user_id = ?",
                target_seq,
                self.app_id,
                conversation_id,
                user_id,
            )
        position = max(previous_seq, target_seq)
        last_read_id, last_read_seq = self._last_message_at(conversation_id, position)
        result = ReadPosition(
            last_read_message_id=last_read_id,
            last_read_seq=last_read_seq,
            unread_message_count=self._count_unread(conversation_id, user_id, position),
            moved=moved,
            conversation=conversation,
        )
        return result._replace(**self.log(result, log_event)._asdict())

    def _last_message_at(self, conversation_id: str, seq: int) -> tuple[str | None, int]:
        """Return the id and seq of the last message at or before ``seq``, or ``(None, 0)``."""
        row = self.query_one(
            "SELECT id, seq FROM messages WHERE app_id = ? AND conversation_id = ? AND seq <= ?"
            " ORDER BY seq DESC LIMIT 1",
            self.app_id,
            conversation_id,
            seq,
        )
        return (str(row["id"]), int(row["seq"])) if row else (None, 0)

    def _count_unread(self, conversation_id: str, user_id: str, after_seq: int) -> int:
        row = self.query_one(
            "SELECT count(*) FROM messages WHERE app_id = ? AND conversation_id = ?"
            " AND seq > ? AND sender_id IS NOT ?",
            self.app_id,
            conversation_id,
            after_seq,
            user_id,
        )
        return int(row[0]) if row else 0

    # Event log

    def log(self, change: _R, log_event: LogEvent[_R] | None) -> LoggedEvent:
        """Append the event that ``log_event`` builds from ``change``; return it with its seq."""
        if log_event is None:
            return NOTHING_LOGGED
        new_event = log_event(change)
        if new_event is None:
            return NOTHING_LOGGED
        return self.append_event(new_event)

    def append_event(self, new_event: NewEvent) -> LoggedEvent:
        event = new_event.event
        recipients = list(dict.fromkeys(new_event.recipients))
        created_at = now_ms()
        # The app's latest event is never pruned before a newer one is
        # appended, so this is the event right before the new one. The write
        # lock keeps other writers, in other processes too, from appending
        # in between.
        prev_seq = self.latest_event_seq()
        cursor = self.execute(
            "INSERT INTO events (app_id, type, created_at, recipients, payload)"
            " VALUES (?, ?, ?, ?, ?)",
            self.app_id,
            event.type,
            created_at,
            json.dumps(recipients),
            event.model_dump_json(by_alias=True, exclude={"seq"}),
        )
        seq = cursor.lastrowid
        if seq is None:
            raise StorageError(f"SQLite returned no seq for the new {event.type} event")
        self.connection.executemany(
            "INSERT INTO event_recipients (app_id, user_id, seq) VALUES (?, ?, ?)",
            [(self.app_id, user_id, seq) for user_id in recipients],
        )
        self._prune_events(created_at - self.event_retention_ms)
        return LoggedEvent(event.model_copy(update={"seq": seq}), prev_seq)

    def _prune_events(self, expired_before: int) -> None:
        """Delete up to ``PRUNE_BATCH`` oldest events of the app created before ``expired_before``.

        Only a prefix of the log is deleted: pruning stops at the first event
        that has not expired, even if a later one has (after a clock step
        backwards), so ``pruned_through_seq`` stays exact.
        """
        oldest = self.query(
            "SELECT seq, created_at, recipients FROM events WHERE app_id = ? ORDER BY seq LIMIT ?",
            self.app_id,
            PRUNE_BATCH,
        )
        expired = []
        for row in oldest:
            if row["created_at"] >= expired_before:
                break
            expired.append(row)
        if not expired:
            return
        # The recipients column names the index rows, so each is deleted by
        # its key and no table is scanned.
        self.connection.executemany(
            "DELETE FROM event_recipients WHERE app_id = ? AND user_id = ? AND seq = ?",
            [
                (self.app_id, user_id, row["seq"])
                for row in expired
                for user_id in json.loads(row["recipients"])
            ],
        )
        last_seq = int(expired[-1]["seq"])
        self.execute("DELETE FROM events WHERE app_id = ? AND seq <= ?", self.app_id, last_seq)
        self.execute(
            "INSERT INTO event_log (app_id, pruned_through_seq) VALUES (?, ?)"
            " ON CONFLICT (app_id) DO UPDATE SET pruned_through_seq = excluded.pruned_through_seq",
            self.app_id,
            last_seq,
        )

    def pruned_through_seq(self) -> int:
        row = self.query_one(
            "SELECT pruned_through_seq FROM event_log WHERE app_id = ?", self.app_id
        )
        return int(row[0]) if row else 0

    def latest_event_seq(self, pruned_through: int | None = None) -> int:
        """Return the app's latest event seq, or how far its log was pruned when it is empty.

        Pass ``pruned_through`` when it was read already in this transaction.
        """
        row = self.query_one("SELECT max(seq) FROM events WHERE app_id = ?", self.app_id)
        if row and row[0] is not None:
            return int(row[0])
        return self.pruned_through_seq() if pruned_through is None else pruned_through

    def events_after(self, user_id: str, after_seq: int, limit: int) -> EventsPage:
        latest = self.check_resume_position(after_seq)
        # One extra row shows whether more events follow.
        rows = self.query(
            "SELECT e.seq, e.payload FROM event_recipients AS r"
            " JOIN events AS e ON e.seq = r.seq"
            " WHERE r.app_id = ? AND r.user_id = ? AND r.seq > ?"
            " ORDER BY r.seq LIMIT ?",
            self.app_id,
            user_id,
            after_seq,
            limit + 1,
        )
        return _events_page(rows, limit, latest)

    def app_events_after(self, after_seq: int, limit: int) -> EventsPage:
        latest = self.check_resume_position(after_seq)
        rows = self.query(
            "SELECT seq, payload FROM events WHERE app_id = ? AND seq > ? ORDER BY seq LIMIT ?",
            self.app_id,
            after_seq,
            limit + 1,
        )
        return _events_page(rows, limit, latest)

    def check_resume_position(self, after_seq: int) -> int:
        """Return the app's latest event seq; raise ``resume_gap`` if the log lost ``after_seq``."""
        pruned_through = self.pruned_through_seq()
        latest = self.latest_event_seq(pruned_through)
        if after_seq < pruned_through:
            raise ChatError(
                f"events after seq {after_seq} are no longer all stored: the event log of "
                f"app '{self.app_id}' was pruned up to seq {pruned_through}; reload the "
                "unreads and conversations, then resume after the snapshot's as_of_event_seq",
                code="resume_gap",
            )
        if after_seq > latest:
            raise ChatError(
                f"seq {after_seq} is beyond the latest event seq {latest} of app "
                f"'{self.app_id}', so the event log was reset or belongs to another "
                "database; reload the unreads and conversations, then resume after the "
                "snapshot's as_of_event_seq",
                code="resume_gap",
            )
        return latest

    def get_unreads_snapshot(self, user_id: str) -> UnreadsSnapshot:
        positions = self.query(
            "SELECT conversation_id, last_read_seq FROM participants"
            " WHERE app_id = ? AND user_id = ?",
            self.app_id,
            user_id,
        )
        return UnreadsSnapshot(
            unreads=self.get_unreads(user_id),
            read_positions={row["conversation_id"]: int(row["last_read_seq"]) for row in positions},
            as_of_event_seq=self.latest_event_seq(self.pruned_through_seq()),
        )

    def get_unreads(self, user_id: str) -> list[UnreadConversation]:
        counts = self.query(
            """
            SELECT p.conversation_id, count(*) AS unread_count FROM participants AS p
            JOIN messages AS m ON m.app_id = p.app_id
                AND m.conversation_id = p.conversation_id
                AND m.seq > p.last_read_seq
                AND m.sender_id IS NOT p.user_id
            WHERE p.app_id = ? AND p.user_id = ?
            GROUP BY p.conversation_id
            """,
            self.app_id,
            user_id,
        )
        unread_counts = {row["conversation_id"]: int(row["unread_count"]) for row in counts}
        if not unread_counts:
            return []
        ids_json = json.dumps(list(unread_counts))
        last_message_rows = self.query(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages AS m WHERE m.seq IN ("
            " SELECT max(seq) FROM messages WHERE app_id = ?"
            " AND conversation_id IN (SELECT value FROM json_each(?)) GROUP BY conversation_id"
            ") ORDER BY m.seq DESC",
            self.app_id,
            ids_json,
        )
        conversations = self.load_conversations(list(unread_counts))
        return [
            UnreadConversation(
                conversation=conversations[row["conversation_id"]],
                last_message=_message_from_row(row),
                unread_message_count=unread_counts[row["conversation_id"]],
            )
            for row in last_message_rows
        ]


def _events_page(rows: list[sqlite3.Row], limit: int, latest: int) -> EventsPage:
    """Build a page from up to ``limit + 1`` rows; the extra row shows that more follow."""
    events = [_event_from_row(row) for row in rows[:limit]]
    has_more = len(rows) > limit
    next_after_seq = int(rows[limit - 1]["seq"]) if has_more else latest
    return EventsPage(events=events, has_more=has_more, next_after_seq=next_after_seq)


def _message_from_row(row: sqlite3.Row) -> Message:
    return message_from_row(row, json.loads(row["read_by"]))
