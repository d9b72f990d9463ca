"""SQLite implementation of the :class:`~talkjs_components.store.Store` interface.

All database calls run on one worker thread owned by the store, so the event
loop never blocks. The connection is used only by the thread that opened it,
which sqlite3 enforces (``check_same_thread`` is left on). Each operation is
one function that runs on that thread inside a single transaction:
``BEGIN IMMEDIATE`` for writes and a deferred ``BEGIN`` for reads, so every
operation sees one consistent snapshot.

Every row carries an ``app_id`` so that several apps can share one file. The
schema version is stored in ``PRAGMA user_version``.

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
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from ..errors import InvalidInput, NotFound, StorageError
from ..models import (
    MAX_CUSTOM_FIELDS,
    AccessLevel,
    Conversation,
    ConversationAttributes,
    Message,
    MessageOrigin,
    MessagesPage,
    MessageType,
    Participation,
    UnreadConversation,
    UnreadsSnapshot,
    User,
    now_ms,
)
from . import (
    AuthorizeConversation,
    AuthorizeMessage,
    ConversationUpsert,
    DeletedMessage,
    InsertedMessage,
    NewMessage,
    ReadPosition,
    UpdatedMessage,
)

__all__ = ["SCHEMA_VERSION", "SQLiteStore", "new_message_id"]

SCHEMA_VERSION = 1
"""Schema version that this code creates and reads, stored in ``PRAGMA user_version``."""

_T = TypeVar("_T")

_SCHEMA = (
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

_CROCKFORD_BASE32 = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_message_id() -> str:
    """Generate a message id: ``"msg_"`` and 26 characters of Crockford base32.

    The 128 encoded bits are the current time in milliseconds (48 bits) and 80
    random bits from :mod:`secrets`, as in a ULID. Ids therefore sort by
    creation time to the millisecond and cannot be guessed.
    """
    value = (now_ms() << 80) | secrets.randbits(80)
    characters = []
    for _ in range(26):
        characters.append(_CROCKFORD_BASE32[value & 31])
        value >>= 5
    return "msg_" + "".join(reversed(characters))


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

    async def open(self) -> None:
        """Open the database file and create or check its schema.

        Raises:
            StorageError: the file cannot be opened, is not a database of this
                package, or has a schema version newer than ``SCHEMA_VERSION``.
        """
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
        self._database = _Database(connection, self._app_id)

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

        Raises:
            NotFound: a listed participant is neither a stored user nor in ``new_users``.
            Exception: whatever ``authorize`` raises.
        """
        return await self._write(
            "upsert conversation",
            lambda db: db.upsert_conversation(
                conversation_id, attributes, participants, authorize, new_users
            ),
        )

    async def remove_participant(self, conversation_id: str, user_id: str) -> Conversation:
        """Remove a participant and return the updated conversation.

        Raises:
            NotFound: the conversation does not exist or the user is not a participant.
        """
        return await self._write(
            "remove participant", lambda db: db.remove_participant(conversation_id, user_id)
        )

    async def delete_conversation(self, conversation_id: str) -> None:
        """Delete a conversation with its participants and messages.

        Raises:
            NotFound: the conversation does not exist.
        """
        await self._write("delete conversation", lambda db: db.delete_conversation(conversation_id))

    async def list_user_conversations(self, user_id: str) -> list[Conversation]:
        """Return the user's conversations, most recent activity first.

        Activity is the last message time, or the creation time for a
        conversation without messages.
        """
        return await self._read(
            "list user conversations", lambda db: db.list_user_conversations(user_id)
        )

    async def insert_message(
        self, message: NewMessage, *, authorize: AuthorizeConversation | None = None
    ) -> InsertedMessage:
        """Insert a message in one write transaction.

        ``authorize`` (when given) is called first with the stored
        conversation, or ``None`` when it does not exist, as in
        ``upsert_conversation``. When ``idempotency_key`` is set and a message
        with the same key exists in that conversation from that sender, the
        existing message is returned with ``created`` false. A new message
        sets the conversation's ``last_message_at`` and moves the sender's
        read position to it.

        Raises:
            NotFound: the conversation does not exist.
            Exception: whatever ``authorize`` raises.
        """
        return await self._write("insert message", lambda db: db.insert_message(message, authorize))

    async def update_message(
        self,
        conversation_id: str,
        message_id: str,
        *,
        text: str | None,
        custom: Mapping[str, str | None] | None,
        edited_at: int,
        authorize: AuthorizeMessage | None = None,
    ) -> UpdatedMessage:
        """Edit a message's text and ``custom`` in one write transaction.

        ``authorize`` (when given) is called with the stored conversation and
        message, on the worker thread with the write lock held, so it must be
        pure (no I/O). ``text=None`` keeps the text, and ``custom`` merges
        like ``upsert_user``'s. When neither the text nor ``custom`` changes,
        nothing is written, ``edited_at`` keeps its stored value and
        ``changed`` is false.

        Raises:
            NotFound: the conversation does not exist, or the message is not in it.
            InvalidInput: the merged ``custom`` has more than ``MAX_CUSTOM_FIELDS`` keys.
            Exception: whatever ``authorize`` raises.
        """
        return await self._write(
            "update message",
            lambda db: db.update_message(
                conversation_id, message_id, text, custom, edited_at, authorize
            ),
        )

    async def delete_message(
        self,
        conversation_id: str,
        message_id: str,
        *,
        authorize: AuthorizeMessage | None = None,
    ) -> DeletedMessage:
        """Delete a message in one write transaction and return it as it was stored.

        ``authorize`` runs first, as in ``update_message``. The conversation's
        ``last_message_at`` becomes the creation time of its latest remaining
        message, or ``None`` when none remain. Read positions are ``seq``
        values and are left as they are: ``seq`` is never reused, so a
        position at the deleted message still orders correctly against every
        other message.

        Raises:
            NotFound: the conversation does not exist, or the message is not in it.
            Exception: whatever ``authorize`` raises.
        """
        return await self._write(
            "delete message",
            lambda db: db.delete_message(conversation_id, message_id, authorize),
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
        self, conversation_id: str, user_id: str, message_id: str | None
    ) -> ReadPosition:
        """Move the user's read position forward to ``message_id`` (``None``: the newest).

        The position never moves backwards. ``moved`` shows whether this call
        moved it, as decided inside the write transaction.

        Raises:
            NotFound: the user is not a participant when the transaction runs,
                or ``message_id`` is not a message of the conversation.
        """
        return await self._write(
            "mark read", lambda db: db.mark_read(conversation_id, user_id, message_id)
        )

    async def list_messages_after(
        self, user_id: str, after_seq: int, *, limit: int
    ) -> tuple[list[Message], dict[str, Conversation], dict[str, User]]:
        """Return up to ``limit`` messages after ``after_seq`` in the user's conversations.

        Runs three queries in one read transaction, whatever the number of
        messages.
        """
        return await self._read(
            "list messages after",
            lambda db: db.list_messages_after(user_id, after_seq, limit),
        )

    async def get_unreads_snapshot(self, user_id: str) -> UnreadsSnapshot:
        """Return the user's unreads with their read positions and the app's latest ``seq``.

        Everything comes from one read transaction, so it describes one moment.
        """
        return await self._read("get unreads", lambda db: db.get_unreads_snapshot(user_id))

    async def get_unreads(self, user_id: str) -> list[UnreadConversation]:
        """Return the user's conversations with unread messages, most recent first.

        ``last_message`` is the conversation's latest message. Runs four
        queries however many conversations the user is in.
        """
        return await self._read("get unreads", lambda db: db.get_unreads(user_id))

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
    """Open the connection, check or create the schema and set the pragmas."""
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
        _create_schema_if_new(connection, path)
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


def _create_schema_if_new(connection: sqlite3.Connection, path: str) -> None:
    connection.execute("BEGIN IMMEDIATE")
    try:
        # Checked again inside the transaction: another process may have
        # created the schema since the first check.
        _check_schema_version(connection, path)
        if _read_user_version(connection) == 0:
            _create_schema(connection, path)
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise


def _create_schema(connection: sqlite3.Connection, path: str) -> None:
    table_count: int = connection.execute(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
    ).fetchone()[0]
    if table_count:
        raise StorageError(
            f"database '{path}' has tables but no talkjs-components schema version "
            "(PRAGMA user_version is 0): use a new or empty database file"
        )
    for statement in _SCHEMA:
        connection.execute(statement)
    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


class _Database:
    """The synchronous operations, run on the store's worker thread only."""

    def __init__(self, connection: sqlite3.Connection, app_id: str) -> None:
        self.connection = connection
        self.app_id = app_id

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
        merged = _merge_user(existing, user)
        self._write_user(_UPSERT_USER, merged)
        return merged

    def _insert_missing_users(self, users: Iterable[User]) -> None:
        for user in users:
            self._write_user(_INSERT_USER_IF_MISSING, _merge_user(None, user))

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
    ) -> ConversationUpsert:
        existing = self.find_conversation(conversation_id)
        # The check and the writes below run in one BEGIN IMMEDIATE
        # transaction, so no other writer can change the conversation between
        # them. Of two concurrent creates of one id, the second finds the first stored.
        if authorize is not None:
            authorize(existing)
        self._insert_missing_users(new_users)
        merged = _merge_conversation(existing, conversation_id, attributes)
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
        return ConversationUpsert(stored, created=existing is None, changed=stored != existing)

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

    def remove_participant(self, conversation_id: str, user_id: str) -> Conversation:
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
        return self.require_conversation(conversation_id)

    def delete_conversation(self, conversation_id: str) -> None:
        # Participants and messages go with it (ON DELETE CASCADE).
        cursor = self.execute(
            "DELETE FROM conversations WHERE app_id = ? AND id = ?", self.app_id, conversation_id
        )
        if cursor.rowcount == 0:
            raise NotFound(f"conversation '{conversation_id}' not found")

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
        self, message: NewMessage, authorize: AuthorizeConversation | None
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
                return InsertedMessage(existing, False, conversation, sender)
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
        return InsertedMessage(stored, True, updated, sender)

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

    def _require_message(self, conversation_id: str, message_id: str) -> Message:
        row = self.query_one(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages AS m"
            " WHERE m.app_id = ? AND m.id = ? AND m.conversation_id = ?",
            self.app_id,
            message_id,
            conversation_id,
        )
        if row is None:
            raise NotFound(
                f"message '{message_id}' not found in conversation '{conversation_id}': "
                "it was deleted, or its id belongs to another conversation"
            )
        return _message_from_row(row)

    def update_message(
        self,
        conversation_id: str,
        message_id: str,
        text: str | None,
        custom: Mapping[str, str | None] | None,
        edited_at: int,
        authorize: AuthorizeMessage | None,
    ) -> UpdatedMessage:
        conversation = self.require_conversation(conversation_id)
        stored = self._require_message(conversation_id, message_id)
        if authorize is not None:
            authorize(conversation, stored)
        new_text = stored.text if text is None else text
        new_custom = stored.custom if custom is None else _merge_custom(stored.custom, custom)
        if new_text == stored.text and new_custom == stored.custom:
            return UpdatedMessage(stored, conversation, changed=False)
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
        return UpdatedMessage(updated, conversation, changed=True)

    def delete_message(
        self, conversation_id: str, message_id: str, authorize: AuthorizeMessage | None
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
        return DeletedMessage(stored, updated)

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

    def mark_read(self, conversation_id: str, user_id: str, message_id: str | None) -> ReadPosition:
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
        return ReadPosition(
            last_read_message_id=last_read_id,
            last_read_seq=last_read_seq,
            unread_message_count=self._count_unread(conversation_id, user_id, position),
            moved=moved,
        )

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

    def list_messages_after(
        self, user_id: str, after_seq: int, limit: int
    ) -> tuple[list[Message], dict[str, Conversation], dict[str, User]]:
        rows = self.query(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages AS m"
            " JOIN participants AS me ON me.app_id = m.app_id"
            " AND me.conversation_id = m.conversation_id AND me.user_id = ?"
            " WHERE m.app_id = ? AND m.seq > ? ORDER BY m.seq LIMIT ?",
            user_id,
            self.app_id,
            after_seq,
            limit,
        )
        messages = [_message_from_row(row) for row in rows]
        conversations = self.load_conversations(
            list(dict.fromkeys(message.conversation_id for message in messages))
        )
        sender_ids = {message.sender_id for message in messages if message.sender_id}
        return messages, conversations, self.get_users(sorted(sender_ids))

    def get_unreads_snapshot(self, user_id: str) -> UnreadsSnapshot:
        positions = self.query(
            "SELECT conversation_id, last_read_seq FROM participants"
            " WHERE app_id = ? AND user_id = ?",
            self.app_id,
            user_id,
        )
        latest = self.query_one(
            "SELECT coalesce(max(seq), 0) AS seq FROM messages WHERE app_id = ?", self.app_id
        )
        return UnreadsSnapshot(
            unreads=self.get_unreads(user_id),
            read_positions={row["conversation_id"]: int(row["last_read_seq"]) for row in positions},
            as_of_seq=int(latest["seq"]) if latest is not None else 0,
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


def _merge_custom(
    stored: Mapping[str, str] | None, update: Mapping[str, str | None]
) -> dict[str, str]:
    """Merge ``update`` into ``stored``: a key set to ``None`` is removed."""
    merged = dict(stored or {})
    for key, value in update.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    if len(merged) > MAX_CUSTOM_FIELDS:
        raise InvalidInput(
            f"custom would have {len(merged)} keys after the update, over the limit of "
            f"{MAX_CUSTOM_FIELDS}: remove keys by setting them to None"
        )
    return merged


def _merge_user(existing: User | None, update: User) -> User:
    fields: dict[str, Any] = existing.model_dump() if existing else {"id": update.id}
    for name in update.model_fields_set - {"id", "custom", "created_at"}:
        fields[name] = getattr(update, name)
    if "custom" in update.model_fields_set:
        fields["custom"] = (
            None if update.custom is None else _merge_custom(fields.get("custom"), update.custom)
        )
    if existing is None:
        fields["created_at"] = update.created_at if update.created_at is not None else now_ms()
    return User.model_validate(fields)


def _merge_conversation(
    existing: Conversation | None,
    conversation_id: str,
    attributes: ConversationAttributes | None,
) -> Conversation:
    fields: dict[str, Any] = (
        existing.model_dump(exclude={"participants"})
        if existing
        else {"id": conversation_id, "created_at": now_ms()}
    )
    if attributes is not None:
        for name in attributes.model_fields_set - {"custom"}:
            fields[name] = getattr(attributes, name)
        if "custom" in attributes.model_fields_set:
            fields["custom"] = (
                {}
                if attributes.custom is None
                else _merge_custom(fields.get("custom"), attributes.custom)
            )
    return Conversation.model_validate(fields)


def _to_json_or_none(value: object) -> str | None:
    return None if value is None else json.dumps(value)


def _from_json_or_none(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _user_from_row(row: sqlite3.Row) -> User:
    return User(
        id=row["id"],
        name=row["name"],
        email=_from_json_or_none(row["email"]),
        phone=_from_json_or_none(row["phone"]),
        photo_url=row["photo_url"],
        role=row["role"],
        locale=row["locale"],
        welcome_message=row["welcome_message"],
        custom=_from_json_or_none(row["custom"]),
        created_at=row["created_at"],
    )


def _conversation_from_row(
    row: sqlite3.Row, participants: dict[str, Participation]
) -> Conversation:
    return Conversation(
        id=row["id"],
        subject=row["subject"],
        photo_url=row["photo_url"],
        welcome_messages=_from_json_or_none(row["welcome_messages"]),
        custom=json.loads(row["custom"]),
        participants=participants,
        created_at=row["created_at"],
        last_message_at=row["last_message_at"],
    )


def _message_from_row(row: sqlite3.Row) -> Message:
    return Message(
        id=row["id"],
        conversation_id=row["conversation_id"],
        sender_id=row["sender_id"],
        text=row["text"],
        type=MessageType(row["type"]),
        created_at=row["created_at"],
        edited_at=row["edited_at"],
        read_by=sorted(json.loads(row["read_by"])),
        custom=json.loads(row["custom"]),
        origin=MessageOrigin(row["origin"]),
        seq=row["seq"],
    )
