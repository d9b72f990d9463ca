"""Tests of PostgresStore's own behaviour: migrations, the schema check, pools, several writers.

Each test runs on a schema of its own on the test server (see
``tests/services.py``) and is skipped when the server is unreachable. The
behaviour every store shares is tested in ``test_store_contract.py``.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from talkjs_components.errors import InvalidInput, StorageError
from talkjs_components.models import ChatEvent, User
from talkjs_components.store import Store
from talkjs_components.store.postgres import (
    SCHEMA_VERSION,
    PostgresStore,
    create_pool,
    migrate,
    migrations,
)
from talkjs_components.store.postgres.migrations import VERSION_TABLE, load_migrations

from .test_store_contract import Draft, EventLogger, all_events, create_chat, list_all, seqs

APP_ID = "app-test"
REPOSITORY = Path(__file__).resolve().parent.parent

# Seconds a test waits for a condition on the server, or for a child process.
WAIT_TIMEOUT = 30.0


async def connect(url: str) -> asyncpg.Connection[asyncpg.Record]:
    return await asyncpg.connect(url, timeout=WAIT_TIMEOUT)


@pytest.fixture
async def admin(postgres_url: str) -> AsyncIterator[asyncpg.Connection[asyncpg.Record]]:
    """A connection of the test's own to its migrated schema, outside every store."""
    connection = await connect(postgres_url)
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture
async def store(postgres_url: str) -> AsyncIterator[PostgresStore]:
    store = PostgresStore(postgres_url, APP_ID, max_pool_size=8)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def table_names(url: str) -> set[str]:
    connection = await connect(url)
    try:
        rows = await connection.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        )
    finally:
        await connection.close()
    return {row["table_name"] for row in rows}


async def schema_definition(url: str) -> list[tuple[str, str, str]]:
    """Return every column of the schema as (table, column, type), sorted."""
    connection = await connect(url)
    try:
        rows = await connection.fetch(
            "SELECT table_name, column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = current_schema()"
        )
    finally:
        await connection.close()
    return sorted((row[0], row[1], row[2]) for row in rows)


async def wait_until_blocked(
    observer: asyncpg.Connection[asyncpg.Record], blocker_pid: int, count: int = 1
) -> None:
    """Wait until ``count`` server processes wait, directly or in a queue, for ``blocker_pid``.

    A second waiter for one row lock waits for the first waiter, which waits
    for the holder, so the blocked processes are followed transitively.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_TIMEOUT
    while True:
        blocked = await observer.fetchval(
            """
            WITH RECURSIVE blocked (pid) AS (
                SELECT pid FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))
                UNION
                SELECT activity.pid FROM pg_stat_activity AS activity
                JOIN blocked ON blocked.pid = ANY(pg_blocking_pids(activity.pid))
            )
            SELECT count(*) FROM blocked
            """,
            blocker_pid,
        )
        if blocked >= count:
            return
        if loop.time() > deadline:
            raise TimeoutError(
                f"timed out after {WAIT_TIMEOUT} s waiting for {count} queries blocked by "
                f"process {blocker_pid}; {blocked} are"
            )
        await asyncio.sleep(0.01)


# Migrations


async def test_migrate_from_empty(empty_postgres_url: str) -> None:
    versions = await migrate(empty_postgres_url)

    connection = await connect(empty_postgres_url)
    try:
        applied = await connection.fetch(f"SELECT version, file_name FROM {VERSION_TABLE}")
    finally:
        await connection.close()
    assert versions == (0, SCHEMA_VERSION)
    assert SCHEMA_VERSION == 1
    assert [tuple(row) for row in applied] == [(1, "0001_initial.sql")]
    assert await table_names(empty_postgres_url) == {
        VERSION_TABLE,
        "users",
        "conversations",
        "participants",
        "messages",
        "event_log",
        "events",
        "event_recipients",
    }


async def test_migrate_again_changes_nothing(postgres_url: str) -> None:
    before = await schema_definition(postgres_url)

    versions = await migrate(postgres_url)

    assert versions == (SCHEMA_VERSION, SCHEMA_VERSION)
    assert await schema_definition(postgres_url) == before


async def test_concurrent_migrations_apply_once(empty_postgres_url: str) -> None:
    results = await asyncio.gather(*(migrate(empty_postgres_url) for _ in range(3)))

    connection = await connect(empty_postgres_url)
    try:
        versions = [
            row[0] for row in await connection.fetch(f"SELECT version FROM {VERSION_TABLE}")
        ]
    finally:
        await connection.close()
    # The advisory lock lets one run migrate; the others wait and find nothing to do.
    assert sorted(results) == [(0, SCHEMA_VERSION)] + [(SCHEMA_VERSION, SCHEMA_VERSION)] * 2
    assert versions == list(range(1, SCHEMA_VERSION + 1))


async def test_migrate_lock_wait_bounded(empty_postgres_url: str) -> None:
    schema = empty_postgres_url.rsplit("search_path=", 1)[1]
    holder = await connect(empty_postgres_url)
    try:
        # The lock that a migrate() in progress on this schema holds.
        await holder.execute(
            "SELECT pg_advisory_lock($1, hashtext($2))", migrations.LOCK_CLASS, schema
        )
        with pytest.raises(StorageError) as raised:
            await migrate(empty_postgres_url, lock_timeout=0.2)
    finally:
        await holder.close()

    assert str(raised.value) == (
        f"waited 0.2 s for another 'talkjs-components migrate' on PostgreSQL database 'test' "
        f"schema '{schema}' to finish: try again when it has finished"
    )
    assert await table_names(empty_postgres_url) == set()


async def test_failed_migration_keeps_old_version(empty_postgres_url: str) -> None:
    connection = await connect(empty_postgres_url)
    try:
        await connection.execute("CREATE TABLE events (note text)")
    finally:
        await connection.close()

    with pytest.raises(StorageError) as raised:
        await migrate(empty_postgres_url)

    message = str(raised.value)
    assert message.startswith("migration 0001_initial.sql failed on PostgreSQL database 'test'")
    assert 'relation "events" already exists' in message
    assert message.endswith("the schema stays at version 0")
    # The file ran in one transaction, so the tables before the failing one are gone too.
    assert await table_names(empty_postgres_url) == {VERSION_TABLE, "events"}


async def test_migrate_needs_existing_schema(empty_postgres_url: str) -> None:
    missing = empty_postgres_url.replace("search_path=test_", "search_path=missing_")

    with pytest.raises(StorageError) as raised:
        await migrate(missing)

    assert str(raised.value) == (
        "PostgreSQL database 'test' has no schema in the search_path: create the schema, "
        "or name an existing one with ?search_path= in the URL"
    )


def test_migration_files_numbered() -> None:
    migrations = load_migrations()

    assert [migration.version for migration in migrations] == list(range(1, SCHEMA_VERSION + 1))
    assert migrations[0].file_name == "0001_initial.sql"
    assert "CREATE TABLE messages" in migrations[0].sql


# The schema check at open


async def test_open_unmigrated_schema_rejected(empty_postgres_url: str) -> None:
    store = PostgresStore(empty_postgres_url, APP_ID)

    with pytest.raises(StorageError) as raised:
        await store.open()

    schema = empty_postgres_url.rsplit("search_path=", 1)[1]
    assert str(raised.value) == (
        f"PostgreSQL database 'test' schema '{schema}' has schema version 0, but this "
        "version of talkjs-components needs schema version 1: run 'talkjs-components "
        "migrate' with the same database URL, then start again"
    )
    # Nothing was created.
    assert await table_names(empty_postgres_url) == set()


async def test_open_newer_schema_rejected(
    postgres_url: str, admin: asyncpg.Connection[asyncpg.Record]
) -> None:
    await admin.execute(
        f"INSERT INTO {VERSION_TABLE} (version, file_name) VALUES (7, '0007_future.sql')"
    )
    store = PostgresStore(postgres_url, APP_ID)

    with pytest.raises(StorageError) as opening:
        await store.open()
    with pytest.raises(StorageError) as migrating:
        await migrate(postgres_url)

    schema = postgres_url.rsplit("search_path=", 1)[1]
    expected = (
        f"PostgreSQL database 'test' schema '{schema}' has schema version 7, but this "
        "version of talkjs-components supports schema version 1 only: upgrade "
        "talkjs-components, or use another database or schema"
    )
    assert str(opening.value) == expected
    assert str(migrating.value) == expected


async def test_unreachable_server_raises_storage_error() -> None:
    # Port 1 on the loopback interface refuses connections.
    store = PostgresStore("postgresql://chat:secret-password@127.0.0.1:1/test", APP_ID)

    with pytest.raises(StorageError) as raised:
        await store.open()

    message = str(raised.value)
    assert message.startswith(
        "connecting to PostgreSQL at postgresql://chat:***@127.0.0.1:1/test failed: "
    )
    assert "secret-password" not in message


# Pools


async def test_stores_share_one_pool(postgres_url: str) -> None:
    pool = await create_pool(postgres_url, max_size=2)
    try:
        first = PostgresStore(pool, "app-one")
        second = PostgresStore(pool, "app-two")
        await first.open()
        await second.open()
        await create_chat(first, "c1", "alice")
        await first.close()
        await create_chat(second, "c1", "bob")
        conversation = await second.get_conversation("c1")
        await second.close()

        still_open = await pool.fetchval("SELECT count(*) FROM conversations")
    finally:
        await pool.close()

    assert conversation is not None
    assert set(conversation.participants) == {"bob"}
    # Closing a store leaves a pool it did not create open.
    assert still_open == 2


@pytest.mark.parametrize(("parameter", "expected_named"), [("", 1), ("statement_cache_size=0", 0)])
async def test_statement_cache_size_from_url(
    postgres_url: str, parameter: str, expected_named: int
) -> None:
    # Behind PgBouncer in transaction mode, named prepared statements break;
    # asyncpg prepares only unnamed ones when its statement cache is off.
    separator = "&" if "?" in postgres_url else "?"
    url = f"{postgres_url}{separator}{parameter}" if parameter else postgres_url
    pool = await create_pool(url, max_size=1)
    try:
        async with pool.acquire() as connection:
            await connection.fetchval("SELECT count(*) FROM conversations WHERE id = $1", "c1")
            named = await connection.fetchval("SELECT count(*) FROM pg_prepared_statements")
            search_path = await connection.fetchval("SHOW search_path")
    finally:
        await pool.close()

    assert (named > 0) == bool(expected_named)
    # The other parameters still reach the server.
    assert search_path in postgres_url


@pytest.mark.parametrize(
    ("parameter", "message"),
    [
        ("statement_cache_size=-1", "statement_cache_size='-1' in PostgreSQL URL"),
        ("statement_cache_size=lots", "is invalid: use an integer >= 0"),
        # Digits of other scripts: superscript two made int() raise, and
        # ARABIC-INDIC DIGIT ONE was read as 1.
        ("statement_cache_size=%C2%B2", "is invalid: use an integer >= 0"),
        ("statement_cache_size=%D9%A1", "is invalid: use an integer >= 0"),
        ("statement_cache_size=0&statement_cache_size=5", "gives statement_cache_size twice"),
    ],
)
async def test_invalid_statement_cache_size_rejected(
    postgres_url: str, parameter: str, message: str
) -> None:
    separator = "&" if "?" in postgres_url else "?"

    with pytest.raises(InvalidInput) as raised:
        await create_pool(f"{postgres_url}{separator}{parameter}")

    assert message in raised.value.message


async def test_store_satisfies_protocol(postgres_url: str) -> None:
    store: Store = PostgresStore(postgres_url, APP_ID)
    await store.open()
    try:
        await store.ping()
    finally:
        await store.close()


# Values PostgreSQL cannot store


async def test_nul_character_rejected(store: PostgresStore) -> None:
    await create_chat(store, "c1", "alice")

    with pytest.raises(InvalidInput) as in_text:
        await store.insert_message(Draft("c1", "alice", "a\x00b"))
    with pytest.raises(InvalidInput) as in_custom:
        await store.upsert_user(User(id="alice", custom={"note": "\x00"}))

    assert str(in_text.value) == (
        "cannot insert message: a text value contains the character U+0000, which "
        "PostgreSQL cannot store; remove it"
    )
    assert str(in_custom.value).startswith("cannot upsert user: a text value contains")
    assert await list_all(store, "c1") == []
    assert (await store.get_users(["alice"]))["alice"].custom is None


# Locking: each test holds a lock from a connection of its own and checks
# that the store's write waits for it.


async def test_appends_wait_for_uncommitted_append(
    store: PostgresStore, postgres_url: str, admin: asyncpg.Connection[asyncpg.Record]
) -> None:
    await create_chat(store, "c1", "alice")
    await create_chat(store, "c2", "alice")
    logger = EventLogger("alice")
    first = await store.insert_message(Draft("c1", "alice", "first"), log_event=logger)
    assert first.event is not None
    assert first.event.seq is not None
    watcher = await connect(postgres_url)

    # Another writer takes the next number and has not committed yet.
    other_writer = admin.transaction()
    await other_writer.start()
    await admin.execute("UPDATE event_log SET last_seq = last_seq + 1 WHERE app_id = $1", APP_ID)
    sending = asyncio.create_task(
        store.insert_message(Draft("c2", "alice", "second"), log_event=logger)
    )
    try:
        await wait_until_blocked(watcher, admin.get_server_pid())
        while_blocked = await store.events_after("alice", 0, limit=10)
        assert not sending.done()
    finally:
        # The other writer fails, so its number is free again.
        await other_writer.rollback()
        await watcher.close()
    second = await asyncio.wait_for(sending, WAIT_TIMEOUT)

    # A reader never saw a number beyond the committed first event.
    assert while_blocked.events == [first.event]
    assert while_blocked.next_after_seq == first.event.seq
    assert second.event is not None
    assert second.event.seq == first.event.seq + 1


async def test_send_waits_for_uncommitted_send(
    store: PostgresStore, postgres_url: str, admin: asyncpg.Connection[asyncpg.Record]
) -> None:
    await create_chat(store, "c1", "alice", "bob")
    watcher = await connect(postgres_url)

    # Another writer's send to c1, with its seq drawn, not committed yet.
    other_writer = admin.transaction()
    await other_writer.start()
    await admin.execute(
        "SELECT 1 FROM conversations WHERE app_id = $1 AND id = 'c1' FOR NO KEY UPDATE", APP_ID
    )
    other_seq = await admin.fetchval(
        "INSERT INTO messages (app_id, id, conversation_id, sender_id, text, type,"
        " created_at, origin) VALUES ($1, 'msg_other', 'c1', 'alice', 'other', 'UserMessage',"
        " 1, 'web') RETURNING seq",
        APP_ID,
    )
    sending = asyncio.create_task(store.insert_message(Draft("c1", "alice", "mine")))
    reading = asyncio.create_task(store.mark_read("c1", "bob", None))
    try:
        # Neither the send nor the read position of c1 may pass the uncommitted message.
        await wait_until_blocked(watcher, admin.get_server_pid(), count=2)
        # The send waits before it draws a seq, so its seq will be larger, and
        # no reader sees it before the other message.
        drawn = await watcher.fetchval(
            "SELECT pg_sequence_last_value(pg_get_serial_sequence('messages', 'seq')::regclass)"
        )
        assert drawn == other_seq
        assert not sending.done()
        assert not reading.done()
    finally:
        await other_writer.commit()
        await watcher.close()
    sent = await asyncio.wait_for(sending, WAIT_TIMEOUT)
    position = await asyncio.wait_for(reading, WAIT_TIMEOUT)
    unreads = await store.get_unreads("bob")

    assert sent.message.seq > other_seq
    assert position.last_read_seq in (other_seq, sent.message.seq)
    expected_unread = 1 if position.last_read_seq == other_seq else 0
    assert [unread.unread_message_count for unread in unreads] == (
        [expected_unread] if expected_unread else []
    )


async def test_retried_send_waits_for_uncommitted_first(
    store: PostgresStore, postgres_url: str, admin: asyncpg.Connection[asyncpg.Record]
) -> None:
    await create_chat(store, "c1", "alice")
    watcher = await connect(postgres_url)

    # A writer that does not lock the conversation inserts the first send.
    other_writer = admin.transaction()
    await other_writer.start()
    await admin.execute(
        "INSERT INTO messages (app_id, id, conversation_id, sender_id, text, type,"
        " created_at, origin, idempotency_key) VALUES ($1, 'msg_first', 'c1', 'alice',"
        " 'hi', 'UserMessage', 1, 'web', 'key-1')",
        APP_ID,
    )
    retrying = asyncio.create_task(
        store.insert_message(Draft("c1", "alice", "hi", idempotency_key="key-1"))
    )
    try:
        # The unique index makes the retry wait for the first send's outcome.
        await wait_until_blocked(watcher, admin.get_server_pid())
    finally:
        await other_writer.commit()
        await watcher.close()
    retried = await asyncio.wait_for(retrying, WAIT_TIMEOUT)

    assert not retried.created
    assert retried.message.id == "msg_first"
    assert [message.id for message in await list_all(store, "c1")] == ["msg_first"]


# Several writers at once


async def test_writes_return_in_seq_order(store: PostgresStore) -> None:
    await create_chat(store, "c1", "alice", "bob")
    logger = EventLogger("alice", "bob")
    returned: list[int] = []

    async def send_one(number: int) -> None:
        sender = ("alice", "bob")[number % 2]
        inserted = await store.insert_message(Draft("c1", sender, f"{number}"), log_event=logger)
        assert inserted.event is not None
        assert inserted.event.seq is not None
        returned.append(inserted.event.seq)

    # The writes commit on up to 8 connections at once, and their callers
    # resume in whatever order the replies arrive, unless the store orders them.
    # NOTE: without that order this fails only when replies interleave, which
    # happens mostly under CPU load; test_event_log runs the same race through
    # ChatService.
    await asyncio.gather(*(send_one(number) for number in range(40)))

    assert len(returned) == 40
    assert returned == sorted(returned)


USERS = ("alice", "bob", "carol")


async def prepare_conversation(store: Store) -> None:
    """Create alice, bob and carol in conversation "c1"."""
    await create_chat(store, "c1", *USERS)


async def write_messages(store: Store, writer: str, rounds: int) -> None:
    """Send ``rounds`` messages to "c1" with reads in between, and retry one send each round.

    Every event goes to all three users, so each user's log is the whole log.
    """
    logger = EventLogger(*USERS)
    for number in range(rounds):
        sender = USERS[number % 3]
        reader = USERS[(number + 1) % 3]
        await store.insert_message(Draft("c1", sender, f"{writer} {number}"), log_event=logger)
        await store.mark_read("c1", reader, None, log_event=logger)
        # Every writer retries the same send; one message must result.
        await store.insert_message(
            Draft("c1", "carol", "retried", idempotency_key="retried"), log_event=logger
        )


async def write_in_child(url: str, writer: str, rounds: int) -> None:
    """Run ``write_messages`` in a process of its own, with a store of its own."""
    store = PostgresStore(url, APP_ID, max_pool_size=2)
    await store.open()
    try:
        await write_messages(store, writer, rounds)
    finally:
        await store.close()


async def follow_log(store: Store, done: asyncio.Event) -> list[ChatEvent]:
    """Read alice's events page by page while others write, until ``done`` and no more."""
    collected: list[ChatEvent] = []
    position = 0
    while True:
        # Read the flag before the page, so the last page starts after every write.
        finished = done.is_set()
        page = await store.events_after("alice", position, limit=7)
        collected += page.events
        position = page.next_after_seq
        if finished and not page.has_more:
            return collected
        await asyncio.sleep(0)


async def check_consistency(store: Store, url: str, rounds_written: int) -> None:
    """Check the log, the message order and the unread counts after concurrent writes."""
    events = await all_events(store, "alice")
    numbers = seqs(events)
    # Every event of the app went to alice, and the per-app counter leaves no gaps.
    assert numbers == list(range(1, len(numbers) + 1))
    # A reader from any position gets exactly the rest of the log, in order.
    for index, position in enumerate([0, *numbers[:-1]]):
        page = await store.events_after("alice", position, limit=1000)
        assert page.events == events[index:], f"events after seq {position}"

    messages = await list_all(store, "c1")
    message_seqs = [message.seq for message in messages]
    assert len(set(message_seqs)) == len(message_seqs)
    assert [message.text for message in messages].count("retried") == 1
    assert len(messages) == rounds_written + 1

    connection = await connect(url)
    try:
        recount = await connection.fetch(
            """
            SELECT p.user_id, p.last_read_seq,
                (SELECT count(*) FROM messages AS m
                 WHERE m.app_id = p.app_id AND m.conversation_id = p.conversation_id
                   AND m.seq > p.last_read_seq AND m.sender_id IS DISTINCT FROM p.user_id)
                    AS unread,
                (SELECT count(*) FROM messages AS m
                 WHERE m.app_id = p.app_id AND m.conversation_id = p.conversation_id
                   AND m.seq > p.last_read_seq AND m.sender_id = p.user_id) AS own_unread
            FROM participants AS p WHERE p.app_id = $1 AND p.conversation_id = 'c1'
            """,
            APP_ID,
        )
    finally:
        await connection.close()
    for row in recount:
        unreads = await store.get_unreads(row["user_id"])
        counted = unreads[0].unread_message_count if unreads else 0
        assert counted == row["unread"], row["user_id"]
        # Sending moves the sender's position to their message, so no own
        # message lies after it.
        assert row["own_unread"] == 0, row["user_id"]


async def test_concurrent_tasks_keep_order(store: PostgresStore, postgres_url: str) -> None:
    await prepare_conversation(store)
    reader = PostgresStore(postgres_url, APP_ID, max_pool_size=1)
    await reader.open()
    done = asyncio.Event()
    try:
        following = asyncio.create_task(follow_log(reader, done))
        # Each task's operations run on the pool's connections, up to 8 at once.
        await asyncio.gather(*(write_messages(store, f"task {number}", 8) for number in range(4)))
        done.set()
        followed = await asyncio.wait_for(following, WAIT_TIMEOUT)
        await check_consistency(store, postgres_url, rounds_written=4 * 8)
    finally:
        await reader.close()

    assert followed == await all_events(store, "alice")


async def test_concurrent_processes_keep_order(store: PostgresStore, postgres_url: str) -> None:
    await prepare_conversation(store)
    done = asyncio.Event()
    following = asyncio.create_task(follow_log(store, done))
    script = (
        "import asyncio, sys\n"
        "from tests.test_store_postgres import write_in_child\n"
        "asyncio.run(write_in_child(sys.argv[1], sys.argv[2], int(sys.argv[3])))\n"
    )
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            script,
            postgres_url,
            f"process {number}",
            "10",
            cwd=REPOSITORY,
            env={**os.environ, "PYTHONPATH": str(REPOSITORY)},
            stderr=asyncio.subprocess.PIPE,
        )
        for number in range(2)
    ]
    try:
        outputs = [
            await asyncio.wait_for(child.communicate(), WAIT_TIMEOUT * 4) for child in children
        ]
    finally:
        for child in children:
            if child.returncode is None:
                child.kill()
                await child.wait()
        done.set()
    followed = await asyncio.wait_for(following, WAIT_TIMEOUT)

    for child, (_, stderr) in zip(children, outputs, strict=True):
        assert child.returncode == 0, stderr.decode()
    await check_consistency(store, postgres_url, rounds_written=2 * 10)
    assert followed == await all_events(store, "alice")
