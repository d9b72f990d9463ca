"""``PostgresStore``: the :class:`~talkjs_components.store.Store` interface on PostgreSQL."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Literal, TypeVar

import asyncpg

from ...errors import InvalidInput, StorageError
from ...models import (
    Conversation,
    ConversationAttributes,
    EventsPage,
    Message,
    MessagesPage,
    Participation,
    UnreadConversation,
    UnreadsSnapshot,
    User,
)
from .. import (
    DEFAULT_EVENT_RETENTION_MS,
    AuthorizeConversation,
    AuthorizeMessage,
    ConversationUpsert,
    ConversationWithLastMessage,
    DeletedConversation,
    DeletedMessage,
    InsertedMessage,
    LogEvent,
    NewMessage,
    ReadPosition,
    RemovedParticipant,
    UpdatedMessage,
    UserConversation,
)
from . import conversations, events, messages
from . import users as user_operations
from .connect import DRIVER_ERRORS, create_pool, describe_url
from .migrations import check_schema_version
from .transaction import Transaction

__all__ = ["PostgresStore"]

logger = logging.getLogger("talkjs_components.store")

_T = TypeVar("_T")

# PostgreSQL cannot store U+0000 in text (SQLSTATE 22021) or jsonb (22P05).
_NUL_ERRORS = (asyncpg.CharacterNotInRepertoireError, asyncpg.UntranslatableCharacterError)


class PostgresStore:
    """Store of one app's chat data in a PostgreSQL schema.

    Args:
        url_or_pool: A ``postgresql://`` URL, from which ``open()`` creates a
            pool that ``close()`` closes. Or an asyncpg pool, which several
            stores (of one app or many) can share, and which its creator closes.
        app_id: The app whose rows this store reads and writes.
        min_pool_size: Connections the store's own pool keeps open.
        max_pool_size: Most connections the store's own pool opens.
        command_timeout: Seconds one query of the store's own pool may run,
            waits for row locks included; ``None`` for no limit.
        acquire_timeout: Seconds an operation waits for a free pooled connection.

    The pool settings apply only to a pool the store creates from a URL.
    The schema must be migrated (``talkjs-components migrate``) before
    ``open()``, which checks its version. Writes run in READ COMMITTED
    transactions that lock the rows they depend on. Reads run in one
    REPEATABLE READ read-only transaction each, so all queries of a read
    use one snapshot.

    Every method raises :class:`~talkjs_components.errors.StorageError` when
    PostgreSQL fails or when the store is not open, and ``InvalidInput`` for
    text that contains U+0000, which PostgreSQL cannot store.
    """

    def __init__(
        self,
        url_or_pool: str | asyncpg.Pool[asyncpg.Record],
        app_id: str,
        *,
        min_pool_size: int = 1,
        max_pool_size: int = 10,
        command_timeout: float | None = 30.0,
        acquire_timeout: float = 30.0,
    ) -> None:
        if isinstance(url_or_pool, str):
            self._url: str | None = url_or_pool
            self._shared_pool: asyncpg.Pool[asyncpg.Record] | None = None
        else:
            self._url = None
            self._shared_pool = url_or_pool
        self._app_id = app_id
        self._min_pool_size = min_pool_size
        self._max_pool_size = max_pool_size
        self._command_timeout = command_timeout
        self._acquire_timeout = acquire_timeout
        self._pool: asyncpg.Pool[asyncpg.Record] | None = None
        self._event_retention_ms = DEFAULT_EVENT_RETENTION_MS
        # Futures of the events this store appended and has not returned yet,
        # keyed by seq; see _hold_release.
        self._unreleased: dict[int, asyncio.Future[None]] = {}

    @property
    def app_id(self) -> str:
        """The app whose rows this store reads and writes."""
        return self._app_id

    @property
    def _where(self) -> str:
        if self._url is not None:
            return f"PostgreSQL store of app '{self._app_id}' at {describe_url(self._url)}"
        return f"PostgreSQL store of app '{self._app_id}'"

    async def open(self, *, event_retention_ms: int = DEFAULT_EVENT_RETENTION_MS) -> None:
        """Create the pool (for a URL) and check the schema version.

        Each write that logs an event then deletes up to ``PRUNE_BATCH`` of
        the app's events older than ``event_retention_ms`` milliseconds.

        Raises:
            InvalidInput: ``event_retention_ms`` is not a positive integer.
            StorageError: the store is already open, the server cannot be
                reached, or the schema's version is not ``SCHEMA_VERSION``.
                The message names the fix: running ``talkjs-components
                migrate``, or upgrading talkjs-components.
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
        if self._pool is not None:
            raise StorageError(f"{self._where} is already open")
        if self._url is not None:
            pool = await create_pool(
                self._url,
                min_size=self._min_pool_size,
                max_size=self._max_pool_size,
                command_timeout=self._command_timeout,
            )
        else:
            assert self._shared_pool is not None
            pool = self._shared_pool
        try:
            async with pool.acquire(timeout=self._acquire_timeout) as connection:
                await check_schema_version(connection)
        except DRIVER_ERRORS as exc:
            await self._close_own_pool(pool)
            raise StorageError(f"opening {self._where} failed: {exc}") from exc
        except BaseException:
            await self._close_own_pool(pool)
            raise
        self._event_retention_ms = event_retention_ms
        self._pool = pool

    async def close(self) -> None:
        """Close the store's own pool after its operations finish; a shared pool stays open.

        Closing a store that is not open does nothing.
        """
        pool, self._pool = self._pool, None
        if pool is not None:
            await self._close_own_pool(pool)

    async def _close_own_pool(self, pool: asyncpg.Pool[asyncpg.Record]) -> None:
        if self._url is not None:
            await _close_pool(pool)

    async def ping(self) -> None:
        """Run ``SELECT 1`` on a pooled connection, to check that the database is reachable."""
        await self._read("ping", lambda tx: tx.connection.execute("SELECT 1"))

    # Users

    async def upsert_user(self, user: User) -> User:
        """Create or update a user and return the stored result; see ``Store.upsert_user``.

        Raises:
            InvalidInput: the merged ``custom`` has more than ``MAX_CUSTOM_FIELDS`` keys.
        """
        return await self._write("upsert user", lambda tx: user_operations.upsert_user(tx, user))

    async def upsert_users(self, users: Sequence[User]) -> list[User]:
        """Create or update several users in one transaction, all or none.

        Raises:
            InvalidInput: a user's merged ``custom`` has more than
                ``MAX_CUSTOM_FIELDS`` keys; the message names the user.
        """
        return await self._write("upsert users", lambda tx: user_operations.upsert_users(tx, users))

    async def get_users(
        self, user_ids: Sequence[str], *, visible_to: str | None = None
    ) -> dict[str, User]:
        """Return the stored users among ``user_ids``, keyed by id; see ``Store.get_users``."""
        return await self._read(
            "get users", lambda tx: user_operations.get_users(tx, user_ids, visible_to)
        )

    async def list_users(self, *, limit: int, starting_after: str | None) -> list[User]:
        """Return up to ``limit`` users ordered by id, with ids after ``starting_after``.

        Ids compare as bytes (the "C" collation), as in the SQLite store.
        """
        return await self._read(
            "list users", lambda tx: user_operations.list_users(tx, limit, starting_after)
        )

    # Conversations and participants

    async def get_conversation(self, conversation_id: str) -> Conversation | None:
        """Return a conversation with its participants, or ``None`` when it does not exist."""
        return await self._read(
            "get conversation", lambda tx: conversations.find_conversation(tx, conversation_id)
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
        """Create or update a conversation in one transaction; see ``Store.upsert_conversation``.

        The conversation's row is locked (or, for a new id, inserted) before
        ``authorize`` runs. So of two concurrent creates of one id, the second
        waits, and its ``authorize`` receives the first's conversation.

        Raises:
            NotFound: a listed participant is neither a stored user nor in ``new_users``.
            Exception: whatever ``authorize`` or ``log_event`` raises.
        """
        return await self._write(
            "upsert conversation",
            lambda tx: conversations.upsert_conversation(
                tx, conversation_id, attributes, participants, authorize, new_users, log_event
            ),
        )

    async def remove_participant(
        self,
        conversation_id: str,
        user_id: str,
        *,
        log_event: LogEvent[Conversation] | None = None,
    ) -> RemovedParticipant:
        """Remove a participant in one transaction; see ``Store.remove_participant``.

        Raises:
            NotFound: the conversation does not exist or the user is not a participant.
            Exception: whatever ``log_event`` raises.
        """
        return await self._write(
            "remove participant",
            lambda tx: conversations.remove_participant(tx, conversation_id, user_id, log_event),
        )

    async def delete_conversation(
        self,
        conversation_id: str,
        *,
        authorize: AuthorizeConversation | None = None,
        log_event: LogEvent[Conversation] | None = None,
    ) -> DeletedConversation:
        """Delete a conversation with its participants and messages in one transaction.

        See ``Store.delete_conversation``. Logged events of the conversation
        stay until they expire.

        Raises:
            NotFound: the conversation does not exist.
            Exception: whatever ``authorize`` or ``log_event`` raises.
        """
        return await self._write(
            "delete conversation",
            lambda tx: conversations.delete_conversation(tx, conversation_id, authorize, log_event),
        )

    async def list_user_conversations(self, user_id: str) -> list[Conversation]:
        """Return the user's conversations, most recent activity first."""
        return await self._read(
            "list user conversations",
            lambda tx: conversations.list_user_conversations(tx, user_id),
        )

    async def list_user_conversation_page(
        self, user_id: str, *, limit: int, starting_after: str | None, unreads_only: bool
    ) -> list[UserConversation]:
        """Return up to ``limit`` of the user's conversations, most recent activity first.

        See ``Store.list_user_conversation_page``.

        Raises:
            InvalidInput: ``starting_after`` is not one of the user's conversations.
        """
        return await self._read(
            "list user conversation page",
            lambda tx: conversations.list_user_conversation_page(
                tx, user_id, limit, starting_after, unreads_only
            ),
        )

    async def list_conversations(
        self, *, limit: int, starting_after: str | None
    ) -> list[ConversationWithLastMessage]:
        """Return up to ``limit`` conversations ordered by id, with ids after ``starting_after``."""
        return await self._read(
            "list conversations",
            lambda tx: conversations.list_conversations(tx, limit, starting_after),
        )

    # Messages

    async def insert_message(
        self,
        message: NewMessage,
        *,
        authorize: AuthorizeConversation | None = None,
        log_event: LogEvent[InsertedMessage] | None = None,
    ) -> InsertedMessage:
        """Insert a message in one transaction; see ``Store.insert_message``.

        The conversation's row stays locked until commit, so sends of one
        conversation commit in ``seq`` order, and a retried send with the
        same idempotency key returns the first message, from any server.

        Raises:
            NotFound: the conversation does not exist.
            Exception: whatever ``authorize`` or ``log_event`` raises.
        """
        return await self._write(
            "insert message",
            lambda tx: messages.insert_message(tx, message, authorize, log_event),
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
        """Edit a message's text and ``custom`` in one transaction; see ``Store.update_message``.

        Raises:
            NotFound: the conversation does not exist, or the message is not in it.
            InvalidInput: the merged ``custom`` has more than ``MAX_CUSTOM_FIELDS`` keys.
            Exception: whatever ``authorize`` or ``log_event`` raises.
        """
        return await self._write(
            "update message",
            lambda tx: messages.update_message(
                tx, conversation_id, message_id, text, custom, edited_at, authorize, log_event
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
        """Delete a message in one transaction and return it as it was stored.

        See ``Store.delete_message``.

        Raises:
            NotFound: the conversation does not exist, or the message is not in it.
            Exception: whatever ``authorize`` or ``log_event`` raises.
        """
        return await self._write(
            "delete message",
            lambda tx: messages.delete_message(
                tx, conversation_id, message_id, authorize, log_event
            ),
        )

    async def list_messages(
        self, conversation_id: str, *, limit: int, before_message_id: str | None
    ) -> MessagesPage:
        """Return the newest ``limit`` messages older than ``before_message_id``, oldest first.

        Raises:
            NotFound: the conversation does not exist, or ``before_message_id``
                is not a message of it.
        """
        return await self._read(
            "list messages",
            lambda tx: messages.list_messages(tx, conversation_id, limit, before_message_id),
        )

    async def get_message(self, conversation_id: str, message_id: str) -> Message | None:
        """Return a message of the conversation, or ``None`` when it is not there."""
        return await self._read(
            "get message", lambda tx: messages.find_message(tx, conversation_id, message_id)
        )

    # Read positions, unreads and events

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

        See ``Store.mark_read``. The conversation's row is locked in share
        mode, so the move waits for a send of that conversation to commit
        and never skips a message that commits after it.

        Raises:
            NotFound: the conversation does not exist, the user is not a
                participant, or ``message_id`` is not a message of the conversation.
            Exception: whatever ``authorize`` or ``log_event`` raises.
        """
        return await self._write(
            "mark read",
            lambda tx: messages.mark_read(
                tx, conversation_id, user_id, message_id, authorize, log_event
            ),
        )

    async def events_after(self, user_id: str, after_seq: int, *, limit: int) -> EventsPage:
        """Return up to ``limit`` of the user's logged events after ``after_seq``, oldest first.

        Raises:
            ChatError: code ``resume_gap`` when events of the app after
                ``after_seq`` were pruned, or when ``after_seq`` is beyond the
                app's latest event (the log was reset).
        """
        return await self._read(
            "list events", lambda tx: events.events_after(tx, user_id, after_seq, limit)
        )

    async def app_events_after(self, after_seq: int, *, limit: int) -> EventsPage:
        """Return up to ``limit`` of the app's logged events after ``after_seq``, oldest first.

        Reads one range of the ``events`` primary key in one REPEATABLE READ snapshot.

        Raises:
            ChatError: code ``resume_gap`` in the cases of ``events_after``.
        """
        return await self._read(
            "list app events", lambda tx: events.app_events_after(tx, after_seq, limit)
        )

    async def latest_event_seq(self) -> int:
        """Return the ``seq`` of the app's latest logged event; 0 when the app has none."""
        latest, _ = await self._read(
            "read latest event seq", lambda tx: events.latest_event_seq(tx)
        )
        return latest

    async def get_unreads_snapshot(self, user_id: str) -> UnreadsSnapshot:
        """Return the user's unreads, read positions and the app's latest event ``seq``.

        All three come from one REPEATABLE READ snapshot.
        """
        return await self._read(
            "get unreads", lambda tx: messages.get_unreads_snapshot(tx, user_id)
        )

    async def get_unreads(self, user_id: str) -> list[UnreadConversation]:
        """Return the user's conversations with unread messages, most recent first."""
        return await self._read("get unreads", lambda tx: messages.get_unreads(tx, user_id))

    # Transactions

    async def _read(self, operation: str, work: Callable[[Transaction], Awaitable[_T]]) -> _T:
        return await self._run(operation, work, write=False)

    async def _write(self, operation: str, work: Callable[[Transaction], Awaitable[_T]]) -> _T:
        return await self._run(operation, work, write=True)

    async def _run(
        self, operation: str, work: Callable[[Transaction], Awaitable[_T]], *, write: bool
    ) -> _T:
        pool = self._pool
        if pool is None:
            raise StorageError(
                f"cannot {operation}: {self._where} is not open; call await store.open() first"
            )
        appended: list[tuple[int, asyncio.Future[None]]] = []
        try:
            try:
                async with pool.acquire(timeout=self._acquire_timeout) as connection:
                    tx = Transaction(
                        connection,
                        self._app_id,
                        self._event_retention_ms,
                        functools.partial(self._hold_release, appended),
                    )
                    isolation: Literal["read_committed", "repeatable_read"] = (
                        "read_committed" if write else "repeatable_read"
                    )
                    async with connection.transaction(isolation=isolation, readonly=not write):
                        result = await work(tx)
            except _NUL_ERRORS as exc:
                raise InvalidInput(
                    f"cannot {operation}: a text value contains the character U+0000, which "
                    "PostgreSQL cannot store; remove it"
                ) from exc
            except DRIVER_ERRORS as exc:
                raise StorageError(
                    f"PostgreSQL {operation} failed for app '{self._app_id}': "
                    f"{str(exc) or type(exc).__name__}"
                ) from exc
            if appended:
                await self._wait_for_earlier_releases(appended[-1][0])
            return result
        finally:
            self._release(appended)

    # Release order: this store returns the results of its writes in the seq
    # order of their events. Appends take their numbers in commit order, but
    # the coroutines of two writes that commit one after the other on two
    # connections may resume in either order, and a service publishes each
    # event when its write returns. So a write that committed seq N waits
    # until this store has returned every smaller seq it appended. Those
    # writes have committed already (they held the app's event_log row lock
    # first), so the wait is for their coroutines to resume. Writes through
    # other stores or processes are not ordered with these; the services
    # that receive their events put them in order with prev_seq.

    def _hold_release(self, appended: list[tuple[int, asyncio.Future[None]]], seq: int) -> None:
        future = asyncio.get_running_loop().create_future()
        appended.append((seq, future))
        self._unreleased[seq] = future

    async def _wait_for_earlier_releases(self, seq: int) -> None:
        earlier = [future for other, future in self._unreleased.items() if other < seq]
        if not earlier:
            return
        _, pending = await asyncio.wait(earlier, timeout=self._acquire_timeout)
        if pending:
            logger.warning(
                "event seq %d of app %r is returned before %d earlier events of this store, "
                "whose writes did not return within %s s; listeners may receive it first",
                seq,
                self._app_id,
                len(pending),
                self._acquire_timeout,
            )

    def _release(self, appended: list[tuple[int, asyncio.Future[None]]]) -> None:
        for seq, future in appended:
            # A rolled-back append frees its number, so a later write may
            # have registered the same seq: remove only this write's entry.
            if self._unreleased.get(seq) is future:
                del self._unreleased[seq]
            if not future.done():
                future.set_result(None)


async def _close_pool(pool: asyncpg.Pool[asyncpg.Record], timeout: float = 10.0) -> None:
    """Close the pool, waiting at most ``timeout`` seconds for connections in use."""
    try:
        await asyncio.wait_for(pool.close(), timeout)
    except TimeoutError:
        logger.warning(
            "closing the PostgreSQL pool timed out after %s s; terminated its connections",
            timeout,
        )
        pool.terminate()
